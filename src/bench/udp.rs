//! `bench udp`: request/response load over UDP. Each of N in-flight
//! requests is a closed loop on its own socket: send, wait for the reply (or
//! count it lost after the timeout), repeat.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::load::{self, CONNECT_TIMEOUT, LoopResult, Plan};
use super::stats::{self, Report};
use clap::Args;

use crate::endpoint::{Endpoint, Transport};
use crate::net;
use crate::options::OptionError;
use crate::units::Secs;

/// The flags of `sockit bench udp`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The server: HOST:PORT (always UDP) or udp://….
    pub endpoint: Endpoint,
    /// Requests in flight at once.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub in_flight: usize,
    /// How long to run.
    #[arg(short, long, value_name = "SECS", default_value = "10")]
    pub duration: Secs,
    /// What each request carries.
    #[arg(short, long, default_value = "%Y-%m-%d %X")]
    pub payload: String,
    /// A request with no reply after this long counts as lost.
    #[arg(short = 'w', long, value_name = "SECS", default_value = "1")]
    pub timeout: Secs,
    /// Send sockperf ping messages (as many bytes as the payload, at least
    /// 14) so `sockperf server` can be measured too.
    #[arg(long)]
    pub sockperf: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Options {
    /// The run, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        let times = [("duration", self.duration.0), ("timeout", self.timeout.0)];
        super::bounded("in_flight", self.in_flight, &times)?;
        // A plain HOST:PORT means UDP here; a stream scheme is a mistake.
        let endpoint = self
            .endpoint
            .clone()
            .udp_unless(false)
            .ok()
            .filter(|ep| ep.transport() == Transport::Udp)
            .ok_or_else(|| {
                OptionError::new(
                    "endpoint",
                    format!("bench udp needs a UDP endpoint, not '{}'", self.endpoint),
                )
            })?;
        Ok(Config {
            endpoint,
            in_flight: self.in_flight,
            duration: self.duration.0,
            payload: self.payload.clone().into_bytes(),
            timeout: self.timeout.0,
            sockperf: self.sockperf,
        })
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The UDP server.
    pub endpoint: Endpoint,
    /// Requests in flight at once.
    pub in_flight: usize,
    /// How long to send.
    pub duration: Duration,
    /// What each request carries.
    pub payload: Vec<u8>,
    /// After this long without a reply a request counts as lost.
    pub timeout: Duration,
    /// Wrap each request in sockperf's ping header so `sockperf server`
    /// answers it (echo servers answer it too).
    pub sockperf: bool,
}

/// sockperf's message header: sequence number (u64), flags (u16) and total
/// length (u32), big-endian. A ping carries CLIENT | PONG_REQUEST.
const SOCKPERF_HEADER: usize = 14;
const SOCKPERF_PING: u16 = 0x0003;

/// A sockperf ping of `size` bytes (at least the header).
fn sockperf_ping(size: usize) -> Vec<u8> {
    let size = size.max(SOCKPERF_HEADER);
    let mut msg = vec![0u8; size];
    msg[8..10].copy_from_slice(&SOCKPERF_PING.to_be_bytes());
    msg[10..14].copy_from_slice(&(size as u32).to_be_bytes());
    msg
}

/// Runs the load and reports what it saw.
pub async fn run(cfg: Config) -> io::Result<Report> {
    tokio::task::spawn_blocking(move || {
        let plan = Plan {
            target: cfg.endpoint.to_string(),
            loops: cfg.in_flight,
            duration: cfg.duration,
            size: cfg.payload.len(),
        };
        let payload: Arc<[u8]> = if cfg.sockperf {
            sockperf_ping(cfg.payload.len()).into()
        } else {
            cfg.payload.clone().into()
        };
        let sockperf = cfg.sockperf;
        let ep = cfg.endpoint.clone();
        let timeout = cfg.timeout;
        load::run(
            &plan,
            || {
                let ep = ep.clone();
                async move { net::connect_udp(&ep, Some(CONNECT_TIMEOUT)).await }
            },
            |sock, deadline| requests(sock, payload.clone(), sockperf, timeout, deadline),
        )
    })
    .await
    .map_err(io::Error::other)?
}

async fn requests(
    sock: UdpSocket,
    payload: Arc<[u8]>,
    sockperf: bool,
    timeout: Duration,
    deadline: Instant,
) -> LoopResult {
    let mut hist = stats::new_histogram();
    // Replies to echo-like servers are the request's size; others are small.
    let mut buf = vec![0u8; (payload.len() * 2).clamp(2048, crate::net::MAX_DATAGRAM)];
    let mut request = payload.to_vec();
    let mut seq: u64 = 0;
    let mut lost = 0;
    let mut failed = false;
    let mut stale = false;
    while Instant::now() < deadline {
        // A reply that came after its request was counted lost must not be
        // taken for the next one's.
        if stale {
            while sock.try_recv(&mut buf).is_ok() {}
            stale = false;
        }
        if sockperf {
            seq += 1;
            request[..8].copy_from_slice(&seq.to_be_bytes());
        }
        let t0 = Instant::now();
        if sock.send(&request).await.is_err() {
            failed = true;
            break;
        }
        match tokio::time::timeout_at((t0 + timeout).into(), sock.recv(&mut buf)).await {
            Ok(Ok(_)) => stats::record(&mut hist, t0.elapsed()),
            Ok(Err(_)) => {
                failed = true;
                break;
            }
            // A reply still owed when the run ends is neither a success nor
            // a loss.
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => {
                lost += 1;
                stale = true;
            }
        }
    }
    LoopResult { hist, failed, lost }
}
