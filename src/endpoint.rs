//! Endpoints: parsing and displaying `tcp://`, `udp://`, `unix:`, `[v6]:port`, and
//! turning one into a bound server socket or a connected client socket.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use thiserror::Error;

/// Longest path a Unix socket address can hold on Linux (`sun_path` is 108
/// bytes and the kernel wants room for the trailing NUL).
pub const MAX_UNIX_PATH: usize = 107;

/// Host used when an endpoint gives only `:PORT`: listeners stay on loopback
/// unless the user opens them up explicitly.
pub const DEFAULT_HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The transport an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A TCP stream.
    Tcp,
    /// UDP datagrams.
    Udp,
    /// A Unix-domain stream socket.
    Unix,
    /// Unix-domain datagrams.
    UnixDatagram,
}

impl Transport {
    /// The scheme used when displaying an endpoint of this transport.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Unix => "unix",
            Transport::UnixDatagram => "unixgram",
        }
    }

    /// UDP or Unix datagrams: no streams, so no TLS or WebSocket.
    pub fn is_datagram(self) -> bool {
        matches!(self, Transport::Udp | Transport::UnixDatagram)
    }
}

/// Where a socket lives: a host and port over TCP or UDP, or a Unix socket path.
///
/// ```
/// use sockit::endpoint::{Endpoint, Transport};
///
/// let ep: Endpoint = ":7007".parse().unwrap();
/// assert_eq!(ep.to_string(), "tcp://127.0.0.1:7007");
/// let ep: Endpoint = "udp://[::1]:53".parse().unwrap();
/// assert_eq!(ep.transport(), Transport::Udp);
/// let err = "localhost:abc".parse::<Endpoint>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid port 'abc' in 'localhost:abc'");
/// ```
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// An internet endpoint; `host` is a literal IP or a name still to resolve.
    Inet {
        /// TCP or UDP.
        udp: bool,
        /// A hostname or an IP literal (without brackets).
        host: String,
        /// The port; 0 asks the kernel for a free one when binding.
        port: u16,
        /// Whether the transport was spelled out (`tcp://`, `udp://`); one
        /// that was not may follow `--udp` or a relay's listener.
        scheme: bool,
        /// TLS over TCP (`tls://`, `wss://`).
        tls: bool,
        /// WebSocket over TCP (`ws://`, `wss://`): the path asked for,
        /// `/` when none is written.
        ws: Option<String>,
    },
    /// A Unix-domain stream socket at this path.
    Unix(PathBuf),
    /// A Unix-domain datagram socket at this path (`unixgram:PATH`).
    UnixDatagram(PathBuf),
}

/// What was wrong with an endpoint string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The port part is not a number from 0 to 65535.
    #[error("invalid port '{port}' in '{input}'")]
    BadPort {
        /// The port text as written.
        port: String,
        /// The whole endpoint as written.
        input: String,
    },
    /// No `:PORT` was given.
    #[error("missing port in '{0}' (expected HOST:PORT, [V6ADDR]:PORT or :PORT)")]
    MissingPort(String),
    /// An unknown `scheme://`.
    #[error(
        "unknown scheme '{scheme}' in '{input}' (expected tcp://, udp://, tls://, ws://, wss:// or unix:)"
    )]
    BadScheme {
        /// The scheme as written.
        scheme: String,
        /// The whole endpoint as written.
        input: String,
    },
    /// An IPv6 address written without brackets, which makes the port ambiguous.
    #[error("ambiguous IPv6 address in '{0}' (write it as [V6ADDR]:PORT)")]
    UnbracketedV6(String),
    /// A `[` without its `]`, or text between `]` and `:`.
    #[error("malformed IPv6 address in '{0}' (expected [V6ADDR]:PORT)")]
    BadBracket(String),
    /// The host part is empty where one is needed.
    #[error("empty host in '{0}'")]
    EmptyHost(String),
    /// A Unix socket path is empty.
    #[error("empty unix socket path in '{0}'")]
    EmptyPath(String),
    /// A Unix socket path does not fit in `sun_path`.
    #[error("unix socket path is {len} bytes, longer than the {MAX_UNIX_PATH} allowed: '{path}'")]
    PathTooLong {
        /// The path as written.
        path: String,
        /// Its length in bytes.
        len: usize,
    },
    /// `--udp` was combined with an endpoint that names another transport.
    #[error("--udp conflicts with '{0}'")]
    UdpConflict(String),
    /// `--tcp` was combined with a `udp://` endpoint.
    #[error("--tcp conflicts with '{0}'")]
    TcpConflict(String),
    /// A WebSocket path with spaces or control characters.
    #[error("invalid path in '{0}' (no spaces or control characters)")]
    BadPath(String),
}

/// Two endpoints are the same place whether or not the scheme was written.
impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Endpoint::Inet {
                    udp,
                    host,
                    port,
                    tls,
                    ws,
                    ..
                },
                Endpoint::Inet {
                    udp: u2,
                    host: h2,
                    port: p2,
                    tls: t2,
                    ws: w2,
                    ..
                },
            ) => udp == u2 && host == h2 && port == p2 && tls == t2 && ws == w2,
            (Endpoint::Unix(a), Endpoint::Unix(b)) => a == b,
            (Endpoint::UnixDatagram(a), Endpoint::UnixDatagram(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Endpoint {}

impl std::hash::Hash for Endpoint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Endpoint::Inet {
                udp,
                host,
                port,
                tls,
                ws,
                ..
            } => (0u8, udp, host, port, tls, ws).hash(state),
            Endpoint::Unix(path) => (1u8, path).hash(state),
            Endpoint::UnixDatagram(path) => (2u8, path).hash(state),
        }
    }
}

impl Endpoint {
    /// A TCP endpoint on a literal address.
    pub fn tcp(addr: SocketAddr) -> Self {
        Endpoint::Inet {
            udp: false,
            host: addr.ip().to_string(),
            port: addr.port(),
            scheme: true,
            tls: false,
            ws: None,
        }
    }

    /// A UDP endpoint on a literal address.
    pub fn udp(addr: SocketAddr) -> Self {
        Endpoint::Inet {
            udp: true,
            host: addr.ip().to_string(),
            port: addr.port(),
            scheme: true,
            tls: false,
            ws: None,
        }
    }

    /// The transport this endpoint speaks.
    pub fn transport(&self) -> Transport {
        match self {
            Endpoint::Inet { udp: true, .. } => Transport::Udp,
            Endpoint::Inet { udp: false, .. } => Transport::Tcp,
            Endpoint::Unix(_) => Transport::Unix,
            Endpoint::UnixDatagram(_) => Transport::UnixDatagram,
        }
    }

    /// `HOST:PORT` (`[V6]:PORT`) or the socket's path, without a scheme.
    pub fn authority(&self) -> String {
        match self {
            Endpoint::Inet { host, port, .. } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Inet { host, port, .. } => format!("{host}:{port}"),
            Endpoint::Unix(path) | Endpoint::UnixDatagram(path) => path.display().to_string(),
        }
    }

    /// The host a TLS client names and checks, for an internet endpoint.
    pub fn host(&self) -> Option<&str> {
        match self {
            Endpoint::Inet { host, .. } => Some(host),
            Endpoint::Unix(_) | Endpoint::UnixDatagram(_) => None,
        }
    }

    /// Whether this is a `tls://` endpoint.
    pub fn is_tls(&self) -> bool {
        matches!(self, Endpoint::Inet { tls: true, .. })
    }

    /// The same TCP endpoint marked as TLS (or not); others stay as they are.
    pub fn with_tls(self, on: bool) -> Self {
        match self {
            Endpoint::Inet {
                udp: false,
                host,
                port,
                scheme,
                ws,
                ..
            } => Endpoint::Inet {
                udp: false,
                host,
                port,
                scheme,
                tls: on,
                ws,
            },
            other => other,
        }
    }

    /// The WebSocket path of a `ws://` or `wss://` endpoint.
    pub fn websocket(&self) -> Option<&str> {
        match self {
            Endpoint::Inet { ws, .. } => ws.as_deref(),
            Endpoint::Unix(_) | Endpoint::UnixDatagram(_) => None,
        }
    }

    /// The same TCP endpoint speaking WebSocket on `path` (none: plain).
    pub fn with_websocket(self, path: Option<&str>) -> Self {
        match (self, path) {
            (
                Endpoint::Inet {
                    udp: false,
                    host,
                    port,
                    scheme,
                    tls,
                    ..
                },
                Some(path),
            ) => Endpoint::Inet {
                udp: false,
                host,
                port,
                scheme,
                tls,
                ws: Some(path.to_string()),
            },
            (ep, _) => ep,
        }
    }

    /// The same endpoint as plain TCP (or TLS), without WebSocket.
    pub fn without_websocket(self) -> Self {
        match self {
            Endpoint::Inet {
                udp,
                host,
                port,
                scheme,
                tls,
                ..
            } => Endpoint::Inet {
                udp,
                host,
                port,
                scheme,
                tls,
                ws: None,
            },
            unix => unix,
        }
    }

    /// Whether the user named the transport (`tcp://`, `udp://`, `unix:`).
    pub fn has_scheme(&self) -> bool {
        match self {
            Endpoint::Inet { scheme, .. } => *scheme,
            Endpoint::Unix(_) | Endpoint::UnixDatagram(_) => true,
        }
    }

    /// Applies a `--udp` flag: a TCP endpoint written without a scheme becomes
    /// UDP; one that explicitly says `tcp://` or `unix:` is a conflict.
    pub fn with_udp_flag(self, udp_flag: bool) -> Result<Self, EndpointError> {
        if !udp_flag || self.transport() == Transport::Udp {
            return Ok(self);
        }
        if self.has_scheme() {
            return Err(EndpointError::UdpConflict(self.to_string()));
        }
        Ok(self.on_transport(true))
    }

    /// For UDP-first commands (`time`): UDP unless `--tcp` or a scheme says
    /// otherwise.
    pub fn udp_unless(self, tcp_flag: bool) -> Result<Self, EndpointError> {
        match self.transport() {
            Transport::Udp if tcp_flag => Err(EndpointError::TcpConflict(self.to_string())),
            Transport::Tcp if !tcp_flag && !self.has_scheme() => Ok(self.on_transport(true)),
            _ => Ok(self),
        }
    }

    /// A relay target written without a scheme takes the listener's
    /// transport (`udp` or not); one with a scheme keeps its own.
    pub fn following(self, udp: bool) -> Self {
        if self.has_scheme() {
            self
        } else {
            self.on_transport(udp)
        }
    }

    fn on_transport(self, udp: bool) -> Self {
        match self {
            Endpoint::Inet {
                host,
                port,
                scheme,
                tls,
                ws,
                ..
            } => Endpoint::Inet {
                udp,
                host,
                port,
                scheme,
                tls: tls && !udp,
                ws: ws.filter(|_| !udp),
            },
            unix => unix,
        }
    }

    /// Resolves an internet endpoint to its socket addresses, in the order the
    /// resolver gives them (so `localhost` yields `::1` and `127.0.0.1`).
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let Endpoint::Inet { host, port, .. } = self else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a unix socket has no network address",
            ));
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, *port)]);
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), *port))
            .await
            .map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("cannot resolve host '{host}': {}", resolver_reason(&e)),
                )
            })?
            .collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("host '{host}' has no addresses"),
            ));
        }
        Ok(addrs)
    }
}

/// getaddrinfo's messages carry a "failed to lookup address information:"
/// prefix that repeats what the context already says.
fn resolver_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rsplit_once(": ") {
        Some((_, reason)) => reason.to_lowercase(),
        None => text,
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if let Some(path) = input.strip_prefix("unixgram:") {
            return unix_path(path, input).map(Endpoint::UnixDatagram);
        }
        if let Some(path) = input
            .strip_prefix("unix://")
            .or_else(|| input.strip_prefix("unix:"))
        {
            return unix_path(path, input).map(Endpoint::Unix);
        }
        let (udp, tls, scheme, rest) = match input.split_once("://") {
            Some(("tcp", rest)) => (false, false, true, rest),
            Some(("udp", rest)) => (true, false, true, rest),
            Some(("tls", rest)) => (false, true, true, rest),
            Some(("ws", rest)) => return parse_websocket(rest, false, input),
            Some(("wss", rest)) => return parse_websocket(rest, true, input),
            Some((scheme, _)) => {
                return Err(EndpointError::BadScheme {
                    scheme: scheme.to_string(),
                    input: input.to_string(),
                });
            }
            None => (false, false, false, input),
        };
        let (host, port) = split_host_port(rest, input)?;
        Ok(Endpoint::Inet {
            udp,
            host,
            port,
            scheme,
            tls,
            ws: None,
        })
    }
}

/// `HOST[:PORT][/PATH]` after `ws://` (port 80) or `wss://` (443), as in
/// a URL.
fn parse_websocket(rest: &str, tls: bool, input: &str) -> Result<Endpoint, EndpointError> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(EndpointError::BadPath(input.to_string()));
    }
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':') || authority.bytes().all(|b| b.is_ascii_digit()),
    };
    let (host, port) = if has_port {
        split_host_port(authority, input)?
    } else {
        let host = authority.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(EndpointError::EmptyHost(input.to_string()));
        }
        if host.contains(['[', ']']) {
            return Err(EndpointError::BadBracket(input.to_string()));
        }
        (host.to_string(), if tls { 443 } else { 80 })
    };
    Ok(Endpoint::Inet {
        udp: false,
        host,
        port,
        scheme: true,
        tls,
        ws: Some(path),
    })
}

fn unix_path(path: &str, input: &str) -> Result<PathBuf, EndpointError> {
    if path.is_empty() {
        return Err(EndpointError::EmptyPath(input.to_string()));
    }
    if path.len() > MAX_UNIX_PATH {
        return Err(EndpointError::PathTooLong {
            path: path.to_string(),
            len: path.len(),
        });
    }
    Ok(PathBuf::from(path))
}

fn split_host_port(rest: &str, input: &str) -> Result<(String, u16), EndpointError> {
    let parse_port = |port: &str| {
        port.parse::<u16>().map_err(|_| EndpointError::BadPort {
            port: port.to_string(),
            input: input.to_string(),
        })
    };
    if let Some(after) = rest.strip_prefix('[') {
        let (host, tail) = after
            .split_once(']')
            .ok_or_else(|| EndpointError::BadBracket(input.to_string()))?;
        let port = match tail.strip_prefix(':') {
            Some(port) => port,
            None if tail.is_empty() => return Err(EndpointError::MissingPort(input.to_string())),
            None => return Err(EndpointError::BadBracket(input.to_string())),
        };
        if host.is_empty() {
            return Err(EndpointError::EmptyHost(input.to_string()));
        }
        if host.contains('[') {
            return Err(EndpointError::BadBracket(input.to_string()));
        }
        return Ok((host.to_string(), parse_port(port)?));
    }
    // A bare number is a port on the default host, as in `nc -l 9000`.
    if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        return Ok((DEFAULT_HOST.to_string(), parse_port(rest)?));
    }
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(EndpointError::MissingPort(input.to_string()));
    };
    if host.contains(':') {
        return Err(EndpointError::UnbracketedV6(input.to_string()));
    }
    if host.contains(['[', ']']) {
        return Err(EndpointError::BadBracket(input.to_string()));
    }
    let port = parse_port(port)?;
    let host = if host.is_empty() {
        DEFAULT_HOST.to_string()
    } else {
        host.to_string()
    };
    Ok((host, port))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Inet {
                udp,
                host,
                port,
                tls,
                ws,
                ..
            } => {
                let scheme = match (udp, tls, ws.is_some()) {
                    (true, _, _) => "udp",
                    (false, true, true) => "wss",
                    (false, false, true) => "ws",
                    (false, true, false) => "tls",
                    (false, false, false) => "tcp",
                };
                if host.contains(':') {
                    write!(f, "{scheme}://[{host}]:{port}")?;
                } else {
                    write!(f, "{scheme}://{host}:{port}")?;
                }
                f.write_str(ws.as_deref().unwrap_or(""))
            }
            // `unix:` then `//x` would read back as `unix://` then `x`.
            Endpoint::Unix(path) if path.as_os_str().as_encoded_bytes().starts_with(b"//") => {
                write!(f, "unix://{}", path.display())
            }
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::UnixDatagram(path) => write!(f, "unixgram:{}", path.display()),
        }
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(udp: bool, host: &str, port: u16) -> Endpoint {
        Endpoint::Inet {
            udp,
            host: host.into(),
            port,
            scheme: false,
            tls: false,
            ws: None,
        }
    }

    #[test]
    fn parses_every_form() {
        let cases = [
            ("localhost:80", inet(false, "localhost", 80)),
            ("[::1]:9000", inet(false, "::1", 9000)),
            (":7007", inet(false, "127.0.0.1", 7007)),
            ("7007", inet(false, "127.0.0.1", 7007)),
            ("tcp://10.0.0.1:1", inet(false, "10.0.0.1", 1)),
            ("udp://[::1]:0", inet(true, "::1", 0)),
            ("udp://:53", inet(true, "127.0.0.1", 53)),
            ("unix:/tmp/x.sock", Endpoint::Unix("/tmp/x.sock".into())),
            ("unix:///tmp/x.sock", Endpoint::Unix("/tmp/x.sock".into())),
            (
                "unixgram:/tmp/x.sock",
                Endpoint::UnixDatagram("/tmp/x.sock".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Endpoint>().unwrap(), want, "{text}");
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let err = "localhost:abc".parse::<Endpoint>().unwrap_err();
        assert_eq!(err.to_string(), "invalid port 'abc' in 'localhost:abc'");
        let err = "localhost:70000".parse::<Endpoint>().unwrap_err();
        assert_eq!(err.to_string(), "invalid port '70000' in 'localhost:70000'");
        assert!(matches!(
            "localhost".parse::<Endpoint>(),
            Err(EndpointError::MissingPort(_))
        ));
        assert!(matches!(
            "::1:80".parse::<Endpoint>(),
            Err(EndpointError::UnbracketedV6(_))
        ));
        assert!(matches!(
            "http://x:1".parse::<Endpoint>(),
            Err(EndpointError::BadScheme { .. })
        ));
        assert!(matches!(
            "[::1:80".parse::<Endpoint>(),
            Err(EndpointError::BadBracket(_))
        ));
        let long = format!("unix:/{}", "a".repeat(200));
        assert!(matches!(
            long.parse::<Endpoint>(),
            Err(EndpointError::PathTooLong { .. })
        ));
    }

    #[test]
    fn displays_round_trip() {
        for text in [
            "tcp://127.0.0.1:80",
            "udp://[::1]:9",
            "unix:/tmp/a.sock",
            "tcp://localhost:1",
            "tls://localhost:443",
            "ws://localhost:80/",
            "wss://[::1]:8443/chat?room=a",
        ] {
            assert_eq!(text.parse::<Endpoint>().unwrap().to_string(), text);
        }
        // Found by the fuzzer: a path starting with // lost a slash, and
        // a bracket inside brackets printed as something else.
        assert!("[[1]:1".parse::<Endpoint>().is_err());
        assert!("a]:1".parse::<Endpoint>().is_err());
        for text in ["unix:////tmp/", "unix://x"] {
            let ep: Endpoint = text.parse().unwrap();
            assert_eq!(ep.to_string().parse::<Endpoint>().unwrap(), ep, "{text}");
        }
    }

    #[test]
    fn websocket_urls_take_default_ports_and_paths() {
        let ep: Endpoint = "ws://example.com".parse().unwrap();
        assert_eq!(ep.to_string(), "ws://example.com:80/");
        assert_eq!(ep.transport(), Transport::Tcp);
        let ep: Endpoint = "wss://[::1]/ws".parse().unwrap();
        assert_eq!((ep.is_tls(), ep.websocket()), (true, Some("/ws")));
        assert_eq!(ep.authority(), "[::1]:443");
        let ep: Endpoint = "ws://:8088?x=1".parse().unwrap();
        assert_eq!(ep.to_string(), "ws://127.0.0.1:8088/?x=1");
        assert!("ws://h:1/a b".parse::<Endpoint>().is_err());
        assert!("ws:///x".parse::<Endpoint>().is_err());
        assert_eq!(ep.without_websocket().to_string(), "tcp://127.0.0.1:8088");
    }

    #[test]
    fn udp_flag_turns_plain_endpoints_into_udp() {
        let ep: Endpoint = ":9".parse().unwrap();
        assert_eq!(ep.with_udp_flag(true).unwrap().transport(), Transport::Udp);
        let ep: Endpoint = "tcp://:9".parse().unwrap();
        assert!(ep.with_udp_flag(true).is_err());
        let ep: Endpoint = "unix:/x".parse().unwrap();
        assert!(ep.with_udp_flag(true).is_err());
    }

    #[test]
    fn targets_follow_the_listener_unless_they_name_a_scheme() {
        let plain: Endpoint = ":9".parse().unwrap();
        assert_eq!(plain.following(true).transport(), Transport::Udp);
        let tcp: Endpoint = "tcp://:9".parse().unwrap();
        assert_eq!(tcp.following(true).transport(), Transport::Tcp);
        let tcp: Endpoint = "tcp://:9".parse().unwrap();
        assert!(tcp.udp_unless(false).unwrap().transport() == Transport::Tcp);
        let plain: Endpoint = "9".parse().unwrap();
        assert!(plain.udp_unless(false).unwrap().transport() == Transport::Udp);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        let host = prop_oneof![
            "[a-z][a-z0-9.-]{0,20}",
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
        ];
        let path = prop_oneof![Just(None), "/[a-zA-Z0-9._/?=&-]{0,30}".prop_map(Some)];
        prop_oneof![
            (host, any::<u16>(), 0..5u8, path).prop_map(|(host, port, kind, path)| {
                Endpoint::Inet {
                    udp: kind == 1,
                    host,
                    port,
                    scheme: true,
                    tls: kind == 2 || kind == 4,
                    ws: (kind >= 3).then(|| path.unwrap_or_else(|| "/".into())),
                }
            }),
            "/[a-zA-Z0-9._/-]{1,60}".prop_map(|p| Endpoint::Unix(PathBuf::from(p))),
            "/[a-zA-Z0-9._/-]{1,60}".prop_map(|p| Endpoint::UnixDatagram(PathBuf::from(p))),
        ]
    }

    proptest! {
        #[test]
        fn every_endpoint_prints_as_text_that_parses_back(ep in endpoint()) {
            let shown = ep.to_string();
            prop_assert_eq!(shown.parse::<Endpoint>().unwrap(), ep);
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,40}") {
            if let Ok(ep) = text.parse::<Endpoint>() {
                prop_assert_eq!(ep.to_string().parse::<Endpoint>().unwrap(), ep);
            }
        }
    }
}
