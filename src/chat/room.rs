//! The chat hub: who is connected, which room each is in, room history, and
//! fan-out into each client's bounded outbound queue.
//!
//! One `std::sync::Mutex` guards it all: every critical section is a few map
//! operations and `try_send`s with no `.await` inside, so an async mutex
//! would only add cost (mini-redis db.rs makes the same choice).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use super::outbox::{self, Outgoing};
use super::proto::ProtoError;

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
    room: String,
    tx: outbox::Sender,
    kick: CancellationToken,
}

#[derive(Default)]
struct Room {
    members: HashSet<ClientId>,
    history: VecDeque<Outgoing>,
}

#[derive(Default)]
struct State {
    next_id: ClientId,
    clients: HashMap<ClientId, Client>,
    nicks: HashMap<String, ClientId>,
    rooms: BTreeMap<String, Room>,
}

/// The server is at `--max-clients`.
#[derive(Debug)]
pub struct Full;

/// Shared by every connection of one chat server.
pub struct Hub {
    state: Mutex<State>,
    history: usize,
    max_clients: usize,
}

impl Hub {
    /// An empty hub keeping `history` lines per room.
    pub fn new(history: usize, max_clients: usize) -> Self {
        Hub {
            state: Mutex::new(State::default()),
            history,
            max_clients,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters more than losing the whole server would.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new client as `guest-N` in the lobby: greets it, replays
    /// the lobby's history and announces it. `kick` is cancelled if the hub
    /// drops the client for falling behind.
    pub fn enter(
        &self,
        tx: outbox::Sender,
        kick: CancellationToken,
    ) -> Result<(ClientId, String), Full> {
        let mut st = self.lock();
        if st.clients.len() >= self.max_clients {
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
                room: LOBBY.to_string(),
                tx,
                kick,
            },
        );
        let mut dropped = Vec::new();
        send(
            &mut st,
            id,
            &format!(
                "* welcome to sockit chat, you are {nick}; /nick NAME to change it, /help for commands"
            ),
            &mut dropped,
        );
        self.enter_room(&mut st, id, LOBBY, &mut dropped);
        self.settle(&mut st, dropped);
        Ok((id, nick))
    }

    /// Removes a client (idempotent) and tells its room.
    pub fn leave(&self, id: ClientId) {
        let mut st = self.lock();
        let mut dropped = Vec::new();
        if let Some(c) = remove(&mut st, id) {
            let line = format!("* {} left #{}", c.nick, c.room);
            announce(&mut st, &c.room, None, &line, &mut dropped);
        }
        self.settle(&mut st, dropped);
    }

    /// A line to this client only (errors, help, replies).
    pub fn notice(&self, id: ClientId, line: &str) {
        let mut st = self.lock();
        let mut dropped = Vec::new();
        send(&mut st, id, line, &mut dropped);
        self.settle(&mut st, dropped);
    }

    /// Plain messages and actions (`/me`) from one client to its room, in
    /// order. They go out as one shared entry: a burst read in one go costs
    /// each listener one queue entry and one write, not one per line.
    pub fn say(&self, id: ClientId, said: &[Said]) {
        let mut guard = self.lock();
        let st = &mut *guard;
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
        let room = c.room.clone();
        let mut dropped = Vec::new();
        broadcast_line(st, &room, &batch.into(), &mut dropped);
        self.settle(st, dropped);
    }

    /// Changes a client's nick if it is free.
    pub fn rename(&self, id: ClientId, new: &str) -> Result<(), ProtoError> {
        let mut st = self.lock();
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
        let mut dropped = Vec::new();
        broadcast(
            &mut st,
            &room,
            &format!("* {old} is now known as {new}"),
            &mut dropped,
        );
        self.settle(&mut st, dropped);
        Ok(())
    }

    /// Moves a client to another room.
    pub fn join(&self, id: ClientId, room: &str) {
        let mut st = self.lock();
        let Some(c) = st.clients.get(&id) else { return };
        if c.room == room {
            let line = format!("* you are already in #{room}");
            let mut dropped = Vec::new();
            send(&mut st, id, &line, &mut dropped);
            self.settle(&mut st, dropped);
            return;
        }
        let (old, nick) = (c.room.clone(), c.nick.clone());
        leave_room(&mut st, id, &old);
        let mut dropped = Vec::new();
        announce(
            &mut st,
            &old,
            None,
            &format!("* {nick} left #{old}"),
            &mut dropped,
        );
        self.enter_room(&mut st, id, room, &mut dropped);
        self.settle(&mut st, dropped);
    }

    /// `/rooms`: every room and its head count.
    pub fn rooms(&self, id: ClientId) {
        let mut st = self.lock();
        let list: Vec<String> = st
            .rooms
            .iter()
            .map(|(name, r)| format!("#{name} ({})", r.members.len()))
            .collect();
        let mut dropped = Vec::new();
        send(
            &mut st,
            id,
            &format!("* rooms: {}", list.join(", ")),
            &mut dropped,
        );
        self.settle(&mut st, dropped);
    }

    /// `/who`: who is in the client's room.
    pub fn who(&self, id: ClientId) {
        let mut st = self.lock();
        let Some(room) = st.clients.get(&id).map(|c| c.room.clone()) else {
            return;
        };
        let mut nicks: Vec<&str> = st.rooms[&room]
            .members
            .iter()
            .filter_map(|m| st.clients.get(m).map(|c| c.nick.as_str()))
            .collect();
        nicks.sort_unstable();
        let line = format!("* in #{room}: {}", nicks.join(", "));
        let mut dropped = Vec::new();
        send(&mut st, id, &line, &mut dropped);
        self.settle(&mut st, dropped);
    }

    /// `/msg`: a private line to one nick, with a copy to the sender.
    pub fn private(&self, id: ClientId, to: &str, text: &str) -> Result<(), ProtoError> {
        let mut st = self.lock();
        let Some(&target) = st.nicks.get(to) else {
            return Err(ProtoError(format!("no such nick: {to}")));
        };
        let Some(from) = st.clients.get(&id).map(|c| c.nick.clone()) else {
            return Ok(());
        };
        let stamp = chrono::Local::now().format("%H:%M:%S");
        let mut dropped = Vec::new();
        send(
            &mut st,
            target,
            &format!("[{stamp}] -{from}- {text}"),
            &mut dropped,
        );
        if target != id {
            send(
                &mut st,
                id,
                &format!("[{stamp}] -> {to}: {text}"),
                &mut dropped,
            );
        }
        self.settle(&mut st, dropped);
        Ok(())
    }

    fn enter_room(&self, st: &mut State, id: ClientId, room: &str, dropped: &mut Vec<ClientId>) {
        let Some(c) = st.clients.get_mut(&id) else {
            return;
        };
        c.room = room.to_string();
        let nick = c.nick.clone();
        let r = st.rooms.entry(room.to_string()).or_default();
        r.members.insert(id);
        // Shared lines, one entry each: the writer gathers them into one
        // write anyway.
        let history: Vec<Outgoing> = r.history.iter().cloned().collect();
        for line in &history {
            send_line(st, id, line, dropped);
        }
        announce(
            st,
            room,
            Some(id),
            &format!("* {nick} joined #{room}"),
            dropped,
        );
    }

    /// Disconnects clients whose queues overflowed, telling their rooms;
    /// those announcements may overflow more queues, so repeat until none.
    fn settle(&self, st: &mut State, mut dropped: Vec<ClientId>) {
        while let Some(id) = dropped.pop() {
            let Some(c) = remove(st, id) else { continue };
            tracing::warn!(nick = %c.nick, "client fell behind its outbound queue, disconnecting");
            c.kick.cancel();
            let line = format!("* {} left #{} (too slow)", c.nick, c.room);
            announce(st, &c.room, None, &line, &mut dropped);
        }
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

fn send(st: &mut State, id: ClientId, line: &str, dropped: &mut Vec<ClientId>) {
    send_line(st, id, &rendered(line), dropped);
}

/// A line as it goes on the wire.
fn rendered(text: &str) -> Outgoing {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    line.into()
}

fn send_line(st: &mut State, id: ClientId, line: &Outgoing, dropped: &mut Vec<ClientId>) {
    if let Some(c) = st.clients.get(&id) {
        // A full queue means the client stopped reading: it is dropped
        // rather than allowed to stall the room or grow memory.
        if c.tx.send(line).is_err() {
            dropped.push(id);
        }
    }
}

/// A join or leave: to the whole room while it is small, else only to
/// `subject` (the one joining).
fn announce(
    st: &mut State,
    room: &str,
    subject: Option<ClientId>,
    line: &str,
    dropped: &mut Vec<ClientId>,
) {
    let members = st.rooms.get(room).map_or(0, |r| r.members.len());
    if members <= ANNOUNCE_LIMIT {
        broadcast(st, room, line, dropped);
    } else if let Some(id) = subject {
        send(st, id, line, dropped);
    }
}

fn broadcast(st: &mut State, room: &str, line: &str, dropped: &mut Vec<ClientId>) {
    broadcast_line(st, room, &rendered(line), dropped);
}

fn broadcast_line(st: &mut State, room: &str, line: &Outgoing, dropped: &mut Vec<ClientId>) {
    let Some(r) = st.rooms.get(room) else { return };
    for id in &r.members {
        if let Some(c) = st.clients.get(id) {
            if c.tx.send(line).is_err() {
                dropped.push(*id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(hub: &Hub) -> (ClientId, outbox::Receiver) {
        let (tx, rx) = outbox::channel(1 << 20);
        let (id, _) = hub.enter(tx, CancellationToken::new()).unwrap();
        (id, rx)
    }

    /// Every line queued so far, batches split up.
    fn drain(rx: &mut outbox::Receiver) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv())
            .flat_map(|batch| batch.lines().map(String::from).collect::<Vec<_>>())
            .collect()
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

    #[test]
    fn big_rooms_only_tell_the_newcomer_about_joins() {
        let hub = Hub::new(0, 10_000);
        let (_, mut first) = client(&hub);
        let mut others: Vec<_> = (1..ANNOUNCE_LIMIT).map(|_| client(&hub)).collect();
        assert!(
            drain(&mut first)
                .iter()
                .any(|l| l.contains("guest-200 joined"))
        );
        let (_, mut late) = client(&hub);
        assert!(
            drain(&mut late)
                .iter()
                .any(|l| l.contains("guest-201 joined"))
        );
        assert!(!drain(&mut first).iter().any(|l| l.contains("guest-201")));
        drop(others.pop());
        let (_, mut again) = client(&hub);
        assert!(
            drain(&mut again)
                .iter()
                .any(|l| l.contains("joined #lobby"))
        );
    }

    #[test]
    fn a_full_queue_disconnects_only_that_client() {
        let hub = Hub::new(0, 10);
        let (tx, _never_read) = outbox::channel(1024);
        let kick = CancellationToken::new();
        let (slow, _) = hub.enter(tx, kick.clone()).unwrap();
        let (talker, mut rx) = client(&hub);
        for i in 0..10 {
            say(&hub, talker, &[&format!("line {i}")]);
        }
        assert!(kick.is_cancelled());
        let seen = drain(&mut rx);
        assert!(seen.iter().any(|l| l.contains("line 9")));
        assert!(
            seen.iter()
                .any(|l| l.contains(&format!("guest-{slow} left #lobby (too slow)")))
        );
    }

    #[test]
    fn a_burst_goes_out_as_one_entry_and_history_keeps_its_tail() {
        let hub = Hub::new(2, 10);
        let (talker, _) = client(&hub);
        let (_, mut rx) = client(&hub);
        drain(&mut rx);
        say(&hub, talker, &["one", "two", "three"]);
        let entry = rx.try_recv().expect("the burst");
        assert!(rx.try_recv().is_none(), "one entry for the whole burst");
        let lines: Vec<&str> = entry.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with("<guest-1> one") && lines[2].ends_with("<guest-1> three"));
        let (_, mut late) = client(&hub);
        let replay = drain(&mut late);
        let said: Vec<&str> = replay
            .iter()
            .filter(|l| l.contains("<guest-1>"))
            .map(|l| &l[11..])
            .collect();
        assert_eq!(said, ["<guest-1> two", "<guest-1> three"]);
    }
}
