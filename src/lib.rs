//! sockit: a socket toolkit. Netcat-style client and server, an echo service,
//! message framing, a service suite and load generators, all over TCP, UDP
//! and Unix sockets.
//!
//! Every server follows one path: `cli` → the service's `Config` →
//! [`net::bind`] → [`accept::serve`] → one task per connection → the
//! service's logic → [`shutdown::Shutdown::drain`].
//!
//! # Layout
//! - [`endpoint`]: parse and display endpoints (`tcp://`, `udp://`, `unix:`).
//! - [`net`]: bind and connect; `Listener`/`Stream` over TCP and Unix.
//! - [`accept`]: the shared accept loop (caps, back-off, spans).
//! - [`datagram`]: the shared UDP receive loop.
//! - [`shutdown`]: signal, stop accepting, bounded drain.
//! - [`frame`]: raw, lines and length-prefixed codecs.
//! - [`idle`]: per-connection idle timeouts.
//! - [`stdio`]: the netcat data path between stdio and a socket.
//! - [`exec`]: a process per connection.
//! - [`connect`], [`listen`], [`echo`], [`time`], [`classic`]: the services.
//! - [`timeclient`]: the time client for all three time protocols.
//! - [`chat`]: multi-user chat rooms over a line protocol.
//! - [`serve`]: the suite, its registry and TOML config.
//! - [`bench`]: load generators.
//! - [`cli`], [`commands`], [`logging`], [`error`], [`units`]: the command-line edge.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accept;
pub mod bench;
pub mod chat;
pub mod classic;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod datagram;
pub mod echo;
pub mod endpoint;
pub mod error;
pub mod exec;
pub mod forward;
pub mod frame;
pub mod http;
pub mod idle;
pub mod listen;
pub mod logging;
pub mod net;
pub mod serve;
pub mod shutdown;
pub mod stdio;
pub mod sync;
pub mod time;
pub mod timeclient;
pub mod units;
