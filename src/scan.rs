//! `connect -z`: a port scan. TCP ports are tried with a full connect, as
//! `nc -z` and `nmap -sT` do; UDP ports get an empty datagram, which the
//! textbook time and daytime services answer, and a closed port answers
//! with ICMP port unreachable.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::endpoint::Endpoint;
use crate::net::{self, Dial};

/// How long a probe waits when `-w` is not given: long enough for a host
/// across the world, short enough that a filtered range ends.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes in flight when `--concurrency` is not given.
pub const DEFAULT_CONCURRENCY: usize = 100;

/// What a silent UDP port can mean, said once per scan that has one.
const SILENT_UDP: &str = "open|filtered means no answer came: a UDP service may be open but \
     silent until it gets a request it understands, or a firewall dropped the probe or the \
     ICMP port-unreachable reply (which hosts also rate-limit)";

/// Ports as written: `22`, `20-25`, `80,443,8000-8100`; each is scanned
/// once, in the order first written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports(Vec<u16>);

#[allow(missing_docs)] // a list's usual three
impl Ports {
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.0.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Ports {
    type Err = String;

    fn from_str(text: &str) -> Result<Ports, String> {
        let port = |p: &str| match p.trim().parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("'{p}' is not a port from 1 to 65535")),
            Ok(n) => Ok(n),
        };
        let mut seen = vec![false; usize::from(u16::MAX) + 1];
        let mut ports = Vec::new();
        for part in text.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (port(lo)?, port(hi)?),
                None => {
                    let p = port(part)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("range '{part}' runs backwards"));
            }
            for p in lo..=hi {
                if !std::mem::replace(&mut seen[usize::from(p)], true) {
                    ports.push(p);
                }
            }
        }
        Ok(Ports(ports))
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A connection was made, or a UDP reply came.
    Open,
    /// Refused: a TCP reset or an ICMP port unreachable.
    Closed,
    /// No TCP answer within the timeout.
    Timeout,
    /// No UDP answer within the timeout: see [`SILENT_UDP`].
    #[serde(rename = "open|filtered")]
    Silent,
    /// Another failure, such as no route to the host.
    Error(String),
}

impl State {
    /// Whether the port may have a service behind it: shown without `-v`,
    /// and what makes the exit status 0. A silent UDP port counts, as it
    /// does for `nc -zu`, since UDP cannot tell it from an open one.
    fn maybe_open(&self) -> bool {
        matches!(self, State::Open | State::Silent)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Open => f.write_str("open"),
            State::Closed => f.write_str("closed"),
            State::Timeout => f.write_str("timeout"),
            State::Silent => f.write_str("open|filtered"),
            State::Error(why) => write!(f, "error ({why})"),
        }
    }
}

/// A scan's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The host as written, to resolve once.
    pub host: String,
    /// In the order to report them.
    pub ports: Ports,
    /// Probe with datagrams rather than connects.
    pub udp: bool,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Each probe's limit.
    pub timeout: Duration,
    /// How sockets are made (`-s`, `-4`, `-n`…); its own timeout is unused.
    pub dial: Dial,
    /// Show every port, not only those that may be open, and a summary.
    pub verbose: bool,
    /// One JSON document on stdout instead of lines.
    pub json: bool,
}

/// One port's result.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The port probed.
    pub port: u16,
    /// What the probe found there.
    pub state: State,
}

/// The whole scan, as `--json` prints it: the host as asked and the
/// address scanned, how many ports ended in each state, and how long it
/// took.
#[derive(Debug, Serialize)]
#[allow(missing_docs)] // the fields are the JSON document's keys
pub struct Report {
    pub host: String,
    pub address: String,
    pub protocol: &'static str,
    pub scanned: usize,
    pub open: usize,
    pub closed: usize,
    pub timeout: usize,
    #[serde(rename = "open|filtered")]
    pub silent: usize,
    pub errors: usize,
    pub seconds: f64,
    /// The ports shown: every one with `-v`, else those that may be open.
    pub ports: Vec<Probe>,
}

impl Report {
    /// Whether any port may be open: the exit status.
    pub fn any_open(&self) -> bool {
        self.open + self.silent > 0
    }
}

/// Scans, printing each port shown as soon as it and every port before it
/// are done, so the output keeps the order the ports were written in.
pub async fn run(cfg: &Config) -> io::Result<Report> {
    let target: Endpoint = Endpoint::Inet {
        udp: cfg.udp,
        host: cfg.host.clone(),
        port: 0,
        scheme: true,
        tls: false,
        ws: None,
    };
    let ip = cfg.dial.addresses(&target).await?[0].ip();
    let started = Instant::now();
    let probes = futures_util::stream::iter(cfg.ports.iter().enumerate())
        .map(|(i, port)| async move {
            let addr = SocketAddr::new(ip, port);
            (
                i,
                Probe {
                    port,
                    state: probe(cfg, addr).await,
                },
            )
        })
        .buffer_unordered(cfg.concurrency.max(1));
    tokio::pin!(probes);
    let mut report = Report {
        host: cfg.host.clone(),
        address: ip.to_string(),
        protocol: if cfg.udp { "udp" } else { "tcp" },
        scanned: cfg.ports.len(),
        open: 0,
        closed: 0,
        timeout: 0,
        silent: 0,
        errors: 0,
        seconds: 0.0,
        ports: Vec::new(),
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // Finished probes wait here until those before them are done.
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    while let Some((i, probe)) = probes.next().await {
        waiting.insert(i, probe);
        while let Some(probe) = waiting.remove(&next) {
            next += 1;
            *match probe.state {
                State::Open => &mut report.open,
                State::Closed => &mut report.closed,
                State::Timeout => &mut report.timeout,
                State::Silent => &mut report.silent,
                State::Error(_) => &mut report.errors,
            } += 1;
            if !(cfg.verbose || probe.state.maybe_open()) {
                continue;
            }
            if !cfg.json {
                writeln!(out, "{}/{} {}", probe.port, report.protocol, probe.state)
                    .and_then(|()| out.flush())
                    .map_err(crate::stdio::stdout_error)?;
            }
            report.ports.push(probe);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    if cfg.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)
            .and_then(|()| out.flush())
            .map_err(crate::stdio::stdout_error)?;
    }
    if report.silent > 0 {
        eprintln!("sockit: note: {SILENT_UDP}");
    }
    if cfg.verbose {
        eprintln!(
            "sockit: scanned {} {} port{} on {} in {:.2} s: {} open, {} closed, {} timeout{}{}",
            report.scanned,
            report.protocol,
            if report.scanned == 1 { "" } else { "s" },
            report.address,
            report.seconds,
            report.open,
            report.closed,
            report.timeout,
            if cfg.udp {
                format!(", {} open|filtered", report.silent)
            } else {
                String::new()
            },
            if report.errors > 0 {
                format!(", {} errors", report.errors)
            } else {
                String::new()
            },
        );
    }
    Ok(report)
}

async fn probe(cfg: &Config, addr: SocketAddr) -> State {
    let found = if cfg.udp {
        udp_probe(cfg, addr).await
    } else {
        net::with_timeout(Some(cfg.timeout), tcp_probe(cfg, addr)).await
    };
    match found {
        Ok(state) => state,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => State::Closed,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => State::Timeout,
        Err(e) => State::Error(crate::error::describe_io(&e)),
    }
}

/// A connect, answered without the event loop where the answer is in by
/// the time `connect` returns: on loopback the peer's SYN-ACK or reset has
/// been processed by then, and skipping the poller's register, wait and
/// deregister for each port makes a full-range scan a third faster.
async fn tcp_probe(cfg: &Config, addr: SocketAddr) -> io::Result<State> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)?;
    cfg.dial.bind_source(socket2::SockRef::from(&sock), &addr)?;
    match sock.connect(&addr.into()) {
        Ok(()) => return Ok(State::Open),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    if let Some(err) = sock.take_error()? {
        return Err(err);
    }
    if sock.peer_addr().is_ok() {
        return Ok(State::Open);
    }
    let stream = tokio::net::TcpStream::from_std(sock.into())?;
    stream.writable().await?;
    match stream.take_error()? {
        Some(err) => Err(err),
        None => Ok(State::Open),
    }
}

/// The ICMP port unreachable for a closed port comes back as a refused
/// `recv` on the connected socket.
async fn udp_probe(cfg: &Config, addr: SocketAddr) -> io::Result<State> {
    let sock = cfg.dial.udp(addr).await?;
    sock.send(&[]).await?;
    let mut buf = [0u8; 1];
    match tokio::time::timeout(cfg.timeout, sock.recv(&mut buf)).await {
        Ok(answer) => answer.map(|_| State::Open),
        Err(_) => Ok(State::Silent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_lists_parse_in_order_once_each() {
        let p: Ports = "80,443,8000-8002,443,22".parse().unwrap();
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [80, 443, 8000, 8001, 8002, 22]
        );
        assert_eq!("1-65535".parse::<Ports>().unwrap().len(), 65535);
        for bad in ["", "0", "70000", "25-20", "a-b", "22,", "-5"] {
            assert!(bad.parse::<Ports>().is_err(), "{bad}");
        }
    }
}
