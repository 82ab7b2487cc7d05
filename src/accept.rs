//! The accept loop every stream server shares: a connection cap, a span per
//! client, back-off on accept errors, and per-connection error isolation.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tracing::{Instrument, Level};

use crate::metrics;
use crate::net::{Listener, PeerAddr, Stream};
use crate::shutdown::Shutdown;
use crate::tls;

/// Connections a server takes at once unless told otherwise: far above what
/// tests and benchmarks use, low enough to stay within the raised fd limit.
pub const DEFAULT_MAX_CONNS: usize = 16_384;

const BACKOFF_START: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// How a server's accept loop behaves.
#[derive(Debug, Clone)]
pub struct AcceptOptions {
    /// Service name used in log spans.
    pub service: &'static str,
    /// Clients beyond this many at once are closed at once.
    pub max_conns: usize,
    /// Log level for "accepted"/"closed" lines (info for netcat, debug for
    /// services under load).
    pub level: Level,
    /// Terminate TLS before the handler sees the connection: it gets the
    /// plaintext side (see [`tls::server::Server::terminate`]).
    pub tls: Option<Arc<tls::server::Server>>,
}

impl AcceptOptions {
    /// A plaintext service's accept loop.
    pub fn new(service: &'static str, max_conns: usize, level: Level) -> Self {
        AcceptOptions {
            service,
            max_conns,
            level,
            tls: None,
        }
    }
}

/// Accepts until shutdown, running `handler` in its own task per client.
/// Errors from one connection are logged in its span and go no further.
pub async fn serve<H, Fut>(
    listener: Listener,
    shutdown: Shutdown,
    opts: AcceptOptions,
    handler: H,
) -> io::Result<()>
where
    H: Fn(Stream, PeerAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(opts.max_conns));
    let conns = metrics::Conns::new(opts.service);
    let handler = Arc::new(handler);
    let mut backoff = BACKOFF_START;
    loop {
        let accepted = tokio::select! {
            res = listener.accept() => res,
            () = shutdown.stopping() => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => {
                backoff = BACKOFF_START;
                conn
            }
            Err(err) => {
                // EMFILE and friends are transient: wait for clients to leave
                // instead of exiting or spinning.
                tracing::warn!(service = opts.service, %err, "accept failed, retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.stopping() => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(service = opts.service, %peer, max_conns = opts.max_conns,
                "connection limit reached, closing new client");
            metrics::refused(opts.service, "max_conns");
            drop(stream);
            continue;
        };
        let span = tracing::info_span!("conn", service = opts.service, %peer);
        let level = opts.level;
        let handler = handler.clone();
        let tls = opts.tls.clone();
        let (service, open) = (opts.service, conns.open());
        // The handler's future is created inside the task so it is stored
        // once, not also as a capture (see `Shutdown::spawn`).
        shutdown.spawn(move || {
            async move {
                let res = match tls {
                    None => {
                        // Set the connection up (e.g. subscribe to a
                        // broadcast) before announcing it, so whoever reads
                        // the log line can rely on the client being fully
                        // registered.
                        let conn = handler(stream, peer);
                        log_at(level, "connection accepted");
                        conn.await
                    }
                    // Boxed: the handshake and the pump are kilobytes of
                    // state that would otherwise size every plaintext
                    // connection's task too.
                    Some(tls) => Box::pin(terminated(&tls, stream, peer, level, &*handler)).await,
                };
                match res {
                    Ok(()) => log_at(level, "connection closed"),
                    Err(err) => {
                        log_conn_error(&err);
                        metrics::error(service, &err);
                    }
                }
                drop((open, permit));
            }
            .instrument(span)
        });
    }
    drop(listener);
    tracing::info!(service = opts.service, "stopped accepting");
    Ok(())
}

/// A TLS connection: the handshake, then the handler on the plaintext side
/// beside the pump that carries its bytes.
async fn terminated<H, Fut>(
    tls: &tls::server::Server,
    stream: Stream,
    peer: PeerAddr,
    level: Level,
    handler: &H,
) -> io::Result<()>
where
    H: Fn(Stream, PeerAddr) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let done = tokio_util::sync::CancellationToken::new();
    let (plain, pump) = tls.terminate(stream, done.clone()).await?;
    let conn = handler(plain, peer);
    log_at(level, "connection accepted");
    let service = async {
        let res = conn.await;
        done.cancel();
        res
    };
    let (res, ()) = tokio::join!(service, pump);
    res
}

fn log_at(level: Level, msg: &str) {
    if level == Level::INFO {
        tracing::info!("{msg}");
    } else {
        tracing::debug!("{msg}");
    }
}

/// Logs how one connection ended badly; resets and broken pipes are the
/// peer's doing and only worth an info line.
pub fn log_conn_error(err: &io::Error) {
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::UnexpectedEof => {
            tracing::info!(%err, "connection ended by peer")
        }
        // An idle timeout is a limit doing its job, not a fault.
        io::ErrorKind::TimedOut => tracing::info!(%err, "connection closed"),
        _ => tracing::warn!(%err, "connection closed with error"),
    }
}
