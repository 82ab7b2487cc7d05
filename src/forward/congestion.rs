//! Which TCP congestion control the relay's own sockets send with.
//!
//! The relay is the sender on both of its legs. Toward a peer on loopback
//! there is no queue to pace against and no loss, and BBR (a common host
//! default) still paces and caps its window by a bandwidth model that a
//! path with microsecond round trips and scheduler-sized gaps misleads: on
//! a 2-core VM with BBR as the default, one iperf3 stream through the relay
//! ran at 0.7x of a direct connection with the relay's legs on BBR and at
//! 0.95x with them on CUBIC. Legs to other hosts keep the host's
//! choice, since that is where pacing earns its keep.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::str::FromStr;

use crate::net::Stream;

/// Loss-based algorithms tried for loopback legs, best first; `reno` is
/// built into every Linux kernel and always allowed to unprivileged users.
const LOOPBACK_ALGORITHMS: [&str; 2] = ["cubic", "reno"];

/// The kernel's limit on an algorithm's name (TCP_CA_NAME_MAX less NUL).
const MAX_NAME: usize = 15;

/// The `--congestion` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Congestion {
    /// CUBIC (or Reno) toward loopback peers, the host default elsewhere.
    #[default]
    Auto,
    /// The host default everywhere.
    System,
    /// This algorithm on every TCP leg.
    Named(String),
}

impl FromStr for Congestion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Congestion::Auto),
            "system" => Ok(Congestion::System),
            name if !name.is_empty()
                && name.len() <= MAX_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(Congestion::Named(name.to_string()))
            }
            _ => Err(format!(
                "congestion control {s:?}: expected auto, system or an algorithm name such as cubic"
            )),
        }
    }
}

impl TryFrom<String> for Congestion {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Congestion> for String {
    fn from(c: Congestion) -> String {
        c.to_string()
    }
}

impl fmt::Display for Congestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Congestion::Auto => f.write_str("auto"),
            Congestion::System => f.write_str("system"),
            Congestion::Named(n) => f.write_str(n),
        }
    }
}

impl Congestion {
    /// Whether a named algorithm can be used here, tried on a scratch
    /// socket so a typo fails at startup rather than on every connection.
    pub fn check(&self) -> Result<(), String> {
        let Congestion::Named(name) = self else {
            return Ok(());
        };
        // An IPv6-only host has no IPv4 sockets to try it on.
        let probe = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .or_else(|_| socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None))
            .map_err(|e| format!("congestion control {name}: {e}"))?;
        set(&probe, name).map_err(|e| {
            let why = match e.kind() {
                io::ErrorKind::NotFound => "not available in this kernel".to_string(),
                io::ErrorKind::PermissionDenied => {
                    "not allowed (see /proc/sys/net/ipv4/tcp_allowed_congestion_control)".into()
                }
                _ => e.to_string(),
            };
            format!("congestion control {name}: {why}")
        })
    }

    /// Sets the algorithm on one leg of a relay. A failure only leaves the
    /// host default in place, which still relays correctly.
    pub fn apply(&self, leg: &Stream) {
        let Stream::Tcp(tcp) = leg else { return };
        let sock = socket2::SockRef::from(tcp);
        let res = match self {
            Congestion::System => return,
            Congestion::Named(name) => set(&sock, name),
            Congestion::Auto => {
                if !tcp.peer_addr().is_ok_and(|a| on_loopback(a.ip())) {
                    return;
                }
                let mut res = Ok(());
                for name in LOOPBACK_ALGORITHMS {
                    res = set(&sock, name);
                    if res.is_ok() {
                        break;
                    }
                }
                res
            }
        };
        if let Err(e) = res {
            tracing::debug!("congestion control {self} not set: {e}");
        }
    }
}

/// Whether a peer is this host over loopback; a dual-stack listener sees
/// 127.0.0.1 as ::ffff:127.0.0.1.
fn on_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

#[cfg(any(target_os = "linux", target_os = "freebsd"))]
fn set(sock: &socket2::Socket, name: &str) -> io::Result<()> {
    sock.set_tcp_congestion(name.as_bytes())
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
fn set(_sock: &socket2::Socket, _name: &str) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keywords_and_names() {
        assert_eq!("auto".parse(), Ok(Congestion::Auto));
        assert_eq!("system".parse(), Ok(Congestion::System));
        assert_eq!("cubic".parse(), Ok(Congestion::Named("cubic".into())));
        assert!("".parse::<Congestion>().is_err());
        assert!("cu bic".parse::<Congestion>().is_err());
        assert!("a".repeat(16).parse::<Congestion>().is_err());
    }

    #[test]
    fn loopback_includes_ipv4_mapped_addresses() {
        for ip in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
            assert!(on_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "::ffff:10.0.0.1", "2001:db8::1"] {
            assert!(!on_loopback(ip.parse().unwrap()), "{ip}");
        }
    }
}
