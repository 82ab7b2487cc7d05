//! Rooms shared by several chat servers through Redis.
//!
//! Each node delivers its own clients' messages to its own clients at
//! once, as a lone server does, and hands a copy to its [`Uplink`]: a
//! bounded queue toward Redis that never makes a client wait. The link
//! task (`link`) writes that queue to Redis and turns what it hears from
//! the other nodes into hub operations. `wire` holds the key layout and
//! the scripts, `presence` who is on the other nodes.

mod link;
pub(crate) mod presence;
pub(crate) mod wire;

#[cfg(test)]
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

pub use link::run;
use wire::{Event, Keys};

/// The key prefix, unless `--cluster` says otherwise.
pub const DEFAULT_CLUSTER: &str = "sockit";

/// Events waiting for the link. Past it the newest are dropped, and
/// counted: the room on this node has them already, and a slow Redis must
/// not hold up the room or grow memory.
pub const QUEUE_EVENTS: usize = 4096;

/// How often a node says it is alive.
pub const BEAT: Duration = Duration::from_secs(3);

/// A node silent for this long is taken for dead, and its people leave.
pub const NODE_TTL: Duration = Duration::from_secs(10);

/// A room's stream goes this long after its last message.
const STREAM_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a node's clients reach the rest of the cluster through.
pub struct Uplink {
    /// This node's name: random, new at every start, so a restarted node
    /// is a new one and never mistakes the old one's entries for its own.
    pub node: String,
    keys: Keys,
    client: redis::Client,
    /// `HOST:PORT` of Redis, without the password, for the log.
    shown: String,
    tx: mpsc::Sender<Event>,
    rx: Mutex<Option<mpsc::Receiver<Event>>>,
    linked: AtomicBool,
    dropped: AtomicU64,
    /// The command connection while linked, for nick claims.
    conn: Mutex<Option<MultiplexedConnection>>,
    claim: redis::Script,
}

/// The answer to a nick claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    Granted,
    Taken,
    /// No link: only this node's nicks could be checked.
    Alone,
}

impl Uplink {
    /// An uplink to the Redis at `url` for the cluster `name`; it does not
    /// connect until the link task runs.
    pub fn new(url: &str, name: &str) -> redis::RedisResult<Uplink> {
        let client = redis::Client::open(url)?;
        let shown = client.get_connection_info().addr().to_string();
        let (tx, rx) = mpsc::channel(QUEUE_EVENTS);
        Ok(Uplink {
            node: node_name(),
            keys: Keys::new(name),
            client,
            shown,
            tx,
            rx: Mutex::new(Some(rx)),
            linked: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            conn: Mutex::new(None),
            claim: redis::Script::new(wire::CLAIM),
        })
    }

    pub fn linked(&self) -> bool {
        self.linked.load(Ordering::Acquire)
    }

    /// Events dropped because the queue toward Redis was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Hands `ev` to the link, never waiting. The hub sends nothing while
    /// there is no link: the link, once back, sends the whole roster
    /// afresh, and messages said meanwhile stay on this node.
    pub fn send(&self, ev: Event) {
        if self.tx.try_send(ev).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::chat_dropped("cluster_event");
            // A log line per power of two: a long stall is told, not
            // written out thousands of times.
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "queue toward redis full, dropping events (this server's rooms have them)"
                );
            }
        }
    }

    /// Takes `nick` across the cluster, unless a live node has it.
    pub async fn claim(&self, nick: &str, room: &str) -> Claim {
        let conn = crate::sync::lock(&self.conn).clone();
        let Some(mut conn) = conn else {
            return Claim::Alone;
        };
        let res: redis::RedisResult<i64> = self
            .claim
            .key(self.keys.nodes())
            .arg(self.keys.prefix())
            .arg(&self.node)
            .arg(nick)
            .arg(room)
            .invoke_async(&mut conn)
            .await;
        match res {
            Ok(1) => Claim::Granted,
            Ok(_) => Claim::Taken,
            Err(err) => {
                tracing::debug!(%err, "nick claim failed, checked on this server only");
                Claim::Alone
            }
        }
    }

    fn set_link(&self, conn: Option<MultiplexedConnection>) {
        self.linked.store(conn.is_some(), Ordering::Release);
        *crate::sync::lock(&self.conn) = conn;
    }
}

/// Six random hex digits: short enough for guest nicks, enough that two
/// nodes of one cluster do not share a name.
fn node_name() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 3];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// For tests of the hub: an uplink nothing reads.
#[cfg(test)]
pub fn detached() -> Arc<Uplink> {
    Arc::new(Uplink::new("redis://127.0.0.1:1", DEFAULT_CLUSTER).expect("a valid url"))
}
