//! Log setup: tracing to stderr, level from `-v`/`-q` unless `RUST_LOG` says
//! otherwise, as text or JSON lines.
//!
//! Lines are written off the request path, as nginx's `access_log …
//! buffer=` does: whoever logs appends its line to one shared buffer, and a
//! thread of its own writes the buffer to stderr when it holds
//! [`FLUSH_AT`] bytes or every [`FLUSH_EVERY`], so a busy server makes one
//! write for hundreds of lines. The buffer is bounded: when stderr cannot
//! keep up, lines are dropped and counted rather than slowing the server,
//! and the count is reported at exit. Nothing buffered is lost on a clean
//! exit. When stderr is a file, what lies well behind its end is dropped
//! from the page cache ([`crate::page_cache`]).
//!
//! HTTP's per-request line is the one line a busy server writes per
//! request, so [`AccessLine`] builds it without tracing's formatting
//! machinery, and into a buffer of the thread's own: taking the shared
//! buffer's lock for each line cost more than building it. A thread hands
//! its lines over when it has [`STAGE_AT`] bytes of them, when the oldest
//! is [`FLUSH_EVERY`] old, when it runs out of work (the runtime's park
//! hook, [`hand_over`]), and before any other line it logs, so each
//! thread's lines stay in order. A full stage joins the shared buffer as
//! it is, not copied, and the writer hands all of them to one `writev`.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quanta::Instant;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::sync::lock;

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

static JSON: AtomicBool = AtomicBool::new(false);

/// The buffer every line goes through, once [`init`] has run.
static BUFFER: OnceLock<Arc<Buffer>> = OnceLock::new();

/// Whether logs go out as JSON, for callers that give machines fields and
/// people a sentence.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// The writer thread writes once this much is waiting.
pub const FLUSH_AT: usize = 256 * 1024;

/// … and at least this often while anything is.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// A thread hands its request lines to the shared buffer once it has this
/// many bytes of them: small enough to stay in the core's cache.
pub const STAGE_AT: usize = 32 * 1024;

/// Most bytes waiting for stderr; past it, lines are dropped and counted.
const BUFFER_CAP: usize = 4 << 20;

/// Emptied chunks kept for threads to stage into again.
const FREE_CHUNKS: usize = 2 * FLUSH_AT / STAGE_AT;

/// How long the last words wait for busy threads to hand their lines over.
const HAND_OVER_WAIT: Duration = Duration::from_secs(1);

/// Lines on their way to stderr.
struct Buffer {
    state: Mutex<State>,
    wake: Condvar,
    /// Told when the last thread holding lines of its own hands them over.
    handed: Condvar,
    dropped: AtomicU64,
    /// Threads holding lines not yet handed over.
    staging: AtomicUsize,
    /// Whether anyone waits on `handed`: telling it costs a syscall, and
    /// a busy server's threads hand over thousands of times a second.
    awaited: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Whole lines in order. A thread's full stage joins as it is, not
    /// copied; anything smaller is copied onto the last chunk. So a chunk
    /// that is not full is followed by one that is, and the chunks' memory
    /// is at most about twice the bytes they hold.
    chunks: Vec<Vec<u8>>,
    /// Bytes in `chunks`.
    waiting: usize,
    free: Vec<Vec<u8>>,
    closing: bool,
}

impl State {
    fn copy_in(&mut self, lines: &[u8]) {
        match self.chunks.last_mut() {
            Some(last) if last.capacity() - last.len() >= lines.len() => {
                last.extend_from_slice(lines);
            }
            _ => {
                let mut chunk = self.free.pop().unwrap_or_default();
                chunk.reserve(STAGE_AT.max(lines.len()));
                chunk.extend_from_slice(lines);
                self.chunks.push(chunk);
            }
        }
    }
}

impl Buffer {
    fn new() -> Buffer {
        Buffer {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            handed: Condvar::new(),
            dropped: AtomicU64::new(0),
            staging: AtomicUsize::new(0),
            awaited: AtomicBool::new(false),
        }
    }

    fn append(&self, line: &[u8]) {
        let mut st = lock(&self.state);
        if self.admit(&mut st, line.len(), 1) {
            st.copy_in(line);
        }
    }

    /// Takes a thread's `count` staged lines, whole or counted dropped, and
    /// returns an empty chunk to stage the next ones into.
    fn append_stage(&self, mut lines: Vec<u8>, count: u64) -> Vec<u8> {
        let mut st = lock(&self.state);
        if !self.admit(&mut st, lines.len(), count) {
            lines.clear();
            return lines;
        }
        if lines.len() < STAGE_AT / 2 {
            st.copy_in(&lines);
            lines.clear();
            return lines;
        }
        st.chunks.push(lines);
        st.free.pop().unwrap_or_default()
    }

    /// Whether `len` more bytes fit; if not, counts `count` lines dropped.
    fn admit(&self, st: &mut State, len: usize, count: u64) -> bool {
        let before = st.waiting;
        if before + len > BUFFER_CAP {
            self.dropped.fetch_add(count, Ordering::Relaxed);
            return false;
        }
        st.waiting += len;
        // Once, as it crosses: each notify is a syscall, and the writer
        // takes everything when it runs.
        if before < FLUSH_AT && st.waiting >= FLUSH_AT {
            self.wake.notify_one();
        }
        true
    }

    /// Waits, a bounded time, for every thread to hand its lines over.
    fn wait_for_hand_overs(&self) {
        let st = lock(&self.state);
        // Both sides in one order (SeqCst): either the last thread to
        // hand over sees the flag, or this sees that nobody holds lines.
        self.awaited.store(true, Ordering::SeqCst);
        let _ = self.handed.wait_timeout_while(st, HAND_OVER_WAIT, |_| {
            self.staging.load(Ordering::SeqCst) > 0
        });
    }

    /// The writer thread: takes what is waiting when there is enough of it,
    /// when it has waited long enough, or at the end, and writes it.
    fn write_out(&self) {
        let mut taken = Vec::new();
        let mut trim = crate::page_cache::Trim::new(std::io::stderr());
        loop {
            let closing = {
                let st = lock(&self.state);
                let (mut st, _) = self
                    .wake
                    .wait_timeout_while(st, FLUSH_EVERY, |st| !st.closing && st.waiting < FLUSH_AT)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                std::mem::swap(&mut st.chunks, &mut taken);
                st.waiting = 0;
                st.closing
            };
            if !taken.is_empty() {
                // Whoever reads stderr may be gone: a lost line must not
                // become a panic.
                let _ = write_chunks(&mut std::io::stderr(), &taken);
                if let Some(trim) = &mut trim {
                    trim.written(std::io::stderr());
                }
                let mut st = lock(&self.state);
                for mut chunk in taken.drain(..) {
                    if st.free.len() < FREE_CHUNKS && chunk.capacity() <= 2 * STAGE_AT {
                        chunk.clear();
                        st.free.push(chunk);
                    }
                }
            }
            if closing {
                return;
            }
        }
    }
}

/// Writes every chunk, in as few calls as the kernel takes.
fn write_chunks(out: &mut impl Write, chunks: &[Vec<u8>]) -> std::io::Result<()> {
    // Linux takes at most 1024 pieces a call.
    for group in chunks.chunks(1024) {
        let mut slices: Vec<std::io::IoSlice> =
            group.iter().map(|c| std::io::IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match out.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => std::io::IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Keeps the log writer running; dropping it writes out everything
/// buffered and reports lines that had to be dropped.
#[must_use = "logs are lost unless the guard lives until exit"]
pub struct Guard {
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(buffer) = BUFFER.get() else { return };
        hand_over();
        // Workers hand over as they go idle, which at a clean exit they
        // are, or are about to be.
        buffer.wait_for_hand_overs();
        lock(&buffer.state).closing = true;
        buffer.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let dropped = buffer.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "sockit: {dropped} log lines dropped: stderr could not keep up"
            );
        }
    }
}

/// tracing's way into the buffer: it formats a whole line, then writes it
/// with one call.
#[derive(Clone)]
struct ToBuffer(Arc<Buffer>);

impl Write for ToBuffer {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        hand_over();
        self.0.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for ToBuffer {
    type Writer = ToBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the global subscriber. Call once, before anything logs, and
/// keep the guard until the process ends.
pub fn init(verbose: u8, quiet: u8, format: LogFormat) -> Guard {
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    let level = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{}={level}", env!("CARGO_CRATE_NAME"))));
    let buffer = Arc::new(Buffer::new());
    let writer = std::thread::Builder::new()
        .name("sockit-log".into())
        .spawn({
            let buffer = buffer.clone();
            move || buffer.write_out()
        })
        .ok();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ToBuffer(buffer.clone()))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    match format {
        LogFormat::Text => builder.compact().init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    let _ = BUFFER.set(buffer);
    Guard { writer }
}

/// A thread's request lines, not yet handed to the shared buffer.
#[derive(Default)]
struct Stage {
    lines: Vec<u8>,
    count: u64,
    /// When the oldest of them was written.
    since: Option<Instant>,
    /// The lines' clock: each thread keeps its own.
    stamp: Stamp,
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(buffer) = BUFFER.get() {
            self.hand_over(buffer);
        }
    }
}

thread_local! {
    static STAGE: RefCell<Stage> = RefCell::new(Stage::default());
}

impl Stage {
    fn hand_over(&mut self, buffer: &Buffer) {
        if self.since.take().is_none() {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        self.lines = buffer.append_stage(lines, self.count);
        self.count = 0;
        if buffer.staging.fetch_sub(1, Ordering::SeqCst) == 1
            && buffer.awaited.load(Ordering::SeqCst)
        {
            // Under the lock, so that a waiter cannot miss it between its
            // check and its wait.
            let _st = lock(&buffer.state);
            buffer.handed.notify_all();
        }
    }
}

/// Hands this thread's request lines to the shared buffer. The runtime
/// calls it as a worker goes idle or stops.
pub fn hand_over() {
    let Some(buffer) = BUFFER.get() else { return };
    // A thread's storage may be gone as it exits; so are its lines then.
    let _ = STAGE.try_with(|stage| {
        if let Ok(mut stage) = stage.try_borrow_mut() {
            stage.hand_over(buffer);
        }
    });
}

/// The parts of a connection's request lines that stay the same from one
/// request to the next, made once per connection.
pub struct AccessLine {
    /// From after the stamp to the method: `  INFO http: PEER "`.
    lead: Vec<u8>,
    /// After the time taken: a newline, or the rest of the JSON object.
    tail: Vec<u8>,
    json: bool,
}

impl AccessLine {
    /// For requests from `peer`.
    pub fn new(peer: &str) -> AccessLine {
        let json = json();
        let (mut lead, mut tail) = (Vec::new(), Vec::new());
        if json {
            lead.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"");
            let at = lead.len();
            lead.extend_from_slice(peer.as_bytes());
            escape_json_from(&mut lead, at);
            lead.extend_from_slice(b" \\\"");
            tail.extend_from_slice(b"\",\"service\":\"http\",\"peer\":\"");
            let at = tail.len();
            tail.extend_from_slice(peer.as_bytes());
            escape_json_from(&mut tail, at);
            tail.extend_from_slice(b"\"}\n");
        } else {
            // The peer leads the line already; a busy server writes a line
            // per request, so every byte counts.
            lead.extend_from_slice(b"  INFO http: ");
            lead.extend_from_slice(peer.as_bytes());
            lead.extend_from_slice(b" \"");
            tail.push(b'\n');
        }
        AccessLine { lead, tail, json }
    }

    /// One request's line, built by hand: `… INFO http: 127.0.0.1:50122
    /// "GET /a.txt" 200 1234 0.412 ms` (as JSON, with `service` and `peer`
    /// fields as tracing would give them), stamped with the raw clock
    /// reading `now`. Call only when INFO is enabled.
    pub fn write(&self, answered: &Answered, now: u64) {
        let Some(buffer) = BUFFER.get() else { return };
        let now = crate::clock::instant(now);
        let written = STAGE.try_with(|stage| {
            let Ok(mut stage) = stage.try_borrow_mut() else {
                return false;
            };
            let stage = &mut *stage;
            if stage.lines.capacity() == 0 {
                // Room for a full stage and a long last line, so it joins
                // the shared buffer without having grown on the way.
                stage.lines.reserve(STAGE_AT + STAGE_AT / 4);
            }
            let since = *stage.since.get_or_insert_with(|| {
                buffer.staging.fetch_add(1, Ordering::SeqCst);
                now
            });
            self.build(&mut stage.lines, &mut stage.stamp, answered, now);
            stage.count += 1;
            if stage.lines.len() >= STAGE_AT || now.saturating_duration_since(since) >= FLUSH_EVERY
            {
                stage.hand_over(buffer);
            }
            true
        });
        if !matches!(written, Ok(true)) {
            // A thread on its way out: straight to the shared buffer.
            let (mut line, mut stamp) = (Vec::new(), Stamp::default());
            self.build(&mut line, &mut stamp, answered, now);
            buffer.append(&line);
        }
    }

    fn build(&self, line: &mut Vec<u8>, stamp: &mut Stamp, answered: &Answered, now: Instant) {
        let Answered {
            method,
            path,
            status,
            bytes,
            took,
        } = *answered;
        let (mut num, mut ms) = (itoa::Buffer::new(), itoa::Buffer::new());
        // In u64: a Duration's own `as_micros` works in u128.
        let micros = took.as_secs() * 1_000_000 + u64::from(took.subsec_micros());
        let millis = ms.format(micros / 1000);
        let frac = (micros % 1000) as u32;
        let [tens, ones] = pair(frac % 100);
        let frac = [
            b'.',
            b'0' + (frac / 100) as u8,
            tens,
            ones,
            b' ',
            b'm',
            b's',
        ];
        let [hundreds, tens] = pair(u32::from(status / 10 % 100));
        let status = [hundreds, tens, b'0' + (status % 10) as u8];
        line.reserve(100 + self.lead.len() + self.tail.len() + method.len() + path.len());
        if self.json {
            line.extend_from_slice(b"{\"timestamp\":\"");
        }
        stamp.write(line, now);
        line.extend_from_slice(&self.lead);
        let text_start = line.len();
        line.extend_from_slice(method.as_bytes());
        line.push(b' ');
        line.extend_from_slice(path.as_bytes());
        line.extend_from_slice(b"\" ");
        line.extend_from_slice(&status);
        line.push(b' ');
        match bytes {
            Some(n) => line.extend_from_slice(num.format(n).as_bytes()),
            None => line.push(b'-'),
        }
        line.push(b' ');
        line.extend_from_slice(millis.as_bytes());
        line.extend_from_slice(&frac);
        if self.json {
            escape_json_from(line, text_start);
        }
        line.extend_from_slice(&self.tail);
    }
}

/// What a request line says of a request and its answer.
pub struct Answered<'a> {
    /// As the request spelled it.
    pub method: &'a str,
    /// The request target's path, without its query.
    pub path: &'a str,
    /// The answer's status code.
    pub status: u16,
    /// The answer body's length, where known.
    pub bytes: Option<u64>,
    /// From the read that brought the request to its answer's head.
    pub took: Duration,
}

/// Escapes `line[from..]` for a JSON string, in place.
fn escape_json_from(line: &mut Vec<u8>, from: usize) {
    if !line[from..]
        .iter()
        .any(|&b| b == b'"' || b == b'\\' || b < 0x20)
    {
        return;
    }
    let raw = line.split_off(from);
    for b in raw {
        match b {
            b'"' => line.extend_from_slice(b"\\\""),
            b'\\' => line.extend_from_slice(b"\\\\"),
            b if b < 0x20 => line.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => line.push(b),
        }
    }
}

/// The UTC timestamp tracing prints, `2026-12-01T22:38:59.901293Z`. The
/// wall clock is read once a second; within it the time is the monotonic
/// reading the caller already has, and the part up to the second is kept,
/// as requests come many to the second.
#[derive(Default)]
struct Stamp {
    /// When, on the monotonic clock, the cached second began.
    second_began: Option<Instant>,
    /// `YYYY-MM-DDTHH:MM:SS.` of that second.
    prefix: [u8; 20],
}

impl Stamp {
    fn write(&mut self, out: &mut Vec<u8>, at: Instant) {
        let into = self
            .second_began
            .and_then(|began| at.checked_duration_since(began))
            .filter(|d| d.as_secs() == 0);
        let into = into.unwrap_or_else(|| self.next_second(at));
        out.extend_from_slice(&self.prefix);
        let micros = into.subsec_micros();
        let (hi, lo) = (micros / 10_000, micros % 10_000);
        let digits = [pair(hi), pair(lo / 100), pair(lo % 100)];
        out.extend_from_slice(digits.as_flattened());
        out.push(b'Z');
    }

    /// Reads the wall clock for the second `at` is in; returns how far
    /// into it `at` is.
    fn next_second(&mut self, at: Instant) -> Duration {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let into = Duration::from_nanos(u64::from(wall.subsec_nanos()));
        self.second_began = at.checked_sub(into);
        let civil = civil(wall.as_secs());
        if let Ok(prefix) = civil.as_bytes().try_into() {
            self.prefix = prefix;
        }
        into
    }
}

/// Two decimal digits of `n` (below 100).
fn pair(n: u32) -> [u8; 2] {
    [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]
}

/// `YYYY-MM-DDTHH:MM:SS.` for seconds since the Unix epoch, UTC.
fn civil(secs: u64) -> String {
    let t = chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S.").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_reads_like_tracings() {
        let mut stamp = Stamp::default();
        let mut out = Vec::new();
        stamp.write(&mut out, Instant::now());
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.len(), "2026-12-01T22:38:59.901293Z".len(), "{text}");
        assert!(text.ends_with('Z') && text.as_bytes()[10] == b'T', "{text}");
        assert_eq!(civil(0), "1970-01-01T00:00:00.");
        assert_eq!(civil(1_795_305_600), "2026-11-22T00:00:00.");
    }

    /// Takes at most 7 bytes a call, from one piece at a time.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn chunks_survive_short_writes_in_order() {
        let chunks: Vec<Vec<u8>> = (0..2100u32)
            .map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut out = Trickle(Vec::new());
        write_chunks(&mut out, &chunks).unwrap();
        assert_eq!(out.0, chunks.concat());
    }

    #[test]
    fn small_stages_are_copied_and_the_cap_counts_what_it_drops() {
        let buffer = Buffer::new();
        // Small hand-overs share one chunk, so a thousand of them cannot
        // hold a thousand chunks' memory.
        for _ in 0..1000 {
            let back = buffer.append_stage(b"short line\n".to_vec(), 1);
            assert!(back.is_empty());
        }
        assert_eq!(lock(&buffer.state).chunks.len(), 1);
        // A full stage joins as it is.
        let full = vec![b'x'; STAGE_AT];
        let ptr = full.as_ptr();
        buffer.append_stage(full, 300);
        assert_eq!(lock(&buffer.state).chunks.last().unwrap().as_ptr(), ptr);
        while lock(&buffer.state).waiting + STAGE_AT <= BUFFER_CAP {
            buffer.append_stage(vec![b'y'; STAGE_AT], 300);
        }
        buffer.append_stage(vec![b'z'; STAGE_AT], 300);
        let room = BUFFER_CAP - lock(&buffer.state).waiting;
        buffer.append(&vec![b'w'; room + 1]);
        assert_eq!(buffer.dropped.load(Ordering::Relaxed), 301);
        assert!(lock(&buffer.state).waiting <= BUFFER_CAP);
    }

    #[test]
    fn json_text_is_escaped() {
        let mut line = b"{\"m\":\"".to_vec();
        let at = line.len();
        line.extend_from_slice(b"a\"b\\c\n");
        escape_json_from(&mut line, at);
        assert_eq!(line, b"{\"m\":\"a\\\"b\\\\c\\u000a");
    }
}
