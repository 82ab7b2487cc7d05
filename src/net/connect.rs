//! Client sockets: connecting to a stream endpoint across every resolved
//! address, and connected UDP sockets, each within one timeout.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream, UdpSocket, UnixStream};

use super::Stream;
use crate::endpoint::Endpoint;
use crate::error::context;

/// An address family a client is held to (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `-4`.
    V4,
    /// `-6`.
    V6,
}

impl Family {
    fn of(addr: &SocketAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// How a client socket is made, as nc's `-s`, `-p`, `-4`, `-6`, `-n` and
/// `-w` say: all default to what the system would do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dial {
    /// For connecting, all addresses tried included.
    pub timeout: Option<Duration>,
    /// Bind to this local address first (`-s`).
    pub source: Option<IpAddr>,
    /// Bind to this local port first (`-p`).
    pub source_port: Option<u16>,
    /// Use only the target's addresses of this family.
    pub family: Option<Family>,
    /// Take IP literals only: never ask DNS.
    pub numeric: bool,
}

impl Dial {
    /// The system's defaults within `timeout`.
    pub fn within(timeout: Option<Duration>) -> Dial {
        Dial {
            timeout,
            ..Dial::default()
        }
    }

    /// The addresses of `ep` this dial may use, in the resolver's order.
    pub async fn addresses(&self, ep: &Endpoint) -> io::Result<Vec<SocketAddr>> {
        if self.numeric
            && let Some(host) = ep.host()
            && host.parse::<IpAddr>().is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{host}' is not a numeric address, and -n asks for no DNS"),
            ));
        }
        let family = self
            .family
            .or(self.source.map(|ip| Family::of(&SocketAddr::new(ip, 0))));
        let mut addrs = ep.resolve().await?;
        if let Some(family) = family {
            addrs.retain(|a| Family::of(a) == family);
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "'{}' has no {} address",
                        ep.host().unwrap_or_default(),
                        family.name()
                    ),
                ));
            }
        }
        Ok(addrs)
    }

    /// The local address for a socket toward `to`, if one is asked for.
    pub(crate) fn local(&self, to: &SocketAddr) -> Option<SocketAddr> {
        if self.source.is_none() && self.source_port.is_none() {
            return None;
        }
        let ip = self.source.unwrap_or(match to {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        });
        Some(SocketAddr::new(ip, self.source_port.unwrap_or(0)))
    }

    /// A TCP connection to `addr` from the asked-for local address.
    pub async fn tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        if self.local(&addr).is_none() {
            return TcpStream::connect(addr).await;
        }
        let sock = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        self.bind_source(socket2::SockRef::from(&sock), &addr)?;
        sock.connect(addr).await
    }

    /// Binds a TCP socket that will reach `addr` to the asked-for local
    /// address, if one was asked for.
    pub fn bind_source(&self, sock: socket2::SockRef<'_>, addr: &SocketAddr) -> io::Result<()> {
        let Some(local) = self.local(addr) else {
            return Ok(());
        };
        // A fixed source port is often reused at once (nc -p, run again),
        // while the last connection from it is still in TIME_WAIT.
        if self.source_port.is_some() {
            sock.set_reuse_address(true)?;
        }
        sock.bind(&local.into())
            .map_err(|e| context(e, format!("bind source {local}")))
    }

    /// A UDP socket bound as asked and connected to `addr`.
    pub async fn udp(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        let local = self.local(&addr).unwrap_or(match addr {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
        });
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| context(e, format!("bind source {local}")))?;
        sock.connect(addr).await?;
        Ok(sock)
    }
}

/// Connects to a stream endpoint, trying each resolved address in turn within
/// one overall `timeout` (so `localhost` falls back from `::1` to 127.0.0.1).
pub async fn connect(ep: &Endpoint, timeout: Option<Duration>) -> io::Result<Stream> {
    dial(ep, &Dial::within(timeout)).await
}

/// [`connect`] as `how` says.
pub async fn dial(ep: &Endpoint, how: &Dial) -> io::Result<Stream> {
    let attempt = async {
        match ep {
            Endpoint::Unix(path) => match super::bind::abstract_name(path) {
                Some(name) => {
                    // Connecting to a local socket does not block for long:
                    // it is accepted into the backlog or refused at once.
                    let addr = super::bind::abstract_addr(name)?;
                    let std = std::os::unix::net::UnixStream::connect_addr(&addr)?;
                    std.set_nonblocking(true)?;
                    UnixStream::from_std(std).map(Stream::Unix)
                }
                None => UnixStream::connect(path).await.map(Stream::Unix),
            },
            Endpoint::UnixDatagram(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{ep} is a datagram socket, not a stream"),
            )),
            Endpoint::Inet { .. } => {
                let mut last_err = None;
                for addr in how.addresses(ep).await? {
                    match how.tcp(addr).await {
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
    with_timeout(how.timeout, attempt).await
}

/// Creates a UDP socket connected to a resolved address of `ep`. A UDP
/// "connect" cannot tell whether anyone listens, so there is no fallback as
/// with TCP; IPv4 goes first because `localhost` resolves to `::1` first
/// while UDP services, ours included, mostly bind 127.0.0.1.
pub async fn connect_udp(ep: &Endpoint, timeout: Option<Duration>) -> io::Result<UdpSocket> {
    dial_udp(ep, &Dial::within(timeout)).await
}

/// [`connect_udp`] as `how` says.
pub async fn dial_udp(ep: &Endpoint, how: &Dial) -> io::Result<UdpSocket> {
    with_timeout(how.timeout, async {
        let mut last_err = None;
        let mut addrs = how.addresses(ep).await?;
        addrs.sort_by_key(|a| a.is_ipv6());
        for addr in addrs {
            match how.udp(addr).await {
                Ok(sock) => return Ok(sock),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no address to connect to")))
    })
    .await
}

pub(crate) async fn with_timeout<T>(
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

/// A Unix datagram socket connected to `path`. It binds a temporary path
/// of its own, removed when it goes away, so that replies can come back:
/// what `nc -uU` does.
pub fn connect_unix_datagram(path: &std::path::Path) -> io::Result<super::Datagram> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let own = std::env::temp_dir().join(format!("sockit.{}.{n}.sock", std::process::id()));
    // A file left by a killed process of the same pid is replaced, as a
    // server's would be.
    let sock = super::bind::bind_unix_datagram(&own)?;
    let guard = super::UnixPathGuard(own);
    match super::bind::abstract_name(path) {
        Some(name) => {
            socket2::SockRef::from(&sock).connect(&super::bind::abstract_sockaddr(name)?)?;
        }
        None => sock.connect(path)?,
    }
    Ok(super::Datagram::Unix(sock, guard))
}
