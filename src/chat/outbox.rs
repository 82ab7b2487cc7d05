//! A client's outbound queue, written to its socket by whoever queued the
//! lines, as Redis writes replies from its event loop: a fan-out to a
//! thousand idle listeners costs a thousand sends, not also a thousand task
//! wake-ups. Only a client whose socket is full needs its own task, which
//! waits for room and writes the rest.
//!
//! The bound is in bytes not yet taken by the kernel, not in entries,
//! because one entry may be a single notice or a batch of a hundred
//! messages; what matters is how far behind the client is and how much it
//! keeps alive. It has two levels, as Redis's output-buffer limit for
//! pub/sub clients does: past the hard limit a client is dropped at once;
//! past the soft limit only if it is still over it after a grace period,
//! so a reader that keeps reading rides out a burst while one that stopped
//! is still let go.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use std::time::Duration;

use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::line::Form;
pub use super::line::Outgoing;
use crate::net::Stream;

/// What an entry counts for beyond its text: the queue slot and the shared
/// allocation's header, so a flood of tiny lines is bounded too.
const ENTRY_COST: usize = 64;

/// Most entries gathered into one write.
const MAX_IOV: usize = 64;

/// The client is more than the bound behind.
#[derive(Debug, thiserror::Error)]
#[error("client fell behind its outbound queue")]
pub struct Behind;

/// How far behind a client may fall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Queued bytes past which the client is dropped at once.
    pub hard: usize,
    /// Queued bytes the client may stay above only for `grace`.
    pub soft: usize,
    /// How long a client may stay above `soft`.
    pub grace: Duration,
}

impl Bound {
    /// One limit and no grace: past `bytes`, dropped at once.
    pub fn hard(bytes: usize) -> Self {
        Bound {
            hard: bytes,
            soft: bytes,
            grace: Duration::ZERO,
        }
    }
}

/// What one client has yet to be sent, and its socket.
#[derive(Debug)]
pub struct Outbox {
    stream: Arc<Stream>,
    queue: Mutex<Queue>,
    /// Wakes the client's own task: its socket is full, or writing failed.
    stalled: Notify,
    bound: Bound,
    websocket: bool,
    /// Whether the client asked for `/tags on`.
    tagged: AtomicBool,
    /// A WebSocket close frame is queued: the queue takes nothing more.
    closed: AtomicBool,
}

/// How a client's socket carries lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// `\n`-ended text: `nc`, telnet, `sockit chat`.
    Text,
    /// One WebSocket text frame per line, after the upgrade.
    WebSocket,
}

#[derive(Debug, Default)]
struct Queue {
    /// Each entry with the form it is sent in, fixed when it was queued.
    entries: VecDeque<(Outgoing, Form)>,
    /// Bytes of the front entry the kernel already took.
    sent: usize,
    /// What the entries count against the bound.
    bytes: usize,
    /// The socket had no room: the client's task writes until it has, and
    /// everyone else only queues.
    full: bool,
    /// Writing failed; the connection is ending.
    failed: Option<io::ErrorKind>,
    /// Since when `bytes` has been over the soft limit.
    over_soft: Option<Instant>,
}

fn cost((entry, form): &(Outgoing, Form)) -> usize {
    entry.bytes(*form).len() + ENTRY_COST
}

impl Outbox {
    /// An empty queue for `stream` within `bound`.
    pub fn new(stream: Arc<Stream>, wire: Wire, bound: Bound) -> Self {
        Outbox {
            stream,
            queue: Mutex::new(Queue::default()),
            stalled: Notify::new(),
            bound,
            websocket: wire == Wire::WebSocket,
            tagged: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Whether the client is a WebSocket, whose close takes a frame.
    pub fn websocket(&self) -> bool {
        self.websocket
    }

    /// `/tags on|off`: the form of every line queued from now on.
    pub fn set_tagged(&self, on: bool) {
        self.tagged.store(on, Ordering::Relaxed);
    }

    fn form(&self) -> Form {
        Form {
            websocket: self.websocket,
            tagged: self.tagged.load(Ordering::Relaxed),
        }
    }

    /// Whether the client has been over the soft limit for the grace
    /// period, as of now.
    fn overstayed(&self, q: &Queue) -> bool {
        q.over_soft
            .is_some_and(|since| since.elapsed() >= self.bound.grace)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        crate::sync::lock(&self.queue)
    }

    /// Queues `line`; `Ok(true)` means the caller should `flush` once it
    /// has queued everything else (the queue was idle). A connection that
    /// is already failing is not behind: it will leave on its own.
    pub fn push(&self, line: &Outgoing) -> Result<bool, Behind> {
        let mut q = self.lock();
        if q.failed.is_some() || self.closed.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if self.websocket && line.is_close() {
            self.closed.store(true, Ordering::Relaxed);
        }
        let entry = (line.clone(), self.form());
        let cost = cost(&entry);
        if q.bytes + cost > self.bound.hard || self.overstayed(&q) {
            return Err(Behind);
        }
        q.bytes += cost;
        if q.bytes > self.bound.soft && q.over_soft.is_none() {
            q.over_soft = Some(Instant::now());
            // A task already waiting for room must start the grace clock.
            self.stalled.notify_one();
        }
        q.entries.push_back(entry);
        Ok(q.entries.len() == 1 && !q.full)
    }

    /// Writes what is queued as far as the socket takes it now, without
    /// waiting; the rest is left to the client's task.
    pub fn flush(&self) {
        let mut q = self.lock();
        if q.full || q.failed.is_some() {
            return;
        }
        if !matches!(self.write_now(&mut q), Ok(true)) {
            self.stalled.notify_one();
        }
    }

    /// Waits until everything queued is written; fails with [`Behind`] if
    /// the client stays over the soft limit past the grace period, whether
    /// or not more lines arrive for it meanwhile.
    pub async fn drain(&self) -> io::Result<()> {
        loop {
            let deadline = {
                let mut q = self.lock();
                if let Some(kind) = q.failed {
                    return Err(kind.into());
                }
                if self.write_now(&mut q)? {
                    return Ok(());
                }
                if self.overstayed(&q) {
                    return Err(io::Error::other(Behind));
                }
                q.over_soft.map(|since| since + self.bound.grace)
            };
            let grace_over = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => self.stalled.notified().await,
                }
            };
            tokio::select! {
                res = self.stream.ready(Interest::WRITABLE) => res.map(drop)?,
                () = grace_over => {}
            }
        }
    }

    /// `write_queued`, remembering how it ended: a full socket leaves the
    /// rest to the client's task, a failed one ends the queue.
    fn write_now(&self, q: &mut Queue) -> io::Result<bool> {
        match self.write_queued(q) {
            Ok(done) => {
                q.full = !done;
                Ok(done)
            }
            Err(e) => {
                fail(q, e.kind());
                Err(e)
            }
        }
    }

    /// The client's share of the writing: whenever its socket was full,
    /// waits for room and writes the rest. Returns only when writing fails.
    pub async fn write_when_full(&self) -> io::Error {
        loop {
            self.stalled.notified().await;
            if let Err(e) = self.drain().await {
                return e;
            }
        }
    }

    /// Writes queued entries, many per syscall, straight from the shared
    /// buffers; `Ok(false)` once the socket is full.
    fn write_queued(&self, q: &mut Queue) -> io::Result<bool> {
        while let Some(front) = q.entries.front() {
            // One entry is the common case (a paced fan-out): a plain send
            // skips writev's iovec import, which showed in profiles.
            let res = if q.entries.len() == 1 {
                self.stream.try_write(&front.0.bytes(front.1)[q.sent..])
            } else {
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let mut parts = q.entries.iter();
                let mut n = 0;
                for (slot, (entry, form)) in iov.iter_mut().zip(&mut parts) {
                    let skip = if n == 0 { q.sent } else { 0 };
                    *slot = IoSlice::new(&entry.bytes(*form)[skip..]);
                    n += 1;
                }
                self.stream.try_write_vectored(&iov[..n])
            };
            match res {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    q.advance(n);
                    if q.bytes <= self.bound.soft {
                        q.over_soft = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl Queue {
    /// The kernel took `n` more bytes.
    fn advance(&mut self, mut n: usize) {
        while let Some(front) = self.entries.front() {
            let left = front.0.bytes(front.1).len() - self.sent;
            if n < left {
                self.sent += n;
                return;
            }
            n -= left;
            self.bytes -= cost(front);
            self.sent = 0;
            self.entries.pop_front();
        }
    }
}

/// Nothing more can be written: drop what waits, so a dead connection holds
/// no lines.
fn fail(q: &mut Queue, kind: io::ErrorKind) {
    q.failed = Some(kind);
    q.entries = VecDeque::new();
    q.bytes = 0;
    q.sent = 0;
    q.over_soft = None;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chat::line::Entry;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    /// Bytes queued as they are.
    pub(crate) fn raw(text: impl AsRef<str>) -> Outgoing {
        Entry::raw(text.as_ref().as_bytes())
    }

    fn raw_cost(entry: &Outgoing) -> usize {
        entry.bytes(TEXT).len() + ENTRY_COST
    }

    const TEXT: Form = Form {
        websocket: false,
        tagged: false,
    };

    /// An outbox on one end of a socket pair, ready to write, and the other
    /// end, read without the runtime.
    pub(crate) async fn pair(limit: usize) -> (Arc<Outbox>, UnixStream) {
        pair_within(Bound::hard(limit)).await
    }

    /// [`pair`] within a two-level bound.
    pub(crate) async fn pair_within(bound: Bound) -> (Arc<Outbox>, UnixStream) {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        // A new socket is writable once the reactor has seen it so.
        ours.writable().await.unwrap();
        let out = Outbox::new(Arc::new(Stream::Unix(ours)), Wire::Text, bound);
        let theirs = theirs.into_std().unwrap();
        theirs.set_nonblocking(true).unwrap();
        (Arc::new(out), theirs)
    }

    /// Everything the peer has been sent so far, without waiting.
    pub(crate) fn received(mut peer: &UnixStream) -> String {
        let mut got = Vec::new();
        match peer.read_to_end(&mut got) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("the peer is still connected: {other:?}"),
        }
        String::from_utf8(got).unwrap()
    }

    #[tokio::test]
    async fn the_bound_counts_bytes_until_the_kernel_takes_them() {
        let line = raw("0123456789\n");
        let (out, peer) = pair(2 * raw_cost(&line)).await;
        assert!(out.push(&line).unwrap(), "an idle queue asks for a flush");
        assert!(!out.push(&line).unwrap(), "a waiting one does not");
        assert!(out.push(&line).is_err(), "a third line is over the bound");
        out.flush();
        assert!(out.push(&line).unwrap() && !out.push(&line).unwrap());
        out.flush();
        assert_eq!(received(&peer), "0123456789\n".repeat(4));
    }

    #[tokio::test]
    async fn a_full_socket_is_left_to_the_clients_task() {
        let entry = raw("x".repeat(60 * 1024));
        let (out, peer) = pair(usize::MAX).await;
        let mut pushed = 0;
        // Until the socket pair's buffer is full.
        while !out.lock().full {
            assert!(out.push(&entry).unwrap(), "{pushed} entries in");
            out.flush();
            pushed += 1;
            assert!(pushed < 1000, "a socket buffer is not 60 MB");
        }
        let last = raw("the end\n");
        assert!(!out.push(&last).unwrap(), "a full queue is not flushed");
        let writer = tokio::spawn({
            let out = out.clone();
            async move { out.write_when_full().await }
        });
        let want = entry.bytes(TEXT).len() * pushed + last.bytes(TEXT).len();
        let peer = tokio::task::spawn_blocking(move || {
            peer.set_nonblocking(false).unwrap();
            let mut got = vec![0; want];
            (&peer).read_exact(&mut got).unwrap();
            assert!(got.ends_with(b"xthe end\n"), "all of it, in order");
            peer
        })
        .await
        .unwrap();
        drop(peer);
        assert!(out.lock().entries.is_empty(), "nothing left");
        assert!(out.push(&last).unwrap(), "an idle queue again");
        out.flush();
        let err = writer.await.unwrap();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        assert!(!out.push(&last).unwrap(), "a failed queue takes nothing");
    }

    /// Fills the socket pair until the kernel takes no more; how many
    /// entries that took.
    fn fill(out: &Outbox, entry: &Outgoing) -> usize {
        for pushed in 0..1000 {
            if out.lock().full {
                return pushed;
            }
            out.push(entry).unwrap();
            out.flush();
        }
        panic!("a socket buffer is not 60 MB");
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_soft_limit_a_client_has_the_grace_period() {
        let entry = raw("x".repeat(60 * 1024));
        let bound = Bound {
            hard: 100 * raw_cost(&entry),
            soft: 4 * raw_cost(&entry),
            grace: Duration::from_secs(10),
        };
        let (out, peer) = pair_within(bound).await;
        let in_kernel = fill(&out, &entry);
        for _ in 0..10 {
            out.push(&entry).unwrap();
        }
        // Over the soft limit, within the hard one: kept for now.
        tokio::time::advance(Duration::from_secs(9)).await;
        out.push(&entry).unwrap();
        // The reader catches up below the soft limit: the clock resets.
        // It reads all that was written: a Unix socket reports room only
        // once most of its buffer is free, so a reader that stopped early
        // could leave the writer waiting for ever (1 run in 30 hung so).
        // On the real clock meanwhile: while the reader's thread blocks the
        // runtime looks idle, and a paused clock would jump past the grace
        // period.
        tokio::time::resume();
        let reader = tokio::task::spawn_blocking(move || {
            peer.set_nonblocking(false).unwrap();
            let mut buf = vec![0; 1 << 20];
            let mut got = 0;
            while got < (in_kernel + 11) * entry.bytes(TEXT).len() {
                got += (&peer).read(&mut buf).unwrap();
            }
            peer
        });
        let drained = out.clone();
        let writer = tokio::spawn(async move { drained.drain().await });
        let peer = reader.await.unwrap();
        writer.await.unwrap().unwrap();
        tokio::time::pause();
        assert!(out.lock().over_soft.is_none());
        // Stops reading again: over the soft limit for the whole grace
        // period, it is let go even with no new line to refuse.
        let entry = raw("y".repeat(60 * 1024));
        fill(&out, &entry);
        for _ in 0..10 {
            out.push(&entry).unwrap();
        }
        let stuck = tokio::spawn({
            let out = out.clone();
            async move { out.drain().await }
        });
        tokio::time::advance(Duration::from_secs(11)).await;
        let err = stuck.await.unwrap().unwrap_err();
        assert!(err.get_ref().is_some_and(|e| e.is::<Behind>()), "{err}");
        assert!(out.push(&entry).is_err(), "and new lines are refused");
        drop(peer);
    }

    #[tokio::test]
    async fn past_the_hard_limit_a_client_is_refused_at_once() {
        let line = raw("z".repeat(1000));
        let bound = Bound {
            hard: 3 * raw_cost(&line),
            soft: raw_cost(&line),
            grace: Duration::from_secs(3600),
        };
        let (out, _peer) = pair_within(bound).await;
        for _ in 0..3 {
            out.push(&line).unwrap();
        }
        assert!(out.push(&line).is_err());
    }
}
