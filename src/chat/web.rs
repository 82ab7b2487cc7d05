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

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::{Sink, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_websockets::{Limits, Message, ServerBuilder, WebSocketStream};
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
    // Boxed, so its state is freed at the upgrade rather than held in this
    // task for as long as the WebSocket lasts.
    let served = Box::pin(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades(),
    )
    .await;
    if let Err(e) = served {
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
    // Even empty, hyper's leftover shares its whole read buffer: copy it.
    let prefix = Bytes::copy_from_slice(&parts.read_buf);
    drop(parts.read_buf);
    serve_ws(parts.io.into_inner(), prefix, peer, &chat).await
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
/// A WebSocket client's session on `stream`, after its handshake: the
/// fuzz target runs it on a socket pair.
pub async fn serve_upgraded(stream: Stream, peer: PeerAddr, chat: &Chat) -> io::Result<()> {
    serve_ws(stream, Bytes::new(), peer, chat).await
}

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
        edges: Edges::default(),
    };
    let heard = Activity::new();
    let lines = Lines {
        ws: None,
        resting: Some(io),
        limits: Limits::default().max_payload_len(Some(MAX_MESSAGE)),
        rest: None,
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
    edges: Edges,
}

/// Where the bytes read so far end in the client's frames: only headers
/// and lengths, enough to tell when tokio-websockets holds nothing of a
/// frame or a fragmented message (it still checks everything itself).
#[derive(Default)]
struct Edges {
    head: [u8; 14],
    have: usize,
    need: usize,
    payload: u64,
    in_message: bool,
}

impl Edges {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload > 0 {
                let take = self.payload.min(bytes.len() as u64);
                self.payload -= take;
                bytes = &bytes[take as usize..];
                continue;
            }
            self.head[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have == 2 {
                let ext = match self.head[1] & 0x7f {
                    126 => 2,
                    127 => 8,
                    _ => 0,
                };
                let mask = if self.head[1] & 0x80 != 0 { 4 } else { 0 };
                self.need = 2 + ext + mask;
            }
            if self.have >= 2 && self.have == self.need {
                let len = match self.head[1] & 0x7f {
                    126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                    127 => u64::from_be_bytes(self.head[2..10].try_into().expect("8 bytes")),
                    n => u64::from(n),
                };
                let (fin, opcode) = (self.head[0] & 0x80 != 0, self.head[0] & 0x0f);
                // Control frames may come between a message's fragments.
                if opcode < 8 {
                    self.in_message = !fin;
                }
                self.payload = len;
                self.have = 0;
            }
        }
    }

    fn at_rest(&self) -> bool {
        self.have == 0 && self.payload == 0 && !self.in_message
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let bytes = self.prefix.split_to(n);
            buf.put_slice(&bytes);
        } else {
            let mut stream: &Stream = &self.stream;
            ready!(Pin::new(&mut stream).poll_read(cx, buf))?;
        }
        self.edges.feed(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
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
        let all = bufs.iter().map(|b| &b[..]).collect::<Vec<_>>().concat();
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
///
/// Between messages the WebSocket rests: tokio-websockets keeps an 8 KiB
/// read buffer for as long as it lives, which would be most of what an
/// idle client costs, so the socket is taken back from it whenever it has
/// read up to a frame's end, and handed to a new one when bytes come.
struct Lines<'a> {
    ws: Option<WebSocketStream<Socket>>,
    resting: Option<Socket>,
    limits: Limits,
    /// What is left of the message being read, handed out a line at a
    /// time: a megabyte of line breaks split at once would be a million
    /// lines held together.
    rest: Option<Bytes>,
    max_line: usize,
    /// Touched by every frame, pongs included, for the pinger.
    heard: &'a Activity,
    failed: Option<io::Error>,
}

impl futures_util::Stream for Lines<'_> {
    type Item = io::Result<Line>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(line) = self.next_line() {
                return Poll::Ready(Some(Ok(line)));
            }
            let this = &mut *self;
            if this.ws.is_none() {
                let socket = this
                    .resting
                    .as_ref()
                    .expect("a socket rests when ws is gone");
                // An error wakes this too, and shows up again on the read.
                if socket.prefix.is_empty() && socket.stream.poll_read_ready(cx).is_pending() {
                    return Poll::Pending;
                }
                let socket = this.resting.take().expect("checked above");
                this.ws = Some(ServerBuilder::new().limits(this.limits).serve(socket));
            }
            let ws = this.ws.as_mut().expect("made above");
            let next = match ws.poll_next_unpin(cx) {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    if this.failed.is_none()
                        && ws.get_ref().edges.at_rest()
                        && let Poll::Ready(Ok(())) = Sink::<Message>::poll_flush(Pin::new(ws), cx)
                    {
                        let ws = this.ws.take().expect("polled just now");
                        this.resting = Some(ws.into_inner());
                    }
                    return Poll::Pending;
                }
            };
            match next {
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
                        self.rest = Some(payload);
                    }
                }
            }
        }
    }
}

impl Lines<'_> {
    fn next_line(&mut self) -> Option<Line> {
        let rest = self.rest.as_mut()?;
        let end = memchr::memchr(b'\n', rest);
        let mut line = rest.split_to(end.unwrap_or(rest.len()));
        match end {
            Some(_) => rest.advance(1),
            None => self.rest = None,
        }
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        Some(if line.len() > self.max_line {
            Line::TooLong
        } else {
            Line::Text(line)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, with the length in its shortest form.
    fn client_frame(fin: bool, opcode: u8, len: usize) -> Vec<u8> {
        let mut f = vec![u8::from(fin) << 7 | opcode];
        match len {
            0..=125 => f.push(0x80 | len as u8),
            126..=0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.resize(f.len() + len, b'x');
        f
    }

    #[test]
    fn edges_rest_only_between_whole_messages() {
        // A text message in two fragments with a ping between them, then
        // messages of each length form; fed a byte at a time, the tracker
        // must be at rest exactly at the end of each whole message.
        let frames = [
            (client_frame(false, 1, 3), false),
            (client_frame(true, 9, 0), false),
            (client_frame(true, 0, 200), true),
            (client_frame(true, 2, 70_000), true),
            (client_frame(true, 1, 125), true),
            (client_frame(true, 10, 4), true),
        ];
        let mut edges = Edges::default();
        assert!(edges.at_rest());
        for (frame, rests_after) in frames {
            for (i, byte) in frame.iter().enumerate() {
                edges.feed(std::slice::from_ref(byte));
                let last = i + 1 == frame.len();
                assert_eq!(
                    edges.at_rest(),
                    last && rests_after,
                    "byte {i} of {frame:?}"
                );
            }
        }
        // In one read, and split at every point, the same.
        let all: Vec<u8> = [client_frame(true, 1, 5), client_frame(true, 1, 300)].concat();
        for cut in 0..=all.len() {
            let mut edges = Edges::default();
            edges.feed(&all[..cut]);
            edges.feed(&all[cut..]);
            assert!(edges.at_rest(), "cut at {cut}");
        }
    }

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
