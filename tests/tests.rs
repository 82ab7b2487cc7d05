//! Integration tests: the built binary against real peers (nc, python3's
//! socket module, sockit's own client) over loopback.

mod support;

mod bench;
mod browser;
mod chat;
mod classic;
mod cli;
mod cluster;
mod connect;
mod echo;
mod endpoints;
mod flood;
mod forward;
mod framing;
mod http;
mod limits;
mod listen;
mod logging;
mod lossy;
mod metrics;
mod options;
mod proxy_protocol;
mod scan;
mod serve;
mod shutdown;
mod socks;
mod time;
mod tls;
mod websocket;
