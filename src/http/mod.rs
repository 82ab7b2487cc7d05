//! `sockit http serve`: HTTP/1.1 on hyper — a hello-world responder, or a
//! static-file server for a directory (`files`). Every request is logged
//! with the client, method, path, status, bytes and time. `get` is the
//! page fetcher.

mod arrival;
pub mod files;
pub mod get;
mod linger;
mod listing;
pub mod upload;

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::Level;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::accept::{self, AcceptOptions};
use crate::endpoint::Endpoint;
use crate::idle::{Activity, Tracked};
use crate::net::{Bound, Listener, PeerAddr, Stream};
use crate::options::{KeepsIdle, Limits, OptionError, clap_defaults, stream_only};
use crate::runner::Service;
use crate::shutdown::Shutdown;
use crate::tls::{self, server::Tls};
use crate::units::{ByteSize, Secs};

/// The body every response carries.
pub type Body = BoxBody<Bytes, io::Error>;

/// Where `http serve` and the suite's `[http]` listen unless told otherwise.
pub fn default_listen() -> Endpoint {
    Endpoint::tcp(([127, 0, 0, 1], 8080).into())
}

/// The default hello-world body.
pub const DEFAULT_BODY: &str = "Hello World!";

/// Default time a client has to send a request's headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on a request's headers.
pub const DEFAULT_MAX_HEADER: usize = 16 * 1024;

/// Default cap on one upload request.
pub const DEFAULT_UPLOAD_MAX: usize = 100 * 1024 * 1024;

/// The HTTP server's options: flags of `sockit http serve`, keys of `[http]`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Directory to serve; without it every request gets --body.
    #[arg(value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The hello-world body.
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_BODY)]
    pub body: String,
    /// Serve and list dotfiles too.
    #[arg(long)]
    pub hidden: bool,
    /// Take files POSTed to a directory (multipart/form-data, as the
    /// listing's form and `curl -F file=@NAME` send them).
    #[arg(long)]
    pub upload: bool,
    /// Largest upload request.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_UPLOAD_MAX))]
    pub upload_max: ByteSize,
    /// Let an upload replace a file of the same name.
    #[arg(long)]
    pub overwrite: bool,
    /// Close a client that takes longer than this to send its headers
    /// (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_HEADER_TIMEOUT), allow_negative_numbers = true)]
    pub header_timeout: Secs,
    /// Largest request head (request line and headers) accepted.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_MAX_HEADER))]
    pub max_header: ByteSize,
    /// `--tls` and its certificate (HTTPS); in a config section, a `tls`
    /// table.
    #[command(flatten)]
    pub tls: Tls,
    /// Server limits; `idle_timeout` closes a connection that moves no byte
    /// either way for that long.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<KeepsIdle>,
}

impl Default for Options {
    fn default() -> Self {
        clap_defaults()
    }
}

impl Options {
    /// The server's config, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        if self.upload && self.root.is_none() {
            return Err(OptionError::new("upload", "needs a DIR to serve"));
        }
        if self.overwrite && !self.upload {
            return Err(OptionError::new("overwrite", "needs --upload"));
        }
        if self.upload_max.0 == 0 {
            return Err(OptionError::new("upload_max", "must be at least 1 byte"));
        }
        let upload = self.upload.then_some(upload::Upload {
            max: self.upload_max.0 as u64,
            overwrite: self.overwrite,
        });
        Ok(Config {
            root: self.root.clone(),
            body: self.body.clone(),
            hidden: self.hidden,
            upload,
            max_conns: self.limits.max_conns()?,
            header_timeout: self.header_timeout.nonzero(),
            max_header: self.max_header.0,
            idle_timeout: self.limits.idle(),
            tls: None,
        })
    }

    /// Its one entry for the runner, whether run alone or in the suite.
    pub fn service(&self, endpoints: Vec<Endpoint>) -> Result<Service, OptionError> {
        let endpoints = stream_only("http", endpoints)?;
        let tls = self.tls.server(&endpoints, &[b"http/1.1"])?;
        let cfg = Config {
            tls: tls.clone(),
            ..self.config()?
        };
        let drain = self.limits.drain();
        Ok(Service::new("http", endpoints, drain, cfg, run_bound).with_tls(tls))
    }
}

/// How the HTTP server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Serve this directory; without it, every request gets `body`.
    pub root: Option<PathBuf>,
    /// The hello-world body.
    pub body: String,
    /// Serve and list dotfiles.
    pub hidden: bool,
    /// Take uploads into the directory.
    pub upload: Option<upload::Upload>,
    /// Connections at once; more are closed at once.
    pub max_conns: usize,
    /// A client that takes longer to send its headers is closed.
    pub header_timeout: Option<Duration>,
    /// Largest request head accepted.
    pub max_header: usize,
    /// Close a connection that moves no byte for this long.
    pub idle_timeout: Option<Duration>,
    /// Speak HTTPS.
    pub tls: Option<Arc<tls::server::Server>>,
}

/// What every request is answered from.
#[derive(Clone)]
enum Content {
    Hello(Bytes),
    Files(Arc<files::Root>),
}

/// Serves HTTP on a bound stream socket until shutdown.
pub async fn run_bound(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    run(cfg, bound.into_stream("http")?, shutdown).await
}

/// Serves HTTP until shutdown.
pub async fn run(cfg: Arc<Config>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    // Prepared once: the hello body is shared, not copied per request, and
    // the root is resolved once for every request's path checks.
    let content = match &cfg.root {
        Some(dir) => Content::Files(Arc::new(files::Root::new(dir, cfg.hidden, cfg.upload)?)),
        None => Content::Hello(Bytes::from(cfg.body.clone())),
    };
    if tracing::enabled!(Level::INFO) || crate::metrics::on().is_some() {
        crate::clock::warm_up();
    }
    let opts = AcceptOptions::new("http", cfg.max_conns, Level::DEBUG);
    let stop = shutdown.clone();
    accept::serve(listener, shutdown, opts, move |stream, peer| {
        let (cfg, content, stop) = (cfg.clone(), content.clone(), stop.clone());
        async move { serve_conn(stream, peer, cfg, content, stop).await }
    })
    .await
}

async fn serve_conn(
    stream: Stream,
    peer: PeerAddr,
    cfg: Arc<Config>,
    content: Content,
    shutdown: Shutdown,
) -> io::Result<()> {
    // A client that has sent nothing yet costs only a small task: hyper's
    // buffers and the connection's state machine (boxed, some 10 KiB) come
    // once its first bytes arrive, which cuts an idle flood's memory by
    // two thirds. The wait counts against the header timeout, or failing
    // that the idle timeout.
    let (quiet, first) = (Activity::new(), cfg.header_timeout.or(cfg.idle_timeout));
    tokio::select! {
        res = quiet.bound(first, stream.wait_for_data()) => res?,
        () = shutdown.stopping() => return Ok(()),
    }
    match &cfg.tls {
        None => Box::pin(serve_io(stream, peer, &cfg, content, shutdown)).await,
        Some(tls) => {
            let stream = tls.accept(stream).await?;
            Box::pin(serve_io(stream, peer, &cfg, content, shutdown)).await
        }
    }
}

/// HTTP/1.1 on a connection, plain or TLS.
async fn serve_io<S>(
    stream: S,
    peer: PeerAddr,
    cfg: &Config,
    content: Content,
    shutdown: Shutdown,
) -> io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (access, metrics) = (tracing::enabled!(Level::INFO), crate::metrics::http());
    let arrived = (access || metrics.is_some()).then(|| Arc::new(arrival::Arrived::default()));
    let stream = linger::Linger::new(stream, arrived.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        // Responses to pipelined requests go out in one write, not one
        // each. hyper does that by copying every body into its own buffer,
        // which pays off for short replies but not for files, whose chunks
        // are better handed to the socket as they are.
        .pipeline_flush(matches!(content, Content::Hello(_)))
        // hyper's floor for its read buffer is 8 KiB.
        .max_buf_size(cfg.max_header.max(8192));
    // Worked out once per connection, not once per request's log line.
    let peer = peer.to_string();
    let conn = Arc::new(PerConn {
        content,
        line: crate::logging::AccessLine::new(&peer),
        peer,
        access,
        arrived,
        headers: tracing::enabled!(Level::DEBUG),
        metrics,
    });
    let service = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(respond(req, &conn).await) }
    });
    let Some(limit) = cfg.idle_timeout else {
        return drive(
            builder.serve_connection(TokioIo::new(stream), service),
            &shutdown,
        )
        .await;
    };
    // Quiet means no byte either way: an idle keep-alive connection, or a
    // client that stopped reading a response. Only then is every read and
    // write timed.
    let activity = Activity::new();
    let io = TokioIo::new(Tracked::new(stream, &activity));
    let conn = drive(builder.serve_connection(io, service), &shutdown);
    activity.bound(Some(limit), conn).await
}

/// Runs one connection until it ends; at shutdown it finishes the request
/// in flight, then closes instead of waiting for the next one.
async fn drive<I, S>(
    conn: hyper::server::conn::http1::Connection<I, S>,
    shutdown: &Shutdown,
) -> io::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(conn);
    let res = tokio::select! {
        res = conn.as_mut() => res,
        () = shutdown.stopping() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    // A client that stalls or sends garbage costs only its connection.
    if let Err(e) = res {
        tracing::debug!(err = %e, "connection ended");
        crate::metrics::http_error("http", &e);
    }
    Ok(())
}

/// What every request on one connection shares.
struct PerConn {
    content: Content,
    /// The peer as the log shows it.
    peer: String,
    /// Its request lines' fixed parts.
    line: crate::logging::AccessLine,
    /// Whether each request gets a log line (not with `-q`).
    access: bool,
    /// When its requests' bytes came, if they are logged or counted.
    arrived: Option<Arc<arrival::Arrived>>,
    /// Whether request headers are logged (`-v`).
    headers: bool,
    /// Where requests are counted, with `--metrics`.
    metrics: Option<&'static crate::metrics::HttpCounters>,
}

/// Answers one request and logs it.
async fn respond(req: Request<Incoming>, conn: &PerConn) -> Response<Body> {
    let started = conn.arrived.as_ref().map(|a| a.tick());
    if conn.headers {
        for (name, value) in req.headers() {
            tracing::debug!(
                "{} > {name}: {}",
                conn.peer,
                String::from_utf8_lossy(value.as_bytes())
            );
        }
    }
    match &conn.content {
        Content::Hello(body) => {
            let resp = hello(req.method(), body);
            if let Some(started) = started {
                finished(conn, req.method(), req.uri().path(), &resp, started);
            }
            resp
        }
        Content::Files(root) => {
            // Kept for the log line: serving may consume the request (an
            // upload). A Uri's clone shares its bytes, so this costs no
            // copy of the path.
            let said = started.map(|_| (req.method().clone(), req.uri().clone()));
            let resp = files::serve(root, req).await;
            if let (Some(started), Some((method, uri))) = (started, said) {
                finished(conn, &method, uri.path(), &resp, started);
            }
            resp
        }
    }
}

/// Logs and counts an answered request.
fn finished(conn: &PerConn, method: &Method, path: &str, resp: &Response<Body>, started: u64) {
    // The body's own size when it knows it: looking up Content-Length
    // costs more. A HEAD answer's empty body falls back to the header.
    let bytes = match hyper::body::Body::size_hint(resp.body()).exact() {
        Some(n) if n > 0 => Some(n),
        hint => resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .or(hint),
    };
    let status = resp.status().as_u16();
    // One clock read serves the time taken, the line's stamp and the
    // metric.
    let now = crate::clock::tick();
    let took = crate::clock::between(started, now);
    if conn.access {
        let answered = crate::logging::Answered {
            method: method.as_str(),
            path,
            status,
            bytes,
            took,
        };
        conn.line.write(&answered, now);
    }
    if let Some(m) = conn.metrics {
        m.answered(status, bytes.unwrap_or(0), took);
    }
}

fn hello(method: &Method, body: &Bytes) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET, HEAD");
    }
    let mut resp = Response::new(full(body.clone()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A whole body held in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

/// 405, with the methods that are (RFC 9110 15.5.6 requires the list).
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut resp = status_page(StatusCode::METHOD_NOT_ALLOWED);
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A short plain-text page for an error status.
pub fn status_page(status: StatusCode) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut resp = Response::new(full(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
