//! WebSocket for the netcat tools: `connect ws://…` and `listen ws://…`
//! turn a WebSocket into a byte stream that stdio bridges like any socket.
//! In text mode (the default, as with websocat) every line written becomes
//! one text message and every message read becomes one line; with
//! `--binary` every chunk written becomes one binary message and messages
//! are read as they come.
//!
//! WebSocket has no half-close: a peer that gets a close frame stops
//! sending, so replies to the last lines would be lost if stdin's end sent
//! one at once. Shutting the write side down instead starts a linger, as
//! socat's `-t` does: once nothing has arrived for half a second, the close
//! frame goes out, and reading ends when the peer's close comes back.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_websockets::{CloseCode, Limits, Message, WebSocketStream};

use crate::endpoint::Endpoint;

/// Longest line held back waiting for its newline; past it the bytes go
/// out as a message of their own.
const MAX_PENDING_LINE: usize = 1 << 20;

/// After the write side is shut down, how long the peer may stay silent
/// before the close frame is sent.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// How long either side's opening handshake may take: a silent peer must
/// not hold a session, or a connection slot, for good. As long as TLS's.
const HANDSHAKE_TIMEOUT: Duration = crate::tls::DEFAULT_HANDSHAKE_TIMEOUT;

/// The client's opening handshake on `stream` for `endpoint`
/// (`ws://HOST:PORT/PATH`).
pub async fn connect<S>(
    endpoint: &Endpoint,
    stream: S,
    max: usize,
) -> io::Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let uri = endpoint.to_string();
    let builder = tokio_websockets::ClientBuilder::new()
        .uri(&uri)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: {e}")))?
        .limits(limits(max));
    let (ws, _) = within_handshake(builder.connect_on(stream)).await?;
    Ok(ws)
}

/// The server's side of the opening handshake on an accepted `stream`.
pub async fn accept<S>(stream: S, max: usize) -> io::Result<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let builder = tokio_websockets::ServerBuilder::new().limits(limits(max));
    let (_, ws) = within_handshake(builder.accept(stream)).await?;
    Ok(ws)
}

fn limits(max: usize) -> Limits {
    Limits::default().max_payload_len(Some(max))
}

async fn within_handshake<T>(
    handshake: impl Future<Output = Result<T, tokio_websockets::Error>>,
) -> io::Result<T> {
    let Ok(done) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "websocket handshake: none within {}",
                humantime::format_duration(HANDSHAKE_TIMEOUT)
            ),
        ));
    };
    done.map_err(|e| match e {
        // The kind stays for callers; the text says where it happened.
        tokio_websockets::Error::Io(e) => io::Error::new(
            e.kind(),
            format!("websocket handshake: {}", crate::error::describe_io(&e)),
        ),
        other => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("websocket handshake: {other}"),
        ),
    })
}

/// A WebSocket read and written as bytes.
pub struct Messages<S> {
    ws: WebSocketStream<S>,
    binary: bool,
    /// Written bytes of a line whose newline has not come yet.
    line: BytesMut,
    /// What the last message left unread.
    unread: Bytes,
    /// The write side was shut down: the close frame goes once this runs
    /// out, and each message that arrives restarts it.
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The close frame is queued.
    closed: bool,
}

impl<S> Messages<S> {
    /// Text messages, or binary ones with `binary`, over `ws`.
    pub fn new(ws: WebSocketStream<S>, binary: bool) -> Self {
        Messages {
            ws,
            binary,
            line: BytesMut::new(),
            unread: Bytes::new(),
            linger: None,
            closed: false,
        }
    }
}

fn other(e: tokio_websockets::Error) -> io::Error {
    match e {
        tokio_websockets::Error::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {other}")),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Messages<S> {
    /// Queues one message (the sink takes any number; flushing writes them).
    fn queue(&mut self, msg: Message) -> io::Result<()> {
        Pin::new(&mut self.ws).start_send(msg).map_err(other)
    }

    /// Sends every complete line held, and with `all` the rest too.
    fn send_lines(&mut self, all: bool) -> io::Result<()> {
        while let Some(end) = memchr::memchr(b'\n', &self.line) {
            let mut line = self.line.split_to(end + 1);
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            self.queue(text(&line))?;
        }
        if !self.line.is_empty() && (all || self.line.len() >= MAX_PENDING_LINE) {
            let rest = self.line.split();
            self.queue(text(&rest))?;
        }
        Ok(())
    }
}

/// A text message of `bytes`, whose invalid UTF-8 becomes U+FFFD: a text
/// frame must be UTF-8.
fn text(bytes: &[u8]) -> Message {
    Message::text(String::from_utf8_lossy(bytes).into_owned())
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Messages<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.unread.is_empty() {
                let n = self.unread.len().min(buf.remaining());
                buf.put_slice(&self.unread.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if !self.closed
                && let Some(linger) = self.linger.as_mut()
                && linger.as_mut().poll(cx).is_ready()
            {
                self.queue(Message::close(Some(CloseCode::NORMAL_CLOSURE), ""))?;
                self.closed = true;
                // Written by the next poll of the stream, which flushes.
            }
            let msg = match ready!(self.ws.poll_next_unpin(cx)) {
                // The peer's close (or the answer to ours): end of stream.
                None => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(other(e))),
                Some(Ok(msg)) => msg,
            };
            if !(msg.is_text() || msg.is_binary()) {
                continue;
            }
            if let Some(linger) = self.linger.as_mut() {
                linger
                    .as_mut()
                    .reset(tokio::time::Instant::now() + CLOSE_LINGER);
            }
            let payload = Bytes::from(msg.into_payload());
            self.unread = if self.binary || payload.ends_with(b"\n") {
                payload
            } else {
                let mut line = BytesMut::with_capacity(payload.len() + 1);
                line.extend_from_slice(&payload);
                line.extend_from_slice(b"\n");
                line.freeze()
            };
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Messages<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.linger.is_some() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(other)?;
        if self.binary {
            self.queue(Message::binary(Bytes::copy_from_slice(buf)))?;
        } else {
            self.line.extend_from_slice(buf);
            self.send_lines(false)?;
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(other)
    }

    /// Sends what is left of a line and starts the linger before the
    /// close frame.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.linger.is_none() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(other)?;
            self.send_lines(true)?;
            self.linger = Some(Box::pin(tokio::time::sleep(CLOSE_LINGER)));
        }
        self.poll_flush(cx)
    }
}
