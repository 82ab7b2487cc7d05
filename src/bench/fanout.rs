//! `bench fanout`: N subscribers in one room (or one Redis channel) and one
//! publisher sending M messages; measures deliveries per second, delivery
//! latency (publish to receipt) and loss. Speaks the chat line protocol
//! (`sockit chat serve`, `ncat --chat`) or RESP (`--redis`).

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::load::CONNECT_TIMEOUT;
use super::stats;
use clap::Args;

use crate::endpoint::{Endpoint, Transport};
use crate::net::{self, Stream};
use crate::options::OptionError;
use crate::sync::lock;

/// How long a subscriber waits for its next message before giving up on
/// the rest (they count as lost).
const GRACE: Duration = Duration::from_secs(5);

/// How long the first sync message waits before it is repeated; each
/// repeat waits twice as long (up to a second), so a server that
/// rate-limits the publisher is not drained of its allowance by retries.
const SYNC_RETRY: Duration = Duration::from_millis(100);

/// How long subscribers may take to all hear the sync message.
const SYNC_LIMIT: Duration = Duration::from_secs(30);

/// Longest line read from the server.
const MAX_LINE: usize = 64 * 1024;

/// Redis channel (and chat marker) the benchmark uses.
const CHANNEL: &str = "fanout";

/// The flags of `sockit bench fanout`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The server: HOST:PORT, tcp://…, unix:PATH, or ws://HOST:PORT/PATH
    /// for a WebSocket that relays text messages to every client (chat's
    /// `--web` socket, a broadcast server).
    pub endpoint: Endpoint,
    /// Subscriber connections.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub subscribers: usize,
    /// Where subscribers connect instead, taking turns if repeated (the
    /// nodes of a chat cluster); the publisher stays on ENDPOINT.
    #[arg(long, value_name = "EP")]
    pub subscribe: Vec<Endpoint>,
    /// Messages the publisher sends.
    #[arg(short, long, default_value_t = 100)]
    pub messages: usize,
    /// Publish this many messages per second (default: as fast as possible).
    #[arg(short, long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Speak Redis SUBSCRIBE/PUBLISH instead of chat lines.
    #[arg(long)]
    pub redis: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Options {
    /// The run, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        super::bounded("subscribers", self.subscribers, &[])?;
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(OptionError::new(
                "rate",
                format!("must be a number above 0, not {rate}"),
            ));
        }
        let subscribe = if self.subscribe.is_empty() {
            vec![self.endpoint.clone()]
        } else {
            self.subscribe.clone()
        };
        for ep in std::iter::once(&self.endpoint).chain(&subscribe) {
            if self.redis && ep.websocket().is_some() {
                return Err(OptionError::new("redis", "speaks RESP, not WebSocket"));
            }
            if ep.is_tls() {
                return Err(OptionError::new(
                    "endpoint",
                    "bench fanout speaks plaintext",
                ));
            }
            if ep.transport() == Transport::Udp {
                return Err(OptionError::new(
                    "endpoint",
                    "bench fanout needs a tcp or unix endpoint",
                ));
            }
        }
        Ok(Config {
            endpoint: self.endpoint.clone(),
            subscribe,
            subscribers: self.subscribers,
            messages: self.messages,
            rate: self.rate,
            redis: self.redis,
        })
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server the publisher speaks to.
    pub endpoint: Endpoint,
    /// Where subscribers connect, in turn.
    pub subscribe: Vec<Endpoint>,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Messages the publisher sends.
    pub messages: usize,
    /// Messages per second, or as fast as possible.
    pub rate: Option<f64>,
    /// Speak RESP SUBSCRIBE/PUBLISH instead of chat lines.
    pub redis: bool,
}

/// What a fan-out run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server.
    pub target: String,
    /// Subscriber connections.
    pub subscribers: usize,
    /// Messages published.
    pub messages: usize,
    /// Messages received, summed over subscribers.
    pub delivered: u64,
    /// Deliveries per second, first publish to last receipt.
    pub deliveries_per_sec: f64,
    /// Median publish-to-receipt latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Worst latency, milliseconds.
    pub max_ms: f64,
    /// Deliveries that never came.
    pub lost: u64,
}

impl Report {
    /// The human-readable table.
    pub fn table(&self) -> String {
        format!(
            "target        {}\nsubscribers   {}\nmessages      {}\ndelivered     {} ({:.0}/s)\nlatency       p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms\nlost          {}\n",
            self.target,
            self.subscribers,
            self.messages,
            self.delivered,
            self.deliveries_per_sec,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.lost
        )
    }
}

/// Runs one fan-out measurement.
pub async fn run(cfg: Config) -> io::Result<Report> {
    // All subscribers on one current-thread runtime: on the single core a
    // pinned generator gets, the work-stealing scheduler's cross-thread
    // wake-ups cost more per delivery than the read itself.
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(measure(cfg))
    })
    .await
    .map_err(io::Error::other)?
}

async fn measure(cfg: Config) -> io::Result<Report> {
    let base = Instant::now();
    let expected = cfg.messages as u64;
    let synced = Arc::new((AtomicUsize::new(0), Notify::new()));
    // One histogram for all: a thousand of them would each fault in a
    // couple of hundred KiB on the core being measured.
    let hist = Arc::new(Mutex::new(stats::new_histogram()));
    let mut subs = JoinSet::new();
    let ws = cfg.endpoint.websocket().is_some();
    for ep in cfg.subscribe.iter().cycle().take(cfg.subscribers) {
        let ws = ep.websocket().is_some();
        let mut s = net::connect(ep, Some(CONNECT_TIMEOUT)).await?;
        let early = if ws {
            open_websocket(&mut s, ep).await?
        } else {
            Vec::new()
        };
        if cfg.redis {
            s.write_all(format!("SUBSCRIBE {CHANNEL}\r\n").as_bytes())
                .await?;
        }
        let sub = Subscriber {
            stream: s,
            early,
            ws,
        };
        subs.spawn(subscribe(sub, base, expected, synced.clone(), hist.clone()));
    }
    let mut publisher = net::connect(&cfg.endpoint, Some(CONNECT_TIMEOUT)).await?;
    if ws {
        open_websocket(&mut publisher, &cfg.endpoint).await?;
    }
    let (mut pub_rd, mut pub_wr) = tokio::io::split(publisher);
    // Replies and our own echoes must be read, or the server would count
    // the publisher as a client that stopped reading.
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 64 * 1024];
        while pub_rd.read(&mut sink).await.unwrap_or(0) > 0 {}
    });
    let msg = |seq: u64| {
        let token = format!("{CHANNEL}:{seq}:{}", base.elapsed().as_micros());
        if cfg.redis {
            format!("PUBLISH {CHANNEL} {token}\r\n").into_bytes()
        } else if ws {
            client_frame(token.as_bytes(), seq)
        } else {
            format!("{token}\n").into_bytes()
        }
    };
    // Sync: repeat message 0 until every subscriber has seen one, so the
    // timed part starts with everyone listening.
    let sync = async {
        let mut wait = SYNC_RETRY;
        loop {
            pub_wr.write_all(&msg(0)).await?;
            let all = async {
                while synced.0.load(Ordering::Acquire) < cfg.subscribers {
                    synced.1.notified().await;
                }
            };
            if tokio::time::timeout(wait, all).await.is_ok() {
                return io::Result::Ok(());
            }
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    };
    tokio::time::timeout(SYNC_LIMIT, sync).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "subscribers never heard the sync message",
        )
    })??;
    let start = base.elapsed();
    let mut tick = cfg
        .rate
        .map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r.max(0.001))));
    for seq in 1..=expected {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        pub_wr.write_all(&msg(seq)).await?;
    }
    pub_wr.flush().await?;
    let mut delivered = 0;
    let mut last = start;
    // Subscribers that are done keep their connections until all are, so
    // a server is timed on deliveries, not on tearing down early finishers
    // while others still wait.
    let mut done = Vec::with_capacity(cfg.subscribers);
    while let Some(res) = subs.join_next().await {
        let (n, at, stream) = res.map_err(io::Error::other)?;
        delivered += n;
        last = last.max(at);
        done.push(stream);
    }
    drain.abort();
    drop(done);
    let secs = (last.saturating_sub(start)).as_secs_f64().max(1e-9);
    let (p50_ms, p99_ms, max_ms) = stats::latency_ms(&lock(&hist));
    Ok(Report {
        target: cfg.endpoint.to_string(),
        subscribers: cfg.subscribers,
        messages: cfg.messages,
        delivered,
        deliveries_per_sec: delivered as f64 / secs,
        p50_ms,
        p99_ms,
        max_ms,
        lost: (cfg.subscribers as u64 * expected).saturating_sub(delivered),
    })
}

/// Opens a WebSocket on `s` by hand and returns what came after the
/// server's response: the subscribers read frames in place, so they must
/// see every byte that follows the handshake.
async fn open_websocket(s: &mut Stream, ep: &Endpoint) -> io::Result<Vec<u8>> {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: c29ja2l0IGJlbmNoIGtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ep.websocket().unwrap_or("/"),
        ep.authority()
    );
    s.write_all(request.as_bytes()).await?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 || got.len() > 16 * 1024 {
            return Err(io::Error::other("no WebSocket handshake response"));
        }
        got.extend_from_slice(&chunk[..n]);
        if let Some(end) = memchr::memmem::find(&got, b"\r\n\r\n") {
            let status = got.split(|&b| b == b'\r').next().unwrap_or_default();
            if !status.windows(5).any(|w| w == b" 101 ") {
                let status = String::from_utf8_lossy(status).into_owned();
                return Err(io::Error::other(format!("WebSocket refused: {status}")));
            }
            return Ok(got.split_off(end + 4));
        }
    }
}

/// A masked text frame, as a client must send (the mask need not be
/// unpredictable to measure a server).
fn client_frame(payload: &[u8], seed: u64) -> Vec<u8> {
    let mask = (seed as u32 ^ 0x5a5a_a5a5)
        .wrapping_mul(2_654_435_761)
        .to_be_bytes();
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.push(0x81);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Where the next message in `buf` ends and its text: a line, or the
/// payload of one WebSocket frame (servers send them unmasked and, for
/// lines this short, whole). `None` until all of it has arrived.
fn next_message(buf: &[u8], ws: bool) -> Option<(usize, &[u8])> {
    if !ws {
        let pos = memchr::memchr(b'\n', buf)?;
        return Some((pos + 1, &buf[..pos]));
    }
    let len = *buf.get(1)? & 0x7f;
    let (head, len): (usize, usize) = match len {
        126 => (
            4,
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
        ),
        127 => (
            10,
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
        ),
        n => (2, usize::from(n)),
    };
    let end = head.checked_add(len)?;
    (buf.len() >= end).then(|| (end, &buf[head..end]))
}

/// A subscriber's connection: `early` is what arrived with the WebSocket
/// handshake's response.
struct Subscriber {
    stream: Stream,
    early: Vec<u8>,
    ws: bool,
}

/// Reads until all `expected` messages arrived or the grace period after
/// the last one passes, recording latencies into `hist`; returns the count,
/// the last receipt time and the still open stream.
async fn subscribe(
    sub: Subscriber,
    base: Instant,
    expected: u64,
    synced: Arc<(AtomicUsize, Notify)>,
    hist: Arc<Mutex<Histogram<u64>>>,
) -> (u64, Duration, Stream) {
    let mut got = 0;
    let mut last = Duration::ZERO;
    let mut in_sync = false;
    // The generator must cost less per delivery than the servers it
    // measures, or every server shows the generator's latency: so one
    // drained read per wake-up (a codec would read again to see EAGAIN)
    // and lines split in place. Lines longer than MAX_LINE are skipped.
    // Lines here are short: start small and grow only for a long one, so
    // thousands of subscribers do not each hold MAX_LINE.
    let Subscriber { stream, early, ws } = sub;
    let mut buf = vec![0u8; early.len().max(4096)];
    buf[..early.len()].copy_from_slice(&early);
    let mut early = early.len();
    let mut filled = 0;
    let mut skipping = false;
    'read: loop {
        let n = if early > 0 {
            // What came with the handshake, before the first read.
            std::mem::take(&mut early)
        } else {
            match tokio::time::timeout(GRACE, stream.read_drained(&mut buf[filled..])).await {
                Ok(Ok(n)) if n > 0 => n,
                _ => break,
            }
        };
        let now = base.elapsed();
        let end = filled + n;
        let mut start = 0;
        // All subscribers share one thread, so this lock is never contended.
        let mut latencies = lock(&hist);
        while let Some((used, line)) = next_message(&buf[start..end], ws) {
            start += used;
            if std::mem::take(&mut skipping) {
                continue;
            }
            match parse_token(line) {
                Some((0, _)) if !in_sync => {
                    in_sync = true;
                    synced.0.fetch_add(1, Ordering::AcqRel);
                    synced.1.notify_waiters();
                }
                Some((0, _)) => {}
                Some((_, micros)) => {
                    stats::record(
                        &mut latencies,
                        now.saturating_sub(Duration::from_micros(micros)),
                    );
                    got += 1;
                    last = now;
                    if got == expected {
                        break 'read;
                    }
                }
                None => {}
            }
        }
        buf.copy_within(start..end, 0);
        filled = end - start;
        if filled == buf.len() {
            if buf.len() < MAX_LINE {
                buf.resize(buf.len() * 2, 0);
            } else if ws {
                // A frame cannot be skipped without its length: give up.
                break;
            } else {
                filled = 0;
                skipping = true;
            }
        }
    }
    (got, last, stream)
}

/// The sequence number and send time that end a line carrying a token
/// (`… fanout:SEQ:MICROS`, maybe with the CR of RESP). Read from the end and
/// as bytes: this runs once per delivery, on the core being measured.
fn parse_token(line: &[u8]) -> Option<(u64, u64)> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let colon = memchr::memrchr(b':', line)?;
    let micros = number(&line[colon + 1..])?;
    let head = &line[..colon];
    let colon = memchr::memrchr(b':', head)?;
    let seq = number(&head[colon + 1..])?;
    head[..colon]
        .ends_with(CHANNEL.as_bytes())
        .then_some((seq, micros))
}

/// A decimal `u64` that is nothing but digits (at most 19, so it cannot
/// overflow).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_chat_and_resp_lines() {
        assert_eq!(
            parse_token(b"[12:00:00] <guest-1> fanout:7:123"),
            Some((7, 123))
        );
        assert_eq!(parse_token(b"<user5> fanout:7:123"), Some((7, 123)));
        assert_eq!(parse_token(b"fanout:0:9\r"), Some((0, 9)));
        assert_eq!(parse_token(b"<user3> hello"), None);
        assert_eq!(parse_token(b"fanout:x:1"), None);
        assert_eq!(parse_token(b"fanout:1:2x"), None);
        assert_eq!(parse_token(b"[12:00:00] <guest-1> 7:123"), None);
        assert_eq!(parse_token(b"fanout:1:99999999999999999999"), None);
        assert_eq!(parse_token(b"fanout\r"), None);
    }

    #[test]
    fn websocket_frames_are_cut_whole_or_not_at_all() {
        let mut stream = vec![0x81, 5];
        stream.extend_from_slice(b"hello");
        stream.extend_from_slice(&[0x81, 126, 0x01, 0x00]);
        stream.extend_from_slice(&[b'x'; 256]);
        assert_eq!(next_message(&stream, true), Some((7, &b"hello"[..])));
        let (used, body) = next_message(&stream[7..], true).unwrap();
        assert_eq!((used, body.len()), (260, 256));
        assert_eq!(next_message(&stream[7..100], true), None);
        assert_eq!(next_message(b"line\nrest", false), Some((5, &b"line"[..])));
        let frame = client_frame(b"fanout:1:2", 7);
        assert_eq!((frame[0], frame[1]), (0x81, 0x80 | 10));
    }
}
