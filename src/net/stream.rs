//! A connected byte stream over TCP or a Unix socket, with the readiness
//! tricks the services rely on: peeking before allocating, draining reads,
//! writes through a shared reference, half-close and resets.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};
use tokio::net::{TcpStream, UnixStream};

/// A connected byte stream over TCP or a Unix socket.
#[derive(Debug)]
pub enum Stream {
    /// TCP stream.
    Tcp(TcpStream),
    /// Unix stream.
    Unix(UnixStream),
}

impl Stream {
    /// This end's address, for a TCP stream.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().ok(),
            Stream::Unix(_) => None,
        }
    }

    /// The far end's address, for a TCP stream.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().ok(),
            Stream::Unix(_) => None,
        }
    }

    /// Waits until data or EOF arrives, without consuming it, so a server can
    /// put off allocating buffers for idle clients. It peeks, because tokio
    /// reports a freshly accepted socket readable before anything arrived.
    pub async fn wait_for_data(&self) -> io::Result<()> {
        loop {
            self.readable().await?;
            let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
            match self.try_io(Interest::READABLE, || self.sock().peek(&mut byte)) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies what has arrived into `buf` without taking it, once it holds
    /// more than `seen` bytes, fills `buf`, or the peer has closed (then no
    /// more than `seen`).
    pub async fn peek_more(&self, buf: &mut [u8], seen: usize) -> io::Result<usize> {
        loop {
            let closed = self.ready(Interest::READABLE).await?.is_read_closed();
            let peeked = self.try_io(Interest::READABLE, || {
                let (n, _) =
                    rustix::net::recv(&*self.sock(), &mut *buf, rustix::net::RecvFlags::PEEK)?;
                // Nothing new: clearing the readiness makes the next wait
                // last until more arrives, instead of spinning on the same
                // bytes.
                if n <= seen && n > 0 && n < buf.len() && !closed {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match peeked {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }

    async fn readable(&self) -> io::Result<()> {
        self.ready(Interest::READABLE).await.map(drop)
    }

    /// Waits for the socket to become ready for `interest`.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match self {
            Stream::Tcp(s) => s.ready(interest).await,
            Stream::Unix(s) => s.ready(interest).await,
        }
    }

    /// Polls for data, EOF or an error to read, without reading.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
        }
    }

    /// Runs a non-blocking syscall on the raw socket; a `WouldBlock` from
    /// `f` clears the readiness so the next `ready` waits.
    pub fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        match self {
            Stream::Tcp(s) => s.try_io(interest, f),
            Stream::Unix(s) => s.try_io(interest, f),
        }
    }

    /// Writes all of `buf` through a shared reference, so one task can move
    /// data both ways over the same pair of streams; `wrote` hears of each
    /// partial write as it happens.
    pub async fn write_all_shared(
        &self,
        mut buf: &[u8],
        mut wrote: impl FnMut(usize),
    ) -> io::Result<()> {
        while !buf.is_empty() {
            self.ready(Interest::WRITABLE).await?;
            match self.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    wrote(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn sock(&self) -> socket2::SockRef<'_> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            Stream::Unix(s) => socket2::SockRef::from(s),
        }
    }

    /// Sends FIN (half-close) through a shared reference.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self.sock().shutdown(std::net::Shutdown::Write) {
            // The peer is already gone: nobody is left to tell.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    /// The pending socket error (SO_ERROR), if any.
    pub fn take_error(&self) -> Option<io::Error> {
        self.sock().take_error().ok().flatten()
    }

    /// Makes closing this TCP stream send RST instead of FIN, to pass on a
    /// reset from the other side of a relay.
    pub fn reset_on_close(&self) {
        if let Stream::Tcp(_) = self {
            let _ = self.sock().set_linger(Some(Duration::ZERO));
        }
    }

    /// Caps what the kernel holds unsent on this TCP stream beyond what the
    /// congestion window lets out (TCP_NOTSENT_LOWAT): the stream reports
    /// writable only below `bytes`. A no-op elsewhere.
    pub fn limit_unsent(&self, bytes: u32) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Stream::Tcp(_) = self {
            return self.sock().set_tcp_notsent_lowat(bytes);
        }
        let _ = bytes;
        Ok(())
    }

    /// Reads what is available (0 at EOF). A read shorter than `buf` means
    /// the socket is drained, so it is marked not ready: the next wait then
    /// sleeps in epoll instead of spending a read that returns EAGAIN, which
    /// is a third of the syscalls of a small request/response exchange
    /// (nginx does the same). The reactor's tick check keeps this race-free.
    pub async fn read_drained(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.readable().await?;
            let mut got = 0;
            let res = self.try_io(Interest::READABLE, || {
                let n = self.try_read(buf)?;
                if n > 0 && n < buf.len() {
                    got = n;
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match res {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => return Ok(got),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
        }
    }

    /// Writes what the socket takes now, without waiting; `WouldBlock` when
    /// it is full, which also makes the next `ready` wait for room.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write(buf),
            Stream::Unix(s) => s.try_write(buf),
        }
    }

    /// `try_write` for several buffers in one syscall.
    pub fn try_write_vectored(&self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_write_vectored(bufs),
            Stream::Unix(s) => s.try_write_vectored(bufs),
        }
    }
}

/// Reads through a shared reference (as `std` allows for `&TcpStream`), so
/// one task can read a stream while others write to it.
impl AsyncRead for &Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream: &Stream = self.get_mut();
        loop {
            let ready = match stream {
                Stream::Tcp(s) => s.poll_read_ready(cx),
                Stream::Unix(s) => s.poll_read_ready(cx),
            };
            std::task::ready!(ready)?;
            // A WouldBlock clears the readiness, so the next poll waits.
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}
