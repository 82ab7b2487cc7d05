//! sockit: a socket toolkit. Netcat-style client and server, an echo service,
//! message framing, a service suite and load generators, all over TCP, UDP
//! and Unix sockets.
//!
//! Every server follows one path: its subcommand or its config section
//! fills the service's options type ([`options`] holds the shared groups),
//! which checks itself into the service's `Config` and a
//! [`runner::Service`]; [`runner::run`] binds every endpoint, announces
//! them, runs the service through [`accept::serve`] (one task per
//! connection) until a signal, and drains it.
//!
//! # Layout
//! - [`endpoint`]: parse and display endpoints (`tcp://`, `udp://`, `unix:`).
//! - [`net`]: bind, accept and connect; `Listener`/`Stream` over TCP and Unix.
//! - [`accept`]: the shared accept loop (caps, back-off, spans).
//! - [`datagram`]: the shared UDP receive loop.
//! - [`shutdown`]: stop accepting, bounded drain, signals.
//! - [`runner`]: bind → `listening on` → run → drain, for one server or the suite.
//! - [`frame`]: raw, lines and length-prefixed codecs.
//! - [`idle`]: the idle timeout every connection uses.
//! - [`stdio`]: the netcat data path between stdio and a socket.
//! - [`exec`]: a process per connection.
//! - [`options`]: option groups the services share, and option errors.
//! - [`units`]: durations, sizes and counts as flags and config values.
//! - [`connect`], [`listen`], [`echo`], [`time`], [`classic`], [`forward`],
//!   [`http`]: the services, each with its options type.
//! - [`timeclient`]: the time client for all three time protocols.
//! - [`chat`]: multi-user chat rooms over a line protocol, its client and UDP peer chat.
//! - [`serve`]: the suite's registry and config sections; [`config`] reads TOML.
//! - [`bench`]: load generators.
//! - [`tls`]: TLS on rustls: server and client option groups, certificates, handshakes.
//! - [`sync`]: a poison-tolerant lock.
//! - [`cli`], [`commands`], [`manual`], [`logging`], [`error`]: the command-line edge.
//! - [`memory`]: the allocator's settings for a long-running server.

// Denied everywhere but `memory`'s one call into the C library.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod accept;
pub mod bench;
pub mod chat;
pub mod classic;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod connect;
pub mod datagram;
pub mod dump;
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
pub mod manual;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod options;
pub mod page_cache;
pub mod proxy;
pub mod proxy_header;
pub mod reload;
pub mod runner;
pub mod scan;
pub mod serve;
pub mod shutdown;
pub mod socks;
pub mod stdio;
pub mod sync;
pub mod time;
pub mod timeclient;
pub mod tls;
pub mod units;
pub mod ws;
