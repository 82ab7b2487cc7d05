//! SOCKS5 on the wire (RFC 1928, and RFC 1929's username/password), both
//! sides: what a server reads and answers, and what a client sends. Every
//! field has a one-byte length or a fixed size, so no read is unbounded.
// The wire's numbers and fields go by the names the RFCs give them.
#![allow(missing_docs)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const VERSION: u8 = 5;
/// The username/password sub-negotiation's own version byte.
pub const AUTH_VERSION: u8 = 1;

/// Authentication methods.
pub const NO_AUTH: u8 = 0x00;
pub const USER_PASS: u8 = 0x02;
pub const NO_ACCEPTABLE: u8 = 0xff;

/// Commands.
pub const CONNECT: u8 = 1;
pub const BIND: u8 = 2;
pub const UDP_ASSOCIATE: u8 = 3;

const ATYP_V4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_V6: u8 = 4;

/// Reply codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    Succeeded = 0,
    GeneralFailure = 1,
    NotAllowed = 2,
    NetworkUnreachable = 3,
    HostUnreachable = 4,
    ConnectionRefused = 5,
    TtlExpired = 6,
    CommandNotSupported = 7,
    AddressTypeNotSupported = 8,
}

impl Reply {
    /// The reply for a failed connect to the target.
    pub fn for_error(err: &io::Error) -> Reply {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => Reply::ConnectionRefused,
            io::ErrorKind::TimedOut => Reply::TtlExpired,
            io::ErrorKind::NetworkUnreachable => Reply::NetworkUnreachable,
            io::ErrorKind::HostUnreachable | io::ErrorKind::NotFound => Reply::HostUnreachable,
            _ => Reply::GeneralFailure,
        }
    }

    fn from_code(code: u8) -> Option<Reply> {
        use Reply::*;
        [
            Succeeded,
            GeneralFailure,
            NotAllowed,
            NetworkUnreachable,
            HostUnreachable,
            ConnectionRefused,
            TtlExpired,
            CommandNotSupported,
            AddressTypeNotSupported,
        ]
        .into_iter()
        .find(|r| *r as u8 == code)
    }

    /// As a client reports a proxy's refusal.
    pub fn describe(self) -> &'static str {
        match self {
            Reply::Succeeded => "succeeded",
            Reply::GeneralFailure => "general failure",
            Reply::NotAllowed => "not allowed by the proxy's rules",
            Reply::NetworkUnreachable => "network unreachable",
            Reply::HostUnreachable => "host unreachable",
            Reply::ConnectionRefused => "connection refused",
            Reply::TtlExpired => "timed out",
            Reply::CommandNotSupported => "command not supported",
            Reply::AddressTypeNotSupported => "address type not supported",
        }
    }
}

/// Where a request wants to go: an address, or a name for the proxy to
/// resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Addr(SocketAddr),
    Name(String, u16),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Name(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// A malformed or unsupported message, in words for the log.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("not SOCKS5 (version byte {0:#04x})")]
    Version(u8),
    #[error("bad {what} version {got:#04x}")]
    SubVersion { what: &'static str, got: u8 },
    #[error("no authentication method offered")]
    NoMethods,
    #[error("reserved byte is {0:#04x}, not 0")]
    Reserved(u8),
    #[error("address type {0:#04x} is not one SOCKS5 has")]
    AddressType(u8),
    #[error("host name is empty or not text")]
    BadName,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ProtoError {
    /// The reply that refuses a request this malformed, where there is one.
    pub fn reply(&self) -> Option<Reply> {
        match self {
            ProtoError::AddressType(_) => Some(Reply::AddressTypeNotSupported),
            // No host goes by that name.
            ProtoError::BadName => Some(Reply::HostUnreachable),
            _ => None,
        }
    }

    /// An end of stream in the middle of a message reads as the peer
    /// having gone, which it has.
    pub fn is_eof(&self) -> bool {
        matches!(self, ProtoError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof)
    }
}

async fn byte<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<u8> {
    r.read_u8().await
}

/// A one-byte length, then that many bytes.
async fn short_field<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let len = byte(r).await?;
    let mut buf = vec![0; usize::from(len)];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// The client's greeting: the methods it offers.
pub async fn read_greeting<R: AsyncRead + Unpin>(r: &mut R) -> Result<Vec<u8>, ProtoError> {
    let version = byte(r).await?;
    if version != VERSION {
        return Err(ProtoError::Version(version));
    }
    let methods = short_field(r).await?;
    if methods.is_empty() {
        return Err(ProtoError::NoMethods);
    }
    Ok(methods)
}

/// RFC 1929's request: a username and a password, each up to 255 bytes.
pub async fn read_credentials<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<(Vec<u8>, Vec<u8>), ProtoError> {
    let version = byte(r).await?;
    if version != AUTH_VERSION {
        return Err(ProtoError::SubVersion {
            what: "username/password",
            got: version,
        });
    }
    let user = short_field(r).await?;
    let pass = short_field(r).await?;
    Ok((user, pass))
}

/// A request: its command and target.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> Result<(u8, Target), ProtoError> {
    let mut head = [0u8; 3];
    r.read_exact(&mut head).await?;
    let [version, command, reserved] = head;
    if version != VERSION {
        return Err(ProtoError::Version(version));
    }
    if reserved != 0 {
        return Err(ProtoError::Reserved(reserved));
    }
    Ok((command, read_address(r).await?))
}

/// ATYP, the address and the port, as in a request or a reply.
async fn read_address<R: AsyncRead + Unpin>(r: &mut R) -> Result<Target, ProtoError> {
    let kind = byte(r).await?;
    let target = match kind {
        ATYP_V4 => {
            let mut ip = [0u8; 4];
            r.read_exact(&mut ip).await?;
            Target::Addr(SocketAddr::new(
                Ipv4Addr::from(ip).into(),
                r.read_u16().await?,
            ))
        }
        ATYP_V6 => {
            let mut ip = [0u8; 16];
            r.read_exact(&mut ip).await?;
            Target::Addr(SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                r.read_u16().await?,
            ))
        }
        ATYP_DOMAIN => {
            let name = short_field(r).await?;
            let port = r.read_u16().await?;
            let name = String::from_utf8(name).map_err(|_| ProtoError::BadName)?;
            if name.is_empty() || name.contains(|c: char| c.is_control() || c.is_whitespace()) {
                return Err(ProtoError::BadName);
            }
            // A literal sent as a name is an address all the same.
            match name.parse::<IpAddr>() {
                Ok(ip) => Target::Addr(SocketAddr::new(ip, port)),
                Err(_) => Target::Name(name, port),
            }
        }
        other => return Err(ProtoError::AddressType(other)),
    };
    Ok(target)
}

fn put_address(out: &mut Vec<u8>, target: &Target) {
    match target {
        Target::Addr(SocketAddr::V4(a)) => {
            out.push(ATYP_V4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Target::Addr(SocketAddr::V6(a)) => {
            out.push(ATYP_V6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Target::Name(name, port) => {
            out.push(ATYP_DOMAIN);
            // Names are at most 255 bytes; the caller checks.
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&port.to_be_bytes());
        }
    }
}

/// The reply to a request; `bound` is the proxy's side of the new
/// connection, or nothing on failure.
pub fn reply(code: Reply, bound: Option<SocketAddr>) -> Vec<u8> {
    let mut out = vec![VERSION, code as u8, 0];
    let bound = bound.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    put_address(&mut out, &Target::Addr(bound));
    out
}

/// The client side: offers `methods`, authenticates if the proxy asks, and
/// asks for a connection to `target`; returns once the proxy has it.
pub async fn client_connect<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    target: &Target,
    credentials: Option<(&str, &str)>,
) -> io::Result<()> {
    let proto = |e: ProtoError| match e {
        ProtoError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    };
    let refused = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    if let Target::Name(name, _) = target
        && name.len() > 255
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a host name longer than 255 bytes cannot go through SOCKS5",
        ));
    }
    let offer: &[u8] = if credentials.is_some() {
        &[VERSION, 2, NO_AUTH, USER_PASS]
    } else {
        &[VERSION, 1, NO_AUTH]
    };
    s.write_all(offer).await?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await?;
    if choice[0] != VERSION {
        return Err(proto(ProtoError::Version(choice[0])));
    }
    match (choice[1], credentials) {
        (NO_AUTH, _) => {}
        (USER_PASS, Some((user, pass))) => {
            if user.len() > 255 || pass.len() > 255 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "SOCKS5 usernames and passwords are at most 255 bytes",
                ));
            }
            let mut msg = vec![AUTH_VERSION, user.len() as u8];
            msg.extend_from_slice(user.as_bytes());
            msg.push(pass.len() as u8);
            msg.extend_from_slice(pass.as_bytes());
            s.write_all(&msg).await?;
            let mut status = [0u8; 2];
            s.read_exact(&mut status).await?;
            if status[1] != 0 {
                return Err(refused("the proxy refused the username or password".into()));
            }
        }
        (USER_PASS, None) => {
            return Err(refused(
                "the proxy wants a username and password (user:pass@ in the proxy URL)".into(),
            ));
        }
        _ => return Err(refused("the proxy accepts none of our auth methods".into())),
    }
    let mut msg = vec![VERSION, CONNECT, 0];
    put_address(&mut msg, target);
    s.write_all(&msg).await?;
    let mut head = [0u8; 3];
    s.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(proto(ProtoError::Version(head[0])));
    }
    // The bound address follows even on failure; read it so nothing of
    // the reply is taken for data.
    read_address(s).await.map_err(proto)?;
    match Reply::from_code(head[1]) {
        Some(Reply::Succeeded) => Ok(()),
        Some(r) => Err(io::Error::new(
            match r {
                Reply::ConnectionRefused => io::ErrorKind::ConnectionRefused,
                Reply::TtlExpired => io::ErrorKind::TimedOut,
                _ => io::ErrorKind::Other,
            },
            format!("the proxy says: {}", r.describe()),
        )),
        None => Err(refused(format!("the proxy refused (code {})", head[1]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_parse_each_address_type() {
        let mut v4: &[u8] = &[5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        assert_eq!(
            read_request(&mut v4).await.unwrap(),
            (CONNECT, Target::Addr("127.0.0.1:8080".parse().unwrap()))
        );
        let mut name: &[u8] = b"\x05\x01\x00\x03\x0bexample.org\x00\x50";
        assert_eq!(
            read_request(&mut name).await.unwrap(),
            (CONNECT, Target::Name("example.org".into(), 80))
        );
        let mut bad: &[u8] = &[5, 1, 0, 9, 0];
        assert!(matches!(
            read_request(&mut bad).await,
            Err(ProtoError::AddressType(9))
        ));
        let mut short: &[u8] = &[5, 1, 0, 1, 127];
        assert!(read_request(&mut short).await.unwrap_err().is_eof());
    }

    #[test]
    fn replies_carry_the_bound_address() {
        assert_eq!(
            reply(Reply::Succeeded, Some("10.0.0.1:1080".parse().unwrap())),
            [5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38]
        );
        assert_eq!(
            reply(Reply::ConnectionRefused, None),
            [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]
        );
    }
}
