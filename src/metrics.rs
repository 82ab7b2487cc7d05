//! `--metrics EP`: Prometheus text at `/metrics`, scraped over HTTP.
//!
//! Nothing is counted until a metrics endpoint is configured: every hook
//! below is one atomic load when it is off, so the hot paths of a server
//! run without `--metrics` pay nothing for it.

use std::convert::Infallible;
use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Level;

use crate::accept::{self, AcceptOptions};
use crate::endpoint::Endpoint;
use crate::forward::relay::End;
use crate::net::Bound;
use crate::options::OptionError;
use crate::runner::{self, Extra, Service};
use crate::shutdown::Shutdown;

/// The flag, on every long-running server that has something to count.
#[derive(Args, Debug, Clone, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://EP/metrics (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "EP")]
    pub metrics: Option<Endpoint>,
}

impl MetricsArgs {
    /// The metrics endpoint as a service beside the others, if asked for.
    pub fn service(&self) -> Result<Option<Service>, OptionError> {
        let Some(endpoint) = &self.metrics else {
            return Ok(None);
        };
        if endpoint.transport().is_datagram() || endpoint.is_tls() {
            let why = "is plain HTTP over TCP or a Unix socket";
            return Err(OptionError::new("metrics", why));
        }
        Ok(Some(service(endpoint.clone())))
    }
}

/// The endpoint serving `/metrics`. Counting is switched on here, before
/// anything is bound, so that no service's first client goes uncounted.
pub fn service(endpoint: Endpoint) -> Service {
    METRICS.get_or_init(Metrics::new);
    let run = |_: Arc<()>, bound, sd| run_bound(bound, sd);
    let mut service = Service::new("metrics", Vec::new(), Duration::from_secs(1), (), run);
    service.key = "metrics".into();
    service.fingerprint = endpoint.to_string();
    service.also(Extra {
        endpoint,
        scheme: "http",
        start: runner::starter(Arc::new(()), run),
    })
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The metrics, when something scrapes them.
pub fn on() -> Option<&'static Metrics> {
    METRICS.get()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Why {
    service: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorKind {
    service: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    service: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Dropped {
    what: &'static str,
}

type Latency = Family<ServiceLabel, Histogram, fn() -> Histogram>;

/// Every counter, gauge and histogram, registered under `sockit_`.
pub struct Metrics {
    registry: Registry,
    open: Family<ServiceLabel, Gauge>,
    accepted: Family<ServiceLabel, Counter>,
    refused: Family<Why, Counter>,
    errors: Family<ErrorKind, Counter>,
    bytes_in: Family<ServiceLabel, Counter>,
    bytes_out: Family<ServiceLabel, Counter>,
    requests: Family<Status, Counter>,
    request_seconds: Latency,
    connect_seconds: Latency,
    chat_messages: Counter,
    chat_dropped: Family<Dropped, Counter>,
}

/// From 100 µs to about 6.5 s, doubling: a loopback request to a slow
/// target's connect.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

/// Registers `metric` and hands it back, so each is named where it is made.
fn add<M: prometheus_client::registry::Metric + Clone>(
    r: &mut Registry,
    name: &str,
    help: &str,
    metric: M,
) -> M {
    r.register(name, help, metric.clone());
    metric
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sockit");
        let r = &mut registry;
        Metrics {
            open: add(
                r,
                "connections_open",
                "Connections open now",
                Family::default(),
            ),
            accepted: add(r, "connections", "Connections accepted", Family::default()),
            refused: add(
                r,
                "connections_refused",
                "Connections closed unserved: over --max-conns, denied, a bad PROXY header",
                Family::default(),
            ),
            errors: add(
                r,
                "errors",
                "Connections that ended in an error, by kind",
                Family::default(),
            ),
            bytes_in: add(
                r,
                "received_bytes",
                "Bytes relayed from clients (forward, socks)",
                Family::default(),
            ),
            bytes_out: add(
                r,
                "sent_bytes",
                "Bytes sent to clients: relayed (forward, socks) and HTTP bodies",
                Family::default(),
            ),
            requests: add(
                r,
                "http_requests",
                "HTTP requests answered, by status",
                Family::default(),
            ),
            request_seconds: add(
                r,
                "http_request_duration_seconds",
                "Time from an HTTP request's head to its response's head",
                Family::new_with_constructor(seconds),
            ),
            connect_seconds: add(
                r,
                "connect_duration_seconds",
                "Time to reach a relay's target",
                Family::new_with_constructor(seconds),
            ),
            chat_messages: add(
                r,
                "chat_messages",
                "Chat lines said by this server's clients",
                Counter::default(),
            ),
            chat_dropped: add(
                r,
                "chat_dropped",
                "Chat clients dropped for falling behind, and cluster events dropped toward a stalled Redis",
                Family::default(),
            ),
            registry,
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The HTTP server's request counters. Those by service alone are looked
/// up once; only the status needs a lookup per request.
pub struct HttpCounters {
    metrics: &'static Metrics,
    bytes_out: Counter,
    seconds: Histogram,
}

/// The HTTP server's counters, or none without `--metrics`.
pub fn http() -> Option<&'static HttpCounters> {
    static HTTP: OnceLock<HttpCounters> = OnceLock::new();
    let metrics = on()?;
    Some(HTTP.get_or_init(|| {
        let label = ServiceLabel { service: "http" };
        HttpCounters {
            metrics,
            bytes_out: metrics.bytes_out.get_or_create(&label).clone(),
            seconds: metrics.request_seconds.get_or_create(&label).clone(),
        }
    }))
}

impl HttpCounters {
    /// An answered request: its status, body bytes and time taken.
    pub fn answered(&self, code: u16, sent: u64, took: Duration) {
        let status = Status {
            service: "http",
            code,
        };
        self.metrics.requests.get_or_create(&status).inc();
        self.bytes_out.inc_by(sent);
        self.seconds.observe(took.as_secs_f64());
    }
}

/// A service's connection counters, looked up once for its accept loop
/// rather than once per connection.
pub struct Conns(Option<(Counter, Gauge)>);

impl Conns {
    /// `service`'s counters, or none without `--metrics`.
    pub fn new(service: &'static str) -> Conns {
        Conns(on().map(|m| {
            let label = ServiceLabel { service };
            let accepted = m.accepted.get_or_create(&label).clone();
            (accepted, m.open.get_or_create(&label).clone())
        }))
    }

    /// Counts a connection accepted and open until the guard drops.
    pub fn open(&self) -> Open {
        Open(self.0.as_ref().map(|(accepted, open)| {
            accepted.inc();
            open.inc();
            open.clone()
        }))
    }
}

/// A connection being served, counted open until dropped.
pub struct Open(Option<Gauge>);

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(open) = &self.0 {
            open.dec();
        }
    }
}

/// A connection closed unserved.
pub fn refused(service: &'static str, reason: &'static str) {
    if let Some(m) = on() {
        m.refused.get_or_create(&Why { service, reason }).inc();
    }
}

/// A relayed connection's bytes each way, and its error if it broke.
pub fn relayed(service: &'static str, s: &crate::forward::relay::Summary) {
    if let Some(m) = on() {
        let label = ServiceLabel { service };
        m.bytes_in.get_or_create(&label).inc_by(s.up);
        m.bytes_out.get_or_create(&label).inc_by(s.down);
        match &s.end {
            End::Reset(e) => error(service, e),
            End::Idle => failed(m, service, "idle_timeout"),
            End::Closed => {}
        }
    }
}

/// How long reaching a relay's target took.
pub fn connected(service: &'static str, took: Duration) {
    if let Some(m) = on() {
        m.connect_seconds
            .get_or_create(&ServiceLabel { service })
            .observe(took.as_secs_f64());
    }
}

/// Lines said by one of this server's chat clients.
pub fn chat_said(lines: usize) {
    if let Some(m) = on() {
        m.chat_messages.inc_by(lines as u64);
    }
}

/// `what`: a client that fell behind, or an event toward a stalled Redis.
pub fn chat_dropped(what: &'static str) {
    if let Some(m) = on() {
        m.chat_dropped.get_or_create(&Dropped { what }).inc();
    }
}

/// How a connection ended badly, as a short stable name.
pub fn error(service: &'static str, err: &io::Error) {
    if let Some(m) = on() {
        let kind = match err.kind() {
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "reset",
            io::ErrorKind::BrokenPipe => "broken_pipe",
            io::ErrorKind::UnexpectedEof => "eof",
            io::ErrorKind::TimedOut => "timeout",
            io::ErrorKind::InvalidData => "invalid_data",
            io::ErrorKind::InvalidInput => "invalid_input",
            io::ErrorKind::PermissionDenied => "denied",
            _ => "other",
        };
        failed(m, service, kind);
    }
}

/// An HTTP connection hyper gave up on.
pub fn http_error(service: &'static str, err: &hyper::Error) {
    if let Some(m) = on() {
        let kind = if err.is_parse() || err.is_parse_too_large() {
            "bad_request"
        } else if err.is_timeout() {
            "timeout"
        } else if err.is_incomplete_message() {
            "eof"
        } else {
            "other"
        };
        failed(m, service, kind);
    }
}

fn failed(m: &Metrics, service: &'static str, kind: &'static str) {
    m.errors.get_or_create(&ErrorKind { service, kind }).inc();
}

async fn run_bound(bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let Bound::Stream(listener) = bound else {
        return Err(io::Error::other("metrics are served over a stream socket"));
    };

    let opts = AcceptOptions::new("metrics", 64, Level::DEBUG);
    accept::serve(listener, shutdown, opts, |stream, _| async move {
        let service =
            hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                Ok::<_, Infallible>(answer(&req))
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        if let Err(e) = conn.await {
            tracing::debug!(err = %e, "metrics connection ended");
        }
        Ok(())
    })
    .await
}

fn answer<B>(req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, kind, body) = match (req.method().as_str(), req.uri().path()) {
        ("GET" | "HEAD", "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            on().map(Metrics::text).unwrap_or_default(),
        ),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n".into(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "metrics are at /metrics\n".into(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    resp
}
