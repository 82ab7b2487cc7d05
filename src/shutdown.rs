//! One shutdown mechanism for every server: a signal stops the accept loops,
//! live connections get a bounded drain period, then whatever is left is
//! cancelled.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

/// How long live connections may keep going after a shutdown signal.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long cancelled connections get to run their goodbyes before the
/// process stops waiting for them.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// Shared by every service in a process; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    stop: CancellationToken,
    abort: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh handle with nothing stopped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every accept loop to stop taking new clients.
    pub fn trigger(&self) {
        self.stop.cancel();
    }

    /// Resolves once a shutdown has been asked for; accept loops select on it.
    pub fn stopping(&self) -> WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Whether a shutdown has been asked for.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves once the drain period is over and connections must end.
    pub fn aborting(&self) -> WaitForCancellationFuture<'_> {
        self.abort.cancelled()
    }

    /// Runs one connection's task so the drain waits for it and the abort
    /// cancels it. Takes a maker rather than a future: a future captured by
    /// an `async` block is stored twice (as a capture and as the awaited
    /// value), and connection futures are what 10,000 idle clients cost.
    pub fn spawn<M, F>(&self, make: M)
    where
        M: FnOnce() -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let abort = self.abort.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = make() => {}
                () = abort.cancelled() => {}
            }
        });
    }

    /// Waits up to `timeout` for tracked connections to finish, then cancels
    /// the rest and gives them a moment to close. Returns how many were cut.
    pub async fn drain(&self, timeout: Duration) -> usize {
        self.stop.cancel();
        self.tracker.close();
        if tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        self.abort.cancel();
        let _ = tokio::time::timeout(ABORT_GRACE, self.tracker.wait()).await;
        left
    }
}

/// SIGINT and SIGTERM handlers. They are installed when this is created, so
/// create it before announcing: a signal sent right after the `listening on`
/// line must be a clean shutdown, not the default death by signal.
#[derive(Debug)]
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_short_tasks() {
        let sd = Shutdown::new();
        sd.spawn(|| tokio::time::sleep(Duration::from_secs(1)));
        assert_eq!(sd.drain(Duration::from_secs(5)).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_cuts_tasks_that_outlive_the_timeout() {
        let sd = Shutdown::new();
        sd.spawn(|| tokio::time::sleep(Duration::from_secs(3600)));
        assert_eq!(sd.drain(Duration::from_secs(5)).await, 1);
        assert!(sd.is_stopping());
    }
}
