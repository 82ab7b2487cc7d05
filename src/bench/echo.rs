//! `bench echo`: closed-loop round trips against an echo server. Each
//! connection is one task that sends a message, waits for all of it to come
//! back, records the latency, and repeats until the deadline.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use super::stats::{self, Report};
use crate::endpoint::Endpoint;
use crate::net;

/// Longest a single connect may take before it counts as an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The echo server.
    pub endpoint: Endpoint,
    /// Concurrent connections.
    pub connections: usize,
    /// How long to send.
    pub duration: Duration,
    /// Bytes per message.
    pub size: usize,
}

/// Runs the load and reports what it saw.
pub async fn run(cfg: Config) -> io::Result<Report> {
    let errors = Arc::new(AtomicU64::new(0));
    // Connect everything first so the timed part measures round trips, not
    // handshakes.
    let mut streams = Vec::with_capacity(cfg.connections);
    let mut connects = JoinSet::new();
    for _ in 0..cfg.connections {
        let ep = cfg.endpoint.clone();
        connects.spawn(async move { net::connect(&ep, Some(CONNECT_TIMEOUT)).await });
    }
    let mut first_err = None;
    while let Some(res) = connects.join_next().await {
        match res.map_err(io::Error::other)? {
            Ok(s) => streams.push(s),
            Err(e) => {
                errors.fetch_add(1, Ordering::Relaxed);
                first_err.get_or_insert(e);
            }
        }
    }
    if streams.is_empty() {
        return Err(first_err.unwrap_or_else(|| io::Error::other("no connections")));
    }

    let payload: Arc<[u8]> = (0..cfg.size).map(|i| b'a' + (i % 26) as u8).collect();
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut tasks = JoinSet::new();
    for mut stream in streams {
        let payload = payload.clone();
        let errors = errors.clone();
        tasks.spawn(async move {
            let mut hist = stats::new_histogram();
            let mut back = vec![0u8; payload.len()];
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let res = async {
                    stream.write_all(&payload).await?;
                    stream.read_exact(&mut back).await?;
                    io::Result::Ok(())
                };
                let res = tokio::time::timeout_at(deadline.into(), res).await;
                match res {
                    Ok(Ok(())) if back[..] == payload[..] => stats::record(&mut hist, t0.elapsed()),
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    // The deadline cut an unfinished round trip: not an error.
                    Err(_) => break,
                }
            }
            hist
        });
    }
    let mut total: Histogram<u64> = stats::new_histogram();
    while let Some(res) = tasks.join_next().await {
        let hist = res.map_err(io::Error::other)?;
        total
            .add(&hist)
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    let elapsed = start.elapsed();
    Ok(Report::new(
        cfg.endpoint.to_string(),
        cfg.connections,
        cfg.size,
        elapsed,
        &total,
        errors.load(Ordering::Relaxed),
    ))
}
