//! The chat hub: who is connected, which room each is in, room history, and
//! fan-out into each client's bounded outbound queue.
//!
//! One `std::sync::Mutex` guards it all: every critical section is a few map
//! operations and queue pushes with no `.await` inside, so an async mutex
//! would only add cost (mini-redis db.rs makes the same choice). The
//! sockets are written after it is released.
//!
//! Every message gets an id, `EPOCH-SEQ`: the hub's start time and one
//! sequence for all rooms. A client that lost its connection says
//! `/resume ROOM ID` with the last id it saw and is sent what followed,
//! no message twice; a gap marker says when some of that is no longer in
//! history (or the id is from before a restart).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::cluster::Uplink;
use super::cluster::presence::Presence;
use super::cluster::wire::{Event, Stored, StreamId};
use super::line::{Entry, Line, Outgoing};
use super::outbox::{Behind, Outbox};
use super::proto::ProtoError;
use crate::net::PeerAddr;

/// Identifies one connection.
pub type ClientId = u64;

/// A plain message or a `/me` action, before it is stamped and rendered.
#[derive(Debug)]
pub struct Said {
    /// What was typed.
    pub text: String,
    /// `/me`: rendered as `* nick text`.
    pub action: bool,
}

/// The room everyone starts in.
pub const LOBBY: &str = "lobby";

/// Joins and leaves are announced to rooms up to this size. Beyond it each
/// arrival would fan out to thousands (10,000 people arriving means 50
/// million lines), so only the person joining is told.
pub const ANNOUNCE_LIMIT: usize = 200;

/// Rooms that emptied and went whose last message id is remembered, so a
/// client resuming into one made again learns what it missed.
const GONE_ROOMS: usize = 10_000;

struct Client {
    nick: String,
    /// Named in the log when the hub drops the client, which happens in
    /// whichever connection's task did the fan-out.
    peer: PeerAddr,
    room: String,
    out: Arc<Outbox>,
    kick: CancellationToken,
    /// Whether its own messages come back to it. Off by default, as with
    /// IRC and `ncat --chat`: a client that only sends (a bot, `tail -f |
    /// nc`) would otherwise fill its queue with its own lines.
    echo: bool,
}

#[derive(Default)]
struct Room {
    /// Each member's queue, so a fan-out need not look clients up.
    members: HashMap<ClientId, Arc<Outbox>>,
    /// The last messages, oldest first, by sequence number.
    history: VecDeque<(u64, Outgoing)>,
    /// Messages posted since the room was made: a client counts unread
    /// messages by it.
    posted: u64,
    /// The highest sequence number of this room's messages that history
    /// no longer holds.
    forgotten: u64,
    /// In a cluster: the newest entry of the room's stream this node has,
    /// so a catch-up after a break brings each message once.
    stream_seen: Option<StreamId>,
}

#[derive(Default)]
struct State {
    next_id: ClientId,
    /// The last message's sequence number, in any room.
    seq: u64,
    clients: HashMap<ClientId, Client>,
    nicks: HashMap<String, ClientId>,
    rooms: BTreeMap<String, Room>,
    /// For rooms that emptied and went: their last message's number.
    gone: HashMap<String, u64>,
    /// What a room not in `gone` may have missed, once `gone` overflowed.
    gone_floor: u64,
    /// In a cluster: who is on the other nodes.
    presence: Presence,
    /// The clients were told the cluster link is lost, and not yet that it
    /// is back.
    told_lost: bool,
    /// Part of a cluster: rooms nobody here is in keep their history.
    mirror: bool,
}

/// The server is at `--max-conns`.
#[derive(Debug)]
pub struct Full;

/// Where a replay into a room starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    /// A plain join: the whole history.
    Start,
    /// A resume: what came after this message.
    Seen(u64),
    /// A resume with an id from another run of the server.
    Unknown,
}

/// Shared by every connection of one chat server.
pub struct Hub {
    state: Mutex<State>,
    history: usize,
    max_conns: usize,
    /// The first half of every message id: when this hub started.
    epoch: String,
    /// In a cluster: where events for the other nodes go.
    uplink: Option<Arc<Uplink>>,
}

/// Rooms a cluster node keeps history for though nobody here is in them,
/// so a newcomer is replayed what the cluster said. Beyond this many,
/// rooms with nobody here are not mirrored.
const MIRRORED_ROOMS: usize = 10_000;

impl Hub {
    /// An empty hub keeping `history` lines per room.
    pub fn new(history: usize, max_conns: usize) -> Self {
        Hub::linked(history, max_conns, None)
    }

    /// An empty hub that shares its rooms with a cluster through `uplink`.
    pub fn linked(history: usize, max_conns: usize, uplink: Option<Arc<Uplink>>) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let state = State {
            mirror: uplink.is_some(),
            ..State::default()
        };
        Hub {
            state: Mutex::new(state),
            history,
            max_conns,
            epoch: format!("{:x}", started.as_millis()),
            uplink,
        }
    }

    pub(crate) fn uplink(&self) -> Option<Arc<Uplink>> {
        self.uplink.clone()
    }

    /// Hands the cluster an event, made only if a link will take it: a
    /// lone server, or one whose link is down, pays nothing per message.
    fn tell(&self, ev: impl FnOnce() -> Event) {
        if let Some(up) = &self.uplink
            && up.linked()
        {
            up.send(ev());
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Registers a new client as `guest-N` in the lobby: greets it, replays
    /// the lobby's history and announces it. `kick` is cancelled if the hub
    /// drops the client for falling behind.
    pub fn enter(
        &self,
        out: Arc<Outbox>,
        kick: CancellationToken,
        peer: PeerAddr,
    ) -> Result<(ClientId, String), Full> {
        self.update(|st, fan| {
            if st.clients.len() >= self.max_conns {
                return Err(Full);
            }
            // Someone may have taken the next guest name with /nick before
            // its guest came: that number is skipped. Each node names its
            // guests apart from the other nodes'.
            let (id, nick) = loop {
                st.next_id += 1;
                let id = st.next_id;
                let nick = match &self.uplink {
                    Some(up) => format!("guest-{}-{id}", up.node),
                    None => format!("guest-{id}"),
                };
                if !st.nicks.contains_key(&nick) && !st.presence.has_nick(&nick) {
                    break (id, nick);
                }
            };
            st.nicks.insert(nick.clone(), id);
            st.clients.insert(
                id,
                Client {
                    nick: nick.clone(),
                    peer,
                    room: LOBBY.to_string(),
                    out,
                    kick,
                    echo: false,
                },
            );
            let welcome = format!(
                "* welcome to sockit chat, you are {nick}; /nick NAME to change it, /help for commands"
            );
            send(st, id, Line::new("welcome", &format!("nick={nick}"), welcome), fan);
            self.enter_room(st, id, LOBBY, Since::Start, fan);
            self.tell(|| Event::Join {
                u: nick.clone(),
                r: LOBBY.to_string(),
            });
            Ok((id, nick))
        })
    }

    /// Removes a client (idempotent) and tells its room.
    pub fn leave(&self, id: ClientId) {
        self.update(|st, fan| {
            if let Some(c) = remove(st, id) {
                self.gone(st, c, "", fan);
            }
        });
    }

    /// Tells the room here, and the cluster, that `c` left.
    fn gone(&self, st: &mut State, c: Client, why: &str, fan: &mut Fanout) {
        announce(st, &c.room, None, left(&c.nick, &c.room, why), fan);
        self.tell(move || Event::Leave {
            u: c.nick,
            r: c.room,
            w: why.to_string(),
        });
    }

    /// Drops a client that fell too far behind, telling its room.
    pub fn drop_behind(&self, id: ClientId) {
        self.update(|_, fan| fan.dropped.push(id));
    }

    /// A line to this client only (errors, help, replies).
    pub fn notice(&self, id: ClientId, line: Line) {
        self.update(|st, fan| send(st, id, line, fan));
    }

    /// Plain messages and actions (`/me`) from one client to its room, in
    /// order. They go out as one shared entry: a burst read in one go costs
    /// each listener one queue entry and one write, not one per line.
    pub fn say(&self, id: ClientId, said: &[Said]) {
        self.update(|st, fan| {
            let Some(c) = st.clients.get(&id) else { return };
            let (room, nick, echo) = (c.room.clone(), c.nick.clone(), c.echo);
            crate::metrics::chat_said(said.len());
            let millis = chrono::Utc::now().timestamp_millis();
            let lines = said.iter().map(|s| (s.action, s.text.as_str()));
            if let Some(entry) = self.post(st, &room, &nick, millis, lines) {
                let except = (!echo).then_some(id);
                broadcast_entry(st, &room, except, &entry, fan);
            }
            self.tell(move || Event::Said {
                r: room,
                f: nick,
                t: millis,
                l: said.iter().map(|s| (s.action, s.text.clone())).collect(),
            });
        });
    }

    /// Stamps messages said in `room` by `nick` at `millis` and keeps them
    /// in history: the entry to send the room.
    fn post<'a>(
        &self,
        st: &mut State,
        room: &str,
        nick: &str,
        millis: i64,
        said: impl ExactSizeIterator<Item = (bool, &'a str)>,
    ) -> Option<Outgoing> {
        let first = st.seq + 1;
        st.seq += said.len() as u64;
        let r = st.rooms.get_mut(room)?;
        let stamp = clock(millis);
        let lines: Vec<Line> = said
            .zip(first..)
            .map(|((action, text), seq)| {
                let tags = format!("id={}-{seq};room={room};from={nick};t={millis}", self.epoch);
                if action {
                    Line::message("me", &tags, &format!("[{stamp}] * {nick} "), text)
                } else {
                    Line::message("msg", &tags, &format!("[{stamp}] <{nick}> "), text)
                }
            })
            .collect();
        r.posted += lines.len() as u64;
        let kept_from = lines.len().saturating_sub(self.history);
        for (line, seq) in lines.iter().zip(first..).skip(kept_from) {
            if r.history.len() == self.history
                && let Some((old, _)) = r.history.pop_front()
            {
                r.forgotten = old;
            }
            r.history.push_back((seq, Entry::line(line.clone())));
        }
        if kept_from > 0 {
            r.forgotten = first + kept_from as u64 - 1;
        }
        Some(Entry::lines(lines))
    }

    /// `/echo on|off`.
    pub fn set_echo(&self, id: ClientId, on: bool) {
        self.update(|st, fan| {
            let Some(c) = st.clients.get_mut(&id) else {
                return;
            };
            c.echo = on;
            let line = if on {
                "* echo on: your own messages come back to you"
            } else {
                "* echo off: your own messages are not sent back"
            };
            let tags = if on { "echo=on" } else { "echo=off" };
            send(st, id, Line::new("echo", tags, line), fan);
        });
    }

    /// `/tags on|off`: every line from now on with its tags, or without.
    pub fn set_tags(&self, id: ClientId, on: bool) {
        self.update(|st, fan| {
            let Some(c) = st.clients.get(&id) else {
                return;
            };
            c.out.set_tagged(on);
            let line = if on {
                let text = "* tags on: every line starts with @kind=…;… for programs";
                Line::new("tags", &format!("nick={}", c.nick), text)
            } else {
                Line::info("* tags off")
            };
            send(st, id, line, fan);
        });
    }

    /// Whether `new` is free on this node and, as far as it has heard, on
    /// the others; with the client's room, for a cluster-wide claim.
    pub fn nick_free(&self, id: ClientId, new: &str) -> Result<Option<String>, ProtoError> {
        let st = self.lock();
        let Some(c) = st.clients.get(&id) else {
            return Ok(None);
        };
        if c.nick == new {
            return Ok(None);
        }
        if st.nicks.contains_key(new) || st.presence.has_nick(new) {
            return Err(taken(new));
        }
        Ok(Some(c.room.clone()))
    }

    /// Changes a client's nick if it is free.
    pub fn rename(&self, id: ClientId, new: &str) -> Result<(), ProtoError> {
        self.update(|st, fan| {
            match st.nicks.get(new) {
                Some(&owner) if owner == id => return Ok(()),
                Some(_) => return Err(taken(new)),
                None if st.presence.has_nick(new) => return Err(taken(new)),
                None => {}
            }
            let Some(c) = st.clients.get_mut(&id) else {
                return Ok(());
            };
            let old = std::mem::replace(&mut c.nick, new.to_string());
            let room = c.room.clone();
            st.nicks.remove(&old);
            st.nicks.insert(new.to_string(), id);
            broadcast(st, &room, renamed(&old, new, &room), fan);
            self.tell(move || Event::Nick {
                o: old,
                u: new.to_string(),
                r: room,
            });
            Ok(())
        })
    }

    /// Moves a client to another room.
    pub fn join(&self, id: ClientId, room: &str) {
        self.update(|st, fan| {
            if in_room(st, id, room) {
                send(
                    st,
                    id,
                    Line::info(format!("* you are already in #{room}")),
                    fan,
                );
                return;
            }
            self.switch(st, id, room, Since::Start, fan);
        });
    }

    /// `/resume ROOM [ID]`: into `room` (if not there already), with every
    /// message after `after` that history still holds (all of it without
    /// `after`), a gap marker if it no longer holds them all, and
    /// `resumed` last.
    pub fn resume(&self, id: ClientId, room: &str, after: Option<&str>) {
        let since = match after.map(|a| a.split_once('-')) {
            None => Since::Start,
            Some(Some((epoch, seq))) if epoch == self.epoch => {
                seq.parse().map_or(Since::Unknown, Since::Seen)
            }
            Some(_) => Since::Unknown,
        };
        self.update(|st, fan| {
            if in_room(st, id, room) {
                replay(st, id, room, since, fan);
            } else {
                self.switch(st, id, room, since, fan);
            }
            let line = Line::new(
                "resumed",
                &format!("room={room}"),
                format!("* resumed #{room}"),
            );
            send(st, id, line, fan);
        });
    }

    /// `/rooms`: every room with someone in it, anywhere in the cluster,
    /// its head count and (tagged) how many messages it has had here.
    pub fn rooms(&self, id: ClientId) {
        self.update(|st, fan| {
            let mut counts: BTreeMap<&str, (usize, u64)> = st
                .rooms
                .iter()
                .filter(|(name, r)| {
                    !r.members.is_empty() || *name == LOBBY || self.uplink.is_none()
                })
                .map(|(name, r)| (name.as_str(), (r.members.len(), r.posted)))
                .collect();
            for (room, n) in st.presence.rooms() {
                let posted = st.rooms.get(room).map_or(0, |r| r.posted);
                counts.entry(room).or_insert((0, posted)).0 += n;
            }
            let people: Vec<String> = counts
                .iter()
                .map(|(name, (n, _))| format!("#{name} ({n})"))
                .collect();
            let tags: Vec<String> = counts
                .iter()
                .map(|(name, (n, posted))| format!("{name}:{n}:{posted}"))
                .collect();
            let line = Line::new(
                "rooms",
                &format!("rooms={}", tags.join(",")),
                format!("* rooms: {}", people.join(", ")),
            );
            send(st, id, line, fan);
        });
    }

    /// `/who`: who is in the client's room, on every node.
    pub fn who(&self, id: ClientId) {
        self.update(|st, fan| {
            let Some(room) = st.clients.get(&id).map(|c| c.room.clone()) else {
                return;
            };
            let mut nicks: Vec<&str> = st.rooms[&room]
                .members
                .keys()
                .filter_map(|m| st.clients.get(m).map(|c| c.nick.as_str()))
                .chain(st.presence.in_room(&room))
                .collect();
            nicks.sort_unstable();
            let line = Line::new(
                "who",
                &format!("room={room};nicks={}", nicks.join(",")),
                format!("* in #{room}: {}", nicks.join(", ")),
            );
            send(st, id, line, fan);
        });
    }

    /// `/msg`: a private line to one nick, here or on another node, with a
    /// copy to the sender.
    pub fn private(&self, id: ClientId, to: &str, text: &str) -> Result<(), ProtoError> {
        self.update(|st, fan| {
            let target = st.nicks.get(to).copied();
            let remote =
                self.uplink.as_ref().is_some_and(|up| up.linked()) && st.presence.has_nick(to);
            if target.is_none() && !remote {
                return Err(ProtoError(format!("no such nick: {to}")));
            }
            let Some(from) = st.clients.get(&id).map(|c| c.nick.clone()) else {
                return Ok(());
            };
            let millis = chrono::Utc::now().timestamp_millis();
            match target {
                Some(target) => deliver_private(st, target, &from, to, text, millis, fan),
                None => self.tell(|| Event::Private {
                    f: from.clone(),
                    u: to.to_string(),
                    x: text.to_string(),
                    t: millis,
                }),
            }
            if target != Some(id) {
                let tags = format!("from={from};to={to};t={millis}");
                let prefix = format!("[{}] -> {to}: ", clock(millis));
                send(st, id, Line::message("pm", &tags, &prefix, text), fan);
            }
            Ok(())
        })
    }

    /// Everyone on this node, nick to room: the roster the cluster is told.
    pub fn local_people(&self) -> HashMap<String, String> {
        let st = self.lock();
        st.clients
            .values()
            .map(|c| (c.nick.clone(), c.room.clone()))
            .collect()
    }

    /// The newest stream entry of `room` this node has.
    pub fn watermark(&self, room: &str) -> Option<StreamId> {
        self.lock().rooms.get(room).and_then(|r| r.stream_seen)
    }

    /// This node's own messages came back from Redis as entry `id`.
    pub fn seen_own(&self, room: &str, id: StreamId) {
        if let Some(r) = self.lock().rooms.get_mut(room) {
            r.stream_seen = r.stream_seen.max(Some(id));
        }
    }

    /// What another node said or did.
    pub fn remote(&self, node: &str, ids: &[StreamId], ev: Event) {
        self.update(|st, fan| match ev {
            Event::Said { r, f, t, l } => {
                let entries = l
                    .iter()
                    .enumerate()
                    .map(|(i, (action, text))| (ids.get(i).copied(), *action, text.as_str()));
                self.post_remote(st, &r, &f, t, entries, Some(fan));
            }
            Event::Join { u, r } => {
                let was = st.presence.place(node, &u, &r);
                if let Some(old) = was.filter(|old| *old != r) {
                    announce(st, &old, None, left(&u, &old, ""), fan);
                }
                let line = joined(&u, &r);
                announce(st, &r, None, line, fan);
            }
            Event::Leave { u, r, w } => {
                st.presence.remove(node, &u);
                announce(st, &r, None, left(&u, &r, &w), fan);
            }
            Event::Nick { o, u, r } => {
                st.presence.remove(node, &o);
                st.presence.place(node, &u, &r);
                broadcast(st, &r, renamed(&o, &u, &r), fan);
            }
            Event::Private { f, u, x, t } => {
                if let Some(&target) = st.nicks.get(&u) {
                    deliver_private(st, target, &f, &u, &x, t, fan);
                }
            }
            Event::Roster { p } => st.presence.replace(node, p),
            Event::Beat => st.presence.beat(node),
            Event::Quit => forget_node(st, node, " (server stopped)", fan),
        });
    }

    /// Another node's messages: each new one (by stream id) into history
    /// and, given a `fan`, to everyone here.
    fn post_remote<'a>(
        &self,
        st: &mut State,
        room: &str,
        from: &str,
        millis: i64,
        entries: impl Iterator<Item = (Option<StreamId>, bool, &'a str)>,
        fan: Option<&mut Fanout>,
    ) {
        if !st.rooms.contains_key(room) {
            if st.rooms.len() >= MIRRORED_ROOMS {
                return;
            }
            st.rooms.insert(room.to_string(), Room::default());
        }
        let Some(r) = st.rooms.get_mut(room) else {
            return;
        };
        let seen = r.stream_seen;
        let mut fresh = Vec::new();
        for (id, action, text) in entries {
            if id.is_some() && id <= seen {
                continue;
            }
            r.stream_seen = r.stream_seen.max(id);
            fresh.push((action, text));
        }
        if fresh.is_empty() {
            return;
        }
        if let Some(entry) = self.post(st, room, from, millis, fresh.into_iter())
            && let Some(fan) = fan
        {
            broadcast_entry(st, room, None, &entry, fan);
        }
    }

    /// A room's stream as read after linking up: what this node lacks goes
    /// into history and, if `deliver`, to everyone here, in stream order.
    pub fn caught_up(&self, room: &str, me: &str, stored: &[Stored], deliver: bool) {
        self.update(|st, fan| {
            for s in stored {
                if s.node == me {
                    if let Some(r) = st.rooms.get_mut(room) {
                        r.stream_seen = r.stream_seen.max(Some(s.id));
                    }
                    continue;
                }
                let entry = std::iter::once((Some(s.id), s.action, s.text.as_str()));
                // Without `deliver`, into history only: these were said
                // before this node joined the cluster.
                let to = deliver.then_some(&mut *fan);
                self.post_remote(st, room, &s.from, s.t, entry, to);
            }
        });
    }

    /// The link went down or came back: every client is told, once each
    /// way.
    pub fn link_changed(&self, up: bool) {
        self.update(|st, fan| {
            if up != st.told_lost {
                return;
            }
            st.told_lost = !up;
            let line = if up {
                Line::new("cluster", "link=up", "* cluster link back")
            } else {
                Line::new(
                    "cluster",
                    "link=down",
                    "* cluster link lost, messages stay on this server",
                )
            };
            let all: Vec<ClientId> = st.clients.keys().copied().collect();
            for id in all {
                send(st, id, line.clone(), fan);
            }
        });
    }

    /// Nodes silent for `ttl` are taken for dead: their people leave.
    pub fn expire_nodes(&self, ttl: std::time::Duration) {
        self.update(|st, fan| {
            for node in st.presence.silent(ttl) {
                tracing::warn!(%node, "cluster node silent, its clients are gone");
                forget_node(st, &node, " (server lost)", fan);
            }
        });
    }

    /// Runs one hub operation under the lock, then `finish`es what it
    /// queued.
    fn update<R>(&self, op: impl FnOnce(&mut State, &mut Fanout) -> R) -> R {
        let mut st = self.lock();
        let mut fan = Fanout::default();
        let res = op(&mut st, &mut fan);
        self.finish(st, fan);
        res
    }

    /// Out of the client's room (telling it) and into `room`.
    fn switch(&self, st: &mut State, id: ClientId, room: &str, since: Since, fan: &mut Fanout) {
        let Some(c) = st.clients.get(&id) else { return };
        let (old, nick) = (c.room.clone(), c.nick.clone());
        leave_room(st, id, &old);
        announce(st, &old, None, left(&nick, &old, ""), fan);
        self.enter_room(st, id, room, since, fan);
        self.tell(move || Event::Join {
            u: nick,
            r: room.to_string(),
        });
    }

    fn enter_room(&self, st: &mut State, id: ClientId, room: &str, since: Since, fan: &mut Fanout) {
        let Some(c) = st.clients.get_mut(&id) else {
            return;
        };
        c.room = room.to_string();
        let (nick, out) = (c.nick.clone(), c.out.clone());
        if !st.rooms.contains_key(room) {
            let forgotten = st.gone.remove(room).unwrap_or(st.gone_floor);
            let fresh = Room {
                forgotten,
                ..Room::default()
            };
            st.rooms.insert(room.to_string(), fresh);
        }
        if let Some(r) = st.rooms.get_mut(room) {
            r.members.insert(id, out);
        }
        replay(st, id, room, since, fan);
        announce(st, room, Some(id), joined(&nick, room), fan);
    }

    /// Disconnects clients whose queues overflowed, telling their rooms
    /// (those announcements may overflow more queues, so until none), then
    /// releases the lock and writes to the sockets: a fan-out's thousand
    /// sends must not hold up every other client's commands.
    fn finish(&self, mut st: MutexGuard<'_, State>, mut fan: Fanout) {
        while let Some(id) = fan.dropped.pop() {
            let Some(c) = remove(&mut st, id) else {
                continue;
            };
            // Not in the current span: that is the connection whose lines
            // overflowed this one's queue.
            tracing::warn!(parent: None, nick = %c.nick, peer = %c.peer,
                "client fell behind its outbound queue, disconnecting");
            crate::metrics::chat_dropped("slow_client");
            c.kick.cancel();
            self.gone(&mut st, c, " (too slow)", &mut fan);
        }
        drop(st);
        flush_all(fan.flush);
    }
}

fn in_room(st: &State, id: ClientId, room: &str) -> bool {
    st.clients.get(&id).is_some_and(|c| c.room == room)
}

fn taken(nick: &str) -> ProtoError {
    ProtoError(format!("nick {nick} is taken"))
}

fn joined(nick: &str, room: &str) -> Line {
    Line::new(
        "join",
        &format!("room={room};nick={nick}"),
        format!("* {nick} joined #{room}"),
    )
}

fn renamed(old: &str, new: &str, room: &str) -> Line {
    Line::new(
        "nick",
        &format!("room={room};old={old};new={new}"),
        format!("* {old} is now known as {new}"),
    )
}

/// `HH:MM:SS` here, of a time in milliseconds since the epoch.
fn clock(millis: i64) -> String {
    chrono::TimeZone::timestamp_millis_opt(&chrono::Local, millis)
        .single()
        .unwrap_or_else(chrono::Local::now)
        .format("%H:%M:%S")
        .to_string()
}

fn deliver_private(
    st: &mut State,
    target: ClientId,
    from: &str,
    to: &str,
    text: &str,
    millis: i64,
    fan: &mut Fanout,
) {
    let tags = format!("from={from};to={to};t={millis}");
    let prefix = format!("[{}] -{from}- ", clock(millis));
    send(st, target, Line::message("pm", &tags, &prefix, text), fan);
}

/// Everyone on `node` leaves, each room here told.
fn forget_node(st: &mut State, node: &str, why: &str, fan: &mut Fanout) {
    for (nick, room) in st.presence.forget(node) {
        announce(st, &room, None, left(&nick, &room, why), fan);
    }
}

fn left(nick: &str, room: &str, why: &str) -> Line {
    Line::new(
        "leave",
        &format!("room={room};nick={nick}"),
        format!("* {nick} left #{room}{why}"),
    )
}

/// Sends the client the part of `room`'s history that `since` asks for,
/// after a gap marker if some of it is no longer held.
fn replay(st: &mut State, id: ClientId, room: &str, since: Since, fan: &mut Fanout) {
    let Some(r) = st.rooms.get(room) else { return };
    let (gap, after) = match since {
        Since::Start => (false, 0),
        Since::Seen(seen) => (r.forgotten > seen, seen),
        Since::Unknown => (true, 0),
    };
    let lines: Vec<Outgoing> = r
        .history
        .iter()
        .filter(|(seq, _)| *seq > after)
        .map(|(_, line)| line.clone())
        .collect();
    if gap {
        let line = Line::new(
            "gap",
            &format!("room={room}"),
            format!("* some messages of #{room} are missing: older than the history kept"),
        );
        send(st, id, line, fan);
    }
    for line in &lines {
        send_entry(st, id, line, fan);
    }
}

fn remove(st: &mut State, id: ClientId) -> Option<Client> {
    let c = st.clients.remove(&id)?;
    st.nicks.remove(&c.nick);
    leave_room(st, id, &c.room);
    Some(c)
}

fn leave_room(st: &mut State, id: ClientId, room: &str) {
    let Some(r) = st.rooms.get_mut(room) else {
        return;
    };
    r.members.remove(&id);
    // The lobby always exists; other empty rooms go, history and all, and
    // only what their last message was is kept. A cluster node keeps the
    // history of rooms that still have some, which the cluster shares.
    let mirrored = st.mirror && !r.history.is_empty();
    if r.members.is_empty() && room != LOBBY && !mirrored {
        let last = r.history.back().map_or(r.forgotten, |(seq, _)| *seq);
        st.rooms.remove(room);
        if st.gone.len() >= GONE_ROOMS {
            st.gone_floor = st.seq;
            st.gone.clear();
        }
        if last > st.gone_floor {
            st.gone.insert(room.to_string(), last);
        }
    }
}

fn send(st: &mut State, id: ClientId, line: Line, fan: &mut Fanout) {
    send_entry(st, id, &Entry::line(line), fan);
}

fn send_entry(st: &mut State, id: ClientId, line: &Outgoing, fan: &mut Fanout) {
    if let Some(c) = st.clients.get(&id) {
        fan.push(id, &c.out, line);
    }
}

/// A join or leave: to the whole room while it is small, else only to
/// `subject` (the one joining).
fn announce(st: &mut State, room: &str, subject: Option<ClientId>, line: Line, fan: &mut Fanout) {
    let members = st.rooms.get(room).map_or(0, |r| r.members.len());
    if members <= ANNOUNCE_LIMIT {
        broadcast(st, room, line, fan);
    } else if let Some(id) = subject {
        send(st, id, line, fan);
    }
}

fn broadcast(st: &mut State, room: &str, line: Line, fan: &mut Fanout) {
    broadcast_entry(st, room, None, &Entry::line(line), fan);
}

/// `line` to everyone in `room` but `except`.
fn broadcast_entry(
    st: &mut State,
    room: &str,
    except: Option<ClientId>,
    line: &Outgoing,
    fan: &mut Fanout,
) {
    let Some(r) = st.rooms.get(room) else { return };
    for (&id, out) in &r.members {
        if Some(id) != except {
            fan.push(id, out, line);
        }
    }
}

/// Sockets a big fan-out writes to before it lets other tasks run.
const FLUSH_SLICE: usize = 64;

/// Writes out the queues a hub operation filled. A big fan-out runs as its
/// own task and yields every `FLUSH_SLICE` sockets, so the speaker's reader
/// takes in more lines meanwhile: those join the entries still waiting, and
/// the listeners later in the round get them in the same write.
fn flush_all(outs: Vec<Arc<Outbox>>) {
    if outs.len() <= FLUSH_SLICE {
        outs.iter().for_each(|out| out.flush());
        return;
    }
    tokio::spawn(async move {
        // Each queue is let go once written, so a client that leaves during
        // a long fan-out is freed then, not when the fan-out ends.
        let mut outs = outs.into_iter();
        while outs.len() > 0 {
            outs.by_ref().take(FLUSH_SLICE).for_each(|out| out.flush());
            tokio::task::yield_now().await;
        }
    });
}

/// What a hub operation leaves for after the lock: queues to write out,
/// and clients that fell too far behind.
#[derive(Default)]
struct Fanout {
    flush: Vec<Arc<Outbox>>,
    dropped: Vec<ClientId>,
}

impl Fanout {
    fn push(&mut self, id: ClientId, out: &Arc<Outbox>, line: &Outgoing) {
        match out.push(line) {
            Ok(true) => self.flush.push(out.clone()),
            Ok(false) => {}
            // A full queue means the client stopped reading: it is dropped
            // rather than allowed to stall the room or grow memory.
            Err(Behind) => self.dropped.push(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::chat::outbox::tests::{pair, received};
    use std::os::unix::net::UnixStream;

    async fn client(hub: &Hub) -> (ClientId, UnixStream) {
        let (out, peer) = pair(1 << 20).await;
        let (id, _) = hub
            .enter(out, CancellationToken::new(), PeerAddr::Unix)
            .unwrap();
        (id, peer)
    }

    /// Every line the client was sent so far, once the hub's writes are
    /// done: on this current-thread runtime a big fan-out's task writes one
    /// slice each time the test yields.
    async fn drain(peer: &mut UnixStream) -> Vec<String> {
        for _ in 0..=ANNOUNCE_LIMIT.div_ceil(FLUSH_SLICE) {
            tokio::task::yield_now().await;
        }
        received(peer).lines().map(String::from).collect()
    }

    fn say(hub: &Hub, id: ClientId, texts: &[&str]) {
        let said: Vec<Said> = texts
            .iter()
            .map(|t| Said {
                text: t.to_string(),
                action: false,
            })
            .collect();
        hub.say(id, &said);
    }

    #[tokio::test]
    async fn big_rooms_only_tell_the_newcomer_about_joins() {
        let hub = Hub::new(0, 10_000);
        let (_, mut first) = client(&hub).await;
        let mut others = Vec::new();
        for _ in 1..ANNOUNCE_LIMIT {
            others.push(client(&hub).await);
        }
        assert!(
            drain(&mut first)
                .await
                .iter()
                .any(|l| l.contains("guest-200 joined"))
        );
        let (_, mut late) = client(&hub).await;
        assert!(
            drain(&mut late)
                .await
                .iter()
                .any(|l| l.contains("guest-201 joined"))
        );
        assert!(
            !drain(&mut first)
                .await
                .iter()
                .any(|l| l.contains("guest-201"))
        );
        drop(others.pop());
        let (_, mut again) = client(&hub).await;
        assert!(
            drain(&mut again)
                .await
                .iter()
                .any(|l| l.contains("joined #lobby"))
        );
    }

    #[tokio::test]
    async fn a_full_queue_disconnects_only_that_client() {
        let hub = Hub::new(0, 10);
        let (out, _never_read) = pair(256 * 1024).await;
        let kick = CancellationToken::new();
        let (slow, _) = hub.enter(out, kick.clone(), PeerAddr::Unix).unwrap();
        let (talker, _) = client(&hub).await;
        let (_, mut rx) = client(&hub).await;
        let long = "x".repeat(4000);
        let mut seen = Vec::new();
        for i in 0..1000 {
            say(&hub, talker, &[&format!("line {i} {long}")]);
            seen.extend(drain(&mut rx).await);
        }
        assert!(kick.is_cancelled());
        say(&hub, talker, &["the last line"]);
        seen.extend(drain(&mut rx).await);
        assert!(seen.iter().any(|l| l.contains("the last line")));
        assert!(
            seen.iter()
                .any(|l| l.contains(&format!("guest-{slow} left #lobby (too slow)")))
        );
    }

    #[tokio::test]
    async fn a_burst_goes_out_whole_and_history_keeps_its_tail() {
        let hub = Hub::new(2, 10);
        let (talker, _) = client(&hub).await;
        let (_, mut rx) = client(&hub).await;
        drain(&mut rx).await;
        say(&hub, talker, &["one", "two", "three"]);
        let lines = drain(&mut rx).await;
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with("<guest-1> one") && lines[2].ends_with("<guest-1> three"));
        let (_, mut late) = client(&hub).await;
        let replay = drain(&mut late).await;
        let said: Vec<&str> = replay
            .iter()
            .filter(|l| l.contains("<guest-1>"))
            .map(|l| &l[11..])
            .collect();
        assert_eq!(said, ["<guest-1> two", "<guest-1> three"]);
    }

    #[tokio::test(start_paused = true)]
    async fn another_nodes_messages_arrive_once_and_its_people_expire() {
        let hub = Hub::linked(5, 10, Some(crate::chat::cluster::detached()));
        let (id, mut peer) = client(&hub).await;
        drain(&mut peer).await;
        let said = |text: &str| Event::Said {
            r: LOBBY.into(),
            f: "bob".into(),
            t: 0,
            l: vec![(false, text.into())],
        };
        hub.remote(
            "n2",
            &[],
            Event::Join {
                u: "bob".into(),
                r: LOBBY.into(),
            },
        );
        hub.remote("n2", &[StreamId(5, 0)], said("first"));
        // The same entry again, as a catch-up after a break would read it.
        hub.remote("n2", &[StreamId(5, 0)], said("first"));
        let stored = |seq, text: &str| Stored {
            id: StreamId(5, seq),
            node: "n2".into(),
            from: "bob".into(),
            action: false,
            text: text.into(),
            t: 0,
        };
        hub.caught_up(
            LOBBY,
            "me",
            &[stored(0, "first"), stored(1, "second")],
            true,
        );
        hub.who(id);
        let lines = drain(&mut peer).await;
        let said: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_once("<bob> ").map(|(_, t)| t))
            .collect();
        assert_eq!(said, ["first", "second"], "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("* bob joined #lobby")));
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(", bob") || l.contains(": bob,")),
            "{lines:?}"
        );
        assert!(
            hub.rename(id, "bob").is_err(),
            "bob is taken on the other node"
        );
        tokio::time::advance(std::time::Duration::from_secs(11)).await;
        hub.expire_nodes(std::time::Duration::from_secs(10));
        let lines = drain(&mut peer).await;
        assert!(
            lines
                .iter()
                .any(|l| l.contains("* bob left #lobby (server lost)")),
            "{lines:?}"
        );
        assert!(hub.rename(id, "bob").is_ok(), "bob's nick is free again");
    }
}
