//! `bench echo`: closed-loop round trips against an echo server. Each
//! connection is one task that sends a message, waits for all of it to come
//! back, records the latency, and repeats until the deadline.
//!
//! Connections are spread over one single-threaded runtime per available
//! core: a load generator must not be the bottleneck, and a current-thread
//! runtime skips the work-stealing machinery a closed loop gains nothing from.

use std::io;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::stats::{self, Report};
use crate::endpoint::Endpoint;
use crate::net::{self, Stream};

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

/// What one load thread saw.
struct Partial {
    hist: Histogram<u64>,
    errors: u64,
    connected: usize,
    first_error: Option<io::Error>,
}

/// Runs the load and reports what it saw.
pub async fn run(cfg: Config) -> io::Result<Report> {
    tokio::task::spawn_blocking(move || run_threads(&cfg))
        .await
        .map_err(io::Error::other)?
}

fn run_threads(cfg: &Config) -> io::Result<Report> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(cfg.connections)
        .max(1);
    let payload: Arc<[u8]> = (0..cfg.size).map(|i| b'a' + (i % 26) as u8).collect();
    // Everyone connects first, then the clock starts for all at once, so
    // the timed part measures round trips, not handshakes.
    let ready = Barrier::new(threads + 1);
    let (partials, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let conns = cfg.connections / threads + usize::from(t < cfg.connections % threads);
                let payload = payload.clone();
                let ready = &ready;
                scope.spawn(move || load_thread(cfg, conns, payload, ready))
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let partials: Vec<io::Result<Partial>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("load thread panicked")))
            })
            .collect();
        (partials, start.elapsed())
    });
    let mut total = stats::new_histogram();
    let mut errors = 0;
    let mut connected = 0;
    let mut first_error = None;
    for p in partials {
        let p = p?;
        total
            .add(&p.hist)
            .map_err(|e| io::Error::other(e.to_string()))?;
        errors += p.errors;
        connected += p.connected;
        if first_error.is_none() {
            first_error = p.first_error;
        }
    }
    if connected == 0 {
        return Err(first_error.unwrap_or_else(|| io::Error::other("no connections")));
    }
    Ok(Report::new(
        cfg.endpoint.to_string(),
        cfg.connections,
        cfg.size,
        elapsed,
        &total,
        errors,
    ))
}

fn load_thread(
    cfg: &Config,
    conns: usize,
    payload: Arc<[u8]>,
    ready: &Barrier,
) -> io::Result<Partial> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            ready.wait();
            return Err(e);
        }
    };
    rt.block_on(async {
        let mut connects = JoinSet::new();
        for _ in 0..conns {
            let ep = cfg.endpoint.clone();
            connects.spawn(async move { net::connect(&ep, Some(CONNECT_TIMEOUT)).await });
        }
        let mut streams = Vec::with_capacity(conns);
        let mut errors = 0;
        let mut first_error = None;
        while let Some(res) = connects.join_next().await {
            match res.map_err(io::Error::other)? {
                Ok(s) => streams.push(s),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        ready.wait();
        let deadline = Instant::now() + cfg.duration;
        let connected = streams.len();
        let mut tasks = JoinSet::new();
        for stream in streams {
            tasks.spawn(round_trips(stream, payload.clone(), deadline));
        }
        let mut hist = stats::new_histogram();
        while let Some(res) = tasks.join_next().await {
            let (h, failed) = res.map_err(io::Error::other)?;
            hist.add(&h).map_err(|e| io::Error::other(e.to_string()))?;
            errors += u64::from(failed);
        }
        Ok(Partial {
            hist,
            errors,
            connected,
            first_error,
        })
    })
}

/// One connection's closed loop; returns its latencies and whether it failed.
/// One timer covers the whole run: a timeout per round trip would cost a
/// timer-wheel insert and removal each time.
async fn round_trips(
    mut stream: Stream,
    payload: Arc<[u8]>,
    deadline: Instant,
) -> (Histogram<u64>, bool) {
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
    (hist, failed)
}
