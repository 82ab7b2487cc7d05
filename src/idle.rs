//! The one idle timeout every connection uses: the work touches an
//! [`Activity`] as it makes progress, and a single timer beside it fires
//! only once nothing has happened for the limit. Touching is a clock read
//! and an atomic store, so it costs nothing on the hot path, and the timer
//! is re-armed once per quiet period, not once per read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// When anything last moved on a connection, shared by reference between
/// the tasks or futures that move its bytes.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last movement.
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// Starts counting now, which counts as activity.
    pub fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records activity now.
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the connection began.
    pub fn age(&self) -> Duration {
        self.start.elapsed()
    }

    fn deadline(&self, limit: Duration) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + limit
    }

    /// Whether nothing has moved for `limit`.
    pub fn is_idle(&self, limit: Duration) -> bool {
        Instant::now() >= self.deadline(limit)
    }

    /// Returns once nothing has moved for `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        while !self.is_idle(limit) {
            tokio::time::sleep_until(self.deadline(limit)).await;
        }
    }

    /// Resolves to [`idle_error`] once nothing has moved for `limit`;
    /// never, without a limit.
    pub async fn expired(&self, limit: Option<Duration>) -> io::Error {
        match limit {
            Some(limit) => {
                self.idle_for(limit).await;
                idle_error(limit)
            }
            None => std::future::pending().await,
        }
    }

    /// Runs `work` (which touches this activity as it goes) and fails it
    /// with [`idle_error`] once it has been quiet for `limit`; `None` never
    /// fires.
    pub async fn bound<T>(
        &self,
        limit: Option<Duration>,
        work: impl Future<Output = io::Result<T>>,
    ) -> io::Result<T> {
        if limit.is_none() {
            return work.await;
        }
        tokio::select! {
            // The work wins a tie: what it finished is not thrown away.
            biased;
            res = work => res,
            err = self.expired(limit) => Err(err),
        }
    }

    /// Runs one step of work and counts its completion as activity.
    pub async fn step<T>(&self, step: impl Future<Output = io::Result<T>>) -> io::Result<T> {
        let out = step.await;
        self.touch();
        out
    }
}

/// A stream that counts every read and write that moves bytes as activity,
/// for protocol stacks (hyper) that own the stream while they run.
#[derive(Debug)]
pub struct Tracked<'a, S> {
    inner: S,
    activity: &'a Activity,
}

impl<'a, S> Tracked<'a, S> {
    /// `inner`, touching `activity` as bytes move.
    pub fn new(inner: S, activity: &'a Activity) -> Self {
        Tracked { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res
            && *n > 0
        {
            self.activity.touch();
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &res
            && *n > 0
        {
            self.activity.touch();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error a connection ends with when it was quiet for `limit`.
pub fn idle_error(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("idle for {}", humantime::format_duration(limit)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_only_after_a_quiet_limit() {
        let a = Activity::new();
        tokio::time::sleep(Duration::from_secs(6)).await;
        a.touch();
        let started = Instant::now();
        a.idle_for(Duration::from_secs(10)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn bound_passes_results_through_and_times_out() {
        let a = Activity::new();
        let limit = Some(Duration::from_secs(1));
        assert_eq!(a.bound(limit, async { Ok(5) }).await.unwrap(), 5);
        let slow = a
            .bound(limit, std::future::pending::<io::Result<()>>())
            .await;
        assert_eq!(slow.unwrap_err().kind(), io::ErrorKind::TimedOut);
        let never = a.bound(None, async { Ok(1) }).await.unwrap();
        assert_eq!(never, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn steps_keep_a_busy_connection_alive() {
        let a = Activity::new();
        let work = async {
            for _ in 0..5 {
                a.step(async {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    Ok(())
                })
                .await?;
            }
            Ok(())
        };
        a.bound(Some(Duration::from_secs(1)), work).await.unwrap();
    }
}
