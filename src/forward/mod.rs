//! `sockit forward`: a TCP or UDP relay from one listening endpoint to one
//! or more targets, with per-connection logs, access rules, hex dumps and
//! zero-copy relaying on Linux. `relay` moves one connection's bytes,
//! `udp` runs datagram sessions, `targets` picks where to go.

pub mod access;
pub mod congestion;
pub(crate) mod log;
pub mod relay;
#[cfg(target_os = "linux")]
mod splice;
pub mod targets;
pub mod udp;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::Level;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::accept::{self, AcceptOptions};
use crate::dump::{DumpTo, Dumper, HexDump};
use crate::endpoint::{Endpoint, Transport};
use crate::metrics;
use crate::net::{self, Bound, Listener, PeerAddr, Stream};
use crate::options::{KeepsIdle, Limits, OptionError, clap_defaults};
use crate::proxy::{Proxy, ProxyFlags};
use crate::proxy_header;
use crate::runner::Service;
use crate::shutdown::Shutdown;
use crate::tls;
use crate::units::Secs;
use access::Access;
use congestion::Congestion;
use targets::{Balance, Targets};

/// Default time allowed to connect to a target.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time a client of `--accept-proxy` has to send its header.
pub const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// Default lifetime of a quiet UDP session.
pub const DEFAULT_UDP_TIMEOUT: Duration = Duration::from_secs(60);

/// How a relay reaches and feeds its targets, for forward and socks.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Onward {
    /// Give up connecting to a target after this long (0 = the system's own).
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_CONNECT_TIMEOUT), allow_negative_numbers = true)]
    pub connect_timeout: Secs,
    /// Relay with splice(2) where possible; --no-splice copies through user
    /// space instead.
    #[arg(long = "no-splice", action = clap::ArgAction::SetFalse)]
    pub splice: bool,
}

impl Default for Onward {
    fn default() -> Self {
        clap_defaults()
    }
}

/// A relay's options: the flags of `sockit forward` and the keys of a
/// `[[forward]]` rule, which adds only `listen`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Where to relay to; with several, see --balance. One written without
    /// a scheme takes the listener's transport.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<Endpoint>,
    /// How connections pick among several targets.
    #[arg(long, value_enum, default_value_t = Balance::RoundRobin)]
    pub balance: Balance,
    /// `--connect-timeout` and `--no-splice`.
    #[command(flatten)]
    #[serde(flatten)]
    pub onward: Onward,
    /// End a UDP session after this long without datagrams (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_UDP_TIMEOUT), allow_negative_numbers = true)]
    pub udp_timeout: Secs,
    /// `--allow` and `--deny`.
    #[command(flatten)]
    #[serde(flatten)]
    pub access: Access,
    /// `-x` and `--dump-file`.
    #[command(flatten)]
    #[serde(flatten)]
    pub dump: HexDump,
    /// Put a PROXY protocol header (v1 text or v2 binary) before each
    /// connection's bytes, so the target sees the real client.
    #[arg(long, value_name = "v1|v2")]
    pub send_proxy: Option<proxy_header::Version>,
    /// Take a PROXY protocol header (either version) off each connection
    /// first, and treat the client it names as the real one.
    #[arg(long)]
    pub accept_proxy: bool,
    /// With --accept-proxy, take headers only from this network
    /// (repeatable); a connection from elsewhere is refused.
    #[arg(long, value_name = "CIDR", value_parser = access::parse_cidr)]
    #[serde(
        deserialize_with = "access::deserialize_nets",
        serialize_with = "access::serialize_nets"
    )]
    pub proxy_from: Vec<ipnet::IpNet>,
    /// With --accept-proxy, how long a connection has to send its header
    /// (0 = no limit).
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_PROXY_TIMEOUT), allow_negative_numbers = true)]
    pub proxy_timeout: Secs,
    /// `--proxy` and `--proxy-dns`: reach the targets through a proxy.
    #[command(flatten)]
    #[serde(flatten)]
    pub proxy: ProxyFlags,
    /// TCP congestion control for the relay's sending: auto (cubic toward
    /// loopback peers, the host default elsewhere), system, or a name.
    #[arg(long, value_name = "ALGO", default_value_t = Congestion::Auto)]
    pub congestion: Congestion,
    /// `--tls-accept` and its certificate.
    #[command(flatten)]
    pub tls_accept: tls::server::Accept,
    /// `--tls-connect` and what it trusts.
    #[command(flatten)]
    pub tls_connect: tls::client::Target,
    /// Server limits; `max_conns` counts UDP sessions too, `idle_timeout`
    /// closes a connection with no byte either way for that long.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<KeepsIdle>,
}

impl Default for Options {
    fn default() -> Self {
        clap_defaults()
    }
}

impl Options {
    /// The relay for a listener on `listen`, once every value is checked:
    /// targets on the listener's kind of transport, no hex dump of
    /// datagrams, rules only where clients have addresses.
    pub fn config(&self, listen: &Endpoint) -> Result<Config, OptionError> {
        let udp = listen.transport() == Transport::Udp;
        if self.targets.is_empty() {
            return Err(OptionError::new(
                "targets",
                "a relay needs at least one target",
            ));
        }
        let targets: Vec<Endpoint> = self
            .targets
            .iter()
            .map(|t| t.clone().following(udp))
            .collect();
        if let Some(t) = targets
            .iter()
            .find(|t| (t.transport() == Transport::Udp) != udp)
        {
            return Err(OptionError::new(
                "targets",
                format!("target {t} and listener {listen} must both be udp or both stream"),
            ));
        }
        let proxy_protocol = udp && (self.send_proxy.is_some() || self.accept_proxy);
        if proxy_protocol || (self.accept_proxy && listen.transport() == Transport::Unix) {
            let key = if self.accept_proxy {
                "accept_proxy"
            } else {
                "send_proxy"
            };
            return Err(OptionError::new(key, "is for tcp relays"));
        }
        if !self.proxy_from.is_empty() && !self.accept_proxy {
            return Err(OptionError::new("proxy_from", "needs --accept-proxy"));
        }
        let proxy = self.proxy.get();
        if proxy.is_some() && targets.iter().any(|t| t.transport() != Transport::Tcp) {
            return Err(OptionError::new(
                "proxy",
                "reaches tcp targets, not udp or unix",
            ));
        }
        let dump = self.dump.to();
        if udp && dump != DumpTo::Off {
            return Err(OptionError::new(
                self.dump.key(),
                "is for stream relays, not udp",
            ));
        }
        let tcp_legs = listen.transport() == Transport::Tcp
            || targets.iter().any(|t| t.transport() == Transport::Tcp);
        if !tcp_legs && matches!(self.congestion, Congestion::Named(_)) {
            return Err(OptionError::new(
                "congestion",
                format!(
                    "is for tcp relays, not {}",
                    if udp { "udp" } else { "unix to unix" }
                ),
            ));
        }
        self.congestion
            .check()
            .map_err(|e| OptionError::new("congestion", e))?;
        let has_rules = !self.access.allow.is_empty() || !self.access.deny.is_empty();
        if has_rules && listen.transport() == Transport::Unix {
            // Unix clients have no address to match, so the rules would be
            // silently ignored.
            let key = if self.access.allow.is_empty() {
                "deny"
            } else {
                "allow"
            };
            return Err(OptionError::new(
                key,
                "needs a tcp or udp listener, not unix: unix clients have no address",
            ));
        }
        crate::options::no_websocket("listen", std::slice::from_ref(listen))?;
        crate::options::no_websocket("targets", &targets)?;
        let tls_accept = self.tls_accept.server(listen)?;
        let tls_connect = self.tls_connect.client()?;
        if udp && tls_connect.is_some() {
            return Err(OptionError::new(
                "tls_connect",
                "is for stream relays, not udp",
            ));
        }
        if let Some(t) = targets.iter().find(|t| t.is_tls())
            && tls_connect.is_none()
        {
            return Err(OptionError::new(
                "targets",
                format!("{t} needs --tls-connect, which says what to trust"),
            ));
        }
        Ok(Config {
            tls_accept,
            tls_connect,
            targets,
            balance: self.balance,
            connect_timeout: self.onward.connect_timeout.nonzero(),
            idle_timeout: self.limits.idle(),
            max_conns: self.limits.max_conns()?,
            access: self.access.clone(),
            dump,
            proxy,
            send_proxy: self.send_proxy,
            accept_proxy: self.accept_proxy.then(|| AcceptProxy {
                from: Access {
                    allow: self.proxy_from.clone(),
                    deny: Vec::new(),
                },
                timeout: self.proxy_timeout.nonzero(),
            }),
            splice: self.onward.splice,
            udp_timeout: self.udp_timeout.nonzero(),
            congestion: self.congestion.clone(),
        })
    }

    /// Its one entry for the runner, whether run alone or in the suite.
    pub fn service(&self, listen: Endpoint) -> Result<Service, OptionError> {
        let cfg = self.config(&listen)?;
        let drain = self.limits.drain();
        let tls = cfg.tls_accept.clone();
        Ok(Service::new("forward", vec![listen], drain, cfg, run_bound).with_tls(tls))
    }
}

/// How one relay behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where clients go (transport follows the listening side).
    pub targets: Vec<Endpoint>,
    /// How a connection picks among several targets.
    pub balance: Balance,
    /// Time allowed to connect to a target (`None`: the system's own).
    pub connect_timeout: Option<Duration>,
    /// Close a connection after this long without a byte either way.
    pub idle_timeout: Option<Duration>,
    /// Connections (UDP: sessions) at once.
    pub max_conns: usize,
    /// Which clients may connect.
    pub access: Access,
    /// Hex dump of all traffic.
    pub dump: DumpTo,
    /// Reach the targets through this proxy.
    pub proxy: Option<Proxy>,
    /// Tell the target who the client is.
    pub send_proxy: Option<proxy_header::Version>,
    /// Learn who the client is from a header.
    pub accept_proxy: Option<AcceptProxy>,
    /// Relay TCP with splice(2) where available.
    pub splice: bool,
    /// A UDP session with no traffic for this long ends (`None`: never).
    pub udp_timeout: Option<Duration>,
    /// Congestion control on the relay's TCP legs.
    pub congestion: Congestion,
    /// Terminate TLS from clients.
    pub tls_accept: Option<Arc<tls::server::Server>>,
    /// Speak TLS to the targets.
    pub tls_connect: Option<Arc<tls::client::Client>>,
}

/// `--accept-proxy`: who may send headers, and how long they have.
#[derive(Debug, Clone)]
pub struct AcceptProxy {
    /// Peers whose headers are believed (`--proxy-from`; empty: any).
    pub from: Access,
    /// How long a connection has to send its header, if limited.
    pub timeout: Option<Duration>,
}

/// A running relay's shared state.
pub struct Relay {
    cfg: Config,
    targets: Targets,
    dump: Option<Arc<Dumper>>,
    ids: AtomicU64,
}

impl Relay {
    fn new(cfg: &Config) -> io::Result<Relay> {
        let dump = cfg.dump.open()?;
        Ok(Relay {
            targets: Targets::new(cfg.targets.clone(), cfg.balance),
            cfg: cfg.clone(),
            dump,
            ids: AtomicU64::new(0),
        })
    }

    /// Numbers connections and UDP sessions from 1.
    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Relays from a bound socket until shutdown: streams or datagrams.
pub async fn run_bound(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let relay = Arc::new(Relay::new(&cfg)?);
    match bound {
        Bound::Stream(l) => run(relay, l, shutdown).await,
        Bound::Datagram(s) => udp::run(relay, s, shutdown).await,
        Bound::UnixDatagram(..) => Err(net::no_unix_datagrams("forward")),
    }
}

async fn run(relay: Arc<Relay>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    if relay
        .cfg
        .accept_proxy
        .as_ref()
        .is_some_and(|a| a.from.allow.is_empty())
    {
        // Believing anyone's header means anyone can claim any address,
        // past --allow and --deny too: worth saying once.
        tracing::warn!(
            "--accept-proxy without --proxy-from: any client may name any address in its PROXY header"
        );
    }
    // The relay writes its own open and close lines.
    let opts = AcceptOptions::new("forward", relay.cfg.max_conns, Level::DEBUG);
    accept::serve(listener, shutdown, opts, move |client, peer| {
        let relay = relay.clone();
        async move {
            handle(&relay, client, peer).await;
            Ok(())
        }
    })
    .await
}

/// Who a connection is from: its peer, or the client a PROXY header names
/// (`via` is then the peer that sent it), and the address it reached.
struct Origin {
    client: PeerAddr,
    via: Option<PeerAddr>,
    reached: Option<std::net::SocketAddr>,
}

impl Origin {
    fn describe(&self) -> String {
        match &self.via {
            Some(via) => format!("{} (via {via})", self.client),
            None => self.client.to_string(),
        }
    }
}

/// Takes the PROXY header off `client`, if the relay wants one; `None`
/// when the connection is refused, which is logged.
async fn origin(cfg: &Config, client: &mut Stream, peer: PeerAddr) -> Option<Origin> {
    let mut origin = Origin {
        client: peer,
        via: None,
        // A syscall per connection, needed only to tell the target.
        reached: cfg.send_proxy.and_then(|_| client.local_addr()),
    };
    let Some(accept) = &cfg.accept_proxy else {
        return Some(origin);
    };
    if let PeerAddr::Inet(addr) = peer
        && !accept.from.allows(addr.ip())
    {
        tracing::warn!("client {peer} is outside --proxy-from, closed");
        metrics::refused("forward", "proxy_from");
        return None;
    }
    let header = proxy_header::read_socket(client);
    let got = match accept.timeout {
        Some(limit) => tokio::time::timeout(limit, header).await.map_err(|_| limit),
        None => Ok(header.await),
    };
    match got {
        Ok(Ok(Some((from, to)))) => {
            origin.via = Some(peer);
            origin.client = PeerAddr::Inet(from);
            origin.reached = Some(to);
        }
        // LOCAL or UNKNOWN: the connection's own ends stand.
        Ok(Ok(None)) => {}
        Ok(Err(e)) => {
            tracing::warn!("client {peer}: {e}, closed");
            metrics::refused("forward", "proxy_header");
            return None;
        }
        Err(limit) => {
            tracing::warn!(
                "client {peer}: no PROXY header within {}, closed",
                humantime::format_duration(limit)
            );
            metrics::refused("forward", "proxy_header");
            return None;
        }
    }
    Some(origin)
}

async fn handle(relay: &Relay, mut client: Stream, peer: PeerAddr) {
    let Some(origin) = origin(&relay.cfg, &mut client, peer).await else {
        return;
    };
    let peer = origin.client;
    if let PeerAddr::Inet(addr) = peer
        && !relay.cfg.access.allows(addr.ip())
    {
        tracing::warn!("client {peer} denied by the access rules, closed");
        metrics::refused("forward", "denied");
        return;
    }
    let conn = relay.next_id();
    let dialing = Instant::now();
    let dial = net::Dial::within(relay.cfg.connect_timeout);
    let proxy = relay.cfg.proxy.as_ref();
    let Some((target, i)) = relay
        .first_reachable(|ep| async move {
            match proxy {
                Some(p) => p.connect(&ep, &dial).await,
                None => net::dial(&ep, &dial).await,
            }
        })
        .await
    else {
        tracing::warn!("conn {conn} {peer}: no target reachable, client reset");
        metrics::refused("forward", "no_target");
        // Like connecting straight to a closed port.
        client.reset_on_close();
        return;
    };
    metrics::connected("forward", dialing.elapsed());
    relay.targets.succeeded(i);
    let mut target = target;
    if let Some(version) = relay.cfg.send_proxy {
        let addrs = match (peer, origin.reached) {
            (PeerAddr::Inet(c), Some(s)) => Some((c, s)),
            _ => None,
        };
        let header = proxy_header::encode(version, addrs);
        if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut target, &header).await {
            tracing::warn!("conn {conn} {peer}: PROXY header to target: {e}");
            return;
        }
    }
    let from = origin.describe();
    for leg in [&client, &target] {
        prepare_leg(leg, &relay.cfg);
    }
    let ep = relay.targets.endpoint(i);
    // The address actually reached says more than a name that resolves
    // to several.
    let to = target
        .peer_addr()
        .map_or_else(|| ep.to_string(), |a| a.to_string());
    let opts = relay::Options {
        conn,
        dump: relay.dump.clone(),
        splice: relay.cfg.splice,
        idle: relay.cfg.idle_timeout,
    };
    let (accept, connect) = (&relay.cfg.tls_accept, &relay.cfg.tls_connect);
    if accept.is_none() && connect.is_none() {
        log::open(conn, &from, &to, "");
        let summary = relay::run(client, target, &opts).await;
        log::close(conn, &summary);
        metrics::relayed("forward", &summary);
        return;
    }
    // TLS legs copy through user space: the kernel cannot splice what it
    // would have to encrypt.
    let client = match accept {
        Some(tls) => match tls.accept(client).await {
            Ok(s) => Leg::Tls(Box::new(tls::Lenient(s))),
            Err(e) => {
                tracing::warn!("conn {conn} {peer}: {e}");
                return;
            }
        },
        None => Leg::Plain(client),
    };
    let target = match connect {
        Some(tls) => {
            let host = ep.host().unwrap_or_default().to_string();
            match tls.connect(&host, target).await {
                Ok(s) => Leg::Tls(Box::new(tls::Lenient(s))),
                Err(e) => {
                    tracing::warn!("conn {conn} {peer}: tls to {to}: {e}");
                    return;
                }
            }
        }
        None => Leg::Plain(target),
    };
    let about = format!(
        "{}{}",
        client.describe("from client"),
        target.describe("to target")
    );
    log::open(conn, &from, &to, &about);
    let summary = match (client, target) {
        (Leg::Tls(c), Leg::Plain(t)) => relay::run_io(c, t, &opts).await,
        (Leg::Plain(c), Leg::Tls(t)) => relay::run_io(c, t, &opts).await,
        (Leg::Tls(c), Leg::Tls(t)) => relay::run_io(c, t, &opts).await,
        (Leg::Plain(c), Leg::Plain(t)) => relay::run_io(c, t, &opts).await,
    };
    log::close(conn, &summary);
    metrics::relayed("forward", &summary);
}

/// One side of a relayed connection: plain, or TLS of either side's kind.
enum Leg<T> {
    Plain(Stream),
    Tls(Box<tls::Lenient<T>>),
}

/// What the log says of a TLS leg.
trait Session {
    fn facts(
        &self,
    ) -> (
        Option<rustls::ProtocolVersion>,
        Option<String>,
        Option<Vec<u8>>,
    );
}

impl Session for tokio_rustls::server::TlsStream<Stream> {
    fn facts(
        &self,
    ) -> (
        Option<rustls::ProtocolVersion>,
        Option<String>,
        Option<Vec<u8>>,
    ) {
        let c = self.get_ref().1;
        let sni = c.server_name().map(str::to_string);
        (
            c.protocol_version(),
            sni,
            c.alpn_protocol().map(<[u8]>::to_vec),
        )
    }
}

impl Session for tokio_rustls::client::TlsStream<Stream> {
    fn facts(
        &self,
    ) -> (
        Option<rustls::ProtocolVersion>,
        Option<String>,
        Option<Vec<u8>>,
    ) {
        let c = self.get_ref().1;
        (
            c.protocol_version(),
            None,
            c.alpn_protocol().map(<[u8]>::to_vec),
        )
    }
}

impl<T: Session> Leg<T> {
    /// ` (tls TLSv1_3 sni=… alpn=… from client)` for a TLS leg.
    fn describe(&self, side: &str) -> String {
        let (version, sni, alpn) = match self {
            Leg::Plain(_) => return String::new(),
            Leg::Tls(s) => s.0.facts(),
        };
        let mut out = format!(
            " (tls {}",
            version.map_or_else(|| "?".into(), |v| format!("{v:?}"))
        );
        if let Some(sni) = sni {
            out.push_str(&format!(" sni={sni}"));
        }
        if let Some(alpn) = alpn {
            out.push_str(&format!(" alpn={}", String::from_utf8_lossy(&alpn)));
        }
        out.push_str(&format!(" {side})"));
        out
    }
}

/// Unsent bytes a relay leg may hold in the kernel. Without a cap a fast
/// sender fills megabytes of it, which are then sent from the peer's ACK
/// processing, on the peer's core: four iperf3 streams through the splice
/// path ran at 0.55x of a direct connection, and with the cap (the 256 KiB
/// the splice pipe holds) at 1.19x. It also bounds what the kernel buffers
/// per connection for a slow reader.
const UNSENT_LIMIT: u32 = 256 * 1024;

/// Socket options for one leg of a relayed connection; a failure leaves the
/// kernel's defaults, which still relay correctly.
fn prepare_leg(leg: &Stream, cfg: &Config) {
    if let Err(e) = leg.limit_unsent(UNSENT_LIMIT) {
        tracing::debug!("unsent-data cap not set: {e}");
    }
    cfg.congestion.apply(leg);
}

impl Relay {
    /// Connects to the first target in the balancing order that answers,
    /// resting the ones that fail; returns the socket and the target's index.
    async fn first_reachable<T, F, Fut>(&self, connect: F) -> Option<(T, usize)>
    where
        F: Fn(Endpoint) -> Fut,
        Fut: Future<Output = io::Result<T>>,
    {
        for i in self.targets.order() {
            let ep = self.targets.endpoint(i);
            match connect(ep.clone()).await {
                Ok(sock) => return Some((sock, i)),
                Err(e) => {
                    let pause = self.targets.failed(i);
                    log::target_failed(ep, &e, pause);
                }
            }
        }
        None
    }
}
