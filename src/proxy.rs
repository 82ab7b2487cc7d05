//! `--proxy`: reaching a target through a SOCKS5 proxy or an HTTP proxy's
//! CONNECT method, for connect and forward. Names are resolved here unless
//! `--proxy-dns` (or a `socks5h://` URL, as curl spells it) hands them to
//! the proxy.

use std::fmt;
use std::io;
use std::str::FromStr;

use base64::Engine;
use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::endpoint::Endpoint;
use crate::error::context;
use crate::net::{self, Dial, Stream};
use crate::socks::proto::{self, Target};

/// The longest HTTP proxy response head read before giving up on it.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// `--proxy` and `--proxy-dns`, for connect and forward.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ProxyFlags {
    /// Connect through this proxy: socks5://[USER:PASS@]HOST:PORT, or
    /// http://[USER:PASS@]HOST:PORT for an HTTP proxy's CONNECT.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<Proxy>,
    /// Let the proxy resolve target names (a socks5h:// URL does too).
    #[arg(long, requires = "proxy")]
    pub proxy_dns: bool,
}

impl ProxyFlags {
    /// The proxy to use, if any, with `--proxy-dns` folded in.
    pub fn get(&self) -> Option<Proxy> {
        self.proxy.clone().map(|mut p| {
            p.remote_dns |= self.proxy_dns;
            p
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Socks5,
    Http,
}

/// A proxy as its URL gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: Kind,
    server: Endpoint,
    credentials: Option<(String, String)>,
    /// Send names, not addresses.
    remote_dns: bool,
    /// As written, for display and the config file.
    url: String,
}

impl FromStr for Proxy {
    type Err = String;

    fn from_str(url: &str) -> Result<Proxy, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("'{url}' is not a proxy URL (socks5://HOST:PORT or http://HOST:PORT)")
        })?;
        let (kind, remote_dns) = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => (Kind::Socks5, false),
            "socks5h" => (Kind::Socks5, true),
            "http" => (Kind::Http, false),
            other => {
                return Err(format!(
                    "proxy scheme '{other}' is not socks5, socks5h or http"
                ));
            }
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|c| c.into_owned())
                        .map_err(|_| format!("the credentials in '{url}' are not UTF-8"))
                };
                (Some((decode(user)?, decode(pass)?)), hostport)
            }
            None => (None, rest),
        };
        // curl's default port for every kind of proxy.
        let has_port = match hostport.rfind(']') {
            Some(close) => hostport[close..].contains(':'),
            None => hostport.contains(':'),
        };
        let with_port = if has_port {
            hostport.to_string()
        } else {
            format!("{hostport}:1080")
        };
        let server: Endpoint = format!("tcp://{with_port}")
            .parse()
            .map_err(|e: crate::endpoint::EndpointError| e.to_string())?;
        Ok(Proxy {
            kind,
            server,
            credentials,
            remote_dns,
            url: url.to_string(),
        })
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl Serialize for Proxy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.url)
    }
}

impl<'de> Deserialize<'de> for Proxy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Proxy, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Proxy {
    /// A stream to `target` through the proxy, the proxy reached as `dial`
    /// says; its timeout covers the proxy's handshake too.
    pub async fn connect(&self, target: &Endpoint, dial: &Dial) -> io::Result<Stream> {
        let (Some(host), Endpoint::Inet { port, .. }) = (target.host(), target) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a proxy reaches network targets, not unix sockets",
            ));
        };
        let port = *port;
        let through = async {
            let to = match host.parse() {
                Ok(ip) => Target::Addr(std::net::SocketAddr::new(ip, port)),
                Err(_) if self.remote_dns => Target::Name(host.to_string(), port),
                Err(_) => Target::Addr(dial.addresses(target).await?[0]),
            };
            let mut stream = net::dial(
                &self.server,
                &Dial {
                    timeout: None,
                    ..*dial
                },
            )
            .await
            .map_err(|e| context(e, format!("proxy {}", self.server.authority())))?;
            let creds = self
                .credentials
                .as_ref()
                .map(|(u, p)| (u.as_str(), p.as_str()));
            let handshake = async {
                match self.kind {
                    Kind::Socks5 => proto::client_connect(&mut stream, &to, creds).await,
                    Kind::Http => http_connect(&mut stream, &to, creds).await,
                }
            };
            // A proxy that takes the connection and then says nothing must
            // not hold the client for good when no timeout bounds the whole.
            let limit = dial
                .timeout
                .is_none()
                .then_some(crate::socks::HANDSHAKE_TIMEOUT);
            net::with_timeout(limit, handshake)
                .await
                .map_err(|e| context(e, format!("proxy {} handshake", self.server.authority())))?;
            Ok(stream)
        };
        net::with_timeout(dial.timeout, through).await
    }
}

/// Asks an HTTP proxy for a tunnel. The response is read a byte at a time
/// so that nothing the target sends after it is taken from the stream.
async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    to: &Target,
    credentials: Option<(&str, &str)>,
) -> io::Result<()> {
    let authority = to.to_string();
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, pass)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    s.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_RESPONSE_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the proxy's response head is over 16 KiB",
            ));
        }
        head.push(s.read_u8().await.map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(e.kind(), "the proxy closed before answering CONNECT")
            } else {
                e
            }
        })?);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.lines().next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !version.starts_with("HTTP/1.") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the proxy did not answer in HTTP: '{}'",
                crate::error::one_line(status)
            ),
        ));
    }
    if code.len() == 3 && code.starts_with('2') {
        return Ok(());
    }
    Err(io::Error::new(
        if code == "407" {
            io::ErrorKind::PermissionDenied
        } else {
            io::ErrorKind::Other
        },
        format!("the proxy said: {}", crate::error::one_line(status.trim())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_kind_server_and_credentials() {
        let p: Proxy = "socks5://al%40ice:s3:cr@127.0.0.1:1081".parse().unwrap();
        assert_eq!(p.kind, Kind::Socks5);
        assert_eq!(p.server.authority(), "127.0.0.1:1081");
        assert_eq!(p.credentials, Some(("al@ice".into(), "s3:cr".into())));
        let h: Proxy = "socks5h://[::1]".parse().unwrap();
        assert!(h.remote_dns);
        assert_eq!(h.server.authority(), "[::1]:1080");
        assert_eq!(
            "http://proxy:3128".parse::<Proxy>().unwrap().kind,
            Kind::Http
        );
        for bad in ["proxy:1080", "ftp://x:1", "socks5://host:port"] {
            assert!(bad.parse::<Proxy>().is_err(), "{bad}");
        }
    }
}
