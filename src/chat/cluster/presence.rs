//! Who is on the other nodes, as this node last heard: kept from their
//! join, leave and nick events, reloaded whole from Redis at every link-up,
//! and forgotten node by node when a node's heartbeats stop.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Default)]
struct Node {
    seen: Option<Instant>,
    /// Nick to room.
    people: HashMap<String, String>,
}

/// Every other node's people.
#[derive(Default)]
pub struct Presence {
    nodes: HashMap<String, Node>,
}

impl Presence {
    fn node(&mut self, node: &str) -> &mut Node {
        let n = self.nodes.entry(node.to_string()).or_default();
        n.seen = Some(Instant::now());
        n
    }

    /// The node is alive.
    pub fn beat(&mut self, node: &str) {
        self.node(node);
    }

    /// `nick` is now in `room`; returns the room it was in before.
    pub fn place(&mut self, node: &str, nick: &str, room: &str) -> Option<String> {
        self.node(node)
            .people
            .insert(nick.to_string(), room.to_string())
    }

    /// `nick` is gone; returns the room it was in.
    pub fn remove(&mut self, node: &str, nick: &str) -> Option<String> {
        self.node(node).people.remove(nick)
    }

    /// Everyone on `node`, as Redis holds it.
    pub fn replace(&mut self, node: &str, people: HashMap<String, String>) {
        self.node(node).people = people;
    }

    /// The node and everyone on it are gone: who was where.
    pub fn forget(&mut self, node: &str) -> Vec<(String, String)> {
        self.nodes
            .remove(node)
            .map(|n| n.people.into_iter().collect())
            .unwrap_or_default()
    }

    /// Nodes not heard from for `ttl`.
    pub fn silent(&self, ttl: Duration) -> Vec<String> {
        let now = Instant::now();
        self.nodes
            .iter()
            .filter(|(_, n)| n.seen.is_none_or(|seen| now.duration_since(seen) > ttl))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn has_nick(&self, nick: &str) -> bool {
        self.nodes.values().any(|n| n.people.contains_key(nick))
    }

    /// Nicks on other nodes in `room`.
    pub fn in_room<'a>(&'a self, room: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.nodes.values().flat_map(move |n| {
            n.people
                .iter()
                .filter(move |(_, r)| r.as_str() == room)
                .map(|(nick, _)| nick.as_str())
        })
    }

    /// Head counts per room on other nodes.
    pub fn rooms(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for room in self.nodes.values().flat_map(|n| n.people.values()) {
            *counts.entry(room.as_str()).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn people_move_and_silent_nodes_are_found() {
        let mut p = Presence::default();
        assert_eq!(p.place("a", "alice", "lobby"), None);
        assert_eq!(p.place("a", "alice", "dev").as_deref(), Some("lobby"));
        p.place("b", "bob", "dev");
        let mut dev: Vec<&str> = p.in_room("dev").collect();
        dev.sort_unstable();
        assert_eq!(dev, ["alice", "bob"]);
        assert_eq!(p.rooms()["dev"], 2);
        tokio::time::advance(Duration::from_secs(8)).await;
        p.beat("b");
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(p.silent(Duration::from_secs(10)), ["a"]);
        assert_eq!(p.forget("a"), [("alice".to_string(), "dev".to_string())]);
        assert!(!p.has_nick("alice") && p.has_nick("bob"));
    }
}
