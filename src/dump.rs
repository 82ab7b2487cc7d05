//! `--hex-dump`: every relayed or bridged chunk as offset / hex / ASCII
//! lines under a header naming the connection and direction, like
//! `ncat --hex-dump` or `socat -x`. A chunk is formatted whole and written before it is
//! forwarded, by one thread that takes chunks in order, so chunks never
//! interleave and the dump's order is the relay's order. The writes block
//! on a slow reader of stderr or a slow disk, which is why they happen on
//! a thread of their own: a stalled dump then slows the dumped connections,
//! which wait for their chunk to be written, and nothing else.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Chunks from different connections waiting for the writer thread.
const QUEUED_CHUNKS: usize = 16;

/// `-x` and `--dump-file`, for forward, connect and listen.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(default)]
pub struct HexDump {
    /// Hex-dump every chunk both ways (offset, hex, ASCII) to stderr.
    #[arg(short = 'x', long)]
    pub hex_dump: bool,
    /// Write the hex dump to this file instead (implies --hex-dump).
    #[arg(long, value_name = "FILE")]
    pub dump_file: Option<PathBuf>,
}

impl HexDump {
    /// Where the flags send the dump: a file wins, else stderr if asked.
    pub fn to(&self) -> DumpTo {
        match (&self.dump_file, self.hex_dump) {
            (Some(path), _) => DumpTo::File(path.clone()),
            (None, true) => DumpTo::Stderr,
            (None, false) => DumpTo::Off,
        }
    }

    /// The key to blame where no dump can be made.
    pub fn key(&self) -> &'static str {
        if self.dump_file.is_some() {
            "dump_file"
        } else {
            "hex_dump"
        }
    }
}

/// Where `--hex-dump` output goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DumpTo {
    /// No dump.
    #[default]
    Off,
    /// To stderr, between the log lines.
    Stderr,
    /// To a file, created or truncated at start.
    File(PathBuf),
}

impl DumpTo {
    /// Starts the dump's writer, if there is a dump.
    pub fn open(&self) -> io::Result<Option<Arc<Dumper>>> {
        Ok(match self {
            DumpTo::Off => None,
            DumpTo::Stderr => Some(Arc::new(Dumper::stderr()?)),
            DumpTo::File(path) => Some(Arc::new(Dumper::file(path).map_err(|e| {
                io::Error::new(e.kind(), format!("dump file {}: {e}", path.display()))
            })?)),
        })
    }
}

/// Which way a chunk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to target; for connect and listen, stdin to the peer.
    Up,
    /// Target to client; the peer to stdout.
    Down,
}

impl Direction {
    fn arrow(self) -> &'static str {
        match self {
            Direction::Up => ">",
            Direction::Down => "<",
        }
    }
}

/// A formatted chunk, and who to tell once it is written.
type Job = (String, oneshot::Sender<()>);

/// Where dumps go: stderr or a file, shared by all connections.
#[derive(Debug)]
pub struct Dumper {
    /// The writer thread ends when this goes.
    queue: mpsc::Sender<Job>,
}

impl Dumper {
    /// Dumps to stderr.
    pub fn stderr() -> io::Result<Self> {
        Self::to(Box::new(io::stderr()))
    }

    /// Dumps to a file, created or truncated, then appended to: two relays
    /// given the same file add to it rather than overwrite each other.
    pub fn file(path: &Path) -> io::Result<Self> {
        File::create(path)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Self::to(Box::new(file))
    }

    fn to(mut out: Box<dyn Write + Send>) -> io::Result<Self> {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUED_CHUNKS);
        std::thread::Builder::new()
            .name("hex-dump".into())
            .spawn(move || {
                while let Some((text, written)) = rx.blocking_recv() {
                    // A dump that cannot be written must not break the relay.
                    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
                    let _ = written.send(());
                }
            })?;
        Ok(Dumper { queue: tx })
    }

    /// Records one chunk that starts `offset` bytes into its direction's
    /// stream; returns once it is written.
    pub async fn chunk(&self, conn: u64, dir: Direction, offset: u64, data: &[u8]) {
        let text = format_chunk(conn, dir, offset, data);
        let (written, done) = oneshot::channel();
        if self.queue.send((text, written)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// The dump of one chunk: a header, then 16 bytes per line.
pub fn format_chunk(conn: u64, dir: Direction, offset: u64, data: &[u8]) -> String {
    let mut s = String::with_capacity(80 + data.len() / 16 * 80);
    let _ = writeln!(s, "conn {conn} {} {} bytes", dir.arrow(), data.len());
    for (i, row) in data.chunks(16).enumerate() {
        let _ = write!(s, "  {:08x} ", offset + (i * 16) as u64);
        for col in 0..16 {
            if col == 8 {
                s.push(' ');
            }
            match row.get(col) {
                Some(b) => {
                    let _ = write!(s, " {b:02x}");
                }
                None => s.push_str("   "),
            }
        }
        s.push_str("  |");
        s.extend(row.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        s.push_str("|\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_show_offset_hex_and_ascii() {
        let dump = format_chunk(3, Direction::Down, 16, b"GET / HTTP/1.0\r\n\r\n\x00\xff");
        assert_eq!(
            dump,
            "conn 3 < 20 bytes\n  \
             00000010  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 30 0d 0a  |GET / HTTP/1.0..|\n  \
             00000020  0d 0a 00 ff                                       |....|\n"
        );
    }

    #[tokio::test]
    async fn two_dumpers_on_one_file_both_keep_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.txt");
        let (a, b) = (Dumper::file(&path).unwrap(), Dumper::file(&path).unwrap());
        a.chunk(1, Direction::Up, 0, b"first").await;
        b.chunk(1, Direction::Up, 0, b"second").await;
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("|first|") && text.contains("|second|"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_chunk_is_just_a_header() {
        assert_eq!(format_chunk(1, Direction::Up, 0, b""), "conn 1 > 0 bytes\n");
    }
}
