//! The server side: the `--tls` flags, a certificate from files or made
//! on the spot, reloaded on SIGHUP, the handshake with its timeout, and
//! termination for services that speak plaintext on a stream.
//!
//! Services that need the socket itself (chat writes to it from the fan-out,
//! echo peeks before it allocates) are handed one end of a socket pair while
//! a pump moves bytes between the other end and the TLS session; HTTP and
//! the relay read and write the TLS stream directly.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use clap::Args;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use super::{DEFAULT_HANDSHAKE_TIMEOUT, describe, fingerprint, read_certs, read_key};
use crate::net::Stream;
use crate::options::{OptionError, clap_defaults};
use crate::units::Secs;

/// The names a certificate made on the spot is for.
const SELF_SIGNED_FOR: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a service's last words may take to reach a TLS client that
/// has stopped reading.
const FAREWELL: Duration = Duration::from_secs(5);

/// Where a server's certificate comes from, and how long a client has for
/// its handshake: the flags `--tls`, `--tls-accept` and a section's `tls`
/// table share these.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Keys {
    /// PEM certificate chain, leaf first (implies TLS); without it, a fresh
    /// self-signed certificate for localhost, 127.0.0.1 and ::1.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Require client certificates signed by this PEM CA (mutual TLS).
    #[arg(long, value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Close a client that has not finished its TLS handshake after this long.
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_HANDSHAKE_TIMEOUT), allow_negative_numbers = true)]
    pub handshake_timeout: Secs,
}

impl Default for Keys {
    fn default() -> Self {
        clap_defaults()
    }
}

impl Keys {
    fn given(&self) -> bool {
        self.cert.is_some() || self.client_ca.is_some()
    }
}

/// `--tls` on a stream server; in a config section, `tls = true` or a
/// `tls = { cert = "…", key = "…" }` table.
#[derive(Debug, Clone, Default, Args)]
pub struct Tls {
    /// Speak TLS (as a tls:// endpoint does); see --cert.
    #[arg(long)]
    pub tls: bool,
    /// Its certificate and handshake limit.
    #[command(flatten)]
    pub keys: Keys,
}

impl Tls {
    /// The TLS server, if TLS is asked for by the flag, a key file or a
    /// `tls://` endpoint; `alpn` is what it offers.
    pub fn server(
        &self,
        endpoints: &[crate::endpoint::Endpoint],
        alpn: &[&[u8]],
    ) -> Result<Option<Arc<Server>>, OptionError> {
        crate::options::no_websocket("listen", endpoints)?;
        let wanted = self.tls || self.keys.given() || endpoints.iter().any(|e| e.is_tls());
        if !wanted {
            return Ok(None);
        }
        if let Some(udp) = endpoints.iter().find(|e| e.transport().is_datagram()) {
            return Err(OptionError::new(
                "tls",
                format!("is for tcp and unix endpoints, not '{udp}'"),
            ));
        }
        Server::new(&self.keys, alpn).map(Some)
    }
}

impl Serialize for Tls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::as_table(&self.keys, s)
    }
}

impl<'de> Deserialize<'de> for Tls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (tls, keys) = super::on_or_table(d)?;
        Ok(Tls { tls, keys })
    }
}

/// A relay's `--tls-accept`: terminate TLS from clients, as stunnel's server
/// mode does; in a `[[forward]]` rule, `tls_accept = true` or a table of
/// `cert`, `key`, `client_ca`, `handshake_timeout`.
#[derive(Debug, Clone, Default, Args)]
pub struct Accept {
    /// Terminate TLS from clients (see --cert).
    #[arg(long)]
    pub tls_accept: bool,
    /// Its certificate and handshake limit.
    #[command(flatten)]
    pub keys: Keys,
}

impl Accept {
    /// The TLS server for clients, if asked for.
    pub fn server(
        &self,
        listen: &crate::endpoint::Endpoint,
    ) -> Result<Option<Arc<Server>>, OptionError> {
        let as_tls = Tls {
            tls: self.tls_accept,
            keys: self.keys.clone(),
        };
        as_tls
            .server(std::slice::from_ref(listen), &[])
            .map_err(|e| match e.key {
                "tls" => OptionError::new("tls_accept", e.problem),
                _ => e,
            })
    }
}

impl Serialize for Accept {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        super::as_table(&self.keys, s)
    }
}

impl<'de> Deserialize<'de> for Accept {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (tls_accept, keys) = super::on_or_table(d)?;
        Ok(Accept { tls_accept, keys })
    }
}

/// A TLS server's configuration, swapped whole when SIGHUP reloads its
/// files, so a new handshake gets the new certificate and live sessions
/// keep theirs.
#[derive(Debug)]
pub struct Server {
    config: RwLock<Arc<ServerConfig>>,
    keys: Keys,
    alpn: Vec<Vec<u8>>,
    handshake_timeout: Duration,
    fingerprint: RwLock<String>,
}

impl Server {
    /// Loads the certificate and key, or makes a self-signed pair.
    pub fn new(keys: &Keys, alpn: &[&[u8]]) -> Result<Arc<Server>, OptionError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let (config, fp) = build(keys, &alpn)?;
        let server = Arc::new(Server {
            config: RwLock::new(config),
            keys: keys.clone(),
            alpn,
            handshake_timeout: keys.handshake_timeout.0,
            fingerprint: RwLock::new(fp),
        });
        if keys.cert.is_some()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(reload_on_hangup(Arc::downgrade(&server)));
        }
        Ok(server)
    }

    /// The line shown beside `listening on tls://…`, with the certificate's
    /// fingerprint for `--pin`.
    pub fn banner(&self) -> String {
        let fp = self
            .fingerprint
            .read()
            .map(|f| f.clone())
            .unwrap_or_default();
        match &self.keys.cert {
            Some(path) => format!("tls certificate {} sha256 {fp}", path.display()),
            None => format!(
                "tls self-signed certificate for {} sha256 {fp}",
                SELF_SIGNED_FOR.join(", ")
            ),
        }
    }

    fn current(&self) -> Arc<ServerConfig> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on any error the old certificate stays.
    pub fn reload(&self) -> Result<(), OptionError> {
        let (config, fp) = build(&self.keys, &self.alpn)?;
        if let Ok(mut c) = self.config.write() {
            *c = config;
        }
        if let Ok(mut f) = self.fingerprint.write() {
            *f = fp;
        }
        Ok(())
    }

    /// The server side of a handshake on `io`, within the handshake timeout.
    pub async fn accept<S>(&self, io: S) -> io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(io)).await {
            Ok(Ok(tls)) => {
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let (_, c) = tls.get_ref();
                    let mut lines = super::session_lines(
                        c.protocol_version(),
                        c.negotiated_cipher_suite(),
                        c.alpn_protocol(),
                        c.peer_certificates(),
                    );
                    if let Some(sni) = c.server_name() {
                        lines[0].push_str(&format!(" sni={sni}"));
                    }
                    lines.iter().for_each(|l| tracing::debug!("{l}"));
                }
                Ok(tls)
            }
            Ok(Err(e)) => Err(handshake_error(&e)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "tls handshake not finished in {}",
                    humantime::format_duration(self.handshake_timeout)
                ),
            )),
        }
    }

    /// Terminates TLS on `stream` for a service that speaks plaintext:
    /// returns the stream the service gets, and the future that pumps bytes
    /// between it and the TLS session. Run the pump beside the service and
    /// cancel `service_done` once the service is finished.
    pub async fn terminate(
        &self,
        stream: Stream,
        service_done: CancellationToken,
    ) -> io::Result<(Stream, impl Future<Output = ()> + Send + use<>)> {
        let tls = self.accept(stream).await?;
        let (theirs, ours) = tokio::net::UnixStream::pair()?;
        Ok((Stream::Unix(theirs), pump(tls, ours, service_done)))
    }
}

/// The handshake's error as one line, marked so the log says it was TLS.
fn handshake_error(err: &io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("tls handshake failed: {}", describe(err)),
    )
}

fn build(keys: &Keys, alpn: &[Vec<u8>]) -> Result<(Arc<ServerConfig>, String), OptionError> {
    let (certs, key) = match (&keys.cert, &keys.key) {
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert).map_err(|e| OptionError::new("cert", e.to_string()))?;
            let key = read_key(key).map_err(|e| OptionError::new("key", e.to_string()))?;
            (certs, key)
        }
        (Some(_), None) => return Err(OptionError::new("cert", "needs --key too")),
        _ => self_signed().map_err(|e| OptionError::new("tls", e))?,
    };
    let fp = fingerprint(&certs[0]);
    let builder = ServerConfig::builder_with_provider(server_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| OptionError::new("tls", e.to_string()))?;
    let builder = match &keys.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in read_certs(ca).map_err(|e| OptionError::new("client_ca", e.to_string()))? {
                roots
                    .add(cert)
                    .map_err(|e| OptionError::new("client_ca", e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                super::provider(),
            )
            .build()
            .map_err(|e| OptionError::new("client_ca", e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| OptionError::new("key", format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = alpn.to_vec();
    config.ignore_client_order = true;
    Ok((Arc::new(config), fp))
}

/// The provider with AES-128-GCM preferred: as safe as AES-256 for a
/// session's life and about a third cheaper per byte, which is what a
/// terminator spends its core on. Clients usually list AES-256 first, so
/// the server's order decides.
fn server_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| !format!("{:?}", s.suite()).contains("AES_128_GCM"));
    Arc::new(provider)
}

/// A fresh ECDSA P-256 certificate for this machine's loopback names.
fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let names: Vec<String> = SELF_SIGNED_FOR.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sockit self-signed");
    let key_pair = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key_pair).map_err(|e| e.to_string())?;
    let key = PrivatePkcs8KeyDer::from(key_pair.serialize_der());
    Ok((vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key)))
}

/// Reloads the files on every SIGHUP for as long as the server lives.
async fn reload_on_hangup(server: std::sync::Weak<Server>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        let Some(server) = server.upgrade() else {
            return;
        };
        match server.reload() {
            Ok(()) => tracing::info!("{}: reloaded", server.banner()),
            Err(e) => tracing::warn!("tls reload failed, the old certificate stays: {e}"),
        }
    }
}

/// Moves bytes between a TLS session and the service's plaintext stream
/// until both are done, or the service has finished and its last words
/// have gone out (or had `FAREWELL` to).
async fn pump(
    tls: TlsStream<Stream>,
    plain: tokio::net::UnixStream,
    service_done: CancellationToken,
) {
    let (mut tls_rd, mut tls_wr) = tokio::io::split(tls);
    let (mut plain_rd, mut plain_wr) = plain.into_split();
    let up = async {
        if let Err(e) = tokio::io::copy(&mut tls_rd, &mut plain_wr).await {
            truncated(&e);
        }
        // The service sees the client's half-close.
        let _ = plain_wr.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut plain_rd, &mut tls_wr).await;
        // close_notify, then FIN: the client may still send.
        let _ = tls_wr.shutdown().await;
    };
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    let farewell = tokio::time::sleep(Duration::MAX);
    tokio::pin!(farewell);
    let mut armed = false;
    while !(up_done && down_done) {
        tokio::select! {
            () = &mut up, if !up_done => up_done = true,
            () = &mut down, if !down_done => down_done = true,
            () = service_done.cancelled(), if !armed => {
                armed = true;
                farewell.as_mut().reset(tokio::time::Instant::now() + FAREWELL);
            }
            () = &mut farewell, if armed => return,
        }
        if armed && down_done {
            return;
        }
    }
}

/// A read that ended without close_notify: the peer's bytes so far are
/// kept, but it cannot be told from a cut connection.
pub(crate) fn truncated(err: &io::Error) {
    if err.kind() == io::ErrorKind::UnexpectedEof {
        tracing::warn!("tls peer closed without close_notify: what it sent may be truncated");
    } else {
        tracing::debug!(%err, "tls session ended");
    }
}
