//! TLS on rustls for every stream service: the option groups a server, a
//! client and a relay's target side flatten (`server`, `client`), and
//! what both sides share: certificate files, fingerprints, the one-line
//! account of a failed handshake, and what `-v` shows of a session.
//!
//! One crypto provider, ring, the one reqwest already brings.

pub mod client;
pub mod server;

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// How long a peer has to finish its handshake unless told otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto every config is built with.
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file, in order (a leaf and its chain).
pub fn read_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, e))
}

fn pem_error(path: &Path, err: rustls::pki_types::pem::Error) -> io::Error {
    use rustls::pki_types::pem::Error;
    match err {
        Error::Io(e) => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        Error::NoItemsFound => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no PEM key in it", path.display()),
        ),
        other => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not PEM: {other:?}", path.display()),
        ),
    }
}

/// A certificate's SHA-256 fingerprint as openssl prints it:
/// `AB:CD:…`, 32 bytes.
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let mut out = String::with_capacity(95);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Parses a fingerprint given to `--pin`: 64 hex digits, with or without
/// colons, in either case, optionally after `sha256:` or `sha256//`.
pub fn parse_pin(text: &str) -> Result<[u8; 32], String> {
    let bad = || format!("invalid pin '{text}' (expected a SHA-256 fingerprint: 64 hex digits)");
    let body = text
        .strip_prefix("sha256:")
        .or_else(|| text.strip_prefix("sha256//"))
        .unwrap_or(text);
    let hex: String = body.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// A failed handshake in one line, in the words a user acts on.
pub fn describe(err: &io::Error) -> String {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return match err.kind() {
            io::ErrorKind::UnexpectedEof => "the peer closed during the handshake".into(),
            io::ErrorKind::TimedOut => err.to_string(),
            _ => crate::error::describe_io(err),
        };
    };
    describe_tls(tls)
}

fn describe_tls(err: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E, InvalidMessage};
    match err {
        E::InvalidCertificate(cert) => match cert {
            C::NotValidForName => "certificate not valid for that name".into(),
            C::NotValidForNameContext {
                expected,
                presented,
            } => {
                let name = match expected {
                    rustls::pki_types::ServerName::DnsName(d) => d.as_ref().to_string(),
                    rustls::pki_types::ServerName::IpAddress(ip) => {
                        std::net::IpAddr::from(*ip).to_string()
                    }
                    other => format!("{other:?}"),
                };
                format!(
                    "certificate not valid for name \"{name}\" (it is for {})",
                    presented.join(", ")
                )
            }
            C::UnknownIssuer => {
                "certificate signed by an unknown issuer (self-signed? try --cacert or --pin)"
                    .into()
            }
            C::Expired | C::ExpiredContext { .. } => "certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate is not valid yet".into(),
            C::BadEncoding => "certificate is malformed".into(),
            C::Other(o) => format!("certificate refused: {o}"),
            other => format!("certificate refused: {other:?}"),
        },
        E::InvalidMessage(InvalidMessage::InvalidContentType)
        | E::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => {
            "the peer does not speak TLS (plaintext or garbage)".into()
        }
        E::InvalidMessage(m) => format!("malformed TLS message: {m:?}"),
        E::AlertReceived(alert) => format!("the peer refused the handshake: {alert:?}"),
        E::NoCertificatesPresented => "no client certificate presented".into(),
        E::PeerIncompatible(p) => format!("no common TLS parameters: {p:?}"),
        other => other.to_string(),
    }
}

/// What `-v` tells of a session: version, cipher suite, ALPN, and the
/// peer's certificate.
pub fn session_lines(
    version: Option<rustls::ProtocolVersion>,
    suite: Option<rustls::SupportedCipherSuite>,
    alpn: Option<&[u8]>,
    peer_certs: Option<&[CertificateDer<'_>]>,
) -> Vec<String> {
    let mut lines = vec![format!(
        "tls {} {} alpn={}",
        version.map_or_else(|| "?".into(), |v| format!("{v:?}")),
        suite.map_or_else(|| "?".into(), |s| format!("{:?}", s.suite())),
        alpn.map_or_else(
            || "none".into(),
            |a| String::from_utf8_lossy(a).into_owned()
        ),
    )];
    if let Some(leaf) = peer_certs.and_then(|c| c.first()) {
        lines.push(certificate_line(leaf));
    }
    lines
}

/// Subject, issuer, expiry and fingerprint of a certificate.
pub fn certificate_line(cert: &[u8]) -> String {
    let fp = fingerprint(cert);
    match x509_parser::parse_x509_certificate(cert) {
        Ok((_, c)) => format!(
            "peer certificate subject \"{}\" issuer \"{}\" expires {} sha256 {fp}",
            c.subject(),
            c.issuer(),
            c.validity().not_after
        ),
        Err(_) => format!("peer certificate (not parsed) sha256 {fp}"),
    }
}

/// A TLS stream whose peer may close without close_notify: that end is
/// read as the end of the stream, with a warning that what came may be
/// truncated, so the bytes already received are kept.
#[derive(Debug)]
pub struct Lenient<S>(pub S);

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Lenient<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                server::truncated(&e);
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Lenient<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A TLS setting in a config file: `tls = true`, or a table of its keys,
/// which turns it on. A visitor rather than an untagged enum, so a wrong
/// key in the table is named in the error.
pub(crate) fn on_or_table<'de, D, T>(d: D) -> Result<(bool, T), D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    struct OnOrTable<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Default> serde::de::Visitor<'de> for OnOrTable<T> {
        type Value = (bool, T);

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("true, false or a table of TLS keys")
        }

        fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok((on, T::default()))
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let keys = T::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            Ok((true, keys))
        }
    }

    d.deserialize_any(OnOrTable(std::marker::PhantomData))
}

/// The other way: the table of keys, so a section's keys can be listed.
pub(crate) fn as_table<S: Serializer, T: Serialize>(keys: &T, s: S) -> Result<S::Ok, S::Error> {
    keys.serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_read_as_openssl_prints_them() {
        let fp = fingerprint(b"hello");
        assert_eq!(fp.len(), 95);
        let pin = parse_pin(&fp).unwrap();
        assert_eq!(parse_pin(&fp.replace(':', "").to_lowercase()).unwrap(), pin);
        assert_eq!(parse_pin(&format!("sha256:{fp}")).unwrap(), pin);
        assert!(parse_pin("abc").is_err());
        assert!(parse_pin(&"zz".repeat(32)).is_err());
    }
}
