//! The link task: connects to Redis, and while connected writes this
//! node's events there and hands the others' to the hub; when the link
//! breaks, tells the clients, backs off and connects again, catching up
//! from the rooms' streams.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, RedisResult};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::wire::{self, ALIVE_FIELD, Event, Stored};
use super::{BEAT, NODE_TTL, STREAM_TTL, Uplink};
use crate::chat::Chat;
use crate::shutdown::Shutdown;

/// The first wait before connecting again, doubled after each failure.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long connecting, or one reply, may take before the link counts as
/// broken.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// Events written to Redis in one round trip at most.
const BATCH_EVENTS: usize = 256;
/// Rooms whose streams are read when linking up.
const ROOMS_LOADED: usize = 10_000;
/// How far behind the channel this node may fall, told by how long its
/// own heartbeats take to come back. The Redis client reads the channel
/// into a queue without bound, so a node that cannot keep up must let go
/// of the link, and catch up from the streams, before the queue grows:
/// what Redis's own limit for slow subscribers would do.
const BEHIND_LIMIT: Duration = Duration::from_secs(10);

/// Keeps the node in its cluster until shutdown. Fails only if the very
/// first attempt is refused for a reason retrying cannot mend (a wrong
/// password): an unreachable Redis is waited for.
pub async fn run(chat: Arc<Chat>, shutdown: Shutdown) -> io::Result<()> {
    let Some(up) = chat.hub.uplink() else {
        return Ok(());
    };
    let Some(mut rx) = crate::sync::lock(&up.rx).take() else {
        return Ok(());
    };
    let expiry = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            chat.hub.expire_nodes(NODE_TTL);
        }
    };
    tokio::select! {
        res = links(&chat, &up, &mut rx, &shutdown) => res,
        () = expiry => Ok(()),
    }
}

async fn links(
    chat: &Chat,
    up: &Uplink,
    rx: &mut mpsc::Receiver<Event>,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let mut delay = BACKOFF_FIRST;
    let mut ever = false;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        tracing::info!(redis = %up.shown, node = %up.node, attempt, "connecting to redis");
        let mut linked = false;
        let res = tokio::select! {
            res = session(chat, up, rx, ever, &mut linked) => res,
            () = shutdown.stopping() => {
                leave_cluster(up).await;
                return Ok(());
            }
        };
        up.set_link(None);
        let Err(err) = res;
        if linked {
            ever = true;
            delay = BACKOFF_FIRST;
            chat.hub.link_changed(false);
            tracing::warn!(redis = %up.shown, err = %one_line(&err), retry_in = ?delay,
                "redis link lost, rooms stay on this server");
        } else if !ever && attempt == 1 {
            if fatal(&err) {
                return Err(io::Error::other(format!(
                    "redis at {} refused the login (check the password in the URL): {}",
                    up.shown,
                    one_line(&err)
                )));
            }
            tracing::warn!(redis = %up.shown, err = %one_line(&err), retry_in = ?delay,
                "redis unavailable, rooms stay on this server until it is back");
        } else {
            tracing::warn!(redis = %up.shown, err = %one_line(&err), retry_in = ?delay,
                "redis still unavailable");
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.stopping() => return Ok(()),
        }
        delay = (delay * 2).min(BACKOFF_MAX);
    }
}

/// Errors a retry would only repeat.
fn fatal(err: &RedisError) -> bool {
    matches!(
        err.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig
    ) || err
        .code()
        .is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH" || c == "NOPERM")
}

fn one_line(err: &RedisError) -> String {
    err.to_string().replace(['\n', '\r'], " ")
}

/// One connected stretch: set up, then relay both ways until the link
/// breaks. `linked` says whether it got as far as being linked.
async fn session(
    chat: &Chat,
    up: &Uplink,
    rx: &mut mpsc::Receiver<Event>,
    caught_up_before: bool,
    linked: &mut bool,
) -> Result<std::convert::Infallible, RedisError> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(REPLY_TIMEOUT));
    let mut cmd = up
        .client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    let mut pubsub = within(CONNECT_TIMEOUT, up.client.get_async_pubsub()).await?;
    within(REPLY_TIMEOUT, pubsub.subscribe(up.keys.channel())).await?;
    let mut heard = pubsub.into_on_message();
    let say: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(wire::SAY)
        .query_async(&mut cmd)
        .await?;
    // Events from before the break are stale: the roster below replaces
    // them, and messages said during the break stay on this node.
    while rx.try_recv().is_ok() {}
    up.set_link(Some(cmd.clone()));
    *linked = true;
    announce_roster(chat, up, &mut cmd).await?;
    load_others(chat, up, &mut cmd).await?;
    catch_up(chat, up, &mut cmd, caught_up_before).await?;
    chat.hub.link_changed(true);
    tracing::info!(redis = %up.shown, node = %up.node, cluster = up.keys.prefix(), "linked to redis");

    // When each heartbeat still on its way back was sent.
    let beats = std::sync::Mutex::new(std::collections::VecDeque::new());
    let behind = || {
        let beats = crate::sync::lock(&beats);
        beats
            .front()
            .is_some_and(|sent: &Instant| sent.elapsed() > BEHIND_LIMIT)
    };
    let reader = async {
        while let Some(msg) = heard.next().await {
            match wire::decode(msg.get_payload_bytes()) {
                Some(h) if h.node == up.node => match &h.ev {
                    Event::Said { r, .. } => {
                        if let Some(last) = h.ids.last() {
                            chat.hub.seen_own(r, *last);
                        }
                    }
                    Event::Beat => {
                        crate::sync::lock(&beats).pop_front();
                    }
                    _ => {}
                },
                Some(h) => chat.hub.remote(&h.node, &h.ids, h.ev),
                None => tracing::debug!("ignored a message on the cluster channel"),
            }
        }
        RedisError::from(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the subscription closed",
        ))
    };
    let writer = async {
        let mut beat = tokio::time::interval(BEAT);
        let mut batch = Vec::with_capacity(BATCH_EVENTS);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH_EVENTS) => {
                    if n == 0 {
                        return RedisError::from(io::Error::other("the hub went away"));
                    }
                    let mut pipe = redis::pipe();
                    for ev in batch.drain(..) {
                        write_event(&mut pipe, chat, up, &say, &ev);
                    }
                    if let Err(err) = pipe.query_async::<()>(&mut cmd).await {
                        if is_link_error(&err) {
                            return err;
                        }
                        tracing::warn!(err = %one_line(&err), "redis refused an event");
                    }
                }
                _ = beat.tick() => {
                    if behind() {
                        return RedisError::from(io::Error::other(
                            "fell behind the cluster channel",
                        ));
                    }
                    crate::sync::lock(&beats).push_back(Instant::now());
                    let mut pipe = redis::pipe();
                    alive(&mut pipe, up);
                    pipe.publish(up.keys.channel(), wire::encode(&up.node, &Event::Beat)).ignore();
                    if let Err(err) = pipe.query_async::<()>(&mut cmd).await {
                        return err;
                    }
                }
            }
        }
    };
    let err = tokio::select! {
        err = reader => err,
        err = writer => err,
    };
    Err(err)
}

async fn within<T>(limit: Duration, fut: impl Future<Output = RedisResult<T>>) -> RedisResult<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(RedisError::from(io::Error::new(
            io::ErrorKind::TimedOut,
            "no answer from redis",
        )))
    })
}

fn is_link_error(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_timeout()
        || err.is_connection_refusal()
}

/// This node's presence hash, refreshed: it expires unless renewed.
fn alive(pipe: &mut redis::Pipeline, up: &Uplink) {
    let who = up.keys.who(&up.node);
    pipe.hset(&who, ALIVE_FIELD, now_millis()).ignore();
    pipe.pexpire(&who, NODE_TTL.as_millis() as i64).ignore();
    pipe.sadd(up.keys.nodes(), &up.node).ignore();
}

fn write_event(pipe: &mut redis::Pipeline, chat: &Chat, up: &Uplink, say: &str, ev: &Event) {
    let who = up.keys.who(&up.node);
    match ev {
        Event::Said { r, f, t, l } => {
            let mut call = redis::cmd("EVALSHA");
            call.arg(say)
                .arg(3)
                .arg(up.keys.stream(r))
                .arg(up.keys.channel())
                .arg(up.keys.rooms())
                .arg(chat.cfg.history)
                .arg(STREAM_TTL.as_millis() as u64)
                .arg(r)
                .arg(&up.node)
                .arg(f)
                .arg(t)
                .arg(wire::json(&up.node, ev));
            for (action, text) in l {
                call.arg(if *action { "1" } else { "0" }).arg(text);
            }
            pipe.add_command(call).ignore();
            return;
        }
        Event::Join { u, r } => {
            pipe.hset(&who, u, r).ignore();
        }
        Event::Leave { u, .. } => {
            pipe.hdel(&who, u).ignore();
        }
        Event::Nick { o, u, r } => {
            pipe.hdel(&who, o).ignore();
            pipe.hset(&who, u, r).ignore();
        }
        Event::Private { .. } | Event::Roster { .. } | Event::Beat | Event::Quit => {}
    }
    pipe.publish(up.keys.channel(), wire::encode(&up.node, ev))
        .ignore();
}

/// Registers everyone on this node afresh and tells the other nodes.
async fn announce_roster(
    chat: &Chat,
    up: &Uplink,
    cmd: &mut MultiplexedConnection,
) -> RedisResult<()> {
    let people = chat.hub.local_people();
    let who = up.keys.who(&up.node);
    let mut pipe = redis::pipe();
    pipe.atomic().del(&who).ignore();
    pipe.hset(&who, ALIVE_FIELD, now_millis()).ignore();
    if !people.is_empty() {
        let pairs: Vec<(&String, &String)> = people.iter().collect();
        pipe.hset_multiple(&who, &pairs).ignore();
    }
    pipe.pexpire(&who, NODE_TTL.as_millis() as i64).ignore();
    pipe.sadd(up.keys.nodes(), &up.node).ignore();
    pipe.publish(
        up.keys.channel(),
        wire::encode(&up.node, &Event::Roster { p: people }),
    )
    .ignore();
    pipe.query_async(cmd).await
}

/// Everyone on the other live nodes, as their presence hashes hold it.
async fn load_others(chat: &Chat, up: &Uplink, cmd: &mut MultiplexedConnection) -> RedisResult<()> {
    let nodes: Vec<String> = redis::cmd("SMEMBERS")
        .arg(up.keys.nodes())
        .query_async(cmd)
        .await?;
    for node in nodes.iter().filter(|n| **n != up.node) {
        let mut people: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(up.keys.who(node))
            .query_async(cmd)
            .await?;
        if people.remove(ALIVE_FIELD).is_some() {
            chat.hub.remote(node, &[], Event::Roster { p: people });
        }
    }
    Ok(())
}

/// Reads each room's stream: the first time only into history, for
/// newcomers; after a break also to the clients, with what they missed,
/// each message once.
async fn catch_up(
    chat: &Chat,
    up: &Uplink,
    cmd: &mut MultiplexedConnection,
    deliver: bool,
) -> RedisResult<()> {
    let keep = chat.cfg.history;
    if keep == 0 {
        return Ok(());
    }
    let rooms: Vec<String> = redis::cmd("SMEMBERS")
        .arg(up.keys.rooms())
        .query_async(cmd)
        .await?;
    for room in rooms.iter().take(ROOMS_LOADED) {
        let key = up.keys.stream(room);
        let raw: Vec<(String, HashMap<String, String>)> = match chat.hub.watermark(room) {
            Some(seen) => {
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(format!("({seen}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(keep)
                    .query_async(cmd)
                    .await?
            }
            None => {
                let mut newest: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(keep)
                    .query_async(cmd)
                    .await?;
                newest.reverse();
                newest
            }
        };
        let stored: Vec<Stored> = raw
            .iter()
            .filter_map(|(id, fields)| Stored::from_entry(id, fields))
            .collect();
        chat.hub.caught_up(room, &up.node, &stored, deliver);
    }
    Ok(())
}

/// On shutdown: tells the other nodes at once that everyone here left.
async fn leave_cluster(up: &Uplink) {
    let Some(mut cmd) = crate::sync::lock(&up.conn).clone() else {
        return;
    };
    let mut pipe = redis::pipe();
    pipe.del(up.keys.who(&up.node)).ignore();
    pipe.srem(up.keys.nodes(), &up.node).ignore();
    pipe.publish(up.keys.channel(), wire::encode(&up.node, &Event::Quit))
        .ignore();
    let _ = within(REPLY_TIMEOUT, pipe.query_async::<()>(&mut cmd)).await;
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
