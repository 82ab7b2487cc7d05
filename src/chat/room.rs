//! The chat hub: who is connected, which room each is in, room history, and
//! fan-out into each client's bounded outbound queue.
//!
//! One `std::sync::Mutex` guards it all: every critical section is a few map
//! operations and queue pushes with no `.await` inside, so an async mutex
//! would only add cost (mini-redis db.rs makes the same choice). The
//! sockets are written after it is released.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::outbox::{Behind, Outbox, Outgoing};
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
    history: VecDeque<Outgoing>,
}

#[derive(Default)]
struct State {
    next_id: ClientId,
    clients: HashMap<ClientId, Client>,
    nicks: HashMap<String, ClientId>,
    rooms: BTreeMap<String, Room>,
}

/// The server is at `--max-conns`.
#[derive(Debug)]
pub struct Full;

/// Shared by every connection of one chat server.
pub struct Hub {
    state: Mutex<State>,
    history: usize,
    max_conns: usize,
}

impl Hub {
    /// An empty hub keeping `history` lines per room.
    pub fn new(history: usize, max_conns: usize) -> Self {
        Hub {
            state: Mutex::new(State::default()),
            history,
            max_conns,
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
            st.next_id += 1;
            let id = st.next_id;
            let nick = format!("guest-{id}");
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
            send(
                st,
                id,
                &format!(
                    "* welcome to sockit chat, you are {nick}; /nick NAME to change it, /help for commands"
                ),
                fan,
            );
            self.enter_room(st, id, LOBBY, fan);
            Ok((id, nick))
        })
    }

    /// Removes a client (idempotent) and tells its room.
    pub fn leave(&self, id: ClientId) {
        self.update(|st, fan| {
            if let Some(c) = remove(st, id) {
                let line = format!("* {} left #{}", c.nick, c.room);
                announce(st, &c.room, None, &line, fan);
            }
        });
    }

    /// Drops a client that fell too far behind, telling its room.
    pub fn drop_behind(&self, id: ClientId) {
        self.update(|_, fan| fan.dropped.push(id));
    }

    /// A line to this client only (errors, help, replies).
    pub fn notice(&self, id: ClientId, line: &str) {
        self.update(|st, fan| send(st, id, line, fan));
    }

    /// Plain messages and actions (`/me`) from one client to its room, in
    /// order. They go out as one shared entry: a burst read in one go costs
    /// each listener one queue entry and one write, not one per line.
    pub fn say(&self, id: ClientId, said: &[Said]) {
        self.update(|st, fan| {
            let Some(c) = st.clients.get(&id) else { return };
            let Some(r) = st.rooms.get_mut(&c.room) else {
                return;
            };
            let stamp = chrono::Local::now().format("%H:%M:%S").to_string();
            let mut batch = String::new();
            let kept_from = said.len().saturating_sub(self.history);
            for (i, s) in said.iter().enumerate() {
                let start = batch.len();
                let _ = if s.action {
                    writeln!(batch, "[{stamp}] * {} {}", c.nick, s.text)
                } else {
                    writeln!(batch, "[{stamp}] <{}> {}", c.nick, s.text)
                };
                if i >= kept_from {
                    if r.history.len() == self.history {
                        r.history.pop_front();
                    }
                    r.history.push_back(batch[start..].into());
                }
            }
            let (room, echo) = (c.room.clone(), c.echo);
            let except = (!echo).then_some(id);
            broadcast_line(st, &room, except, &batch.into(), fan);
        });
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
            send(st, id, line, fan);
        });
    }

    /// Changes a client's nick if it is free.
    pub fn rename(&self, id: ClientId, new: &str) -> Result<(), ProtoError> {
        self.update(|st, fan| {
            match st.nicks.get(new) {
                Some(&owner) if owner == id => return Ok(()),
                Some(_) => return Err(ProtoError(format!("nick {new} is taken"))),
                None => {}
            }
            let Some(c) = st.clients.get_mut(&id) else {
                return Ok(());
            };
            let old = std::mem::replace(&mut c.nick, new.to_string());
            let room = c.room.clone();
            st.nicks.remove(&old);
            st.nicks.insert(new.to_string(), id);
            broadcast(st, &room, &format!("* {old} is now known as {new}"), fan);
            Ok(())
        })
    }

    /// Moves a client to another room.
    pub fn join(&self, id: ClientId, room: &str) {
        self.update(|st, fan| {
            let Some(c) = st.clients.get(&id) else { return };
            if c.room == room {
                send(st, id, &format!("* you are already in #{room}"), fan);
                return;
            }
            let (old, nick) = (c.room.clone(), c.nick.clone());
            leave_room(st, id, &old);
            announce(st, &old, None, &format!("* {nick} left #{old}"), fan);
            self.enter_room(st, id, room, fan);
        });
    }

    /// `/rooms`: every room and its head count.
    pub fn rooms(&self, id: ClientId) {
        self.update(|st, fan| {
            let list: Vec<String> = st
                .rooms
                .iter()
                .map(|(name, r)| format!("#{name} ({})", r.members.len()))
                .collect();
            send(st, id, &format!("* rooms: {}", list.join(", ")), fan);
        });
    }

    /// `/who`: who is in the client's room.
    pub fn who(&self, id: ClientId) {
        self.update(|st, fan| {
            let Some(room) = st.clients.get(&id).map(|c| c.room.clone()) else {
                return;
            };
            let mut nicks: Vec<&str> = st.rooms[&room]
                .members
                .keys()
                .filter_map(|m| st.clients.get(m).map(|c| c.nick.as_str()))
                .collect();
            nicks.sort_unstable();
            let line = format!("* in #{room}: {}", nicks.join(", "));
            send(st, id, &line, fan);
        });
    }

    /// `/msg`: a private line to one nick, with a copy to the sender.
    pub fn private(&self, id: ClientId, to: &str, text: &str) -> Result<(), ProtoError> {
        self.update(|st, fan| {
            let Some(&target) = st.nicks.get(to) else {
                return Err(ProtoError(format!("no such nick: {to}")));
            };
            let Some(from) = st.clients.get(&id).map(|c| c.nick.clone()) else {
                return Ok(());
            };
            let stamp = chrono::Local::now().format("%H:%M:%S");
            send(st, target, &format!("[{stamp}] -{from}- {text}"), fan);
            if target != id {
                send(st, id, &format!("[{stamp}] -> {to}: {text}"), fan);
            }
            Ok(())
        })
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

    fn enter_room(&self, st: &mut State, id: ClientId, room: &str, fan: &mut Fanout) {
        let Some(c) = st.clients.get_mut(&id) else {
            return;
        };
        c.room = room.to_string();
        let (nick, out) = (c.nick.clone(), c.out.clone());
        let r = st.rooms.entry(room.to_string()).or_default();
        r.members.insert(id, out);
        // Shared lines, one entry each: they still go out in one write.
        let history: Vec<Outgoing> = r.history.iter().cloned().collect();
        for line in &history {
            send_line(st, id, line, fan);
        }
        announce(st, room, Some(id), &format!("* {nick} joined #{room}"), fan);
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
            c.kick.cancel();
            let line = format!("* {} left #{} (too slow)", c.nick, c.room);
            announce(&mut st, &c.room, None, &line, &mut fan);
        }
        drop(st);
        flush_all(fan.flush);
    }
}

fn remove(st: &mut State, id: ClientId) -> Option<Client> {
    let c = st.clients.remove(&id)?;
    st.nicks.remove(&c.nick);
    leave_room(st, id, &c.room);
    Some(c)
}

fn leave_room(st: &mut State, id: ClientId, room: &str) {
    if let Some(r) = st.rooms.get_mut(room) {
        r.members.remove(&id);
        // The lobby always exists; other empty rooms go, history and all.
        if r.members.is_empty() && room != LOBBY {
            st.rooms.remove(room);
        }
    }
}

fn send(st: &mut State, id: ClientId, line: &str, fan: &mut Fanout) {
    send_line(st, id, &rendered(line), fan);
}

/// A line as it goes on the wire.
fn rendered(text: &str) -> Outgoing {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    line.into()
}

fn send_line(st: &mut State, id: ClientId, line: &Outgoing, fan: &mut Fanout) {
    if let Some(c) = st.clients.get(&id) {
        fan.push(id, &c.out, line);
    }
}

/// A join or leave: to the whole room while it is small, else only to
/// `subject` (the one joining).
fn announce(st: &mut State, room: &str, subject: Option<ClientId>, line: &str, fan: &mut Fanout) {
    let members = st.rooms.get(room).map_or(0, |r| r.members.len());
    if members <= ANNOUNCE_LIMIT {
        broadcast(st, room, line, fan);
    } else if let Some(id) = subject {
        send(st, id, line, fan);
    }
}

fn broadcast(st: &mut State, room: &str, line: &str, fan: &mut Fanout) {
    broadcast_line(st, room, None, &rendered(line), fan);
}

/// `line` to everyone in `room` but `except`.
fn broadcast_line(
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
}
