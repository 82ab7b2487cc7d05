//! Sockets behind one face, split by job: `bind` makes server sockets and
//! accepts, `stream` is a connected TCP or Unix stream, `connect` makes
//! client sockets.

mod bind;
mod connect;
mod dgram;
mod stream;

pub use bind::{
    Bound, LISTEN_BACKLOG, Listener, PeerAddr, UnixPathGuard, bind, no_unix_datagrams,
    raise_fd_limit,
};
pub(crate) use connect::with_timeout;
pub use connect::{Dial, Family, connect, connect_udp, connect_unix_datagram, dial, dial_udp};
pub use dgram::{Datagram, DatagramPeer};
pub use stream::Stream;

/// The largest UDP payload there is: 65,535 bytes less the 8-byte UDP
/// header, as IPv6 allows. Every datagram buffer is this size, so nothing
/// received is ever cut short.
pub const MAX_DATAGRAM: usize = 65_527;

/// The largest UDP payload over IPv4, whose 65,535 bytes also hold the
/// 20-byte IP header.
pub const MAX_DATAGRAM_V4: usize = MAX_DATAGRAM - 20;

/// The largest payload a socket at `addr` can send.
pub fn max_payload(addr: std::net::SocketAddr) -> usize {
    if addr.is_ipv4() {
        MAX_DATAGRAM_V4
    } else {
        MAX_DATAGRAM
    }
}
