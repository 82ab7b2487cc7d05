//! `bench echo`: closed-loop round trips against an echo server. Each
//! connection sends a message, waits for all of it to come back, records
//! the latency, and repeats until the deadline.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::load::{self, CONNECT_TIMEOUT, LoopResult, Plan};
use super::stats::{self, Report};
use clap::Args;

use crate::endpoint::{Endpoint, Transport};
use crate::net::{self, Stream};
use crate::options::OptionError;
use crate::units::{ByteSize, Secs};

/// The flags of `sockit bench echo`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The echo server: HOST:PORT, tcp://…, unix:PATH.
    pub endpoint: Endpoint,
    /// Concurrent connections.
    #[arg(short, long, default_value_t = 1)]
    pub connections: usize,
    /// How long to run.
    #[arg(short, long, value_name = "SECS", default_value = "10")]
    pub duration: Secs,
    /// Bytes per message.
    #[arg(short, long, value_name = "BYTES", default_value = "64")]
    pub size: ByteSize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Options {
    /// The run, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        super::bounded(
            "connections",
            self.connections,
            &[("duration", self.duration.0)],
        )?;
        if self.endpoint.transport() == Transport::Udp {
            return Err(OptionError::new(
                "endpoint",
                "bench echo needs a tcp or unix endpoint (see bench udp)",
            ));
        }
        Ok(Config {
            endpoint: self.endpoint.clone(),
            connections: self.connections,
            duration: self.duration.0,
            size: self.size.0,
        })
    }
}

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
    tokio::task::spawn_blocking(move || {
        let plan = Plan {
            target: cfg.endpoint.to_string(),
            loops: cfg.connections,
            duration: cfg.duration,
            size: cfg.size,
        };
        let payload: Arc<[u8]> = (0..cfg.size).map(|i| b'a' + (i % 26) as u8).collect();
        let ep = cfg.endpoint.clone();
        load::run(
            &plan,
            || {
                let ep = ep.clone();
                async move { net::connect(&ep, Some(CONNECT_TIMEOUT)).await }
            },
            |stream, deadline| round_trips(stream, payload.clone(), deadline),
        )
    })
    .await
    .map_err(io::Error::other)?
}

/// One connection's closed loop. One timer covers the whole run: a timeout
/// per round trip would cost a timer-wheel insert and removal each time.
async fn round_trips(mut stream: Stream, payload: Arc<[u8]>, deadline: Instant) -> LoopResult {
    let mut hist = stats::new_histogram();
    let len = payload.len();
    // One spare byte: a complete reply is then a short read, which lets the
    // next wait skip the EAGAIN read (see `Stream::read_drained`).
    let mut back = vec![0u8; len + 1];
    let run = async {
        loop {
            let t0 = Instant::now();
            stream.write_all(&payload).await?;
            let mut got = 0;
            while got < len {
                let n = stream.read_drained(&mut back[got..]).await?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                got += n;
            }
            if back[..got] != payload[..] {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "reply differs"));
            }
            let now = Instant::now();
            stats::record(&mut hist, now - t0);
            if now >= deadline {
                return io::Result::Ok(());
            }
        }
    };
    // The deadline cutting an unfinished round trip is not an error.
    let failed = matches!(
        tokio::time::timeout_at(deadline.into(), run).await,
        Ok(Err(_))
    );
    LoopResult {
        hist,
        failed,
        lost: 0,
    }
}
