//! Lingering close, as Apache and nginx do it. A reply can go out before
//! its request's body was read: a refused upload, a 413. Closing a socket
//! with unread bytes makes the kernel send a reset, and a reset that
//! reaches the client before it has read the reply destroys the reply
//! (curl says "Send failure: Connection reset by peer" instead of 404).
//! So at the end the write side is shut first, and what the client still
//! sends is read and thrown away until it closes too, for a bounded time
//! and number of bytes. Watching every read for the end, it also notes
//! when bytes came, for the request times (`super::arrival`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::arrival::Arrived;

/// How long a client may go on sending after the last reply: long enough
/// for a refused body in flight on a slow link, short enough that a client
/// that never closes costs little.
const LINGER: Duration = Duration::from_secs(2);
/// Bytes thrown away at most.
const LINGER_BYTES: usize = 16 << 20;

pub struct Linger<S> {
    inner: S,
    state: State,
    /// Where to note each read that brings bytes, when anyone looks.
    arrived: Option<Arc<Arrived>>,
}

enum State {
    Open,
    /// The client closed its side: nothing more can come.
    ReadDone,
    Draining {
        until: Pin<Box<Sleep>>,
        left: usize,
    },
    Closed,
}

impl<S> Linger<S> {
    pub fn new(inner: S, arrived: Option<Arc<Arrived>>) -> Self {
        Linger {
            inner,
            state: State::Open,
            arrived,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Linger<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if res.is_err() || (buf.filled().len() == before && buf.remaining() > 0) {
            self.state = State::ReadDone;
        } else if let Some(arrived) = &self.arrived
            && buf.filled().len() > before
        {
            arrived.note();
        }
        Poll::Ready(res)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<S> {
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
        let me = &mut *self;
        loop {
            match &mut me.state {
                State::Open | State::ReadDone => {
                    ready!(Pin::new(&mut me.inner).poll_shutdown(cx))?;
                    me.state = if matches!(me.state, State::ReadDone) {
                        State::Closed
                    } else {
                        State::Draining {
                            until: Box::pin(tokio::time::sleep(LINGER)),
                            left: LINGER_BYTES,
                        }
                    };
                }
                State::Draining { until, left } => {
                    if until.as_mut().poll(cx).is_ready() {
                        me.state = State::Closed;
                        continue;
                    }
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    ready!(Pin::new(&mut me.inner).poll_read(cx, &mut buf)).ok();
                    let n = buf.filled().len();
                    if n == 0 || n >= *left {
                        me.state = State::Closed;
                    } else {
                        *left -= n;
                    }
                }
                State::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
