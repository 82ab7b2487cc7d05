//! `sockit socks`: a SOCKS5 proxy server (RFC 1928) with no-auth or
//! username/password (RFC 1929), client access rules and the forwarder's
//! relay and log lines. `proto` is the wire format of both sides.

pub mod proto;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::Level;

use crate::accept::{self, AcceptOptions};
use crate::endpoint::Endpoint;
use crate::forward::access::Access;
use crate::forward::{log, relay};
use crate::metrics;
use crate::net::{Bound, Listener, PeerAddr, Stream};
use crate::options::{KeepsIdle, Limits, OptionError, clap_defaults};
use crate::runner::Service;
use crate::shutdown::Shutdown;
use proto::{ProtoError, Reply, Target};

/// Time a client has for its greeting, authentication and request: a
/// client that connects and says nothing costs a slot only this long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags of `sockit socks` and the keys of `[socks]`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Require this username and password (repeatable: any one of them);
    /// without any, clients need none.
    #[arg(long = "user", value_name = "NAME:PASSWORD", value_parser = parse_user)]
    #[serde(
        deserialize_with = "deserialize_users",
        serialize_with = "serialize_users"
    )]
    pub users: Vec<(String, String)>,
    /// `--allow` and `--deny`.
    #[command(flatten)]
    #[serde(flatten)]
    pub access: Access,
    /// `--connect-timeout` to a client's target, and `--no-splice`.
    #[command(flatten)]
    #[serde(flatten)]
    pub onward: crate::forward::Onward,
    /// Server limits; `idle_timeout` closes a connection with no byte
    /// either way for that long.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<KeepsIdle>,
}

impl Default for Options {
    fn default() -> Self {
        clap_defaults()
    }
}

fn parse_user(text: &str) -> Result<(String, String), String> {
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not NAME:PASSWORD"))?;
    if user.is_empty() || user.len() > 255 || pass.len() > 255 {
        return Err("a name of 1-255 bytes and a password of at most 255".into());
    }
    Ok((user.to_string(), pass.to_string()))
}

fn deserialize_users<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(String, String)>, D::Error> {
    let texts = <Vec<String> as Deserialize>::deserialize(d)?;
    texts
        .iter()
        .map(|t| parse_user(t).map_err(serde::de::Error::custom))
        .collect()
}

fn serialize_users<S: serde::Serializer>(
    users: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(users.iter().map(|(u, p)| format!("{u}:{p}")))
}

impl Options {
    /// Its one entry for the runner.
    pub fn service(&self, listen: Vec<Endpoint>) -> Result<Service, OptionError> {
        let listen = crate::options::stream_only("socks", listen)?;
        crate::options::no_websocket("listen", &listen)?;
        let cfg = Config {
            users: self.users.clone(),
            access: self.access.clone(),
            connect_timeout: self.onward.connect_timeout.nonzero(),
            idle_timeout: self.limits.idle(),
            max_conns: self.limits.max_conns()?,
            splice: self.onward.splice,
        };
        let drain = self.limits.drain();
        Ok(Service::new("socks", listen, drain, cfg, run_bound))
    }
}

/// How the proxy behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted username/password pairs; empty, no authentication.
    pub users: Vec<(String, String)>,
    /// Which clients may use the proxy.
    pub access: Access,
    /// For connecting to a client's target (`None`: the system's).
    pub connect_timeout: Option<Duration>,
    /// A relayed connection with no byte either way for this long ends.
    pub idle_timeout: Option<Duration>,
    /// Clients at once.
    pub max_conns: usize,
    /// Relay with splice(2) where possible.
    pub splice: bool,
}

/// Serves SOCKS5 on a bound stream socket until shutdown.
pub async fn run_bound(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let Bound::Stream(listener) = bound else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socks needs a stream endpoint",
        ));
    };
    run(cfg, listener, shutdown).await
}

async fn run(cfg: Arc<Config>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    let ids = Arc::new(AtomicU64::new(0));
    // The relay writes its own open and close lines, as forward's does.
    let opts = AcceptOptions::new("socks", cfg.max_conns, Level::DEBUG);
    accept::serve(listener, shutdown, opts, move |client, peer| {
        let cfg = cfg.clone();
        let conn = ids.fetch_add(1, Ordering::Relaxed) + 1;
        async move {
            handle(&cfg, conn, client, peer).await;
            Ok(())
        }
    })
    .await
}

async fn handle(cfg: &Config, conn: u64, mut client: Stream, peer: PeerAddr) {
    if let PeerAddr::Inet(addr) = peer
        && !cfg.access.allows(addr.ip())
    {
        tracing::warn!("client {peer} denied by the access rules, closed");
        metrics::refused("socks", "denied");
        return;
    }
    let asked = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(cfg, &mut client)).await;
    let target = match asked {
        Ok(Ok(Some(target))) => target,
        // Refused with a reply that says why; logged where decided.
        Ok(Ok(None)) => return,
        Ok(Err(e)) if e.is_eof() => {
            tracing::debug!("conn {conn} {peer}: left during the handshake");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!("conn {conn} {peer}: bad SOCKS5 handshake: {e}");
            metrics::refused("socks", "handshake");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "conn {conn} {peer}: no SOCKS5 request within {}s, closed",
                HANDSHAKE_TIMEOUT.as_secs()
            );
            metrics::refused("socks", "handshake");
            return;
        }
    };
    let dial = crate::net::Dial::within(cfg.connect_timeout);
    let dialing = Instant::now();
    let upstream = match crate::net::dial(&endpoint(&target), &dial).await {
        Ok(s) => s,
        Err(e) => {
            metrics::refused("socks", "no_target");
            let code = Reply::for_error(&e);
            let _ = client.write_all(&proto::reply(code, None)).await;
            tracing::warn!(
                "conn {conn} {peer}: connect to {target}: {}",
                crate::error::describe_io(&e)
            );
            return;
        }
    };
    metrics::connected("socks", dialing.elapsed());
    let bound = upstream.local_addr();
    let to = upstream
        .peer_addr()
        .map_or_else(|| target.to_string(), |a| a.to_string());
    if client
        .write_all(&proto::reply(Reply::Succeeded, bound))
        .await
        .is_err()
    {
        return;
    }
    let opts = relay::Options {
        conn,
        dump: None,
        splice: cfg.splice,
        idle: cfg.idle_timeout,
    };
    let named = match &target {
        Target::Name(..) => format!(" ({target})"),
        Target::Addr(_) => String::new(),
    };
    log::open(conn, &peer.to_string(), &to, &named);
    let summary = relay::run(client, upstream, &opts).await;
    log::close(conn, &summary);
    metrics::relayed("socks", &summary);
}

/// Greeting, authentication and request. `None` when the client was
/// refused with a reply.
async fn handshake(cfg: &Config, client: &mut Stream) -> Result<Option<Target>, ProtoError> {
    let methods = proto::read_greeting(client).await?;
    let wanted = if cfg.users.is_empty() {
        proto::NO_AUTH
    } else {
        proto::USER_PASS
    };
    if !methods.contains(&wanted) {
        client
            .write_all(&[proto::VERSION, proto::NO_ACCEPTABLE])
            .await?;
        tracing::warn!(
            "socks client offered no {} method, refused",
            if wanted == proto::NO_AUTH {
                "no-auth"
            } else {
                "username/password"
            }
        );
        return Ok(None);
    }
    client.write_all(&[proto::VERSION, wanted]).await?;
    if wanted == proto::USER_PASS {
        let (user, pass) = proto::read_credentials(client).await?;
        let ok = cfg
            .users
            .iter()
            .any(|(u, p)| u.as_bytes() == user && p.as_bytes() == pass);
        client
            .write_all(&[proto::AUTH_VERSION, if ok { 0 } else { 1 }])
            .await?;
        if !ok {
            tracing::warn!(
                "socks authentication failed for user '{}'",
                crate::error::one_line(&String::from_utf8_lossy(&user))
            );
            return Ok(None);
        }
    }
    let (command, target) = match proto::read_request(client).await {
        Ok(request) => request,
        Err(e) => {
            // RFC 1928 has replies for these; a client should not be left
            // to guess from a closed connection.
            if let Some(code) = e.reply() {
                let _ = client.write_all(&proto::reply(code, None)).await;
            }
            return Err(e);
        }
    };
    if command != proto::CONNECT {
        client
            .write_all(&proto::reply(Reply::CommandNotSupported, None))
            .await?;
        let name = match command {
            proto::BIND => "BIND",
            proto::UDP_ASSOCIATE => "UDP ASSOCIATE",
            _ => "unknown",
        };
        tracing::warn!("socks command {name} ({command}) is not supported, refused");
        return Ok(None);
    }
    Ok(Some(target))
}

/// The endpoint a request names, for `net::dial` to resolve and try.
fn endpoint(target: &Target) -> Endpoint {
    match target {
        Target::Addr(a) => Endpoint::tcp(*a),
        Target::Name(host, port) => Endpoint::Inet {
            udp: false,
            host: host.clone(),
            port: *port,
            scheme: true,
            tls: false,
            ws: None,
        },
    }
}
