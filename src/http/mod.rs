//! `sockit http serve`: HTTP/1.1 on hyper — a hello-world responder, or a
//! static-file server for a directory (`files`). Every request is logged
//! with the client, method, path, status, bytes and time. `get` is the
//! page fetcher.

pub mod files;
pub mod get;

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
use tokio::time::Instant;
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
use crate::units::{ByteSize, Secs};

/// The body every response carries.
pub type Body = BoxBody<Bytes, io::Error>;

/// The default hello-world body.
pub const DEFAULT_BODY: &str = "Hello World!";

/// Default time a client has to send a request's headers.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Default cap on a request's headers.
pub const DEFAULT_MAX_HEADER: usize = 16 * 1024;

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
    /// Close a client that takes longer than this to send its headers.
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_HEADER_TIMEOUT), allow_negative_numbers = true)]
    pub header_timeout: Secs,
    /// Largest request head (request line and headers) accepted.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_MAX_HEADER))]
    pub max_header: ByteSize,
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
        if self.header_timeout.0.is_zero() {
            return Err(OptionError::new("header_timeout", "must be more than 0"));
        }
        Ok(Config {
            root: self.root.clone(),
            body: self.body.clone(),
            hidden: self.hidden,
            max_conns: self.limits.max_conns()?,
            header_timeout: self.header_timeout.0,
            max_header: self.max_header.0,
            idle_timeout: self.limits.idle(),
        })
    }

    /// The server on `endpoints`, ready for the runner.
    pub fn service(&self, endpoints: Vec<Endpoint>) -> Result<Service, OptionError> {
        let endpoints = stream_only("http", endpoints)?;
        let cfg = self.config()?;
        let drain = self.limits.drain();
        Ok(Service::new("http", endpoints, drain, cfg, run_bound))
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
    /// Connections at once; more are closed at once.
    pub max_conns: usize,
    /// A client that takes longer to send its headers is closed.
    pub header_timeout: Duration,
    /// Largest request head accepted.
    pub max_header: usize,
    /// Close a connection that moves no byte for this long.
    pub idle_timeout: Option<Duration>,
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
        Some(dir) => Content::Files(Arc::new(files::Root::new(dir, cfg.hidden)?)),
        None => Content::Hello(Bytes::from(cfg.body.clone())),
    };
    let opts = AcceptOptions {
        service: "http",
        max_conns: cfg.max_conns,
        level: Level::DEBUG,
    };
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
    let service = hyper::service::service_fn(move |req| {
        let content = content.clone();
        async move { Ok::<_, Infallible>(respond(req, peer, &content).await) }
    });
    let activity = Activity::new();
    let conn = builder.serve_connection(TokioIo::new(Tracked::new(stream, &activity)), service);
    tokio::pin!(conn);
    let served = async {
        tokio::select! {
            res = conn.as_mut() => res,
            () = shutdown.stopping() => {
                // Finish the request in flight, then close instead of
                // waiting for the next one on a keep-alive connection.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
        .or_else(|e| {
            // A client that stalls or sends garbage costs only its
            // connection.
            tracing::debug!(err = %e, "connection ended");
            Ok(())
        })
    };
    // Quiet means no byte either way: an idle keep-alive connection, or a
    // client that stopped reading a response.
    activity.bound(cfg.idle_timeout, served).await
}

/// Answers one request and logs it.
async fn respond(req: Request<Incoming>, peer: PeerAddr, content: &Content) -> Response<Body> {
    let started = Instant::now();
    if tracing::enabled!(Level::DEBUG) {
        for (name, value) in req.headers() {
            tracing::debug!(
                "{peer} > {name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            );
        }
    }
    let resp = match content {
        Content::Files(root) => files::serve(root, &req).await,
        Content::Hello(body) => hello(req.method(), body),
    };
    // No strings are built for a line nobody will see (`-q`).
    if tracing::enabled!(Level::INFO) {
        let bytes = match resp.headers().get(header::CONTENT_LENGTH) {
            Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            None => hyper::body::Body::size_hint(resp.body())
                .exact()
                .map_or_else(|| "-".into(), |n| n.to_string()),
        };
        tracing::info!(
            "{peer} \"{} {}\" {} {bytes} {:.3} ms",
            req.method(),
            req.uri().path(),
            resp.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    resp
}

fn hello(method: &Method, body: &Bytes) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return status_page(StatusCode::METHOD_NOT_ALLOWED);
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
