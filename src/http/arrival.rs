//! When a request arrived, for its log line and its metric: the raw clock
//! at the last read that brought bytes. Reading the clock per read, not per
//! request, makes sixteen pipelined requests cost one reading, as nginx's
//! once-per-event clock does. A pipelined request's time then counts its
//! wait behind the ones before it, as nginx's `$request_time` does, from
//! the read of its bytes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The reading, shared between the stream that takes it and the requests
/// that look at it.
#[derive(Default)]
pub struct Arrived(AtomicU64);

impl Arrived {
    /// The raw clock ([`crate::clock::tick`]) at the last read with bytes.
    pub fn tick(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A stream that notes in [`Arrived`] when bytes came; with `None`, only
/// the stream.
pub struct Arrival<S> {
    inner: S,
    arrived: Option<Arc<Arrived>>,
}

impl<S> Arrival<S> {
    pub fn new(inner: S, arrived: Option<Arc<Arrived>>) -> Self {
        Arrival { inner, arrived }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Arrival<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Some(arrived) = &self.arrived
            && buf.filled().len() > before
        {
            arrived.0.store(crate::clock::tick(), Ordering::Relaxed);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Arrival<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
