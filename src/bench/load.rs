//! The load engine every generator shares: connections spread over one
//! single-threaded runtime per available core, all connected before the
//! clock starts, each running a closed loop until the deadline.

use std::future::Future;
use std::io;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use super::stats::{self, Report};

/// Longest a single connect may take before it counts as an error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What one closed loop measured.
#[derive(Debug)]
pub struct LoopResult {
    /// Round-trip latencies.
    pub hist: Histogram<u64>,
    /// Whether the loop ended on an error (connection broken, bad reply).
    pub failed: bool,
    /// Requests that got no reply in time (UDP).
    pub lost: u64,
}

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The target, for the report.
    pub target: String,
    /// Concurrent loops (connections or in-flight requests).
    pub loops: usize,
    /// How long to run.
    pub duration: Duration,
    /// Bytes per request, for the report.
    pub size: usize,
}

struct Partial {
    hist: Histogram<u64>,
    errors: u64,
    lost: u64,
    connected: usize,
    first_error: Option<io::Error>,
}

/// Connects `plan.loops` times with `connect`, then runs `run_loop` on each
/// until the deadline it is given, and merges what they saw.
pub fn run<S, C, CF, L, LF>(plan: &Plan, connect: C, run_loop: L) -> io::Result<Report>
where
    S: Send + 'static,
    C: Fn() -> CF + Sync,
    CF: Future<Output = io::Result<S>> + Send + 'static,
    L: Fn(S, Instant) -> LF + Sync,
    LF: Future<Output = LoopResult> + Send + 'static,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(plan.loops)
        .max(1);
    // Everyone connects first, then the clock starts for all at once, so
    // the timed part measures round trips, not handshakes.
    let ready = Barrier::new(threads + 1);
    let (partials, elapsed) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let loops = plan.loops / threads + usize::from(t < plan.loops % threads);
                let (ready, connect, run_loop) = (&ready, &connect, &run_loop);
                scope.spawn(move || load_thread(plan, loops, ready, connect, run_loop))
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
    let (mut errors, mut lost, mut connected, mut first_error) = (0, 0, 0, None);
    for p in partials {
        let p = p?;
        total
            .add(&p.hist)
            .map_err(|e| io::Error::other(e.to_string()))?;
        errors += p.errors;
        lost += p.lost;
        connected += p.connected;
        first_error = first_error.or(p.first_error);
    }
    if connected == 0 {
        return Err(first_error.unwrap_or_else(|| io::Error::other("no connections")));
    }
    if total.is_empty() && errors as usize >= connected {
        return Err(io::Error::other(format!(
            "no round trip completed: all {connected} loops failed"
        )));
    }
    let mut report = Report::new(
        plan.target.clone(),
        plan.loops,
        plan.size,
        elapsed,
        &total,
        errors,
    );
    report.lost = lost;
    Ok(report)
}

fn load_thread<S, C, CF, L, LF>(
    plan: &Plan,
    loops: usize,
    ready: &Barrier,
    connect: &C,
    run_loop: &L,
) -> io::Result<Partial>
where
    S: Send + 'static,
    C: Fn() -> CF,
    CF: Future<Output = io::Result<S>> + Send + 'static,
    L: Fn(S, Instant) -> LF,
    LF: Future<Output = LoopResult> + Send + 'static,
{
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ready.wait();
            return Err(e);
        }
    };
    rt.block_on(async {
        let mut connects = JoinSet::new();
        for _ in 0..loops {
            connects.spawn(connect());
        }
        let mut conns = Vec::with_capacity(loops);
        let (mut errors, mut first_error) = (0, None);
        while let Some(res) = connects.join_next().await {
            match res.map_err(io::Error::other)? {
                Ok(s) => conns.push(s),
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        ready.wait();
        let deadline = Instant::now() + plan.duration;
        let connected = conns.len();
        let mut tasks = JoinSet::new();
        for conn in conns {
            tasks.spawn(run_loop(conn, deadline));
        }
        let (mut hist, mut lost) = (stats::new_histogram(), 0);
        while let Some(res) = tasks.join_next().await {
            let r = res.map_err(io::Error::other)?;
            hist.add(&r.hist)
                .map_err(|e| io::Error::other(e.to_string()))?;
            errors += u64::from(r.failed);
            lost += r.lost;
        }
        Ok(Partial {
            hist,
            errors,
            lost,
            connected,
            first_error,
        })
    })
}
