//! Multi-user chat over a line protocol: any `nc` or `telnet` is a client.
//! `proto` says what lines mean, `room` holds rooms and fans messages out,
//! this module runs one connection.

pub mod client;
pub(crate) mod cluster;
pub mod line;
pub mod outbox;
pub mod peer;
pub mod proto;
pub mod room;
pub mod web;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::{FutureExt, StreamExt};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::accept::{self, AcceptOptions};
use crate::endpoint::Endpoint;
use crate::frame::{Line, TolerantLines};
use crate::idle::Activity;
use crate::net::{Bound, Listener, PeerAddr, Stream};
use crate::options::{LimitDefaults, Limits, OptionError, at_least, clap_defaults, stream_only};
use crate::runner::{self, Extra, Service};
use crate::shutdown::Shutdown;
use crate::tls::{self, server::Tls};
use crate::units::{ByteSize, Count, Secs};
use line::Entry;
use outbox::{Outbox, Wire};
use proto::Command;
use room::{ClientId, Hub, Said};
use web::WebAt;

/// Default longest line a client may send.
pub const DEFAULT_MAX_LINE: usize = 4096;

/// Queued bytes past which a client is dropped at once, unless told
/// otherwise (more if a `--history` replay and `--max-line` need it).
/// Redis's pub/sub default.
pub const DEFAULT_QUEUE_HARD: usize = 32 << 20;

/// Queued bytes a client may stay above only for the grace period. A reader
/// that keeps reading falls up to a whole burst behind (11.7 MB in 0.06 s
/// measured) and catches up well within it.
pub const DEFAULT_QUEUE_SOFT: usize = 8 << 20;

/// How long a client may stay above the soft limit.
pub const DEFAULT_QUEUE_GRACE: Duration = Duration::from_secs(10);

/// Unsent bytes the kernel may hold for one client.
const UNSENT_LIMIT: u32 = 256 * 1024;

/// A burst of messages is sent to the room as one entry of at most about
/// this many bytes, so one entry stays a modest share of the outbox.
const BATCH_BYTES: usize = 64 * 1024;

/// How long a leaving client's last lines may take to flush.
const FAREWELL_FLUSH: Duration = Duration::from_secs(1);

/// Messages replayed to someone joining a room, unless told otherwise.
pub const DEFAULT_HISTORY: usize = 20;

/// Clients connected at once, unless told otherwise.
pub const DEFAULT_MAX_CONNS: usize = 10_000;

/// Lines per second each client may send on average, unless told otherwise.
pub const DEFAULT_RATE: f64 = 20.0;

/// Lines a client may send in one burst, unless told otherwise.
pub const DEFAULT_BURST: f64 = 50.0;

/// The chat server's options: flags of `sockit chat serve`, keys of `[chat]`.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// Messages replayed to someone joining a room.
    #[arg(long, value_name = "N", default_value_t = Count(DEFAULT_HISTORY), allow_negative_numbers = true)]
    pub history: Count,
    /// Longest line a client may send; longer ones are refused.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_MAX_LINE))]
    pub max_line: ByteSize,
    /// Lines per second each client may send on average (0 = no limit).
    #[arg(long, value_name = "LINES_PER_SEC", default_value_t = DEFAULT_RATE, allow_negative_numbers = true)]
    pub rate: f64,
    /// Lines a client may send in one burst.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BURST, allow_negative_numbers = true)]
    pub burst: f64,
    /// A client this far behind (bytes queued for it) is dropped at once.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_QUEUE_HARD))]
    pub queue_hard: ByteSize,
    /// A client this far behind is dropped if it stays so for --queue-grace.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(DEFAULT_QUEUE_SOFT))]
    pub queue_soft: ByteSize,
    /// How long a client may stay past --queue-soft.
    #[arg(long, value_name = "SECS", default_value_t = Secs(DEFAULT_QUEUE_GRACE), allow_negative_numbers = true)]
    pub queue_grace: Secs,
    /// Also serve the chat page, and its WebSocket at /ws, here (e.g.
    /// 127.0.0.1:8088); it speaks TLS when chat does.
    #[arg(long, value_name = "EP")]
    pub web: Option<WebAt>,
    /// An origin besides the page's own whose pages may open the WebSocket
    /// (repeatable; * allows any).
    #[arg(long, value_name = "ORIGIN")]
    pub web_origin: Vec<String>,
    /// Ping WebSocket clients this often; one silent for two of these is
    /// closed (0 = never).
    #[arg(long, value_name = "SECS", default_value_t = Secs(web::DEFAULT_PING), allow_negative_numbers = true)]
    pub web_ping: Secs,
    /// Share rooms with every server on this Redis and --cluster:
    /// redis://[:PASSWORD@]HOST:PORT[/DB].
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// The cluster's name, which prefixes its Redis keys.
    #[arg(long, value_name = "NAME", default_value = cluster::DEFAULT_CLUSTER)]
    pub cluster: String,
    /// `--tls` and its certificate; in a config section, a `tls` table.
    #[command(flatten)]
    pub tls: Tls,
    /// Server limits; past `max_conns` a client is told the server is full,
    /// and `idle_timeout` counts the time since its last line.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits<Defaults>,
}

impl Default for Options {
    fn default() -> Self {
        clap_defaults()
    }
}

/// Chat's limits: ten thousand clients, and a silent one is kept.
#[derive(Debug, Clone)]
pub struct Defaults;

impl LimitDefaults for Defaults {
    const MAX_CONNS: usize = DEFAULT_MAX_CONNS;
    const IDLE_TIMEOUT: Secs = Secs::from_secs(0);
}

impl Options {
    /// The server's config, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        Ok(Config {
            history: self.history.0,
            max_line: self.max_line.0,
            max_conns: self.limits.max_conns()?,
            rate: at_least("rate", self.rate, 0.0)?,
            burst: at_least("burst", self.burst, 1.0)?,
            queue: self.queue()?,
            idle_timeout: self.limits.idle(),
            web_origins: self.web_origin.clone(),
            web_ping: self.web_ping.nonzero(),
            redis: self.redis_url()?,
            cluster: self.cluster.clone(),
            tls: None,
        })
    }

    fn redis_url(&self) -> Result<Option<String>, OptionError> {
        let Some(url) = &self.redis else {
            return Ok(None);
        };
        if let Err(err) = redis::Client::open(url.as_str()) {
            return Err(OptionError::new("redis", format!("not a Redis URL: {err}")));
        }
        if self.cluster.is_empty() || self.cluster.contains(char::is_whitespace) {
            return Err(OptionError::new("cluster", "must be a name without spaces"));
        }
        Ok(Some(url.clone()))
    }

    /// As `sockit serve` runs it: with the page at its default place
    /// unless the section says otherwise.
    pub fn in_suite(&self) -> Options {
        Options {
            web: Some(
                self.web
                    .clone()
                    .unwrap_or_else(|| WebAt::At(web::default_web())),
            ),
            ..self.clone()
        }
    }

    fn queue(&self) -> Result<outbox::Bound, OptionError> {
        let (hard, soft) = (self.queue_hard.0, self.queue_soft.0);
        if soft > hard {
            return Err(OptionError::new(
                "queue_soft",
                format!("must not exceed --queue-hard ({})", self.queue_hard),
            ));
        }
        Ok(outbox::Bound {
            hard,
            soft,
            grace: self.queue_grace.0,
        })
    }

    /// Its one entry for the runner, whether run alone or in the suite.
    pub fn service(&self, endpoints: Vec<Endpoint>) -> Result<Service, OptionError> {
        let endpoints = stream_only("chat", endpoints)?;
        let web = match &self.web {
            Some(WebAt::At(ep)) => stream_only("web", vec![ep.clone()])?,
            _ => Vec::new(),
        };
        let all: Vec<Endpoint> = endpoints.iter().chain(&web).cloned().collect();
        let tls = self.tls.server(&all, &[])?;
        let cfg = Config {
            tls: tls.clone(),
            ..self.config()?
        };
        let drain = self.limits.drain();
        let chat = Arc::new(Chat::new(cfg));
        let mut service =
            Service::shared("chat", endpoints, drain, chat.clone(), run_bound).with_tls(tls);
        if chat.hub.uplink().is_some() {
            let chat = chat.clone();
            service = service.beside(Arc::new(move |sd| Box::pin(cluster::run(chat.clone(), sd))));
        }
        if let Some(endpoint) = web.into_iter().next() {
            service = service.also(Extra {
                endpoint,
                scheme: "http",
                start: runner::starter(chat, web::run_bound),
            });
        }
        Ok(service)
    }
}

/// How the chat server behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Messages replayed to someone joining a room.
    pub history: usize,
    /// Longest line accepted from a client.
    pub max_line: usize,
    /// Clients connected at once; more are told the server is full.
    pub max_conns: usize,
    /// Lines per second a client may send on average (0 = no limit).
    pub rate: f64,
    /// Lines a client may send in a burst.
    pub burst: f64,
    /// How far behind a client may fall before it is disconnected.
    pub queue: outbox::Bound,
    /// Close a client that has sent nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// Origins besides the page's own allowed to open the WebSocket.
    pub web_origins: Vec<String>,
    /// How often WebSocket clients are pinged.
    pub web_ping: Option<Duration>,
    /// The Redis whose cluster of servers shares these rooms.
    pub redis: Option<String>,
    /// That cluster's name.
    pub cluster: String,
    /// Terminate TLS on every connection.
    pub tls: Option<Arc<tls::server::Server>>,
}

impl Config {
    /// The outbound bound for one client: `queue`, with the hard limit
    /// raised if a history replay plus a few of the longest lines would not
    /// fit in it.
    fn outbox_bound(&self) -> outbox::Bound {
        let line = self.max_line + 128;
        let replay = (self.history + 16).saturating_mul(line);
        outbox::Bound {
            hard: self.queue.hard.max(replay),
            ..self.queue
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Options::default().config().expect("the defaults are valid")
    }
}

/// One chat server: its config and the rooms that all of its endpoints,
/// line protocol and web page alike, share.
pub struct Chat {
    /// Checked once, shared by every connection.
    pub cfg: Config,
    /// Rooms, nicks and history.
    pub hub: Hub,
}

impl Chat {
    /// An empty hub sized by `cfg`, linked to its cluster if it has one.
    pub fn new(cfg: Config) -> Self {
        let uplink = cfg.redis.as_deref().map(|url| {
            Arc::new(cluster::Uplink::new(url, &cfg.cluster).expect("checked by Options::config"))
        });
        let hub = Hub::linked(cfg.history, cfg.max_conns, uplink);
        Chat { cfg, hub }
    }
}

/// Serves a bound socket until shutdown; chat needs a stream.
pub async fn run_bound(chat: Arc<Chat>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    run(chat, bound.into_stream("chat")?, shutdown).await
}

/// Serves chat clients until shutdown.
pub async fn run(chat: Arc<Chat>, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    // The hub turns clients past --max-conns away with a message; the
    // accept loop's cap only bounds the sockets that costs.
    let mut opts = AcceptOptions::new("chat", accept_cap(&chat.cfg), Level::DEBUG);
    opts.tls = chat.cfg.tls.clone();
    accept::serve(listener, shutdown, opts, move |stream, peer| {
        let chat = chat.clone();
        async move { serve_client(stream, peer, &chat).await }
    })
    .await
}

/// Sockets an endpoint accepts at once: room over `--max-conns` to tell
/// the extra clients that the server is full.
fn accept_cap(cfg: &Config) -> usize {
    cfg.max_conns.saturating_add(cfg.max_conns / 10 + 16)
}

/// One line-protocol client's whole session on `stream`: the accept loop
/// runs it per connection, and the fuzz target on a socket pair.
pub async fn serve_client(stream: Stream, peer: PeerAddr, chat: &Chat) -> io::Result<()> {
    // Like a relay leg: what the kernel holds unsent for a client that
    // stopped reading is capped too, so it is found behind sooner.
    let _ = stream.limit_unsent(UNSENT_LIMIT);
    let stream = Arc::new(stream);
    let out = Arc::new(Outbox::new(
        stream.clone(),
        Wire::Text,
        chat.cfg.outbox_bound(),
    ));
    // No read buffer until the client sends something: 10,000 idle clients
    // would otherwise hold 80 MB of empty buffers.
    let lines = FramedRead::with_capacity(&*stream, TolerantLines::new(chat.cfg.max_line), 0);
    session(chat, peer, &stream, &out, lines, std::future::pending()).await
}

/// A session over any transport: lines come from `lines`, go out through
/// `out` (which writes `stream`), and `beside` runs alongside until it
/// fails (a WebSocket's pings; a line client has nothing there).
pub(crate) async fn session<L>(
    chat: &Chat,
    peer: PeerAddr,
    stream: &Stream,
    out: &Arc<Outbox>,
    lines: L,
    beside: impl Future<Output = io::Error>,
) -> io::Result<()>
where
    L: futures_util::Stream<Item = io::Result<Line>> + Unpin,
{
    let (cfg, hub) = (&chat.cfg, &chat.hub);
    let kick = CancellationToken::new();
    let Ok((id, nick)) = hub.enter(out.clone(), kick.clone(), peer) else {
        let why = format!(
            "! server is full ({} clients), try again later",
            cfg.max_conns
        );
        let _ = out.push(&Entry::line(line::Line::error(why)));
        return Box::pin(farewell(stream, out, CLOSE_TRY_LATER, "server is full")).await;
    };
    tracing::debug!(%nick, "joined");
    // The idle timer is boxed, so the many clients without one do not each
    // carry its space.
    let heard = cfg.idle_timeout.map(|_| Activity::new());
    let reader = async {
        let lines = read_lines(lines, chat, id, heard.as_ref());
        match &heard {
            Some(heard) => Box::pin(heard.bound(cfg.idle_timeout, lines)).await,
            None => lines.await,
        }
    };
    let end = tokio::select! {
        res = reader => End::Reader(res),
        err = out.write_when_full() => End::Writer(err),
        err = beside => End::Writer(err),
        () = kick.cancelled() => End::Kicked,
    };
    if let End::Reader(Err(err)) = &end
        && err.kind() == io::ErrorKind::TimedOut
    {
        hub.notice(
            id,
            line::Line::error(format!("! {err} without a line, closing")),
        );
    }
    if let End::Writer(err) = &end
        && err.get_ref().is_some_and(|e| e.is::<outbox::Behind>())
    {
        // Its own task found it over the soft limit for the whole grace
        // period: the same end as when a fan-out finds it too far behind.
        hub.drop_behind(id);
        return Ok(());
    }
    hub.leave(id);
    match end {
        // What is still queued (a goodbye, an error) gets a moment to go.
        End::Reader(res) => {
            let (code, why) = match &res {
                Ok(()) => (CLOSE_NORMAL, "bye"),
                Err(_) => (CLOSE_POLICY, "closing"),
            };
            Box::pin(farewell(stream, out, code, why)).await?;
            res
        }
        End::Writer(err) => Err(err),
        End::Kicked => Ok(()),
    }
}

/// WebSocket close codes (RFC 6455 section 7.4.1).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TRY_LATER: u16 = 1013;

/// Gives what is still queued a moment to go, then closes the write side:
/// for a WebSocket client after a close frame with `code`.
async fn farewell(stream: &Stream, out: &Outbox, code: u16, why: &str) -> io::Result<()> {
    if out.websocket() {
        let _ = out.push(&Entry::raw(line::close_frame(code, why)));
    }
    if let Ok(Ok(())) = tokio::time::timeout(FAREWELL_FLUSH, out.drain()).await {
        let _ = stream.shutdown_write();
        if out.websocket() {
            // Closing a socket with unread bytes resets it, and a reset
            // can destroy the close frame before the peer reads it: so,
            // as nginx's lingering close does, read until the peer closes
            // too, for a moment at most.
            // On the heap: on the stack it would grow every session's
            // future, held by each of thousands of idle clients.
            let mut sink = vec![0u8; 4096];
            let _ = tokio::time::timeout(FAREWELL_FLUSH, async {
                while let Ok(n) = stream.read_drained(&mut sink).await
                    && n > 0
                {}
            })
            .await;
        }
    }
    Ok(())
}

/// How a connection ended.
enum End {
    Reader(io::Result<()>),
    Writer(io::Error),
    Kicked,
}

async fn read_lines<L>(
    mut lines: L,
    chat: &Chat,
    id: ClientId,
    heard: Option<&Activity>,
) -> io::Result<()>
where
    L: futures_util::Stream<Item = io::Result<Line>> + Unpin,
{
    let (cfg, hub) = (&chat.cfg, &chat.hub);
    let mut bucket = Bucket::new(cfg.rate, cfg.burst);
    let mut burst = Burst::default();
    loop {
        let line = match next_line(&mut lines, &mut burst, hub, id).await {
            Some(Ok(line)) => {
                if let Some(heard) = heard {
                    heard.touch();
                }
                line
            }
            Some(Err(err)) => {
                burst.flush(hub, id);
                return Err(err);
            }
            None => break,
        };
        let text = match line {
            Line::Text(bytes) => proto::defuse(String::from_utf8_lossy(&bytes).into_owned()),
            Line::TooLong => {
                let why = format!("! line too long (max {} bytes), not sent", cfg.max_line);
                burst.notice(hub, id, line::Line::error(why));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match bucket.take() {
            Take::Ok => {}
            Take::FirstDrop => {
                burst.notice(
                    hub,
                    id,
                    line::Line::error("! slow down: lines are being dropped"),
                );
                continue;
            }
            Take::Drop => continue,
        }
        match proto::parse(&text) {
            Ok(Command::Nick(nick)) if hub.uplink().is_some() => {
                burst.flush(hub, id);
                if let Err(e) = rename_in_cluster(hub, id, &nick).await {
                    hub.notice(id, line::Line::error(format!("! {e}")));
                }
            }
            Ok(cmd) => {
                if !run_command(hub, id, cmd, &mut burst) {
                    return Ok(());
                }
            }
            Err(e) => burst.notice(hub, id, line::Line::error(format!("! {e}"))),
        }
    }
    burst.flush(hub, id);
    Ok(())
}

/// The next line from the client. Messages gather in `burst` while more
/// input is at hand and go to the room before the reader waits.
async fn next_line<L>(
    lines: &mut L,
    burst: &mut Burst,
    hub: &Hub,
    id: ClientId,
) -> Option<io::Result<Line>>
where
    L: futures_util::Stream<Item = io::Result<Line>> + Unpin,
{
    // A WebSocket message of a million newlines is a million lines with no
    // read between them to make this task yield: without a yield point of
    // its own, the rest of the room would wait for all of them.
    tokio::task::consume_budget().await;
    if let Some(next) = lines.next().now_or_never() {
        return next;
    }
    if !burst.is_empty() {
        // Let the runtime poll for I/O once first: lines the client is
        // still writing then join this burst instead of costing every
        // listener another write (Redis likewise writes replies only once
        // an event-loop pass is done).
        tokio::task::yield_now().await;
        if let Some(next) = lines.next().now_or_never() {
            return next;
        }
        burst.flush(hub, id);
    }
    lines.next().await
}

/// Messages read but not yet sent to the room.
#[derive(Default)]
struct Burst {
    said: Vec<Said>,
    /// About what the rendered batch will take: the text plus its stamp,
    /// nick and bookkeeping, so a flood of one-letter lines is bounded too.
    bytes: usize,
}

/// What a message adds to its batch beyond its text.
const LINE_COST: usize = 64;

impl Burst {
    fn is_empty(&self) -> bool {
        self.said.is_empty()
    }

    fn push(&mut self, hub: &Hub, id: ClientId, said: Said) {
        self.bytes += said.text.len() + LINE_COST;
        self.said.push(said);
        if self.bytes >= BATCH_BYTES {
            self.flush(hub, id);
        }
    }

    fn flush(&mut self, hub: &Hub, id: ClientId) {
        if !self.said.is_empty() {
            // Taken, not cleared: a flood must not leave its capacity behind.
            hub.say(id, &std::mem::take(&mut self.said));
            self.bytes = 0;
        }
    }

    /// A line to the client alone, after the messages it typed before it,
    /// so replies and room lines keep the order they were typed in.
    fn notice(&mut self, hub: &Hub, id: ClientId, line: line::Line) {
        self.flush(hub, id);
        hub.notice(id, line);
    }
}

/// `/nick` on a cluster node: the nick must be free on every node, which
/// only Redis can say for certain.
async fn rename_in_cluster(hub: &Hub, id: ClientId, nick: &str) -> Result<(), proto::ProtoError> {
    let Some(room) = hub.nick_free(id, nick)? else {
        return Ok(());
    };
    if let Some(up) = hub.uplink()
        && up.claim(nick, &room).await == cluster::Claim::Taken
    {
        return Err(proto::ProtoError(format!("nick {nick} is taken")));
    }
    hub.rename(id, nick)
}

/// Runs one command; `false` once the client has said `/quit`.
fn run_command(hub: &Hub, id: ClientId, cmd: Command, burst: &mut Burst) -> bool {
    // Replies and room lines keep the order they were typed in.
    if !matches!(cmd, Command::Say(_) | Command::Me(_)) {
        burst.flush(hub, id);
    }
    let res = match cmd {
        Command::Say(text) => {
            burst.push(
                hub,
                id,
                Said {
                    text,
                    action: false,
                },
            );
            Ok(())
        }
        Command::Me(text) => {
            burst.push(hub, id, Said { text, action: true });
            Ok(())
        }
        Command::Quit => {
            hub.notice(id, line::Line::info("* bye"));
            return false;
        }
        Command::Nick(nick) => hub.rename(id, &nick),
        Command::Msg(to, text) => hub.private(id, &to, &text),
        Command::Join(room) => {
            hub.join(id, &room);
            Ok(())
        }
        Command::Rooms => {
            hub.rooms(id);
            Ok(())
        }
        Command::Who => {
            hub.who(id);
            Ok(())
        }
        Command::Echo(on) => {
            hub.set_echo(id, on);
            Ok(())
        }
        Command::Tags(on) => {
            hub.set_tags(id, on);
            Ok(())
        }
        Command::Resume(room, after) => {
            hub.resume(id, &room, after.as_deref());
            Ok(())
        }
        Command::Help => {
            for text in proto::HELP {
                hub.notice(id, line::Line::info(format!("* {text}")));
            }
            Ok(())
        }
    };
    if let Err(e) = res {
        hub.notice(id, line::Line::error(format!("! {e}")));
    }
    true
}

/// Per-client flood control: `rate` lines per second on average, bursts of
/// up to `burst`.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    dropping: bool,
}

enum Take {
    Ok,
    FirstDrop,
    Drop,
}

impl Bucket {
    fn new(rate: f64, burst: f64) -> Self {
        Bucket {
            rate,
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            last: Instant::now(),
            dropping: false,
        }
    }

    fn take(&mut self) -> Take {
        if self.rate <= 0.0 {
            return Take::Ok;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.dropping = false;
            Take::Ok
        } else if self.dropping {
            Take::Drop
        } else {
            // One notice per run of dropped lines, not one per line.
            self.dropping = true;
            Take::FirstDrop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_bursts_refills_and_notices_once() {
        let mut b = Bucket::new(2.0, 3.0);
        for _ in 0..3 {
            assert!(matches!(b.take(), Take::Ok));
        }
        assert!(matches!(b.take(), Take::FirstDrop));
        assert!(matches!(b.take(), Take::Drop));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(
            matches!(b.take(), Take::Ok),
            "one token back after 0.5 s at 2/s"
        );
        assert!(
            matches!(b.take(), Take::FirstDrop),
            "a new run of drops gets a notice"
        );
    }

    #[tokio::test]
    async fn a_flood_of_tiny_lines_makes_batches_a_listener_can_take() {
        let hub = Hub::new(0, 10);
        // A tight bound: batching, not room to spare, keeps it connected.
        let (out, listener) = outbox::tests::pair(1 << 20).await;
        let kick = CancellationToken::new();
        hub.enter(out.clone(), kick.clone(), PeerAddr::Unix)
            .unwrap();
        let (talker_out, _talker) = outbox::tests::pair(usize::MAX).await;
        let (talker, _) = hub
            .enter(talker_out, CancellationToken::new(), PeerAddr::Unix)
            .unwrap();
        let mut burst = Burst::default();
        let mut heard = 0;
        let mut listen = |out: &Outbox| {
            heard += outbox::tests::received(&listener).matches('\n').count();
            // What waited for room, as the client's task would.
            out.drain().now_or_never();
            heard
        };
        for _ in 0..70_000 {
            let said = Said {
                text: "a".into(),
                action: false,
            };
            burst.push(&hub, talker, said);
            listen(&out);
        }
        burst.flush(&hub, talker);
        // Greeting and two joins, then the flood.
        for _ in 0..10_000 {
            if listen(&out) == 3 + 70_000 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(listen(&out), 3 + 70_000, "every line arrived");
        assert!(!kick.is_cancelled(), "the listener kept up");
    }

    #[test]
    fn rate_zero_turns_flood_control_off() {
        let mut b = Bucket::new(0.0, 1.0);
        assert!((0..1000).all(|_| matches!(b.take(), Take::Ok)));
    }
}
