//! The netcat client: connect to an endpoint and bridge it to stdin/stdout.

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::endpoint::{Endpoint, Transport};
use crate::net;
use crate::options::{FrameOptions, OptionError};
use crate::stdio;
use crate::tls;
use crate::units::Secs;
use crate::ws;

/// The flags of `sockit connect`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Where to connect: HOST:PORT, [V6]:PORT, :PORT, tcp://…, udp://…,
    /// tls://…, ws://HOST:PORT/PATH, wss://…, unix:PATH.
    pub endpoint: Endpoint,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
    /// Give up connecting after this long.
    #[arg(short = 'w', long, value_name = "SECS", allow_negative_numbers = true)]
    pub connect_timeout: Option<Secs>,
    /// Quit after this long with no data in either direction (0 = never).
    #[arg(short = 'i', long, value_name = "SECS", allow_negative_numbers = true)]
    pub idle_timeout: Option<Secs>,
    /// Send line endings as CRLF.
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// Interactive line mode even when stdin is not a terminal.
    #[arg(short, long)]
    pub lines: bool,
    /// In line mode, typing this word quits.
    #[arg(long, default_value = "exit")]
    pub exit_word: String,
    /// `--frame` and `--max-frame`.
    #[command(flatten)]
    pub frame: FrameOptions,
    /// With ws://: send each chunk of stdin as a binary message, and write
    /// messages out as they come (default: a text message per line).
    #[arg(long)]
    pub binary: bool,
    /// `--tls` and what it trusts.
    #[command(flatten)]
    pub tls: tls::client::Tls,
}

impl Options {
    /// The client's config, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        let endpoint = self
            .endpoint
            .clone()
            .with_udp_flag(self.udp)
            .map_err(|e| OptionError::new("endpoint", e.to_string()))?;
        let terminal = io::stdin().is_terminal();
        let mut stdio = stdio::Options::new(
            &self.frame,
            self.crlf,
            self.idle_timeout.and_then(Secs::nonzero),
        );
        stdio.interactive = (self.lines || terminal).then(|| stdio::Interactive {
            exit_word: self.exit_word.clone(),
            prompt: terminal,
        });
        let tls = self.tls.client(endpoint.is_tls())?;
        if tls.is_some() {
            match endpoint.transport() {
                Transport::Udp => {
                    return Err(OptionError::new(
                        "tls",
                        "is for streams, not udp (see --udp)",
                    ));
                }
                Transport::Unix if self.tls.sni.is_none() => {
                    return Err(OptionError::new(
                        "sni",
                        "is needed for TLS over a unix socket: the name to check",
                    ));
                }
                _ => {}
            }
        }
        if self.binary && endpoint.websocket().is_none() {
            return Err(OptionError::new(
                "binary",
                "is for ws:// and wss:// endpoints",
            ));
        }
        Ok(Config {
            endpoint,
            connect_timeout: self.connect_timeout.map(|s| s.0),
            stdio,
            binary: self.binary,
            tls,
        })
    }
}

/// What the client does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Give up connecting after this long.
    pub connect_timeout: Option<Duration>,
    /// How stdio maps onto the connection.
    pub stdio: stdio::Options,
    /// Over a WebSocket: binary messages rather than a text one per line.
    pub binary: bool,
    /// Speak TLS over the stream.
    pub tls: Option<Arc<tls::client::Client>>,
}

/// Why a client session failed, split by phase so the message says which.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect (refused, timed out, unknown host).
    #[error("connect to {endpoint}")]
    Connect {
        /// The target.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed.
    #[error("tls to {}", endpoint.authority())]
    Tls {
        /// The target.
        endpoint: Endpoint,
        /// The cause, in one line.
        #[source]
        source: io::Error,
    },
    /// The connection failed after it was made.
    #[error("connection to {endpoint}")]
    Session {
        /// The target.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Connects and bridges until the peer closes, stdin ends (UDP), the exit
/// word is typed or the idle timeout passes.
pub async fn run(cfg: &Config) -> Result<(), ClientError> {
    let connect_err = |source| ClientError::Connect {
        endpoint: cfg.endpoint.clone(),
        source,
    };
    let session_err = |source| ClientError::Session {
        endpoint: cfg.endpoint.clone(),
        source,
    };
    match cfg.endpoint.transport() {
        Transport::Udp => {
            let sock = net::connect_udp(&cfg.endpoint, cfg.connect_timeout)
                .await
                .map_err(connect_err)?;
            let linger = cfg.stdio.idle_timeout.unwrap_or(stdio::UDP_LINGER);
            stdio::bridge_udp(&sock, &cfg.stdio, linger)
                .await
                .map_err(session_err)
        }
        Transport::Tcp | Transport::Unix => {
            let stream = net::connect(&cfg.endpoint, cfg.connect_timeout)
                .await
                .map_err(connect_err)?;
            tracing::debug!(endpoint = %cfg.endpoint, "connected");
            let Some(tls) = &cfg.tls else {
                return session(cfg, stream).await;
            };
            let host = cfg.endpoint.host().unwrap_or_default();
            let stream = tls
                .connect(host, stream)
                .await
                .map_err(|source| ClientError::Tls {
                    endpoint: cfg.endpoint.clone(),
                    source,
                })?;
            session(cfg, tls::Lenient(stream)).await
        }
    }
}

/// Bridges a connected stream, after the WebSocket handshake for ws://.
async fn session<S>(cfg: &Config, stream: S) -> Result<(), ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let session_err = |source| ClientError::Session {
        endpoint: cfg.endpoint.clone(),
        source,
    };
    if cfg.endpoint.websocket().is_none() {
        return stdio::bridge(stream, &cfg.stdio).await.map_err(session_err);
    }
    let ws = ws::connect(&cfg.endpoint, stream, cfg.stdio.max_frame)
        .await
        .map_err(|source| ClientError::Connect {
            endpoint: cfg.endpoint.clone(),
            source,
        })?;
    let messages = ws::Messages::new(ws, cfg.binary);
    stdio::bridge(messages, &cfg.stdio)
        .await
        .map_err(session_err)
}
