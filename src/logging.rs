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
//! exit. One buffer for every line keeps them in the order they happened.
//!
//! HTTP's per-request line is the one line a busy server writes per
//! request, so [`access`] builds it without tracing's formatting machinery.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Most bytes waiting for stderr; past it, lines are dropped and counted.
const BUFFER_CAP: usize = 4 << 20;

/// Lines on their way to stderr.
struct Buffer {
    state: Mutex<State>,
    wake: Condvar,
    dropped: AtomicU64,
}

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closing: bool,
    /// The request lines' clock, kept under the same lock.
    stamp: Stamp,
}

impl Buffer {
    fn append(&self, line: &[u8]) {
        self.append_with(line.len(), |pending, _| pending.extend_from_slice(line));
    }

    /// Adds a line of about `len` bytes that `write` puts straight into the
    /// buffer, with the buffer's stamp for its time; or counts it dropped.
    fn append_with(&self, len: usize, write: impl FnOnce(&mut Vec<u8>, &mut Stamp)) {
        let mut st = lock(&self.state);
        let before = st.pending.len();
        if before + len > BUFFER_CAP {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let State { pending, stamp, .. } = &mut *st;
        write(pending, stamp);
        // Once, as it crosses: each notify is a syscall, and the writer
        // takes everything when it runs.
        if before < FLUSH_AT && st.pending.len() >= FLUSH_AT {
            self.wake.notify_one();
        }
    }

    /// The writer thread: takes what is waiting when there is enough of it,
    /// when it has waited long enough, or at the end, and writes it.
    fn write_out(&self) {
        let mut spare = Vec::with_capacity(2 * FLUSH_AT);
        loop {
            let closing = {
                let st = lock(&self.state);
                let (mut st, _) = self
                    .wake
                    .wait_timeout_while(st, FLUSH_EVERY, |st| {
                        !st.closing && st.pending.len() < FLUSH_AT
                    })
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                std::mem::swap(&mut st.pending, &mut spare);
                st.closing
            };
            if !spare.is_empty() {
                // Whoever reads stderr may be gone: a lost line must not
                // become a panic.
                let _ = std::io::stderr().write_all(&spare);
                spare.clear();
                if spare.capacity() > 4 * FLUSH_AT {
                    spare = Vec::with_capacity(2 * FLUSH_AT);
                }
            }
            if closing {
                return;
            }
        }
    }
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
    let buffer = Arc::new(Buffer {
        state: Mutex::new(State::default()),
        wake: Condvar::new(),
        dropped: AtomicU64::new(0),
    });
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
    /// fields as tracing would give them). Call only when INFO is enabled.
    pub fn write(
        &self,
        method: &str,
        path: &str,
        status: u16,
        bytes: Option<u64>,
        started: Instant,
    ) {
        // One clock read serves both the time taken and the stamp.
        let now = Instant::now();
        let took = now.duration_since(started);
        let Some(buffer) = BUFFER.get() else { return };
        let (mut num, mut ms) = (itoa::Buffer::new(), itoa::Buffer::new());
        let micros = took.as_micros() as u64;
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
        let len = 100 + self.lead.len() + self.tail.len() + method.len() + path.len();
        // Written straight into the shared buffer: a copy through a line
        // of its own would cost a busy server a tenth of its logging.
        buffer.append_with(len, |line, stamp| {
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
        });
    }
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

    #[test]
    fn json_text_is_escaped() {
        let mut line = b"{\"m\":\"".to_vec();
        let at = line.len();
        line.extend_from_slice(b"a\"b\\c\n");
        escape_json_from(&mut line, at);
        assert_eq!(line, b"{\"m\":\"a\\\"b\\\\c\\u000a");
    }
}
