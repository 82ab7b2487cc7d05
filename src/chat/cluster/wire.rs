//! What nodes say to each other through Redis: the key layout, the events
//! published on the cluster's channel, and the Lua scripts that make a
//! message's history entry and its announcement one step.
//!
//! Every key starts with the cluster's name, so several clusters can share
//! one Redis. For cluster `sockit`:
//!
//! | key                 | type    | holds                                        |
//! |---------------------|---------|----------------------------------------------|
//! | `sockit:ev`         | channel | every event, as `IDS\nJSON`                  |
//! | `sockit:room:ROOM`  | stream  | the room's last `--history` messages         |
//! | `sockit:rooms`      | set     | rooms that have a stream                     |
//! | `sockit:nodes`      | set     | nodes that may be alive                      |
//! | `sockit:who:NODE`   | hash    | that node's nicks and their rooms; expires   |

use serde::{Deserialize, Serialize};

/// One cluster's key names.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn channel(&self) -> String {
        format!("{}:ev", self.prefix)
    }

    pub fn stream(&self, room: &str) -> String {
        format!("{}:room:{room}", self.prefix)
    }

    pub fn rooms(&self) -> String {
        format!("{}:rooms", self.prefix)
    }

    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }

    pub fn who(&self, node: &str) -> String {
        format!("{}:who:{node}", self.prefix)
    }
}

/// The field of a node's `who` hash that keeps the hash in being while the
/// node has nobody connected. No nick is empty.
pub const ALIVE_FIELD: &str = "";

/// Something one node tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k")]
pub enum Event {
    /// Messages to a room, in the order they were said; `a` marks `/me`.
    #[serde(rename = "m")]
    Said {
        r: String,
        f: String,
        t: i64,
        l: Vec<(bool, String)>,
    },
    /// `u` is now in room `r` (arrived, or moved there).
    #[serde(rename = "j")]
    Join { u: String, r: String },
    /// `u` left the cluster from room `r`; `w` says why, if not by choice.
    #[serde(rename = "l")]
    Leave { u: String, r: String, w: String },
    /// `o` is now known as `u`, in room `r`.
    #[serde(rename = "c")]
    Nick { o: String, u: String, r: String },
    /// A private line from `f` to `u`.
    #[serde(rename = "p")]
    Private {
        f: String,
        u: String,
        x: String,
        t: i64,
    },
    /// Everyone on the sending node, nick to room: sent when it links up.
    #[serde(rename = "r")]
    Roster {
        p: std::collections::HashMap<String, String>,
    },
    /// The sending node is alive.
    #[serde(rename = "b")]
    Beat,
    /// The sending node is shutting down: everyone on it is gone.
    #[serde(rename = "q")]
    Quit,
}

#[derive(Serialize)]
struct Outgoing<'a> {
    n: &'a str,
    #[serde(flatten)]
    ev: &'a Event,
}

#[derive(Deserialize)]
struct Incoming {
    n: String,
    #[serde(flatten)]
    ev: Event,
}

/// An event as published by `node`: the stream ids of its messages (none
/// for other events), a newline, the event as JSON.
pub fn encode(node: &str, ev: &Event) -> String {
    format!("\n{}", json(node, ev))
}

/// The event as JSON alone, for the say script, which puts the ids first.
pub fn json(node: &str, ev: &Event) -> String {
    serde_json::to_string(&Outgoing { n: node, ev }).expect("events serialise")
}

/// A published event: who sent it, the stream ids the publishing script
/// gave its messages, and the event.
#[derive(Debug, PartialEq, Eq)]
pub struct Heard {
    pub node: String,
    pub ids: Vec<StreamId>,
    pub ev: Event,
}

/// Reads what [`encode`] or the say script published; `None` for anything
/// else on the channel.
pub fn decode(payload: &[u8]) -> Option<Heard> {
    let text = std::str::from_utf8(payload).ok()?;
    let (ids, json) = text.split_once('\n')?;
    let env: Incoming = serde_json::from_str(json).ok()?;
    let ids = if ids.is_empty() {
        Vec::new()
    } else {
        ids.split(',')
            .map(StreamId::parse)
            .collect::<Option<Vec<_>>>()?
    };
    Some(Heard {
        node: env.n,
        ids,
        ev: env.ev,
    })
}

/// A Redis stream entry id, `MS-SEQ`, compared as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    pub fn parse(s: &str) -> Option<StreamId> {
        let (ms, seq) = s.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, seq.parse().ok()?))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// One message as a room's stream holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: StreamId,
    pub node: String,
    pub from: String,
    pub action: bool,
    pub text: String,
    pub t: i64,
}

impl Stored {
    /// An entry of XRANGE's reply, if it is one of ours.
    pub fn from_entry(
        id: &str,
        fields: &std::collections::HashMap<String, String>,
    ) -> Option<Self> {
        Some(Stored {
            id: StreamId::parse(id)?,
            node: fields.get("n")?.clone(),
            from: fields.get("f")?.clone(),
            action: fields.get("a")? == "1",
            text: fields.get("x")?.clone(),
            t: fields.get("t")?.parse().ok()?,
        })
    }
}

/// Adds each message to the room's capped stream and publishes the event
/// with the ids they got, in one step: every node hears a room's messages
/// in the stream's order, and a node catching up after an outage can tell
/// by id what it already has.
///
/// KEYS: stream, channel, rooms set. ARGV: history, stream TTL (ms), room,
/// node, from, time, the event's JSON, then `a`, `text` per message.
pub const SAY: &str = r"
local ids = {}
local keep = tonumber(ARGV[1])
if keep > 0 then
  for i = 8, #ARGV, 2 do
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', keep, '*',
      'n', ARGV[4], 'f', ARGV[5], 'a', ARGV[i], 'x', ARGV[i + 1], 't', ARGV[6])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SADD', KEYS[3], ARGV[3])
end
redis.call('PUBLISH', KEYS[2], table.concat(ids, ',') .. '\n' .. ARGV[7])
return #ids
";

/// Takes a nick for this node unless a live node holds it; forgets nodes
/// whose presence expired on the way.
///
/// KEYS: nodes set. ARGV: key prefix, this node, nick, room.
pub const CLAIM: &str = r"
local me = ARGV[2]
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= me then
    local who = ARGV[1] .. ':who:' .. node
    if redis.call('EXISTS', who) == 0 then
      redis.call('SREM', KEYS[1], node)
    elseif redis.call('HEXISTS', who, ARGV[3]) == 1 then
      return 0
    end
  end
end
redis.call('HSET', ARGV[1] .. ':who:' .. me, ARGV[3], ARGV[4])
return 1
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_and_without_ids() {
        let ev = Event::Said {
            r: "lobby".into(),
            f: "alice".into(),
            t: 5,
            l: vec![(false, "hi, \"you\"\nthere".into()), (true, "waves".into())],
        };
        let plain = encode("n1", &ev);
        assert_eq!(
            decode(plain.as_bytes()),
            Some(Heard {
                node: "n1".into(),
                ids: vec![],
                ev: ev.clone()
            })
        );
        let scripted = format!("1-0,1-1{plain}");
        let heard = decode(scripted.as_bytes()).unwrap();
        assert_eq!(heard.ids, vec![StreamId(1, 0), StreamId(1, 1)]);
        assert_eq!(
            decode(encode("n", &Event::Beat).as_bytes()).unwrap().ev,
            Event::Beat
        );
        assert_eq!(decode(b"garbage"), None);
        assert_eq!(decode(b"x-y\n{}"), None);
    }

    #[test]
    fn stream_ids_order_as_numbers() {
        assert!(StreamId::parse("10-0").unwrap() > StreamId::parse("9-99").unwrap());
        assert!(StreamId::parse("10-10").unwrap() > StreamId::parse("10-9").unwrap());
        assert_eq!(StreamId::parse("10"), None);
        assert_eq!(StreamId(3, 4).to_string(), "3-4");
    }
}
