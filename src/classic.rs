//! The classic inetd services: discard (RFC 863), chargen (RFC 864),
//! daytime (RFC 867) and time (RFC 868), over TCP and UDP.

use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use clap::{Args, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tracing::Level;

use serde::{Deserialize, Serialize};

use crate::accept::{self, AcceptOptions};
use crate::datagram;
use crate::endpoint::Endpoint;
use crate::idle::Activity;
use crate::net::{Bound, Listener, MAX_DATAGRAM, Stream};
use crate::options::{ClosesIdle, Limits, OptionError};
use crate::runner;
use crate::shutdown::Shutdown;
use crate::tls::{self, server::Tls};

/// Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01.
pub const RFC868_OFFSET: u64 = 2_208_988_800;

/// Characters per chargen line (RFC 864's example), before CRLF.
const CHARGEN_LINE: usize = 72;

/// The printable ASCII characters chargen rotates through.
const PRINTABLE: std::ops::RangeInclusive<u8> = b' '..=b'~';

/// Longest UDP chargen reply (RFC 864).
const CHARGEN_UDP_MAX: usize = 512;

/// Which classic service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// RFC 863: read and throw away.
    Discard,
    /// RFC 864: an endless stream of rotating character lines.
    Chargen,
    /// RFC 867: one human-readable line with the date and time.
    Daytime,
    /// RFC 868: the time as 32-bit seconds since 1900.
    Time,
}

impl Service {
    /// The service's name in logs and the suite table.
    pub fn name(self) -> &'static str {
        match self {
            Service::Discard => "discard",
            Service::Chargen => "chargen",
            Service::Daytime => "daytime",
            Service::Time => "time",
        }
    }
}

/// The options of each classic service: flags of `sockit discard` and
/// `sockit chargen`, keys of `[discard]`, `[daytime]`, `[chargen]`, `[time]`.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// `--tls` and its certificate; in a config section, a `tls` table.
    #[command(flatten)]
    pub tls: Tls,
    /// `--max-conns`, `--idle-timeout` and `--drain-timeout`.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<ClosesIdle>,
}

impl Options {
    /// `service`'s one entry for the runner, whether run alone or in the
    /// suite.
    pub fn service(
        &self,
        service: Service,
        endpoints: Vec<Endpoint>,
    ) -> Result<runner::Service, OptionError> {
        let tls = self.tls.server(&endpoints, &[])?;
        let cfg = Config {
            service,
            max_conns: self.limits.max_conns()?,
            idle_timeout: self.limits.idle(),
            tls: tls.clone(),
        };
        let drain = self.limits.drain();
        let name = service.name();
        Ok(runner::Service::new(name, endpoints, drain, cfg, run_bound).with_tls(tls))
    }
}

/// Limits shared by the classic services.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which service.
    pub service: Service,
    /// TCP clients served at once.
    pub max_conns: usize,
    /// Close a discard/chargen client after this long with no progress.
    pub idle_timeout: Option<Duration>,
    /// Terminate TLS on every stream connection.
    pub tls: Option<Arc<tls::server::Server>>,
}

/// RFC 868's answer for `now`: seconds since 1900, big-endian, wrapping in
/// 2036 as the RFC's 32 bits do.
pub fn rfc868_bytes(now: SystemTime) -> [u8; 4] {
    let unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    ((unix + RFC868_OFFSET) as u32).to_be_bytes()
}

/// Decodes an RFC 868 answer to seconds since the Unix epoch, assuming the
/// era nearest to `now` (so it keeps working after the 2036 wrap).
pub fn rfc868_to_unix(bytes: [u8; 4], now: SystemTime) -> i64 {
    let now_1900 =
        now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64 + RFC868_OFFSET as i64;
    let era = 1i64 << 32;
    let value = u32::from_be_bytes(bytes) as i64;
    let base = now_1900 - now_1900.rem_euclid(era);
    let candidates = [base - era + value, base + value, base + era + value];
    let best = candidates
        .into_iter()
        .min_by_key(|c| (c - now_1900).abs())
        .expect("three candidates");
    best - RFC868_OFFSET as i64
}

/// RFC 867's line, e.g. `Sunday, November 22, 2026 14:03:07-UTC`, with CRLF.
pub fn daytime_line() -> String {
    format!("{}\r\n", Utc::now().format("%A, %B %-d, %Y %H:%M:%S-UTC"))
}

/// One full cycle of chargen lines: line `i` starts `i` characters into the
/// printable set. Writing it over and over gives the RFC 864 stream.
fn chargen_cycle() -> Vec<u8> {
    let chars: Vec<u8> = PRINTABLE.collect();
    let mut out = Vec::with_capacity(chars.len() * (CHARGEN_LINE + 2));
    for start in 0..chars.len() {
        out.extend((0..CHARGEN_LINE).map(|i| chars[(start + i) % chars.len()]));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Serves a bound socket of either kind until shutdown.
pub async fn run_bound(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    match bound {
        Bound::Stream(l) => run_tcp(cfg, l, shutdown).await,
        Bound::Datagram(s) => run_udp(cfg, s, shutdown).await,
        Bound::UnixDatagram(..) => Err(crate::net::no_unix_datagrams("the classic services")),
    }
}

/// Serves stream clients until shutdown.
pub async fn run_tcp(cfg: Arc<Config>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    let mut opts = AcceptOptions::new(cfg.service.name(), cfg.max_conns, Level::DEBUG);
    opts.tls = cfg.tls.clone();
    let cycle: Arc<[u8]> = chargen_cycle().into();
    accept::serve(listener, shutdown, opts, move |stream, _| {
        let cfg = cfg.clone();
        let cycle = cycle.clone();
        async move {
            match cfg.service {
                Service::Discard => discard(stream, cfg.idle_timeout).await,
                Service::Chargen => chargen(stream, &cycle, cfg.idle_timeout).await,
                Service::Daytime => send_and_close(stream, daytime_line().as_bytes()).await,
                Service::Time => send_and_close(stream, &rfc868_bytes(SystemTime::now())).await,
            }
        }
    })
    .await
}

async fn send_and_close(mut stream: Stream, data: &[u8]) -> io::Result<()> {
    stream.write_all(data).await?;
    stream.shutdown().await
}

async fn discard(mut stream: Stream, idle: Option<Duration>) -> io::Result<()> {
    let activity = Activity::new();
    let swallow = async {
        activity.step(stream.wait_for_data()).await?;
        let mut buf = vec![0u8; 16 * 1024];
        while activity.step(stream.read(&mut buf)).await? > 0 {}
        Ok(())
    };
    activity.bound(idle, swallow).await
}

/// Streams the cycle until a write fails (the client is gone). Writes wait
/// for the client to read (backpressure), so one that never reads costs only
/// its socket buffers; the idle timeout ends it if it stalls for the whole
/// limit. A client that half-closes (`nc -N </dev/null`) still gets the
/// stream, as from inetd's chargen.
async fn chargen(stream: Stream, cycle: &[u8], idle: Option<Duration>) -> io::Result<()> {
    let activity = Activity::new();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let client_closed = async {
        let mut sink = [0u8; 1024];
        while rd.read(&mut sink).await? > 0 {}
        // Half-closed: keep writing; a full close makes the next write fail.
        std::future::pending::<io::Result<()>>().await
    };
    let stream_out = async {
        loop {
            activity.step(wr.write_all(cycle)).await?;
        }
    };
    activity
        .bound(idle, async {
            tokio::select! {
                res = client_closed => res,
                res = stream_out => res,
            }
        })
        .await
}

/// Answers datagrams until shutdown.
pub async fn run_udp(cfg: Arc<Config>, socket: UdpSocket, shutdown: Shutdown) -> io::Result<()> {
    let cycle = chargen_cycle();
    let mut sent_lines: usize = 0;
    datagram::serve(
        crate::net::Datagram::Udp(socket),
        &shutdown,
        MAX_DATAGRAM,
        move |_, reply| {
            match cfg.service {
                Service::Discard => return false,
                Service::Chargen => {
                    sent_lines = sent_lines.wrapping_add(1);
                    reply.extend(chargen_datagram(&cycle, sent_lines));
                }
                Service::Daytime => reply.extend_from_slice(daytime_line().as_bytes()),
                Service::Time => reply.extend_from_slice(&rfc868_bytes(SystemTime::now())),
            }
            true
        },
    )
    .await
}

/// The n-th UDP chargen reply: 0 to 512 characters of the stream, the length
/// varying from one datagram to the next as RFC 864 suggests.
fn chargen_datagram(cycle: &[u8], n: usize) -> Vec<u8> {
    // A multiplicative hash spreads lengths over 0..=512 without a PRNG.
    let len = n.wrapping_mul(2_654_435_761) % (CHARGEN_UDP_MAX + 1);
    let start = (n % (cycle.len() / (CHARGEN_LINE + 2))) * (CHARGEN_LINE + 2);
    cycle
        .iter()
        .cycle()
        .skip(start)
        .take(len)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc868_round_trips_and_survives_the_2036_wrap() {
        let now = SystemTime::now();
        let unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!(rfc868_to_unix(rfc868_bytes(now), now), unix);
        // 2036-02-07 06:28:16 UTC is where 32 bits of 1900-seconds wrap.
        let after = UNIX_EPOCH + Duration::from_secs(2_085_978_496 + 10);
        assert_eq!(rfc868_bytes(after), 10u32.to_be_bytes());
        assert_eq!(rfc868_to_unix(rfc868_bytes(after), after), 2_085_978_506);
        // A known value: 2026-11-22 00:00:00 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_305_600);
        assert_eq!(
            u32::from_be_bytes(rfc868_bytes(t)) as u64,
            1_795_305_600 + RFC868_OFFSET
        );
    }

    #[test]
    fn chargen_lines_rotate_through_printable_ascii() {
        let cycle = chargen_cycle();
        let lines: Vec<&[u8]> = cycle
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 95);
        assert_eq!(&lines[0][..3], b" !\"");
        assert_eq!(&lines[1][..3], b"!\"#");
        assert!(
            lines
                .iter()
                .all(|l| l.len() == CHARGEN_LINE + 1 && l.ends_with(b"\r"))
        );
    }

    #[test]
    fn udp_chargen_lengths_stay_within_512() {
        let cycle = chargen_cycle();
        let lens: Vec<usize> = (0..1000)
            .map(|n| chargen_datagram(&cycle, n).len())
            .collect();
        assert!(lens.iter().all(|&l| l <= CHARGEN_UDP_MAX));
        assert!(lens.iter().any(|&l| l > 400) && lens.iter().any(|&l| l < 100));
    }

    #[test]
    fn daytime_line_looks_like_the_rfc_example() {
        let line = daytime_line();
        assert!(line.ends_with("-UTC\r\n"), "{line}");
        assert_eq!(line.matches(", ").count(), 2, "{line}");
    }
}
