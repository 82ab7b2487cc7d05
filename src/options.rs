//! Option groups that several services share, each defined once and
//! flattened into every service's options type, which is at the same time
//! its clap `Args` and its config-file section; and the error every option
//! check gives, whichever front end the value came from.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::frame::{DEFAULT_MAX_FRAME, Framing};
use crate::units::{ByteSize, Count, Secs};

/// A value that makes no sense, named by its key (`rate`, `max_conns`):
/// the command line shows the key as its flag, the config file as the key
/// and its line, and both show the same `problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct OptionError {
    /// The option's key, which is also its clap argument id.
    pub key: &'static str,
    /// What is wrong, in words that fit after the option's name.
    pub problem: String,
}

impl OptionError {
    /// An error about `key`.
    pub fn new(key: &'static str, problem: impl Into<String>) -> Self {
        OptionError {
            key,
            problem: problem.into(),
        }
    }
}

/// A service's defaults for the [`Limits`] group.
pub trait LimitDefaults: Clone + Debug + Send + Sync + 'static {
    /// Clients served at once.
    const MAX_CONNS: usize = crate::accept::DEFAULT_MAX_CONNS;
    /// Quiet time before a client is closed; zero keeps it forever.
    const IDLE_TIMEOUT: Secs;
    /// How long live clients may finish after a shutdown signal.
    const DRAIN_TIMEOUT: Secs = Secs(crate::shutdown::DEFAULT_DRAIN_TIMEOUT);
}

/// How long a quiet client is kept by the servers that close quiet ones
/// (echo, the classics, format-time), so abandoned or hostile connections
/// cannot hold slots forever.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Limits of a server that closes a client quiet for
/// [`DEFAULT_IDLE_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct ClosesIdle;

impl LimitDefaults for ClosesIdle {
    const IDLE_TIMEOUT: Secs = Secs(DEFAULT_IDLE_TIMEOUT);
}

/// Limits of a server that keeps a quiet client, as nc, socat, rinetd and
/// python's http.server do.
#[derive(Debug, Clone)]
pub struct KeepsIdle;

impl LimitDefaults for KeepsIdle {
    const IDLE_TIMEOUT: Secs = Secs::from_secs(0);
}

/// The limits every server has. `D` holds the service's own defaults, so
/// `--help` and a config section without the key agree on them.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct Limits<D: LimitDefaults> {
    // The defaults are given as text built per call: `default_value_t`
    // caches its text in a static that every `D` would share.
    /// Clients served at once; more are closed at once.
    // `--max-clients` is what chat called it before every service agreed.
    #[arg(long, alias = "max-clients", value_name = "N", default_value = D::MAX_CONNS.to_string(), allow_negative_numbers = true)]
    pub max_conns: Count,
    /// Close a client after this long without traffic (0 = never).
    #[arg(short = 'i', long, value_name = "SECS", default_value = D::IDLE_TIMEOUT.to_string(), allow_negative_numbers = true)]
    pub idle_timeout: Secs,
    /// At shutdown, wait this long for clients to finish.
    #[arg(long, value_name = "SECS", default_value = D::DRAIN_TIMEOUT.to_string(), allow_negative_numbers = true)]
    pub drain_timeout: Secs,
    #[arg(skip)]
    #[serde(skip)]
    defaults: PhantomData<D>,
}

impl<D: LimitDefaults> Default for Limits<D> {
    fn default() -> Self {
        clap_defaults()
    }
}

impl<D: LimitDefaults> Limits<D> {
    /// The connection cap, which must admit someone.
    pub fn max_conns(&self) -> Result<usize, OptionError> {
        match self.max_conns.0 {
            0 => Err(OptionError::new("max_conns", "must be at least 1, not 0")),
            n => Ok(n),
        }
    }

    /// The idle limit, `None` for never.
    pub fn idle(&self) -> Option<Duration> {
        self.idle_timeout.nonzero()
    }

    /// How long its clients may finish after a shutdown signal.
    pub fn drain(&self) -> Duration {
        self.drain_timeout.0
    }
}

/// Where a server subcommand listens: its endpoint, and `--udp` for one
/// written without a scheme. (A config section lists its `listen`
/// endpoints instead, each with its scheme.)
#[derive(Debug, Clone, Args)]
pub struct Listen {
    /// Where to listen: :PORT, HOST:PORT, [V6]:PORT, tcp://…, udp://…, unix:PATH.
    #[arg(value_name = "ENDPOINT")]
    pub listen: Endpoint,
    /// Use UDP (same as a udp:// endpoint).
    #[arg(short, long)]
    pub udp: bool,
}

impl Listen {
    /// The endpoint with `--udp` applied.
    pub fn endpoint(&self) -> Result<Endpoint, OptionError> {
        self.listen
            .clone()
            .with_udp_flag(self.udp)
            .map_err(|e| OptionError::new("listen", e.to_string()))
    }
}

/// How a stream is cut into messages, for connect, listen and echo.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameOptions {
    /// How messages are delimited on the socket: raw bytes, newline-terminated
    /// lines, or 4-byte big-endian length-prefixed frames.
    #[arg(long, value_enum, default_value_t = Framing::Raw)]
    pub frame: Framing,
    /// Largest frame accepted; a peer that sends more is disconnected.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_MAX_FRAME))]
    pub max_frame: ByteSize,
}

impl Default for FrameOptions {
    fn default() -> Self {
        clap_defaults()
    }
}

/// nc's client addressing: `-s`, `-p`, `-4`, `-6` and `-n`.
#[derive(Debug, Clone, Default, Args)]
pub struct Addressing {
    /// Connect from this local address.
    #[arg(short = 's', long = "source", value_name = "ADDR")]
    pub source: Option<std::net::IpAddr>,
    /// Connect from this local port.
    #[arg(short = 'p', long = "source-port", value_name = "PORT")]
    pub source_port: Option<u16>,
    /// Use IPv4 addresses only.
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 addresses only.
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
    /// Take numeric addresses only: never ask DNS.
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
}

impl Addressing {
    /// The socket settings these flags ask for, connecting within `timeout`.
    pub fn dial(&self, timeout: Option<Duration>) -> Result<crate::net::Dial, OptionError> {
        use crate::net::Family;
        let family = match (self.ipv4, self.ipv6) {
            (true, _) => Some(Family::V4),
            (_, true) => Some(Family::V6),
            _ => None,
        };
        if let (Some(ip), Some(family)) = (self.source, family)
            && ip.is_ipv4() != (family == Family::V4)
        {
            let flag = if family == Family::V4 { "-4" } else { "-6" };
            return Err(OptionError::new(
                "source",
                format!("{ip} is not of the family {flag} asks for"),
            ));
        }
        if self.source_port == Some(0) {
            return Err(OptionError::new(
                "source_port",
                "must be 1-65535 (leave it out for any port)",
            ));
        }
        Ok(crate::net::Dial {
            timeout,
            source: self.source,
            source_port: self.source_port,
            family,
            numeric: self.numeric,
        })
    }

    /// Whether any flag is given, for endpoints where none applies.
    pub fn any(&self) -> bool {
        self.source.is_some()
            || self.source_port.is_some()
            || self.ipv4
            || self.ipv6
            || self.numeric
    }
}

/// An options type as a command line with none of its flags gives it, so a
/// config section without a key takes exactly the flag's default: each
/// default is written once, in its flag's attribute.
pub fn clap_defaults<T: Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(
        clap::Command::new("defaults")
            .no_binary_name(true)
            // Required arguments (a relay's targets) stay empty here.
            .ignore_errors(true),
    );
    let matches = cmd.get_matches_from(std::iter::empty::<String>());
    T::from_arg_matches(&matches).expect("an options type parses from its own defaults")
}

/// Checks a rate-like number: finite and at least `min`.
pub fn at_least(key: &'static str, value: f64, min: f64) -> Result<f64, OptionError> {
    if value.is_finite() && value >= min {
        Ok(value)
    } else {
        Err(OptionError::new(
            key,
            format!("must be a number of {min} or more, not {value}"),
        ))
    }
}

/// Refuses `ws://` and `wss://` endpoints where `key` names them: only
/// `connect` and `listen` bridge WebSocket (chat serves it with `--web`).
pub fn no_websocket(key: &'static str, endpoints: &[Endpoint]) -> Result<(), OptionError> {
    match endpoints.iter().find(|e| e.websocket().is_some()) {
        Some(ws) => Err(OptionError::new(
            key,
            format!(
                "'{ws}' is a WebSocket endpoint: connect and listen speak it, and chat with --web"
            ),
        )),
        None => Ok(()),
    }
}

/// `endpoints` if none is UDP, for services that only speak over streams.
pub fn stream_only(service: &str, endpoints: Vec<Endpoint>) -> Result<Vec<Endpoint>, OptionError> {
    match endpoints.iter().find(|e| e.transport().is_datagram()) {
        Some(udp) => Err(OptionError::new(
            "listen",
            format!("{service} needs a tcp or unix endpoint, not '{udp}'"),
        )),
        None => Ok(endpoints),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_flags() {
        let f = crate::forward::Options::default();
        assert!(f.onward.splice && f.targets.is_empty());
        assert_eq!(
            f.onward.connect_timeout.0,
            crate::forward::DEFAULT_CONNECT_TIMEOUT
        );
        assert_eq!(f.limits.idle(), None);
        let c = crate::chat::Options::default();
        assert_eq!(c.history.0, crate::chat::DEFAULT_HISTORY);
        assert_eq!(
            c.limits.max_conns().unwrap(),
            crate::chat::DEFAULT_MAX_CONNS
        );
        let e = crate::echo::Options::default();
        assert_eq!(e.limits.idle(), Some(DEFAULT_IDLE_TIMEOUT));
        assert_eq!(e.frame.max_frame.0, crate::frame::DEFAULT_MAX_FRAME);
        assert_eq!(e.limits.drain(), crate::shutdown::DEFAULT_DRAIN_TIMEOUT);
        let h = crate::http::Options::default();
        assert_eq!(h.body, crate::http::DEFAULT_BODY);
    }
}
