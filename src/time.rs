//! The format-time service (the textbook UDP time server): a request is a
//! strftime format, the reply is the current time rendered with it. Replies
//! starting `error: ` say what was wrong; nothing a client sends panics.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Local, TimeZone, Utc};
use futures_util::{SinkExt, StreamExt};
use tokio::net::UdpSocket;
use tokio_util::codec::Framed;
use tracing::Level;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::accept::{self, AcceptOptions};
use crate::datagram;
use crate::endpoint::Endpoint;
use crate::frame::{Line, TolerantLines};
use crate::idle::Activity;
use crate::net::{Bound, Listener, MAX_DATAGRAM, Stream};
use crate::options::{ClosesIdle, Limits, OptionError};
use crate::runner::Service;
use crate::shutdown::Shutdown;
use crate::tls::{self, server::Tls};

/// Longest request accepted, in bytes.
pub const MAX_REQUEST: usize = 512;

/// What an empty request means.
pub const DEFAULT_FORMAT: &str = "%Y-%m-%d %X";

/// The format-time service's options: flags of `sockit time serve`, keys of
/// `[format_time]`.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Serve UTC instead of local time (format protocol).
    #[arg(long)]
    pub utc: bool,
    /// `--tls` and its certificate; in a config section, a `tls` table.
    #[command(flatten)]
    pub tls: Tls,
    /// `--max-conns`, `--idle-timeout` and `--drain-timeout`.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<ClosesIdle>,
}

impl Options {
    /// Its one entry for the runner, whether run alone or in the suite.
    pub fn service(&self, endpoints: Vec<Endpoint>) -> Result<Service, OptionError> {
        let tls = self.tls.server(&endpoints, &[])?;
        let cfg = Config {
            utc: self.utc,
            max_conns: self.limits.max_conns()?,
            idle_timeout: self.limits.idle(),
            tls: tls.clone(),
        };
        let drain = self.limits.drain();
        Ok(Service::new("format-time", endpoints, drain, cfg, run_bound).with_tls(tls))
    }
}

/// How the format-time service answers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Serve UTC instead of the server's local time.
    pub utc: bool,
    /// TCP clients served at once.
    pub max_conns: usize,
    /// Close a TCP client after this long without a request.
    pub idle_timeout: Option<Duration>,
    /// Terminate TLS on every stream connection.
    pub tls: Option<Arc<tls::server::Server>>,
}

impl Config {
    /// The reply to one request at the current time.
    pub fn reply(&self, request: &[u8]) -> String {
        if self.utc {
            render(request, &Utc::now())
        } else {
            render(request, &Local::now())
        }
    }
}

/// Renders `request` (a strftime format) at `now`. Never fails: problems
/// become a reply starting `error: `.
pub fn render<Tz: TimeZone>(request: &[u8], now: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    if request.len() > MAX_REQUEST {
        return "error: request too long".into();
    }
    let Ok(format) = std::str::from_utf8(request) else {
        return "error: request is not valid UTF-8".into();
    };
    let format = if format.is_empty() {
        DEFAULT_FORMAT
    } else {
        format
    };
    if let Some(problem) = check_format(format) {
        return format!("error: {problem}");
    }
    let mut out = String::new();
    match write!(out, "{}", now.format(format)) {
        Ok(()) => out,
        Err(_) => format!("error: cannot render '{format}'"),
    }
}

/// Finds the first directive chrono cannot render, so the error can name it.
fn check_format(format: &str) -> Option<String> {
    if !StrftimeItems::new(format).any(|i| matches!(i, Item::Error)) {
        return None;
    }
    let mut rest = format;
    while let Some(at) = rest.find('%') {
        let tail = &rest[at..];
        // A directive: %, optional padding flag, optional : or . or digits,
        // then one character.
        let len = tail
            .char_indices()
            .skip(1)
            .find(|&(_, c)| !matches!(c, '-' | '_' | '0'..='9' | ':' | '.' | '#'))
            .map(|(i, c)| i + c.len_utf8());
        let Some(len) = len else {
            return Some(format!("format ends inside the directive '{tail}'"));
        };
        let directive = &tail[..len];
        if StrftimeItems::new(directive).any(|i| matches!(i, Item::Error)) {
            return Some(format!("unknown strftime directive '{directive}'"));
        }
        rest = &tail[len..];
    }
    Some(format!("invalid strftime format '{format}'"))
}

/// Splits a trailing line ending off a request, so `nc -u` users who press
/// Enter get their reply on its own line.
fn strip_eol(req: &[u8]) -> (&[u8], bool) {
    match req.strip_suffix(b"\n") {
        Some(r) => (r.strip_suffix(b"\r").unwrap_or(r), true),
        None => (req, false),
    }
}

/// Serves a bound socket of either kind until shutdown.
pub async fn run_bound(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    match bound {
        Bound::Stream(l) => run_tcp(cfg, l, shutdown).await,
        Bound::Datagram(s) => run_udp(cfg, s, shutdown).await,
        Bound::UnixDatagram(..) => Err(crate::net::no_unix_datagrams("the time service")),
    }
}

/// Answers each datagram with the time in the format it carries.
pub async fn run_udp(cfg: Arc<Config>, socket: UdpSocket, shutdown: Shutdown) -> io::Result<()> {
    // The whole datagram is read so the length check sees its real size
    // (a line ending does not count toward the limit).
    datagram::serve(
        crate::net::Datagram::Udp(socket),
        &shutdown,
        MAX_DATAGRAM,
        move |req, reply| {
            let (request, eol) = strip_eol(req);
            reply.extend_from_slice(cfg.reply(request).as_bytes());
            if eol {
                reply.push(b'\n');
            }
            true
        },
    )
    .await
}

/// Serves TCP (or Unix) clients: one reply line per request line.
pub async fn run_tcp(cfg: Arc<Config>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    let mut opts = AcceptOptions::new("time", cfg.max_conns, Level::DEBUG);
    opts.tls = cfg.tls.clone();
    accept::serve(listener, shutdown, opts, move |stream, _| {
        let cfg = cfg.clone();
        async move { serve_lines(stream, &cfg).await }
    })
    .await
}

async fn serve_lines(stream: Stream, cfg: &Config) -> io::Result<()> {
    let activity = Activity::new();
    // Room for a CR: the limit applies to the request without its line
    // ending, which `render` checks.
    let mut lines = Framed::new(stream, TolerantLines::new(MAX_REQUEST + 1));
    let answer = async {
        while let Some(line) = activity
            .step(async { lines.next().await.transpose() })
            .await?
        {
            let reply = match line {
                // One reply line per request line, even if the format asks
                // for a newline (%n).
                Line::Text(request) => cfg.reply(&request).replace(['\r', '\n'], " "),
                Line::TooLong => "error: request too long".into(),
            };
            activity.step(lines.send(Bytes::from(reply))).await?;
        }
        Ok(())
    };
    activity.bound(cfg.idle_timeout, answer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 14, 3, 7).unwrap()
    }

    #[test]
    fn renders_formats_and_the_default() {
        assert_eq!(render(b"%Y-%m-%d", &at()), "2026-11-22");
        assert_eq!(render(b"", &at()), "2026-11-22 14:03:07");
        assert_eq!(render(b"%A %H:%M", &at()), "Sunday 14:03");
    }

    #[test]
    fn bad_requests_get_error_replies() {
        assert_eq!(
            render(b"%Q", &at()),
            "error: unknown strftime directive '%Q'"
        );
        assert!(render(b"%Y %", &at()).starts_with("error: format ends inside"));
        assert_eq!(
            render(&[0xff, 0xfe], &at()),
            "error: request is not valid UTF-8"
        );
        assert_eq!(render(&[b'x'; 513], &at()), "error: request too long");
        assert_eq!(render(&[b'x'; 512], &at()).len(), 512);
    }

    #[test]
    fn any_short_input_renders_or_errors_without_panicking() {
        let alphabet = b"%-_0#:.3EOYmdHMSzZaAbBcCDeFgGhIjklnprRsStTuUvVwWxXy+ \xc3\xa9";
        let mut seed = 12345u32;
        for _ in 0..20_000 {
            let len = (seed % 12) as usize;
            let req: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    alphabet[(seed >> 16) as usize % alphabet.len()]
                })
                .collect();
            let _ = render(&req, &at());
            seed = seed.wrapping_add(7);
        }
    }

    #[test]
    fn trailing_newlines_are_split_off() {
        assert_eq!(strip_eol(b"%Y\r\n"), (&b"%Y"[..], true));
        assert_eq!(strip_eol(b"%Y"), (&b"%Y"[..], false));
    }
}
