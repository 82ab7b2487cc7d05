//! Client sockets: connecting to a stream endpoint across every resolved
//! address, and connected UDP sockets, each within one timeout.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket, UnixStream};

use super::Stream;
use crate::endpoint::Endpoint;

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
