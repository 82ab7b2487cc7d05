//! Sockets behind one face: a `Listener` and a `Stream` over TCP or Unix, a
//! bound UDP socket, and the bind/connect logic (SO_REUSEADDR, stale Unix
//! sockets, trying every resolved address) that every service shares.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket, UnixListener, UnixStream};

use crate::endpoint::Endpoint;

/// Pending connections the kernel may queue per listener; the default of 128
/// drops SYNs when thousands of clients connect at once.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A server socket, bound and ready: a stream listener or a UDP socket.
#[derive(Debug)]
pub enum Bound {
    /// TCP or Unix stream listener.
    Stream(Listener),
    /// A bound UDP socket.
    Datagram(UdpSocket),
}

impl Bound {
    /// The endpoint actually bound, with the real port when 0 was asked for.
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Bound::Stream(l) => l.local_endpoint(),
            Bound::Datagram(s) => Ok(Endpoint::udp(s.local_addr()?)),
        }
    }

    /// Prints the one `listening on SCHEME://ADDR` line that tests and
    /// scripts wait for. It bypasses tracing so `-q` or JSON logs never hide
    /// or reshape it.
    pub fn announce(&self) -> io::Result<Endpoint> {
        let ep = self.local_endpoint()?;
        eprintln!("listening on {ep}");
        Ok(ep)
    }
}

/// Binds a server socket for `ep`: TCP and Unix give a listener, UDP a socket.
pub async fn bind(ep: &Endpoint) -> io::Result<Bound> {
    match ep {
        Endpoint::Unix(path) => Ok(Bound::Stream(Listener::Unix(
            bind_unix(path).await?,
            UnixPathGuard(path.clone()),
        ))),
        Endpoint::Inet { udp, .. } => {
            let addrs = ep.resolve().await?;
            let mut last_err = None;
            for addr in addrs {
                let res = if *udp {
                    UdpSocket::bind(addr).await.map(Bound::Datagram)
                } else {
                    bind_tcp(addr).map(|l| Bound::Stream(Listener::Tcp(l)))
                };
                match res {
                    Ok(bound) => return Ok(bound),
                    Err(e) => last_err = Some(e),
                }
            }
            Err(last_err.unwrap_or_else(|| io::Error::other("no address to bind")))
        }
    }
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Without SO_REUSEADDR a server restarted right after serving a client
    // fails with "address in use" until TIME_WAIT expires.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            // A socket file nobody answers on was left by a dead server:
            // replace it. One that answers belongs to a live server.
            match UnixStream::connect(path).await {
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "address in use by a running server",
                )),
                Err(probe) if probe.kind() == io::ErrorKind::ConnectionRefused => {
                    // Linux refuses connects to any non-socket too: never
                    // delete what is not a socket.
                    use std::os::unix::fs::FileTypeExt;
                    if !std::fs::symlink_metadata(path)?.file_type().is_socket() {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "path exists and is not a socket",
                        ));
                    }
                    std::fs::remove_file(path)?;
                    UnixListener::bind(path)
                }
                Err(_) => Err(e),
            }
        }
        other => other,
    }
}

/// Removes a Unix socket file when its listener goes away, so a clean exit
/// leaves nothing stale behind.
#[derive(Debug)]
pub struct UnixPathGuard(PathBuf);

impl Drop for UnixPathGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Bound {
    /// The stream listener, for services that only speak over streams.
    pub fn into_stream(self, service: &str) -> io::Result<Listener> {
        match self {
            Bound::Stream(l) => Ok(l),
            Bound::Datagram(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{service} needs a tcp or unix endpoint"),
            )),
        }
    }
}

/// A stream listener over TCP or a Unix socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP listener.
    Tcp(TcpListener),
    /// Unix listener and the guard that removes its path on drop.
    Unix(UnixListener, UnixPathGuard),
}

impl Listener {
    /// Accepts one connection and names its peer.
    pub async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                // Request/response traffic (echo, chat) must not wait for
                // Nagle's timer; bulk transfer barely notices.
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), PeerAddr::Inet(addr)))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::Unix(s), PeerAddr::Unix))
            }
        }
    }

    /// The endpoint this listener is bound to.
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Listener::Tcp(l) => Ok(Endpoint::tcp(l.local_addr()?)),
            Listener::Unix(_, guard) => Ok(Endpoint::Unix(guard.0.clone())),
        }
    }
}

/// Who is on the other end of an accepted connection or datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAddr {
    /// An internet peer.
    Inet(SocketAddr),
    /// A Unix-socket peer (clients are normally unnamed).
    Unix,
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(a) => a.fmt(f),
            PeerAddr::Unix => f.write_str("unix-peer"),
        }
    }
}

/// A connected byte stream over TCP or a Unix socket.
#[derive(Debug)]
pub enum Stream {
    /// TCP stream.
    Tcp(TcpStream),
    /// Unix stream.
    Unix(UnixStream),
}

impl Stream {
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

/// Connects to a stream endpoint, trying each resolved address in turn within
/// one overall `timeout` (so `localhost` falls back from `::1` to 127.0.0.1).
pub async fn connect(ep: &Endpoint, timeout: Option<Duration>) -> io::Result<Stream> {
    let attempt = async {
        match ep {
            Endpoint::Unix(path) => UnixStream::connect(path).await.map(Stream::Unix),
            Endpoint::Inet { .. } => {
                let mut last_err = None;
                for addr in ep.resolve().await? {
                    match TcpStream::connect(addr).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last_err = Some(e),
                    }
                }
                Err(last_err.unwrap_or_else(|| io::Error::other("no address to connect to")))
            }
        }
    };
    with_timeout(timeout, attempt).await
}

/// Creates a UDP socket connected to a resolved address of `ep`. A UDP
/// "connect" cannot tell whether anyone listens, so there is no fallback as
/// with TCP; IPv4 goes first because `localhost` resolves to `::1` first
/// while UDP services, ours included, mostly bind 127.0.0.1.
pub async fn connect_udp(ep: &Endpoint, timeout: Option<Duration>) -> io::Result<UdpSocket> {
    with_timeout(timeout, async {
        let mut last_err = None;
        let mut addrs = ep.resolve().await?;
        addrs.sort_by_key(|a| a.is_ipv6());
        for addr in addrs {
            let local: SocketAddr = if addr.is_ipv4() {
                "0.0.0.0:0".parse().expect("literal address")
            } else {
                "[::]:0".parse().expect("literal address")
            };
            let sock = UdpSocket::bind(local).await?;
            match sock.connect(addr).await {
                Ok(()) => return Ok(sock),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no address to connect to")))
    })
    .await
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    fut: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match timeout {
        None => fut.await,
        Some(limit) => tokio::time::timeout(limit, fut)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))),
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

/// Raises the soft open-files limit to the hard limit, as redis and nginx do,
/// so thousands of clients work without a manual `ulimit -n`.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-files limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open-files limit"),
    }
}
