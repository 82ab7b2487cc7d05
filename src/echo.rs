//! The echo service: RFC 862 byte echo over TCP, UDP or Unix, or the classic
//! tutorial server with a greeting, a reply template and an exit word.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Encoder, Framed};
use tracing::Level;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::accept::{self, AcceptOptions};
use crate::datagram;
use crate::endpoint::Endpoint;
use crate::frame::{FrameError, Framing};
use crate::idle::Activity;
use crate::net::{Bound, Datagram, Listener, MAX_DATAGRAM, Stream};
use crate::options::{ClosesIdle, FrameOptions, Limits, OptionError};
use crate::runner::Service;
use crate::shutdown::Shutdown;
use crate::tls::{self, server::Tls};

/// Read buffer for the byte-echo fast path: big enough for bulk echo, small
/// enough that 10,000 connections stay cheap (it is only allocated once a
/// client sends something).
const ECHO_BUFFER: usize = 16 * 1024;

/// A reply template: every `{}` is replaced by the message.
///
/// ```
/// let t = sockit::echo::Template::new("Hello, {}!");
/// assert_eq!(&t.render(b"Michael")[..], b"Hello, Michael!");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Bytes>,
}

impl Template {
    /// Splits `text` at each `{}`.
    pub fn new(text: &str) -> Self {
        Template {
            parts: text
                .split("{}")
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect(),
        }
    }

    /// The reply to `msg`.
    pub fn render(&self, msg: &[u8]) -> Bytes {
        let mut out = Vec::new();
        self.render_into(msg, &mut out);
        out.into()
    }

    /// Appends the reply to `msg` to `out`.
    pub fn render_into(&self, msg: &[u8], out: &mut Vec<u8>) {
        let fixed: usize = self.parts.iter().map(Bytes::len).sum();
        out.reserve(fixed + msg.len() * (self.parts.len() - 1));
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(msg);
            }
            out.extend_from_slice(part);
        }
    }
}

/// The echo service's options: its flags and its `[echo]` config keys.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// `--frame` and `--max-frame`.
    #[command(flatten)]
    #[serde(flatten)]
    pub frame: FrameOptions,
    /// Sent to each client when it connects.
    #[arg(long, value_name = "TEXT")]
    pub greeting: Option<String>,
    /// Answer each message M with TEMPLATE, `{}` replaced by M.
    #[arg(long, value_name = "TEMPLATE")]
    pub reply: Option<String>,
    /// Close a client whose message is this word.
    #[arg(long, value_name = "WORD")]
    pub exit_word: Option<String>,
    /// `--tls` and its certificate; in a config section, a `tls` table.
    #[command(flatten)]
    pub tls: Tls,
    /// `--max-conns`, `--idle-timeout` and `--drain-timeout`.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<ClosesIdle>,
}

impl Options {
    /// The service's config, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        Ok(Config {
            framing: self.frame.frame,
            max_frame: self.frame.max_frame.0,
            greeting: self.greeting.clone().map(Into::into),
            reply: self.reply.as_deref().map(Template::new),
            exit_word: self.exit_word.clone().map(Into::into),
            max_conns: self.limits.max_conns()?,
            idle_timeout: self.limits.idle(),
            tls: None,
        })
    }

    /// Its one entry for the runner, whether run alone or in the suite.
    pub fn service(&self, endpoints: Vec<Endpoint>) -> Result<Service, OptionError> {
        let tls = self.tls.server(&endpoints, &[])?;
        let cfg = Config {
            tls: tls.clone(),
            ..self.config()?
        };
        let drain = self.limits.drain();
        Ok(Service::new("echo", endpoints, drain, cfg, run_bound)
            .with_tls(tls)
            .taking_unix_datagrams())
    }
}

/// What the echo service does with each client.
#[derive(Debug, Clone)]
pub struct Config {
    /// How messages are cut out of a stream.
    pub framing: Framing,
    /// Largest frame a client may send.
    pub max_frame: usize,
    /// Sent once when a stream client connects.
    pub greeting: Option<Bytes>,
    /// Answer each message with this instead of the message itself.
    pub reply: Option<Template>,
    /// A message equal to this closes the client.
    pub exit_word: Option<Bytes>,
    /// Stream clients served at once.
    pub max_conns: usize,
    /// Close a stream client after this long without traffic.
    pub idle_timeout: Option<Duration>,
    /// Terminate TLS on every connection.
    pub tls: Option<Arc<tls::server::Server>>,
}

impl Default for Config {
    fn default() -> Self {
        Options::default().config().expect("the defaults are valid")
    }
}

impl Config {
    /// Plain RFC 862 echo: bytes back as they came, nothing else.
    fn is_plain(&self) -> bool {
        self.framing == Framing::Raw && self.reply.is_none() && self.exit_word.is_none()
    }

    fn is_exit_word(&self, msg: &[u8]) -> bool {
        self.exit_word
            .as_ref()
            .is_some_and(|word| trim_newline(msg) == word.as_ref())
    }

    fn answer(&self, msg: &Bytes) -> Option<Bytes> {
        if self.is_exit_word(msg) {
            return None;
        }
        Some(match &self.reply {
            Some(t) => t.render(msg),
            None => msg.clone(),
        })
    }
}

/// In raw mode `nc` sends `exit\n`; the exit word should still match.
fn trim_newline(msg: &[u8]) -> &[u8] {
    let msg = msg.strip_suffix(b"\n").unwrap_or(msg);
    msg.strip_suffix(b"\r").unwrap_or(msg)
}

/// Serves a bound socket of either kind until shutdown.
pub async fn run_bound(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    match bound.into_datagram() {
        Ok(socket) => run_udp(cfg, socket, shutdown).await,
        Err(stream) => run(cfg, stream.into_stream("echo")?, shutdown).await,
    }
}

/// Serves stream clients (TCP or Unix) until shutdown.
pub async fn run(cfg: Arc<Config>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    let mut opts = AcceptOptions::new("echo", cfg.max_conns, Level::DEBUG);
    opts.tls = cfg.tls.clone();
    accept::serve(listener, shutdown, opts, move |stream, _peer| {
        let cfg = cfg.clone();
        async move {
            if cfg.is_plain() {
                echo_bytes(stream, cfg.greeting.as_deref(), cfg.idle_timeout).await
            } else {
                // Boxed: its state machine is several KiB, and inline it
                // would size every plain-echo task the same.
                Box::pin(echo_frames(stream, &cfg)).await
            }
        }
    })
    .await
}

async fn echo_bytes(
    mut stream: Stream,
    greeting: Option<&[u8]>,
    idle: Option<Duration>,
) -> io::Result<()> {
    let activity = Activity::new();
    let echo = async {
        if let Some(g) = greeting {
            activity.step(stream.write_all(g)).await?;
        }
        // Allocate only once the client sends something, so idle clients
        // cost only their socket.
        activity.step(stream.wait_for_data()).await?;
        let mut buf = vec![0u8; ECHO_BUFFER];
        loop {
            let n = stream.read_drained(&mut buf).await?;
            if n == 0 {
                return stream.shutdown().await;
            }
            activity.step(stream.write_all(&buf[..n])).await?;
        }
    };
    activity.bound(idle, echo).await
}

async fn echo_frames(mut stream: Stream, cfg: &Config) -> io::Result<()> {
    let activity = Activity::new();
    let mut codec = cfg.framing.codec(cfg.max_frame);
    let echo = async {
        if let Some(g) = &cfg.greeting {
            let mut out = BytesMut::new();
            codec.encode(g.clone(), &mut out)?;
            activity.step(stream.write_all(&out)).await?;
        }
        // As in the byte echo: buffers only once the client speaks.
        activity.step(stream.wait_for_data()).await?;
        let mut framed = Framed::new(stream, codec);
        while let Some(first) = framed.next().await {
            // Answer everything already buffered before one flush, so a
            // burst of pipelined messages costs one write, not one per
            // message.
            let mut next = Some(first);
            while let Some(frame) = next {
                let msg = frame.inspect_err(|e| {
                    if let FrameError::TooLong { .. } = e {
                        tracing::warn!(%e, "closing client that exceeded --max-frame");
                    }
                })?;
                match cfg.answer(&msg) {
                    Some(reply) => framed.feed(reply).await?,
                    None => {
                        framed.flush().await?;
                        tracing::debug!("exit word received");
                        return framed.get_mut().shutdown().await;
                    }
                }
                next = framed.next().now_or_never().flatten();
            }
            activity.step(async { Ok(framed.flush().await?) }).await?;
        }
        framed.get_mut().shutdown().await
    };
    activity.bound(cfg.idle_timeout, echo).await
}

/// Answers each datagram until shutdown. A datagram is one message; the
/// greeting and exit word have no meaning without a connection.
pub async fn run_udp(cfg: Arc<Config>, socket: Datagram, shutdown: Shutdown) -> io::Result<()> {
    datagram::serve(socket, &shutdown, MAX_DATAGRAM, move |msg, reply| {
        if cfg.is_exit_word(msg) {
            return false;
        }
        match &cfg.reply {
            Some(t) => t.render_into(msg, reply),
            None => reply.extend_from_slice(msg),
        }
        true
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_replaces_every_placeholder() {
        let t = Template::new("Hello, {}! ({})");
        assert_eq!(&t.render(b"Bob")[..], b"Hello, Bob! (Bob)");
        assert_eq!(&Template::new("plain").render(b"x")[..], b"plain");
    }

    #[test]
    fn exit_word_matches_with_or_without_newline() {
        let cfg = Config {
            exit_word: Some(Bytes::from_static(b"exit")),
            ..Config::default()
        };
        assert!(cfg.answer(&Bytes::from_static(b"exit\r\n")).is_none());
        assert!(cfg.answer(&Bytes::from_static(b"exit")).is_none());
        assert!(cfg.answer(&Bytes::from_static(b"exits")).is_some());
    }
}
