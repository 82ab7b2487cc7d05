//! `--hex-dump`: every relayed chunk as offset / hex / ASCII lines under a
//! header naming the connection and direction, like `ncat --hex-dump` or
//! `socat -x`. A chunk is formatted whole and written with one call under a
//! lock, so chunks never interleave, and it is written before the chunk is
//! forwarded, so the dump's order is the relay's order.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;

/// Which way a chunk went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to target.
    Up,
    /// Target to client.
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

/// Where dumps go: stderr or a file, shared by all connections.
pub struct Dumper {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Dumper {
    /// Dumps to stderr.
    pub fn stderr() -> Self {
        Dumper {
            out: Mutex::new(Box::new(io::stderr())),
        }
    }

    /// Dumps to a file, created or truncated, then appended to: two relays
    /// given the same file add to it rather than overwrite each other.
    pub fn file(path: &Path) -> io::Result<Self> {
        File::create(path)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok(Dumper {
            out: Mutex::new(Box::new(file)),
        })
    }

    /// Records one chunk that starts `offset` bytes into its direction's
    /// stream.
    pub fn chunk(&self, conn: u64, dir: Direction, offset: u64, data: &[u8]) {
        let text = format_chunk(conn, dir, offset, data);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A dump that cannot be written must not break the relay itself.
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
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

    #[test]
    fn two_dumpers_on_one_file_both_keep_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.txt");
        let (a, b) = (Dumper::file(&path).unwrap(), Dumper::file(&path).unwrap());
        a.chunk(1, Direction::Up, 0, b"first");
        b.chunk(1, Direction::Up, 0, b"second");
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
