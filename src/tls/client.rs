//! The client side: `connect --tls` and a relay's `--tls-connect`.
//! Verified by default against the bundled web roots, the host name
//! included; `--cacert` adds a private CA, `--pin` trusts exactly one
//! certificate, `--insecure` trusts anything and says so.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use super::{DEFAULT_HANDSHAKE_TIMEOUT, describe, fingerprint, parse_pin, read_certs, read_key};
use crate::options::OptionError;
use crate::units::Secs;

/// A `--pin` value: a certificate's SHA-256 fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin(pub [u8; 32]);

impl std::str::FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        parse_pin(s).map(Pin)
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&hex.join(":"))
    }
}

/// What a client trusts and offers.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// A PEM CA (or self-signed certificate) trusted besides the web roots.
    pub cacert: Option<PathBuf>,
    /// Trust exactly this certificate, name and chain unchecked.
    pub pin: Option<Pin>,
    /// Trust anything.
    pub insecure: bool,
    /// The name sent and checked instead of the endpoint's host.
    pub sni: Option<String>,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// A client certificate chain and its key.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// How long the handshake may take.
    pub handshake_timeout: Duration,
}

/// `connect --tls` and its trust flags.
#[derive(Debug, Clone, Args)]
pub struct Tls {
    /// Speak TLS (as a tls:// endpoint does), verifying the server's
    /// certificate and name.
    #[arg(long)]
    pub tls: bool,
    /// Trust this PEM CA (or self-signed certificate) too.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 fingerprint.
    #[arg(long, value_name = "SHA256")]
    pub pin: Option<Pin>,
    /// Do not verify the server at all (anyone on the path can read and
    /// change the session); warns on stderr.
    #[arg(long)]
    pub insecure: bool,
    /// Server name to send and check (default: the endpoint's host).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// Offer this ALPN protocol (repeatable).
    #[arg(long, value_name = "PROTO")]
    pub alpn: Vec<String>,
    /// Present this PEM client certificate (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Give up on a server that has not finished the handshake after this long.
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_HANDSHAKE_TIMEOUT), allow_negative_numbers = true)]
    pub handshake_timeout: Secs,
}

impl Tls {
    /// The client, if TLS is asked for by the flag, a `tls://` endpoint or
    /// any of the flags that only TLS uses.
    pub fn client(&self, tls_endpoint: bool) -> Result<Option<Arc<Client>>, OptionError> {
        let implied = self.cacert.is_some()
            || self.pin.is_some()
            || self.insecure
            || self.sni.is_some()
            || !self.alpn.is_empty()
            || self.cert.is_some();
        if !(self.tls || tls_endpoint || implied) {
            return Ok(None);
        }
        let trust = Trust {
            cacert: self.cacert.clone(),
            pin: self.pin,
            insecure: self.insecure,
            sni: self.sni.clone(),
            alpn: self.alpn.clone(),
            identity: self.cert.clone().zip(self.key.clone()),
            handshake_timeout: self.handshake_timeout.0,
        };
        Client::new(&trust, "").map(Some)
    }
}

/// A relay's `--tls-connect` and its trust flags; in a `[[forward]]` rule,
/// `tls_connect = true` or a `{ cacert, pin, sni, insecure }` table.
#[derive(Debug, Clone, Default, Args)]
pub struct Target {
    /// Speak TLS to the targets, verifying them.
    #[arg(long)]
    pub tls_connect: bool,
    /// Trust this PEM CA for the targets too.
    #[arg(long, value_name = "FILE")]
    pub target_cacert: Option<PathBuf>,
    /// Trust exactly the target certificate with this SHA-256 fingerprint.
    #[arg(long, value_name = "SHA256")]
    pub target_pin: Option<Pin>,
    /// Server name to send to and check against the targets.
    #[arg(long, value_name = "NAME")]
    pub target_sni: Option<String>,
    /// Do not verify the targets (warns).
    #[arg(long)]
    pub target_insecure: bool,
}

/// A `tls_connect` table's keys.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TargetKeys {
    cacert: Option<PathBuf>,
    pin: Option<String>,
    sni: Option<String>,
    insecure: bool,
}

impl Target {
    /// The client for the targets, if `--tls-connect` (or a key of it) is set.
    pub fn client(&self) -> Result<Option<Arc<Client>>, OptionError> {
        let wanted = self.tls_connect
            || self.target_cacert.is_some()
            || self.target_pin.is_some()
            || self.target_sni.is_some()
            || self.target_insecure;
        if !wanted {
            return Ok(None);
        }
        let trust = Trust {
            cacert: self.target_cacert.clone(),
            pin: self.target_pin,
            insecure: self.target_insecure,
            sni: self.target_sni.clone(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            ..Trust::default()
        };
        Client::new(&trust, "target_").map(Some)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let keys = TargetKeys {
            cacert: self.target_cacert.clone(),
            pin: self.target_pin.map(|p| p.to_string()),
            sni: self.target_sni.clone(),
            insecure: self.target_insecure,
        };
        super::as_table(&keys, s)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (on, keys): (bool, TargetKeys) = super::on_or_table(d)?;
        let pin = keys
            .pin
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(serde::de::Error::custom)?;
        Ok(Target {
            tls_connect: on,
            target_cacert: keys.cacert,
            target_pin: pin,
            target_sni: keys.sni,
            target_insecure: keys.insecure,
        })
    }
}

/// A ready client configuration.
#[derive(Debug)]
pub struct Client {
    config: Arc<ClientConfig>,
    sni: Option<String>,
    handshake_timeout: Duration,
}

impl Client {
    /// The configuration `trust` describes; `prefix` names the flags in
    /// errors (`target_` for a relay's).
    pub fn new(trust: &Trust, prefix: &'static str) -> Result<Arc<Client>, OptionError> {
        let key = |name: &'static str| -> &'static str {
            match (prefix, name) {
                ("target_", "cacert") => "target_cacert",
                ("target_", "pin") => "target_pin",
                (_, name) => name,
            }
        };
        if trust.insecure && (trust.pin.is_some() || trust.cacert.is_some()) {
            return Err(OptionError::new(
                key("pin"),
                "and --insecure contradict each other: verify, or do not",
            ));
        }
        let provider = super::provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| OptionError::new("tls", e.to_string()))?;
        let builder = if trust.insecure {
            tracing::warn!(
                "tls verification is off: anyone on the path can read and change this session"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked::new(provider, None)))
        } else if let Some(pin) = trust.pin {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked::new(provider, Some(pin))))
        } else {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            if let Some(ca) = &trust.cacert {
                let certs =
                    read_certs(ca).map_err(|e| OptionError::new(key("cacert"), e.to_string()))?;
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| OptionError::new(key("cacert"), e.to_string()))?;
                }
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match &trust.identity {
            Some((cert, keyfile)) => {
                let certs =
                    read_certs(cert).map_err(|e| OptionError::new("cert", e.to_string()))?;
                let k = read_key(keyfile).map_err(|e| OptionError::new("key", e.to_string()))?;
                builder
                    .with_client_auth_cert(certs, k)
                    .map_err(|e| OptionError::new("key", format!("does not fit --cert: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = trust.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(Arc::new(Client {
            config: Arc::new(config),
            sni: trust.sni.clone(),
            handshake_timeout: trust.handshake_timeout,
        }))
    }

    /// The client side of a handshake with `host` (or `--sni`) over `io`.
    pub async fn connect<S>(&self, host: &str, io: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.sni.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_string()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("'{name}' is not a name TLS can check (see --sni)"),
            )
        })?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls =
            match tokio::time::timeout(self.handshake_timeout, connector.connect(name, io)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return Err(io::Error::new(io::ErrorKind::InvalidData, describe(&e))),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "handshake not finished in {}",
                            humantime::format_duration(self.handshake_timeout)
                        ),
                    ));
                }
            };
        if tracing::enabled!(tracing::Level::DEBUG) {
            let (_, c) = tls.get_ref();
            let lines = super::session_lines(
                c.protocol_version(),
                c.negotiated_cipher_suite(),
                c.alpn_protocol(),
                c.peer_certificates(),
            );
            lines.iter().for_each(|l| tracing::debug!("{l}"));
        }
        Ok(tls)
    }
}

/// A verifier that skips the chain and the name: it takes any certificate
/// (`--insecure`) or only the pinned one, and still checks that the peer
/// holds the certificate's key.
#[derive(Debug)]
struct Unchecked {
    provider: Arc<CryptoProvider>,
    pin: Option<Pin>,
}

impl Unchecked {
    fn new(provider: Arc<CryptoProvider>, pin: Option<Pin>) -> Self {
        Unchecked { provider, pin }
    }
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            Some(Pin(pin)) if Sha256::digest(end_entity.as_ref()).as_slice() != pin => Err(
                rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                    rustls::OtherError(Arc::new(PinMismatch(fingerprint(end_entity)))),
                )),
            ),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server's certificate is not the pinned one.
#[derive(Debug)]
struct PinMismatch(String);

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate {} is not the pinned one",
            self.0
        )
    }
}

impl std::error::Error for PinMismatch {}
