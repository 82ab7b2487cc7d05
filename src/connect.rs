//! The netcat client: connect to an endpoint and bridge it to stdin/stdout.

use std::io::{self, IsTerminal};
use std::sync::Arc;

use clap::Args;

use crate::endpoint::{Endpoint, Transport};
use crate::net;
use crate::options::{Addressing, FrameOptions, OptionError};
use crate::proxy::{Proxy, ProxyFlags};
use crate::scan;
use crate::stdio;
use crate::tls;
use crate::units::Secs;
use crate::ws;

/// The flags of `sockit connect`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Where to connect: HOST:PORT, [V6]:PORT, :PORT, tcp://…, udp://…,
    /// tls://…, ws://HOST:PORT/PATH, wss://…, unix:PATH; or a HOST with
    /// the port after it, as nc takes them.
    #[arg(value_name = "ENDPOINT")]
    pub endpoint: String,
    /// The port, when ENDPOINT is a host alone; with -z, the ports to scan:
    /// 22, 20-25, 80,443,8000-8100.
    #[arg(value_name = "PORTS")]
    pub ports: Option<String>,
    /// Scan PORTS on the host rather than connect: print open ports (every
    /// port with -v) and exit 0 if any is open.
    #[arg(short = 'z', long)]
    pub scan: bool,
    /// With -z, ports probed at once.
    #[arg(long, value_name = "N", default_value_t = scan::DEFAULT_CONCURRENCY, requires = "scan")]
    pub concurrency: usize,
    /// With -z, print the result as one JSON document.
    #[arg(long, requires = "scan")]
    pub json: bool,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
    /// Give up connecting after this long (each of a scan's probes: 2 s).
    #[arg(short = 'w', long, value_name = "SECS", allow_negative_numbers = true)]
    pub connect_timeout: Option<Secs>,
    /// Quit after this long with no data in either direction (0 = never).
    #[arg(short = 'i', long, value_name = "SECS", allow_negative_numbers = true)]
    pub idle_timeout: Option<Secs>,
    /// `-s`, `-p`, `-4`, `-6` and `-n`.
    #[command(flatten)]
    pub addressing: Addressing,
    /// `-d`, `--send-only`, `-o` and `-x`.
    #[command(flatten)]
    pub io: stdio::Flags,
    /// `--proxy` and `--proxy-dns`.
    #[command(flatten)]
    pub proxy: ProxyFlags,
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

/// What `sockit connect` was asked to do.
#[derive(Debug, Clone)]
pub enum Job {
    /// Bridge stdio to one connection.
    Connect(Box<Config>),
    /// `-z`: probe ports, connect to none for long.
    Scan(scan::Config),
}

impl Options {
    /// The job, once every value is checked; `verbose` is the global `-v`,
    /// which also makes a scan show every port.
    pub fn job(&self, verbose: bool) -> Result<Job, OptionError> {
        if self.scan {
            return self.scan(verbose).map(Job::Scan);
        }
        self.config().map(|c| Job::Connect(Box::new(c)))
    }

    fn scan(&self, verbose: bool) -> Result<scan::Config, OptionError> {
        let Some(ports) = &self.ports else {
            return Err(OptionError::new(
                "ports",
                "is needed with -z: sockit connect -z HOST 20-25",
            ));
        };
        let ports: scan::Ports = ports
            .parse()
            .map_err(|e: String| OptionError::new("ports", e))?;
        let host = self.endpoint.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains("://") || host.contains('/') {
            return Err(OptionError::new(
                "endpoint",
                format!("with -z is a host name or address, not '{}'", self.endpoint),
            ));
        }
        if self.concurrency == 0 {
            return Err(OptionError::new("concurrency", "must be 1 or more"));
        }
        Ok(scan::Config {
            host: host.to_string(),
            ports,
            udp: self.udp,
            concurrency: self.concurrency,
            timeout: self.connect_timeout.map_or(scan::DEFAULT_TIMEOUT, |s| s.0),
            dial: self.addressing.dial(None)?,
            verbose,
            json: self.json,
        })
    }

    /// ENDPOINT, with the port written after it if there is one.
    fn endpoint(&self) -> Result<Endpoint, OptionError> {
        let text = match &self.ports {
            None => self.endpoint.clone(),
            // A bare IPv6 address needs its brackets before a port.
            Some(port) if self.endpoint.parse::<std::net::Ipv6Addr>().is_ok() => {
                format!("[{}]:{port}", self.endpoint)
            }
            Some(port) => format!("{}:{port}", self.endpoint),
        };
        let endpoint: Endpoint = text.parse().map_err(|e: crate::endpoint::EndpointError| {
            OptionError::new("endpoint", e.to_string())
        })?;
        endpoint
            .with_udp_flag(self.udp)
            .map_err(|e| OptionError::new("endpoint", e.to_string()))
    }

    /// The client's config, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        let endpoint = self.endpoint()?;
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
        self.io.apply(&mut stdio);
        let unix = matches!(
            endpoint.transport(),
            Transport::Unix | Transport::UnixDatagram
        );
        if unix && self.addressing.any() {
            return Err(OptionError::new(
                "source",
                "-s, -p, -4, -6 and -n are for network endpoints, not unix",
            ));
        }
        let dial = self.addressing.dial(self.connect_timeout.map(|s| s.0))?;
        let proxy = self.proxy.get();
        if proxy.is_some() && endpoint.transport() != Transport::Tcp {
            return Err(OptionError::new(
                "proxy",
                "reaches tcp targets, not udp or unix",
            ));
        }
        let tls = self.tls.client(endpoint.is_tls())?;
        if tls.is_some() {
            match endpoint.transport() {
                Transport::Udp | Transport::UnixDatagram => {
                    return Err(OptionError::new("tls", "is for streams, not datagrams"));
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
            dial,
            proxy,
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
    /// How the socket is made, and the time it may take.
    pub dial: net::Dial,
    /// Reach the endpoint through this proxy.
    pub proxy: Option<Proxy>,
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
        Transport::Udp | Transport::UnixDatagram => {
            let sock = match &cfg.endpoint {
                Endpoint::UnixDatagram(path) => net::connect_unix_datagram(path),
                _ => net::dial_udp(&cfg.endpoint, &cfg.dial)
                    .await
                    .map(net::Datagram::Udp),
            }
            .map_err(connect_err)?;
            let linger = cfg.stdio.idle_timeout.unwrap_or(stdio::UDP_LINGER);
            stdio::bridge_udp(&sock, &cfg.stdio, linger)
                .await
                .map_err(session_err)
        }
        Transport::Tcp | Transport::Unix => {
            let stream = match &cfg.proxy {
                Some(proxy) => proxy.connect(&cfg.endpoint, &cfg.dial).await,
                None => net::dial(&cfg.endpoint, &cfg.dial).await,
            }
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
