//! A per-connection idle timer that costs one timer registration per idle
//! period instead of one per read, so servers can bound every wait without
//! slowing their hot loop.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Ends a connection that has been quiet for `limit`. The `Sleep` is
/// borrowed from the caller's pinned stack so it lives inside the connection
/// task itself: a boxed one costs a heap block per idle connection.
#[derive(Debug)]
pub struct IdleTimer<'a> {
    limit: Option<Duration>,
    last: Instant,
    sleep: Pin<&'a mut Sleep>,
}

impl<'a> IdleTimer<'a> {
    /// A timer on `sleep` that never fires when `limit` is `None`. Create
    /// the sleep with `let sleep = std::pin::pin!(tokio::time::sleep(Duration::ZERO));`.
    pub fn new(limit: Option<Duration>, mut sleep: Pin<&'a mut Sleep>) -> Self {
        let now = Instant::now();
        sleep.as_mut().reset(now + limit.unwrap_or_default());
        IdleTimer {
            limit,
            last: now,
            sleep,
        }
    }

    /// Records activity now.
    pub fn touch(&mut self) {
        if self.limit.is_some() {
            self.last = Instant::now();
        }
    }

    /// Resolves with a `TimedOut` error once nothing has happened for the
    /// limit. Only re-arms the timer when it fires early.
    pub async fn expired(&mut self) -> io::Error {
        let Some(limit) = self.limit else {
            return std::future::pending().await;
        };
        loop {
            self.sleep.as_mut().await;
            let due = self.last + limit;
            if Instant::now() >= due {
                return io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("idle for {}", humantime::format_duration(limit)),
                );
            }
            self.sleep.as_mut().reset(due);
        }
    }

    /// Runs `step`, failing with `TimedOut` if the connection was already idle
    /// for the limit before it completes; counts its completion as activity.
    pub async fn guard<T>(&mut self, step: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        // Biased: no random branch choice per step, and the step wins a tie.
        let out = tokio::select! {
            biased;
            res = step => res,
            err = self.expired() => Err(err),
        };
        self.touch();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_only_after_a_quiet_limit() {
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut t = IdleTimer::new(Some(Duration::from_secs(10)), sleep);
        tokio::time::sleep(Duration::from_secs(6)).await;
        t.touch();
        let started = Instant::now();
        let err = t.expired().await;
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn guard_passes_results_through() {
        let sleep = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
        let mut t = IdleTimer::new(Some(Duration::from_secs(1)), sleep);
        assert_eq!(t.guard(async { Ok(5) }).await.unwrap(), 5);
        let slow = t.guard(std::future::pending::<io::Result<()>>()).await;
        assert_eq!(slow.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }
}
