//! A datagram socket of either family, for the programs that take both
//! `udp://` and `unixgram:` (connect, listen, echo).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::{UdpSocket, UnixDatagram};

use super::UnixPathGuard;

/// A bound datagram socket. A Unix one keeps the guard that removes its
/// socket file when it goes away.
#[derive(Debug)]
pub enum Datagram {
    /// UDP.
    Udp(UdpSocket),
    /// A Unix datagram socket, and the file it is bound to.
    Unix(UnixDatagram, UnixPathGuard),
}

/// Who sent a datagram. A Unix peer that bound no name cannot be
/// answered: there is nowhere to send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramPeer {
    /// A UDP peer.
    Inet(SocketAddr),
    /// A Unix peer, by the path it is bound to, if any.
    Unix(Option<PathBuf>),
    /// A Unix peer bound to an abstract name (Linux).
    Abstract(Vec<u8>),
}

impl fmt::Display for DatagramPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramPeer::Inet(a) => write!(f, "{a}"),
            DatagramPeer::Unix(Some(p)) => write!(f, "unixgram:{}", p.display()),
            DatagramPeer::Unix(None) => f.write_str("an unnamed unixgram socket"),
            DatagramPeer::Abstract(name) => {
                write!(f, "unixgram:@{}", String::from_utf8_lossy(name))
            }
        }
    }
}

impl Datagram {
    /// The next datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, DatagramPeer)> {
        match self {
            Datagram::Udp(s) => {
                let (n, from) = s.recv_from(buf).await?;
                Ok((n, DatagramPeer::Inet(from)))
            }
            Datagram::Unix(s, _) => {
                let (n, from) = s.recv_from(buf).await?;
                let peer = match from.as_abstract_name() {
                    Some(name) => DatagramPeer::Abstract(name.to_vec()),
                    None => DatagramPeer::Unix(from.as_pathname().map(Into::into)),
                };
                Ok((n, peer))
            }
        }
    }

    /// Sends `buf` to `peer`.
    pub async fn send_to(&self, buf: &[u8], peer: &DatagramPeer) -> io::Result<usize> {
        match (self, peer) {
            (Datagram::Udp(s), DatagramPeer::Inet(to)) => s.send_to(buf, to).await,
            (Datagram::Unix(s, _), DatagramPeer::Unix(Some(to))) => s.send_to(buf, to).await,
            // tokio sends to paths only.
            (Datagram::Unix(s, _), DatagramPeer::Abstract(name)) => {
                let to = super::bind::abstract_sockaddr(name)?;
                let sock = socket2::SockRef::from(s);
                s.async_io(tokio::io::Interest::WRITABLE, || sock.send_to(buf, &to))
                    .await
            }
            _ => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("{peer} cannot be answered: it is bound to no path"),
            )),
        }
    }

    /// Sends `buf` to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Datagram::Udp(s) => s.send(buf).await,
            Datagram::Unix(s, _) => s.send(buf).await,
        }
    }

    /// The next datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Datagram::Udp(s) => s.recv(buf).await,
            Datagram::Unix(s, _) => s.recv(buf).await,
        }
    }

    /// The largest datagram worth sending: UDP's limit for its family. A
    /// Unix datagram is bounded by the send buffer instead, well above it.
    pub fn max_payload(&self) -> usize {
        match self {
            Datagram::Udp(s) => s
                .local_addr()
                .map_or(super::MAX_DATAGRAM_V4, super::max_payload),
            Datagram::Unix(..) => super::MAX_DATAGRAM,
        }
    }
}
