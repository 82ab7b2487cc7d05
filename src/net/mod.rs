//! Sockets behind one face, split by job: `bind` makes server sockets and
//! accepts, `stream` is a connected TCP or Unix stream, `connect` makes
//! client sockets.

mod bind;
mod connect;
mod stream;

pub use bind::{Bound, LISTEN_BACKLOG, Listener, PeerAddr, UnixPathGuard, bind, raise_fd_limit};
pub use connect::{connect, connect_udp};
pub use stream::Stream;

/// The largest UDP payload there is (65,535 bytes less the 8-byte UDP
/// header, as IPv6 allows; IPv4 stops at 65,507 and says so on send). Every
/// datagram buffer is this size, so nothing is ever cut short.
pub const MAX_DATAGRAM: usize = 65_527;
