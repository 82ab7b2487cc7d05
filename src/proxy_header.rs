//! The PROXY protocol (HAProxy's, versions 1 and 2): the header a relay
//! puts before a connection's bytes so the server behind it sees the real
//! client. `encode` writes one for `--send-proxy`; `read_socket` takes one
//! off an accepted connection for `--accept-proxy` (and `read` off any
//! reader), reading no byte past it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::net::Stream;

/// Version 2's fixed start.
const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Version 1's longest line, CRLF included, as the spec bounds it.
const V1_MAX: usize = 107;

/// The most of version 2's address block and TLVs taken: addresses need 36
/// bytes, and the TLVs senders add (ALPN, authority, TLS facts, unique id)
/// stay well under this.
const V2_MAX: usize = 4096;

/// Which header `--send-proxy` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// A text line.
    V1,
    /// A binary header, which may also carry TLVs.
    V2,
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Version, String> {
        match s {
            "v1" | "1" => Ok(Version::V1),
            "v2" | "2" => Ok(Version::V2),
            other => Err(format!("PROXY protocol version '{other}' is not v1 or v2")),
        }
    }
}

/// The connection a header speaks for: `None` when the sender knew of no
/// client (v1 UNKNOWN, v2 LOCAL, a unix client).
pub type Addresses = Option<(SocketAddr, SocketAddr)>;

/// What was wrong with a received header.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each variant's message says what it is
pub enum HeaderError {
    #[error("no PROXY header (the connection starts {0:?})")]
    Missing(String),
    #[error("malformed PROXY v1 line: {0}")]
    V1(&'static str),
    #[error("malformed PROXY v2 header: {0}")]
    V2(&'static str),
    #[error("PROXY v2 header of {0} bytes is over the {V2_MAX}-byte limit")]
    TooLong(usize),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The header for a connection from `client` to `server`.
pub fn encode(version: Version, addrs: Addresses) -> Vec<u8> {
    // Both ends in one family: an IPv4 client on a dual-stack listener is
    // ::ffff:a.b.c.d on one side and a.b.c.d on the other.
    let addrs = addrs.map(|(c, s)| unify(c, s));
    match version {
        Version::V1 => match addrs {
            None => b"PROXY UNKNOWN\r\n".to_vec(),
            Some((c, s)) => {
                let family = if c.is_ipv4() { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {family} {} {} {} {}\r\n",
                    c.ip(),
                    s.ip(),
                    c.port(),
                    s.port()
                )
                .into_bytes()
            }
        },
        Version::V2 => {
            let mut out = SIGNATURE.to_vec();
            match addrs {
                None => {
                    // LOCAL: the receiver uses the connection's own ends.
                    out.extend_from_slice(&[0x20, 0x00, 0, 0]);
                }
                Some((c, s)) => {
                    let mut block = Vec::with_capacity(36);
                    match (c.ip(), s.ip()) {
                        (IpAddr::V4(ci), IpAddr::V4(si)) => {
                            out.push(0x21);
                            out.push(0x11);
                            block.extend_from_slice(&ci.octets());
                            block.extend_from_slice(&si.octets());
                        }
                        (ci, si) => {
                            out.push(0x21);
                            out.push(0x21);
                            block.extend_from_slice(&v6(ci).octets());
                            block.extend_from_slice(&v6(si).octets());
                        }
                    }
                    block.extend_from_slice(&c.port().to_be_bytes());
                    block.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&(block.len() as u16).to_be_bytes());
                    out.extend_from_slice(&block);
                }
            }
            out
        }
    }
}

fn unify(c: SocketAddr, s: SocketAddr) -> (SocketAddr, SocketAddr) {
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (c, s) = (canon(c), canon(s));
    if c.is_ipv4() == s.is_ipv4() {
        return (c, s);
    }
    let mapped = |a: SocketAddr| SocketAddr::new(IpAddr::V6(v6(a.ip())), a.port());
    (mapped(c), mapped(s))
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Reads one header of either version from the start of a connection.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<Addresses, HeaderError> {
    let mut start = [0u8; 5];
    r.read_exact(&mut start).await?;
    if &start == b"PROXY" {
        return read_v1(r).await;
    }
    if start == SIGNATURE[..5] {
        return read_v2(r).await;
    }
    Err(HeaderError::Missing(
        String::from_utf8_lossy(&start).into_owned(),
    ))
}

/// Takes one header off an accepted socket. A v1 line is peeked at until
/// its CRLF is in, then read in one call, where a reader without peek must
/// take it a byte at a time (45 calls for a typical line).
pub async fn read_socket(s: &mut Stream) -> Result<Addresses, HeaderError> {
    let mut line = [0u8; V1_MAX];
    let mut seen = 0;
    loop {
        let before = seen;
        seen = s.peek_more(&mut line, seen).await?;
        if seen > 0 && seen == before {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let head = &line[..seen.min(5)];
        // Version 2 takes three exact reads anyway; a connection that
        // closes or starts otherwise is told apart there.
        if seen == 0 || !b"PROXY".starts_with(head) {
            return read(s).await;
        }
        if let Some(end) = line[..seen].windows(2).position(|w| w == b"\r\n") {
            s.read_exact(&mut line[..end + 2]).await?;
            return parse_v1(&line[..end]);
        }
        if seen == V1_MAX {
            return Err(HeaderError::V1("longer than 107 bytes"));
        }
    }
}

/// The rest of a v1 line after `PROXY`, a byte at a time: the client's
/// data follows it at once.
async fn read_v1<R: AsyncRead + Unpin>(r: &mut R) -> Result<Addresses, HeaderError> {
    let mut line = b"PROXY".to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(HeaderError::V1("longer than 107 bytes"));
        }
        line.push(r.read_u8().await?);
    }
    parse_v1(&line[..line.len() - 2])
}

/// A v1 line without its CRLF.
pub fn parse_v1(line: &[u8]) -> Result<Addresses, HeaderError> {
    let text = std::str::from_utf8(line).map_err(|_| HeaderError::V1("not ASCII"))?;
    let fields: Vec<&str> = text.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, HeaderError> {
                let ip: IpAddr = s.parse().map_err(|_| HeaderError::V1("bad address"))?;
                if ip.is_ipv4() != (*family == "TCP4") {
                    return Err(HeaderError::V1("address of the wrong family"));
                }
                Ok(ip)
            };
            let port = |s: &str| -> Result<u16, HeaderError> {
                // Digits only: no sign, no leading zero but for 0 itself.
                if s.is_empty()
                    || !s.bytes().all(|b| b.is_ascii_digit())
                    || (s.len() > 1 && s.starts_with('0'))
                {
                    return Err(HeaderError::V1("bad port"));
                }
                s.parse().map_err(|_| HeaderError::V1("bad port"))
            };
            Ok(Some((
                SocketAddr::new(ip(src)?, port(sport)?),
                SocketAddr::new(ip(dst)?, port(dport)?),
            )))
        }
        _ => Err(HeaderError::V1(
            "expected PROXY TCP4|TCP6 SRC DST SPORT DPORT",
        )),
    }
}

async fn read_v2<R: AsyncRead + Unpin>(r: &mut R) -> Result<Addresses, HeaderError> {
    let mut rest = [0u8; 11];
    r.read_exact(&mut rest).await?;
    if rest[..7] != SIGNATURE[5..] {
        return Err(HeaderError::V2("bad signature"));
    }
    let (ver_cmd, family) = (rest[7], rest[8]);
    let len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
    if len > V2_MAX {
        return Err(HeaderError::TooLong(len));
    }
    let mut block = vec![0u8; len];
    r.read_exact(&mut block).await?;
    parse_v2(ver_cmd, family, &block)
}

/// A v2 header's command, family and address block (TLVs are skipped).
pub fn parse_v2(ver_cmd: u8, family: u8, block: &[u8]) -> Result<Addresses, HeaderError> {
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError::V2("version is not 2"));
    }
    match ver_cmd & 0x0f {
        0 => return Ok(None),
        1 => {}
        _ => return Err(HeaderError::V2("unknown command")),
    }
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    match family {
        // TCP or UDP over IPv4.
        0x11 | 0x12 => {
            let b = block
                .get(..12)
                .ok_or(HeaderError::V2("address block too short"))?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]));
            Ok(Some((
                SocketAddr::new(ip(0), port(&b[8..])),
                SocketAddr::new(ip(4), port(&b[10..])),
            )))
        }
        0x21 | 0x22 => {
            let b = block
                .get(..36)
                .ok_or(HeaderError::V2("address block too short"))?;
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            Ok(Some((
                SocketAddr::new(ip(0), port(&b[32..])),
                SocketAddr::new(ip(16), port(&b[34..])),
            )))
        }
        // UNSPEC, or unix sockets: no address the relay can use.
        0x00 | 0x31 | 0x32 => Ok(None),
        _ => Err(HeaderError::V2("unknown address family")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(c: &str, s: &str) -> Addresses {
        Some((c.parse().unwrap(), s.parse().unwrap()))
    }

    #[tokio::test]
    async fn both_versions_round_trip_and_leave_the_data() {
        for version in [Version::V1, Version::V2] {
            for addrs in [
                pair("192.0.2.1:5000", "10.0.0.1:80"),
                pair("[2001:db8::1]:5000", "[::1]:443"),
                None,
            ] {
                let mut wire = encode(version, addrs);
                wire.extend_from_slice(b"data");
                let mut r = &wire[..];
                assert_eq!(read(&mut r).await.unwrap(), addrs, "{version:?}");
                assert_eq!(r, b"data");
            }
        }
    }

    /// A connected pair over loopback TCP: (client, server side).
    async fn tcp_pair() -> (tokio::net::TcpStream, Stream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(l.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, l.accept());
        (client.unwrap(), Stream::Tcp(accepted.unwrap().0))
    }

    /// Sends `wire` and closes; returns the header taken off the far end
    /// and every byte after it.
    async fn deliver(
        client: &mut (impl tokio::io::AsyncWrite + Unpin),
        server: &mut Stream,
        wire: &[u8],
    ) -> (Addresses, Vec<u8>) {
        use tokio::io::AsyncWriteExt;
        client.write_all(wire).await.unwrap();
        client.shutdown().await.unwrap();
        let got = read_socket(server).await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        (got, rest)
    }

    #[tokio::test]
    async fn a_socket_header_split_in_two_is_taken_whole_and_no_more() {
        use tokio::io::AsyncWriteExt;
        let (mut client, mut server) = tcp_pair().await;
        let first = b"PROXY TCP4 192.0.2.1 ";
        client.write_all(first).await.unwrap();
        let mut buf = [0u8; V1_MAX];
        let mut seen = 0;
        while seen < first.len() {
            seen = server.peek_more(&mut buf, seen).await.unwrap();
        }
        // Nothing new has come and the peer is open: the peek waits rather
        // than answering with the same bytes again.
        let again = server.peek_more(&mut buf, seen);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), again).await;
        assert!(waited.is_err(), "{waited:?}");
        let got = deliver(&mut client, &mut server, b"10.0.0.1 5000 80\r\nhello").await;
        assert_eq!(
            got,
            (pair("192.0.2.1:5000", "10.0.0.1:80"), b"hello".to_vec())
        );
    }

    #[tokio::test]
    async fn a_socket_that_is_not_a_v1_header_is_refused_or_read_as_v2() {
        use tokio::io::AsyncWriteExt;
        let cases: [(&[u8], &str); 4] = [
            (b"GET / HTTP/1.1\r\n\r\n", "no PROXY header"),
            (&[b'P'; 200], "no PROXY header"),
            (b"PROXY TCP4 192.0.2.1 10.0.0.1 5000 80", "UnexpectedEof"),
            (
                &[b"PROXY ".as_slice(), &[b'1'; 150]].concat(),
                "longer than 107",
            ),
        ];
        for (wire, want) in cases {
            let (mut client, mut server) = tcp_pair().await;
            client.write_all(wire).await.unwrap();
            client.shutdown().await.unwrap();
            let err = read_socket(&mut server).await.unwrap_err();
            let said = format!("{err} {err:?}");
            assert!(
                said.contains(want),
                "{}: {said}",
                String::from_utf8_lossy(wire)
            );
        }
        let (mut client, mut server) = tcp_pair().await;
        let mut wire = encode(Version::V2, pair("[2001:db8::1]:5000", "[::1]:443"));
        wire.extend_from_slice(b"data");
        let got = deliver(&mut client, &mut server, &wire).await;
        assert_eq!(
            got,
            (pair("[2001:db8::1]:5000", "[::1]:443"), b"data".to_vec())
        );
    }

    #[tokio::test]
    async fn a_unix_socket_header_is_peeked_too() {
        let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
        let mut server = Stream::Unix(server);
        let wire = b"PROXY TCP6 2001:db8::1 ::1 5000 443\r\nbytes";
        let got = deliver(&mut client, &mut server, wire).await;
        assert_eq!(
            got,
            (pair("[2001:db8::1]:5000", "[::1]:443"), b"bytes".to_vec())
        );
    }

    #[test]
    fn the_spec_examples_parse_and_bad_lines_do_not() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443").unwrap(),
            pair("192.168.0.1:56324", "192.168.0.11:443")
        );
        for bad in [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324"[..],
            b"PROXY TCP4 ::1 ::1 1 2",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 70000",
            b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2",
        ] {
            assert!(parse_v1(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_mixed_family_pair_is_sent_as_ipv6() {
        let wire = encode(Version::V1, pair("127.0.0.1:1", "[::1]:2"));
        assert_eq!(wire, b"PROXY TCP6 ::ffff:127.0.0.1 ::1 1 2\r\n");
    }
}
