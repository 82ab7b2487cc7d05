//! Server sockets: binding an endpoint (SO_REUSEADDR, a deep backlog, stale
//! Unix socket files), the listener that accepts streams, and the process's
//! open-files limit that decides how many clients fit.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpSocket, UdpSocket, UnixDatagram, UnixListener, UnixStream};

use super::Stream;
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
    /// A bound Unix datagram socket, and its file.
    UnixDatagram(UnixDatagram, UnixPathGuard),
}

impl Bound {
    /// The endpoint actually bound, with the real port when 0 was asked for.
    pub fn local_endpoint(&self) -> io::Result<Endpoint> {
        match self {
            Bound::Stream(l) => l.local_endpoint(),
            Bound::Datagram(s) => Ok(Endpoint::udp(s.local_addr()?)),
            Bound::UnixDatagram(_, guard) => Ok(Endpoint::UnixDatagram(guard.0.clone())),
        }
    }

    /// Either kind of datagram socket, for services that take both.
    pub fn into_datagram(self) -> Result<super::Datagram, Bound> {
        match self {
            Bound::Datagram(s) => Ok(super::Datagram::Udp(s)),
            Bound::UnixDatagram(s, guard) => Ok(super::Datagram::Unix(s, guard)),
            other => Err(other),
        }
    }
}

/// The error of a service given a `unixgram:` endpoint it does not take.
pub fn no_unix_datagrams(service: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{service} does not take unixgram: endpoints (connect, listen and echo do)"),
    )
}

/// Binds a server socket for `ep`: TCP and Unix give a listener, UDP a socket.
pub async fn bind(ep: &Endpoint) -> io::Result<Bound> {
    match ep {
        Endpoint::Unix(path) => Ok(Bound::Stream(Listener::Unix(
            bind_unix(path).await?,
            UnixPathGuard(path.clone()),
        ))),
        Endpoint::UnixDatagram(path) => Ok(Bound::UnixDatagram(
            bind_unix_datagram(path)?,
            UnixPathGuard(path.clone()),
        )),
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

/// The name of a Linux abstract socket, written `unix:@name`: it lives in
/// no file system, so there is no file to clean up or to find stale.
pub(crate) fn abstract_name(path: &Path) -> Option<&[u8]> {
    path.as_os_str().as_encoded_bytes().strip_prefix(b"@")
}

/// The address of an abstract socket.
pub(crate) fn abstract_addr(name: &[u8]) -> io::Result<std::os::unix::net::SocketAddr> {
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = name;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "abstract unix socket names (unix:@name) are Linux only",
        ))
    }
}

/// The address of an abstract socket for calls tokio does not offer on
/// its own sockets (through `socket2::SockRef`): socket2 takes a path that
/// starts with NUL for one.
pub(crate) fn abstract_sockaddr(name: &[u8]) -> io::Result<socket2::SockAddr> {
    use std::os::unix::ffi::OsStrExt;
    socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&[b"\0", name].concat()))
}

/// A Unix datagram socket at `path`. A stale file is replaced only when
/// nothing is bound to it: sending to it is refused.
pub(crate) fn bind_unix_datagram(path: &Path) -> io::Result<UnixDatagram> {
    if let Some(name) = abstract_name(path) {
        let std = std::os::unix::net::UnixDatagram::bind_addr(&abstract_addr(name)?)?;
        std.set_nonblocking(true)?;
        return UnixDatagram::from_std(std);
    }
    match UnixDatagram::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            // Sending to a file nobody is bound to is refused.
            let probe = UnixDatagram::unbound()?.connect(path);
            replace_stale(path, e, probe, |p| UnixDatagram::bind(p))
        }
        other => other,
    }
}

/// After `path` was found in use: when `probe` (a connect to it) was
/// refused, the socket file was left by a dead server, and is replaced by
/// `bind`. One that answered belongs to a live server.
fn replace_stale<T>(
    path: &Path,
    in_use: io::Error,
    probe: io::Result<()>,
    bind: impl FnOnce(&Path) -> io::Result<T>,
) -> io::Result<T> {
    match probe {
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "address in use by a running server",
        )),
        Err(p) if p.kind() == io::ErrorKind::ConnectionRefused => {
            // Linux refuses connects to any non-socket too: never delete
            // what is not a socket.
            use std::os::unix::fs::FileTypeExt;
            if !std::fs::symlink_metadata(path)?.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "path exists and is not a socket",
                ));
            }
            std::fs::remove_file(path)?;
            bind(path)
        }
        Err(_) => Err(in_use),
    }
}

async fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    if let Some(name) = abstract_name(path) {
        let std = std::os::unix::net::UnixListener::bind_addr(&abstract_addr(name)?)?;
        std.set_nonblocking(true)?;
        return UnixListener::from_std(std);
    }
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let probe = UnixStream::connect(path).await.map(drop);
            replace_stale(path, e, probe, |p| UnixListener::bind(p))
        }
        other => other,
    }
}

/// Removes a Unix socket file when its listener goes away, so a clean exit
/// leaves nothing stale behind.
#[derive(Debug)]
pub struct UnixPathGuard(pub(crate) PathBuf);

impl Drop for UnixPathGuard {
    fn drop(&mut self) {
        if abstract_name(&self.0).is_none() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Bound {
    /// The stream listener, for services that only speak over streams.
    pub fn into_stream(self, service: &str) -> io::Result<Listener> {
        match self {
            Bound::Stream(l) => Ok(l),
            Bound::Datagram(_) | Bound::UnixDatagram(..) => Err(io::Error::new(
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

/// Raises the soft open-files limit to the hard limit, as redis and nginx do,
/// so thousands of clients work without a manual `ulimit -n`.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-files limit"),
        Err(err) => tracing::warn!(%err, "cannot raise the open-files limit"),
    }
}
