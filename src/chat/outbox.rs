//! A client's outbound queue: rendered lines from the hub to the client's
//! writer task, bounded by the bytes not yet handed to the kernel.
//!
//! The bound is in bytes, not entries, because one entry may be a single
//! notice or a batch of a hundred messages; what matters is how far behind
//! the client is and how much it keeps alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// One or more rendered lines, each ending in `\n`, shared by every client
/// they go to.
pub type Outgoing = Arc<str>;

/// What an entry counts for beyond its text: the queue node and the shared
/// allocation's header, so a flood of tiny lines is bounded too.
const ENTRY_COST: usize = 64;

/// The client is more than the bound behind.
#[derive(Debug)]
pub struct Behind;

/// The hub's end.
#[derive(Debug)]
pub struct Sender {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

/// The writer's end.
#[derive(Debug)]
pub struct Receiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    queued: Arc<AtomicUsize>,
    taken: usize,
}

/// A queue that refuses entries once `limit` bytes are waiting.
pub fn channel(limit: usize) -> (Sender, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let tx = Sender {
        tx,
        queued: queued.clone(),
        limit,
    };
    let rx = Receiver {
        rx,
        queued,
        taken: 0,
    };
    (tx, rx)
}

fn cost(line: &str) -> usize {
    line.len() + ENTRY_COST
}

impl Sender {
    /// Queues `line`, or says the client has fallen too far behind. A
    /// writer that is already gone is not behind: its connection is ending
    /// and will leave on its own.
    pub fn send(&self, line: &Outgoing) -> Result<(), Behind> {
        let cost = cost(line);
        if self.queued.fetch_add(cost, Ordering::Relaxed) + cost > self.limit {
            return Err(Behind);
        }
        let _ = self.tx.send(line.clone());
        Ok(())
    }
}

impl Receiver {
    /// The next entry; `None` once the hub has let go of the client.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let line = self.rx.recv().await?;
        self.taken += cost(&line);
        Some(line)
    }

    /// The next entry if one is waiting.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let line = self.rx.try_recv().ok()?;
        self.taken += cost(&line);
        Some(line)
    }

    /// Everything received so far is with the kernel: it no longer counts
    /// against the bound.
    pub fn written(&mut self) {
        self.queued
            .fetch_sub(std::mem::take(&mut self.taken), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bound_counts_bytes_until_they_are_written() {
        let line: Outgoing = "0123456789\n".into();
        let (tx, _rx) = channel(2 * cost(&line));
        tx.send(&line).unwrap();
        tx.send(&line).unwrap();
        assert!(tx.send(&line).is_err(), "a third line is over the bound");

        let (tx, mut rx2) = channel(2 * cost(&line));
        tx.send(&line).unwrap();
        assert_eq!(rx2.recv().await.as_deref(), Some("0123456789\n"));
        tx.send(&line).unwrap();
        assert!(
            tx.send(&line).is_err(),
            "received but unwritten still counts"
        );

        let (tx, mut rx3) = channel(2 * cost(&line));
        tx.send(&line).unwrap();
        tx.send(&line).unwrap();
        assert!(rx3.try_recv().is_some() && rx3.try_recv().is_some());
        rx3.written();
        tx.send(&line).unwrap();
        tx.send(&line).unwrap();
        assert_eq!(rx3.try_recv().as_deref(), Some("0123456789\n"));
    }
}
