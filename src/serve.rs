//! The service suite: a registry of services, each with default endpoints and
//! a TOML section, all bound before any starts and stopped by one shutdown.
//!
//! Adding a service means adding its section to [`SuiteConfig`] and one
//! [`ServiceSpec`] in [`SuiteConfig::specs`]; binding, the startup table,
//! shutdown and drain come for free.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinSet;

use crate::endpoint::Endpoint;
use crate::frame::{DEFAULT_MAX_FRAME, Framing};
use crate::net::{self, Bound};
use crate::shutdown::{self, DEFAULT_DRAIN_TIMEOUT, Shutdown, Signals};
use crate::units::{ByteSize, Secs};
use crate::{chat, classic, echo, forward, http, time};

/// A running service instance on one bound socket.
pub type ServiceFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// Starts a service on one of its bound sockets.
pub type Starter = Arc<dyn Fn(Bound, Shutdown) -> ServiceFuture + Send + Sync>;

/// One entry of the registry: a named service, where it listens, how it starts.
#[derive(Clone)]
pub struct ServiceSpec {
    /// Name shown in the startup table and logs.
    pub name: &'static str,
    /// Every endpoint the service listens on.
    pub endpoints: Vec<Endpoint>,
    /// Runs the service on one bound socket until shutdown.
    pub start: Starter,
}

/// The whole suite's configuration, as read from TOML.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    /// How long live connections may finish after a shutdown signal.
    pub drain_timeout: Option<Secs>,
    /// The echo service (RFC 862), tcp and udp 7007 by default.
    #[serde(default)]
    pub echo: EchoSection,
    /// Discard (RFC 863), tcp and udp 7009 by default.
    #[serde(default)]
    pub discard: ClassicSection,
    /// Daytime (RFC 867), tcp and udp 7013 by default.
    #[serde(default)]
    pub daytime: ClassicSection,
    /// Chargen (RFC 864), tcp and udp 7019 by default.
    #[serde(default)]
    pub chargen: ClassicSection,
    /// Time (RFC 868), tcp and udp 7037 by default.
    #[serde(default)]
    pub time: ClassicSection,
    /// The format-time service, udp 9000 by default.
    #[serde(default)]
    pub format_time: FormatTimeSection,
    /// Chat, tcp 12345 by default.
    #[serde(default)]
    pub chat: ChatSection,
    /// The HTTP server, tcp 8080 by default.
    #[serde(default)]
    pub http: HttpSection,
    /// Relays: any number of `[[forward]]` rules, none by default.
    #[serde(default)]
    pub forward: Vec<ForwardSection>,
}

/// `[http]` in the config: hello world, or files from `root`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Set to false to leave the service out.
    pub enabled: bool,
    /// Endpoints to listen on (tcp or unix).
    pub listen: Vec<Endpoint>,
    /// Serve this directory instead of the hello-world body.
    pub root: Option<std::path::PathBuf>,
    /// The hello-world body.
    pub body: String,
    /// Serve and list dotfiles.
    pub hidden: bool,
    /// Connections at once.
    pub max_conns: std::num::NonZeroUsize,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = http::Config::default();
        HttpSection {
            enabled: true,
            listen: vec![Endpoint::tcp(([127, 0, 0, 1], 8080).into())],
            root: d.root,
            body: d.body,
            hidden: d.hidden,
            max_conns: std::num::NonZeroUsize::new(d.max_conns).expect("nonzero default"),
        }
    }
}

/// One `[[forward]]` rule. Targets take the listener's transport, so a
/// `udp://` listener relays UDP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// Where to listen.
    pub listen: Endpoint,
    /// Where to relay to.
    pub targets: Vec<Endpoint>,
    /// `round-robin` (default) or `failover`.
    #[serde(default)]
    pub balance: forward::targets::Balance,
    /// Time allowed to connect to a target (default 5 s).
    pub connect_timeout: Option<Secs>,
    /// Close a connection after this long without traffic (default never).
    pub idle_timeout: Option<Secs>,
    /// A quiet UDP session ends after this long (default 60 s).
    pub udp_timeout: Option<Secs>,
    /// Connections (UDP: sessions) at once.
    pub max_conns: Option<std::num::NonZeroUsize>,
    /// Networks admitted (default everyone).
    #[serde(default, deserialize_with = "forward::access::deserialize_nets")]
    pub allow: Vec<ipnet::IpNet>,
    /// Networks refused.
    #[serde(default, deserialize_with = "forward::access::deserialize_nets")]
    pub deny: Vec<ipnet::IpNet>,
    /// Hex-dump traffic to stderr.
    #[serde(default)]
    pub hex_dump: bool,
    /// Hex-dump traffic to this file.
    pub dump_file: Option<std::path::PathBuf>,
    /// Relay with splice(2) where possible (default true).
    pub splice: Option<bool>,
    /// `auto` (default), `system` or an algorithm name.
    #[serde(default)]
    pub congestion: forward::congestion::Congestion,
}

impl ForwardSection {
    /// The relay this rule describes.
    pub fn config(&self) -> forward::Config {
        // A target written without a scheme follows the listener; `unix:`
        // and explicit mismatches are left for `validate` to refuse.
        let udp = self.listen.transport() == crate::endpoint::Transport::Udp;
        let targets = self
            .targets
            .iter()
            .map(|t| if udp { t.as_udp(true) } else { t.clone() })
            .collect();
        let d = forward::Config::new(targets);
        forward::Config {
            balance: self.balance,
            connect_timeout: self
                .connect_timeout
                .map_or(d.connect_timeout, |s| nonzero_duration(s.0)),
            idle_timeout: self.idle_timeout.and_then(|s| nonzero_duration(s.0)),
            udp_timeout: self
                .udp_timeout
                .map_or(d.udp_timeout, |s| nonzero_duration(s.0)),
            max_conns: max_conns(self.max_conns),
            access: forward::access::Access {
                allow: self.allow.clone(),
                deny: self.deny.clone(),
            },
            dump: forward::DumpTo::from_flags(self.dump_file.clone(), self.hex_dump),
            splice: self.splice.unwrap_or(true),
            congestion: self.congestion.clone(),
            ..d
        }
    }
}

/// `[chat]` in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatSection {
    /// Set to false to leave the service out.
    pub enabled: bool,
    /// Endpoints to listen on (tcp or unix).
    pub listen: Vec<Endpoint>,
    /// Messages replayed to someone joining a room.
    pub history: usize,
    /// Longest line a client may send.
    pub max_line: ByteSize,
    /// Clients at once.
    pub max_clients: std::num::NonZeroUsize,
    /// Lines per second per client (0 = no limit).
    pub rate: f64,
    /// Burst of lines per client.
    pub burst: f64,
}

impl Default for ChatSection {
    fn default() -> Self {
        let d = chat::Config::default();
        ChatSection {
            enabled: true,
            listen: vec![Endpoint::tcp(([127, 0, 0, 1], 12345).into())],
            history: d.history,
            max_line: ByteSize(d.max_line),
            max_clients: std::num::NonZeroUsize::new(d.max_clients).expect("nonzero default"),
            rate: d.rate,
            burst: d.burst,
        }
    }
}

/// `[discard]`, `[daytime]`, `[chargen]` and `[time]`: unset fields take the
/// service's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassicSection {
    /// Set to false to leave the service out.
    pub enabled: Option<bool>,
    /// Endpoints to listen on.
    pub listen: Option<Vec<Endpoint>>,
    /// TCP clients served at once.
    pub max_conns: Option<std::num::NonZeroUsize>,
    /// Close a client after this long without progress (0 = never).
    pub idle_timeout: Option<Secs>,
}

/// `[format_time]`: the classic section's keys plus `utc`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FormatTimeSection {
    /// Set to false to leave the service out.
    pub enabled: Option<bool>,
    /// Endpoints to listen on.
    pub listen: Option<Vec<Endpoint>>,
    /// TCP clients served at once.
    pub max_conns: Option<std::num::NonZeroUsize>,
    /// Close a TCP client after this long without a request (0 = never).
    pub idle_timeout: Option<Secs>,
    /// Serve UTC instead of local time.
    pub utc: bool,
}

/// Endpoints `tcp://127.0.0.1:PORT` and `udp://127.0.0.1:PORT`.
fn both(port: u16) -> Vec<Endpoint> {
    let at = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    vec![Endpoint::tcp(at), Endpoint::udp(at)]
}

fn max_conns(n: Option<std::num::NonZeroUsize>) -> usize {
    n.map_or(
        crate::accept::DEFAULT_MAX_CONNS,
        std::num::NonZeroUsize::get,
    )
}

fn idle(t: Option<Secs>) -> Option<Duration> {
    t.map_or(Some(echo::DEFAULT_IDLE_TIMEOUT), |s| nonzero_duration(s.0))
}

/// One registry entry from a service's config and its `run_bound`.
fn spec<C, F, Fut>(name: &'static str, endpoints: Vec<Endpoint>, cfg: C, run: F) -> ServiceSpec
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, Bound, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let cfg = Arc::new(cfg);
    ServiceSpec {
        name,
        endpoints,
        start: Arc::new(move |bound, sd| Box::pin(run(cfg.clone(), bound, sd)) as ServiceFuture),
    }
}

/// `[echo]` in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EchoSection {
    /// Set to false to leave the service out.
    pub enabled: bool,
    /// Endpoints to listen on.
    pub listen: Vec<Endpoint>,
    /// Framing for stream clients.
    pub frame: Framing,
    /// Largest frame a client may send.
    pub max_frame: ByteSize,
    /// Sent to each stream client on connect.
    pub greeting: Option<String>,
    /// Reply template, `{}` replaced by the message.
    pub reply: Option<String>,
    /// A message equal to this closes the client.
    pub exit_word: Option<String>,
    /// Stream clients served at once.
    pub max_conns: std::num::NonZeroUsize,
    /// Close a client idle this long (0 = never).
    pub idle_timeout: Secs,
}

impl Default for EchoSection {
    fn default() -> Self {
        EchoSection {
            enabled: true,
            listen: vec![
                "tcp://127.0.0.1:7007".parse().expect("valid default"),
                "udp://127.0.0.1:7007".parse().expect("valid default"),
            ],
            frame: Framing::Raw,
            max_frame: ByteSize(DEFAULT_MAX_FRAME),
            greeting: None,
            reply: None,
            exit_word: None,
            max_conns: std::num::NonZeroUsize::new(crate::accept::DEFAULT_MAX_CONNS)
                .expect("nonzero default"),
            idle_timeout: Secs(echo::DEFAULT_IDLE_TIMEOUT),
        }
    }
}

impl EchoSection {
    /// The echo service's own config from this section.
    pub fn config(&self) -> echo::Config {
        echo::Config {
            framing: self.frame,
            max_frame: self.max_frame.0,
            greeting: self.greeting.clone().map(Into::into),
            reply: self.reply.as_deref().map(echo::Template::new),
            exit_word: self.exit_word.clone().map(Into::into),
            max_conns: self.max_conns.get(),
            idle_timeout: nonzero_duration(self.idle_timeout.0),
        }
    }
}

/// 0 means "no timeout" in flags and config.
pub fn nonzero_duration(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// A config file that could not be used, naming the line and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read config {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The TOML is invalid, or a key or value is wrong.
    #[error("config {path} line {line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong, with the key's name.
        message: String,
    },
}

impl SuiteConfig {
    /// Reads and validates a TOML config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: SuiteConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            ConfigError::Invalid {
                path: origin.to_string(),
                line,
                message: e.message().trim().replace('\n', " "),
            }
        })?;
        for (i, rule) in cfg.forward.iter().enumerate() {
            if let Err(message) = rule.config().validate(&rule.listen) {
                // Point at the rule's own `[[forward]]` header.
                let line = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.trim_start().starts_with("[[forward]]"))
                    .nth(i)
                    .map_or(1, |(n, _)| n + 1);
                return Err(ConfigError::Invalid {
                    path: origin.to_string(),
                    line,
                    message,
                });
            }
        }
        Ok(cfg)
    }

    /// The drain timeout to use when the command line does not say.
    pub fn drain_timeout(&self) -> Duration {
        self.drain_timeout
            .map(|s| s.0)
            .unwrap_or(DEFAULT_DRAIN_TIMEOUT)
    }

    /// The registry: every enabled service with its endpoints and starter.
    pub fn specs(&self) -> Vec<ServiceSpec> {
        let mut specs = Vec::new();
        if self.echo.enabled {
            let endpoints = self.echo.listen.clone();
            specs.push(spec("echo", endpoints, self.echo.config(), echo::run_bound));
        }
        let classic = [
            (&self.discard, classic::Service::Discard, 7009),
            (&self.daytime, classic::Service::Daytime, 7013),
            (&self.chargen, classic::Service::Chargen, 7019),
            (&self.time, classic::Service::Time, 7037),
        ];
        for (section, service, port) in classic {
            if section.enabled == Some(false) {
                continue;
            }
            let cfg = classic::Config {
                service,
                max_conns: max_conns(section.max_conns),
                idle_timeout: idle(section.idle_timeout),
            };
            let endpoints = section.listen.clone().unwrap_or_else(|| both(port));
            specs.push(spec(service.name(), endpoints, cfg, classic::run_bound));
        }
        let ft = &self.format_time;
        if ft.enabled != Some(false) {
            let cfg = time::Config {
                utc: ft.utc,
                max_conns: max_conns(ft.max_conns),
                idle_timeout: idle(ft.idle_timeout),
            };
            let endpoints = ft.listen.clone().unwrap_or_else(|| both(9000).split_off(1));
            specs.push(spec("format-time", endpoints, cfg, time::run_bound));
        }
        if self.chat.enabled {
            let c = &self.chat;
            let cfg = chat::Config {
                history: c.history,
                max_line: c.max_line.0,
                max_clients: c.max_clients.get(),
                rate: c.rate.max(0.0),
                burst: c.burst.max(1.0),
                outbox: chat::OUTBOX_BYTES,
            };
            specs.push(spec("chat", c.listen.clone(), cfg, chat::run_bound));
        }
        if self.http.enabled {
            let h = &self.http;
            let cfg = http::Config {
                root: h.root.clone(),
                body: h.body.clone(),
                hidden: h.hidden,
                max_conns: h.max_conns.get(),
                ..http::Config::default()
            };
            specs.push(spec("http", h.listen.clone(), cfg, http::run_bound));
        }
        for rule in &self.forward {
            let endpoints = vec![rule.listen.clone()];
            specs.push(spec(
                "forward",
                endpoints,
                rule.config(),
                forward::run_bound,
            ));
        }
        specs
    }
}

/// A service bound to one endpoint, not yet started.
pub struct Binding {
    /// Service name.
    pub name: &'static str,
    /// The endpoint actually bound.
    pub endpoint: Endpoint,
    bound: Bound,
    start: Starter,
}

/// Binds every endpoint of every service, failing before anything starts if
/// one cannot be bound.
pub async fn bind_all(specs: &[ServiceSpec]) -> anyhow::Result<Vec<Binding>> {
    use anyhow::Context;
    let mut out = Vec::new();
    for spec in specs {
        for ep in &spec.endpoints {
            let bound = net::bind(ep)
                .await
                .with_context(|| format!("bind {} for {}", ep, spec.name))?;
            out.push(Binding {
                name: spec.name,
                endpoint: bound.local_endpoint()?,
                bound,
                start: spec.start.clone(),
            });
        }
    }
    Ok(out)
}

/// The startup table: one row per service endpoint.
pub fn table(bindings: &[Binding]) -> String {
    let width = bindings
        .iter()
        .map(|b| b.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!("{:<width$}  endpoint\n", "service");
    for b in bindings {
        out.push_str(&format!("{:<width$}  {}\n", b.name, b.endpoint));
    }
    out
}

/// Runs bound services until a signal, then drains them. Fails if any
/// service stopped with an error.
pub async fn run(
    bindings: Vec<Binding>,
    shutdown: Shutdown,
    drain: Duration,
    signals: Signals,
) -> anyhow::Result<()> {
    let mut set = JoinSet::new();
    for b in bindings {
        let name = b.name;
        let endpoint = b.endpoint.clone();
        let fut = (b.start)(b.bound, shutdown.clone());
        set.spawn(async move { (name, endpoint, fut.await) });
    }
    let all = async {
        let mut failed = 0;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((name, ep, Err(err))) => {
                    tracing::error!(service = name, endpoint = %ep, %err, "service stopped");
                    failed += 1;
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(%err, "service task failed");
                    failed += 1;
                }
            }
        }
        failed
    };
    match shutdown::run_until_signal(&shutdown, drain, signals, all).await {
        0 => Ok(()),
        n => anyhow::bail!("{n} service endpoint(s) stopped with errors"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design_ports() {
        let cfg = SuiteConfig::parse("", "t").unwrap();
        let rows: Vec<String> = cfg
            .specs()
            .iter()
            .flat_map(|s| s.endpoints.iter().map(move |e| format!("{} {e}", s.name)))
            .collect();
        assert_eq!(
            rows,
            [
                "echo tcp://127.0.0.1:7007",
                "echo udp://127.0.0.1:7007",
                "discard tcp://127.0.0.1:7009",
                "discard udp://127.0.0.1:7009",
                "daytime tcp://127.0.0.1:7013",
                "daytime udp://127.0.0.1:7013",
                "chargen tcp://127.0.0.1:7019",
                "chargen udp://127.0.0.1:7019",
                "time tcp://127.0.0.1:7037",
                "time udp://127.0.0.1:7037",
                "format-time udp://127.0.0.1:9000",
                "chat tcp://127.0.0.1:12345",
                "http tcp://127.0.0.1:8080",
            ]
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = SuiteConfig::parse("[echo]\nlisten = []\nbogus = 1\n", "t.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("bogus"), "{text}");
    }

    #[test]
    fn bad_endpoint_value_names_line() {
        let err = SuiteConfig::parse("[echo]\n\nlisten = [\"tcp://:x\"]\n", "t.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("invalid port 'x'"), "{text}");
    }

    #[test]
    fn classic_sections_choose_endpoints_and_limits() {
        let text = "[chargen]\nlisten = [\"tcp://127.0.0.1:0\"]\nmax_conns = 5\nidle_timeout = 0\n\
                    [format_time]\nlisten = [\"tcp://[::1]:9\"]\nutc = true\n";
        let cfg = SuiteConfig::parse(text, "t").unwrap();
        let specs = cfg.specs();
        let chargen = specs.iter().find(|s| s.name == "chargen").unwrap();
        assert_eq!(chargen.endpoints, ["tcp://127.0.0.1:0".parse().unwrap()]);
        assert_eq!(max_conns(cfg.chargen.max_conns), 5);
        assert_eq!(idle(cfg.chargen.idle_timeout), None);
        let ft = specs.iter().find(|s| s.name == "format-time").unwrap();
        assert_eq!(ft.endpoints[0].to_string(), "tcp://[::1]:9");
        assert!(cfg.format_time.utc);
        let err = SuiteConfig::parse("[daytime]\nutc = true\n", "t").unwrap_err();
        assert!(err.to_string().contains("utc"), "{err}");
    }

    #[test]
    fn disabled_service_is_left_out() {
        let cfg =
            SuiteConfig::parse("[echo]\nenabled = false\n[time]\nenabled = false\n", "t").unwrap();
        let names: Vec<_> = cfg.specs().iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "discard",
                "daytime",
                "chargen",
                "format-time",
                "chat",
                "http"
            ]
        );
    }
}
