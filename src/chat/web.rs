//! Chat in a browser: one page compiled into the binary at `/`, and a
//! WebSocket at `/ws` that joins the same rooms as the line-protocol
//! clients. The socket speaks the line protocol, one line per text frame,
//! so any WebSocket client (websocat, a few lines of Python) is a chat
//! client too; the page asks for `/tags on` and resumes with `/resume`.
//!
//! hyper serves the page and the upgrade. After it the socket is ours
//! again: tokio-websockets reads the client's frames (masking, fragments,
//! UTF-8, control frames, limits), while lines go out through the same
//! outbox as a TCP client's, framed once per fan-out (see `line`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_websockets::{Limits, ServerBuilder, WebSocketStream};
use tracing::Level;

use super::line::{self, Entry};
use super::outbox::{Behind, Outbox, Wire};
use super::{Chat, UNSENT_LIMIT};
use crate::accept::{self, AcceptOptions};
use crate::endpoint::Endpoint;
use crate::frame::Line;
use crate::idle::Activity;
use crate::net::{Bound, PeerAddr, Stream};
use crate::shutdown::Shutdown;

/// Where `sockit serve` puts the page unless told otherwise.
pub const DEFAULT_WEB: &str = "127.0.0.1:8088";

/// How often a WebSocket client is pinged; one that has sent nothing,
/// not even a pong, for two of these is closed.
pub const DEFAULT_PING: Duration = Duration::from_secs(30);

/// Largest WebSocket message read. Lines in it longer than `--max-line`
/// are refused one by one, as over TCP, and the client stays; a message
/// past this is refused with close code 1009.
const MAX_MESSAGE: usize = 1 << 20;

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/chat.js");
const STYLE: &str = include_str!("web/chat.css");

/// `--web EP`, or in a config file `web = "EP"` or `web = false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebAt {
    /// `web = false`: no page, even in `sockit serve`.
    Off,
    /// The page's endpoint.
    At(Endpoint),
}

impl FromStr for WebAt {
    type Err = crate::endpoint::EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" | "false" => Ok(WebAt::Off),
            _ => s.parse().map(WebAt::At),
        }
    }
}

impl std::fmt::Display for WebAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebAt::Off => f.write_str("off"),
            WebAt::At(ep) => ep.fmt(f),
        }
    }
}

impl Serialize for WebAt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WebAt::Off => s.serialize_bool(false),
            WebAt::At(ep) => s.collect_str(ep),
        }
    }
}

impl<'de> Deserialize<'de> for WebAt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            At(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(false) => Ok(WebAt::Off),
            Raw::Flag(true) => Ok(WebAt::At(default_web())),
            Raw::At(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// [`DEFAULT_WEB`] as an endpoint.
pub fn default_web() -> Endpoint {
    DEFAULT_WEB
        .parse()
        .expect("the default web endpoint parses")
}

/// Serves the page and its WebSocket on one bound socket until shutdown.
pub async fn run_bound(chat: Arc<Chat>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let listener = bound.into_stream("chat --web")?;
    let mut opts = AcceptOptions::new("chat", super::accept_cap(&chat.cfg), Level::DEBUG);
    opts.tls = chat.cfg.tls.clone();
    accept::serve(listener, shutdown, opts, move |stream, peer| {
        let chat = chat.clone();
        async move { serve_conn(stream, peer, chat).await }
    })
    .await
}

/// The socket hyper hands back after an upgrade.
type Io = TokioIo<Stream>;

/// One HTTP connection: pages until a request upgrades it, then that
/// WebSocket's chat session, in the same task (and under the same
/// connection cap).
async fn serve_conn(stream: Stream, peer: PeerAddr, chat: Arc<Chat>) -> io::Result<()> {
    let upgrade: Arc<Mutex<Option<OnUpgrade>>> = Arc::default();
    let service = {
        let (chat, upgrade) = (chat.clone(), upgrade.clone());
        hyper::service::service_fn(move |req| {
            let res = respond(req, &chat.cfg.web_origins, &upgrade);
            async move { Ok::<_, Infallible>(res) }
        })
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(err = %e, "connection ended");
        return Ok(());
    }
    let Some(pending) = crate::sync::lock(&upgrade).take() else {
        return Ok(());
    };
    let upgraded = pending.await.map_err(io::Error::other)?;
    let parts = upgraded
        .downcast::<Io>()
        .map_err(|_| io::Error::other("upgraded connection of an unexpected type"))?;
    serve_ws(parts.io.into_inner(), parts.read_buf, peer, &chat).await
}

fn respond(
    mut req: Request<Incoming>,
    origins: &[String],
    upgrade: &Mutex<Option<OnUpgrade>>,
) -> Response<Full<Bytes>> {
    let file = |kind: &'static str, body: &'static str| {
        let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        // Only the page's own script and style run, whatever a message holds.
        h.insert(
            "content-security-policy",
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:",
            ),
        );
        res
    };
    match req.uri().path() {
        "/" => file("text/html; charset=utf-8", PAGE),
        "/chat.js" => file("text/javascript; charset=utf-8", SCRIPT),
        "/chat.css" => file("text/css; charset=utf-8", STYLE),
        "/ws" => match handshake(&req, origins) {
            Ok(accept) => {
                *crate::sync::lock(upgrade) = Some(hyper::upgrade::on(&mut req));
                let mut res = Response::new(Full::default());
                *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                let h = res.headers_mut();
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
                h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
                h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
                res
            }
            Err((status, why)) => {
                tracing::info!(%why, "websocket refused");
                let mut res = Response::new(Full::new(Bytes::from(format!("{why}\n"))));
                *res.status_mut() = status;
                if status == StatusCode::UPGRADE_REQUIRED {
                    let h = res.headers_mut();
                    h.insert(
                        header::SEC_WEBSOCKET_VERSION,
                        HeaderValue::from_static("13"),
                    );
                }
                res
            }
        },
        _ => {
            let mut res = Response::new(Full::new(Bytes::from_static(b"not found\n")));
            *res.status_mut() = StatusCode::NOT_FOUND;
            res
        }
    }
}

/// Checks an upgrade request (RFC 6455 section 4.2.1) and its Origin;
/// the `Sec-WebSocket-Accept` value, or the status and reason to refuse.
fn handshake(
    req: &Request<Incoming>,
    origins: &[String],
) -> Result<HeaderValue, (StatusCode, String)> {
    let h = req.headers();
    let get = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let has_token = |value: &str, token: &str| {
        value
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if req.method() != hyper::Method::GET
        || !has_token(get(header::UPGRADE), "websocket")
        || !has_token(get(header::CONNECTION), "upgrade")
    {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: GET with Upgrade: websocket".into(),
        ));
    }
    if get(header::SEC_WEBSOCKET_VERSION) != "13" {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken".into(),
        ));
    }
    let key = get(header::SEC_WEBSOCKET_KEY);
    if key.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key".into()));
    }
    if let Some(origin) = h.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, get(header::HOST), origins) {
            return Err((
                StatusCode::FORBIDDEN,
                format!("origin {origin} not allowed (see --web-origin)"),
            ));
        }
    }
    HeaderValue::from_str(&accept_key(key))
        .map_err(|_| (StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key".into()))
}

/// A browser's Origin must be the page's own host unless `--web-origin`
/// lists it (or `*`). Programs send none and are not asked: the check is
/// against other sites' pages using a visitor's browser.
fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority.eq_ignore_ascii_case(host))
}

/// `Sec-WebSocket-Accept` for a key: base64 of SHA-1 of the key and the
/// protocol's fixed GUID.
fn accept_key(key: &str) -> String {
    use base64::Engine;
    const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A WebSocket client's chat session on the upgraded socket; `prefix` is
/// what hyper had read past the request.
async fn serve_ws(stream: Stream, prefix: Bytes, peer: PeerAddr, chat: &Chat) -> io::Result<()> {
    let _ = stream.limit_unsent(UNSENT_LIMIT);
    let stream = Arc::new(stream);
    let out = Arc::new(Outbox::new(
        stream.clone(),
        Wire::WebSocket,
        chat.cfg.outbox_bound(),
    ));
    let io = Socket {
        stream: stream.clone(),
        prefix,
        out: out.clone(),
    };
    let limits = Limits::default().max_payload_len(Some(MAX_MESSAGE));
    let ws = ServerBuilder::new().limits(limits).serve(io);
    let heard = Activity::new();
    let lines = Lines {
        ws,
        pending: VecDeque::new(),
        max_line: chat.cfg.max_line,
        heard: &heard,
        failed: None,
    };
    let pings = pinger(&out, &heard, chat.cfg.web_ping);
    super::session(chat, peer, &stream, &out, lines, pings).await
}

/// Pings every `every`; fails once nothing at all has come back for two.
async fn pinger(out: &Outbox, heard: &Activity, every: Option<Duration>) -> io::Error {
    let Some(every) = every else {
        return std::future::pending().await;
    };
    let mut ping = Vec::new();
    line::frame(&mut ping, line::OP_PING, b"sockit");
    let ping = Entry::raw(ping);
    loop {
        tokio::time::sleep(every).await;
        if heard.is_idle(every * 2) {
            return io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "websocket peer silent for {}, not even a pong",
                    humantime::format_duration(every * 2)
                ),
            );
        }
        if out.push(&ping).is_ok() {
            out.flush();
        }
    }
}

/// The upgraded socket as tokio-websockets sees it: reads come from the
/// socket (after what hyper had already read), and what it writes itself,
/// pongs and close replies, joins the client's outbox whole, so it can
/// never land inside a frame the outbox is part-way through.
struct Socket {
    stream: Arc<Stream>,
    prefix: Bytes,
    out: Arc<Outbox>,
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return Poll::Ready(Ok(()));
        }
        let mut stream: &Stream = &self.stream;
        Pin::new(&mut stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.queue(buf.to_vec()).map(|()| buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // tokio-websockets hands over every frame it has queued in one call.
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        let n = all.len();
        Poll::Ready(self.queue(all).map(|()| n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Socket {
    fn queue(&self, frames: Vec<u8>) -> io::Result<()> {
        if frames.is_empty() {
            return Ok(());
        }
        match self.out.push(&Entry::raw(frames)) {
            Ok(_) => {
                self.out.flush();
                Ok(())
            }
            Err(Behind) => Err(io::Error::other(Behind)),
        }
    }
}

/// The client's messages as lines: each text (or binary) message is one
/// line, or several if it holds line breaks. A protocol error ends the
/// stream with that error once tokio-websockets has queued its close.
struct Lines<'a> {
    ws: WebSocketStream<Socket>,
    pending: VecDeque<Line>,
    max_line: usize,
    /// Touched by every frame, pongs included, for the pinger.
    heard: &'a Activity,
    failed: Option<io::Error>,
}

impl futures_util::Stream for Lines<'_> {
    type Item = io::Result<Line>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(line)));
            }
            match ready!(self.ws.poll_next_unpin(cx)) {
                // The close reply (or the error's close frame) is queued by
                // now: this poll flushed it.
                None => return Poll::Ready(self.failed.take().map(Err)),
                Some(Err(e)) => {
                    self.failed = Some(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("websocket: {e}"),
                    ));
                }
                Some(Ok(msg)) => {
                    self.heard.touch();
                    if msg.is_text() || msg.is_binary() {
                        let payload = Bytes::from(msg.into_payload());
                        self.split_lines(payload);
                    }
                }
            }
        }
    }
}

impl Lines<'_> {
    fn split_lines(&mut self, payload: Bytes) {
        let mut rest = payload;
        loop {
            let end = memchr::memchr(b'\n', &rest);
            let mut line = rest.split_to(end.unwrap_or(rest.len()));
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            self.pending.push_back(if line.len() > self.max_line {
                Line::TooLong
            } else {
                Line::Text(line)
            });
            if end.is_none() {
                return;
            }
            rest.advance(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn origins_must_be_the_pages_own_host_or_listed() {
        let none: &[String] = &[];
        assert!(origin_allowed(
            "http://127.0.0.1:8088",
            "127.0.0.1:8088",
            none
        ));
        assert!(!origin_allowed(
            "http://evil.example",
            "127.0.0.1:8088",
            none
        ));
        assert!(!origin_allowed("null", "127.0.0.1:8088", none));
        let listed = ["https://chat.example".to_string()];
        assert!(origin_allowed(
            "https://chat.example",
            "127.0.0.1:8088",
            &listed
        ));
        assert!(origin_allowed("http://x", "y", &["*".to_string()]));
    }

    #[test]
    fn web_setting_reads_an_endpoint_or_off() {
        assert_eq!("off".parse::<WebAt>().unwrap(), WebAt::Off);
        let at: WebAt = "127.0.0.1:0".parse().unwrap();
        assert!(matches!(at, WebAt::At(_)));
        let t: toml::Table = toml::from_str("a = false\nb = true\nc = \":9\"").unwrap();
        let read = |k: &str| WebAt::deserialize(t[k].clone()).unwrap();
        assert_eq!(read("a"), WebAt::Off);
        assert_eq!(read("b"), WebAt::At(default_web()));
        assert!(matches!(read("c"), WebAt::At(_)));
    }
}
