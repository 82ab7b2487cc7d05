//! Keeps a log written to a file from filling the page cache.
//!
//! A busy access log writes tens of megabytes a second that nobody reads
//! back soon. Left alone, those pages push out what is worth caching (the
//! files an HTTP server is serving), and every one of them is a page the
//! kernel has to find and clear first. Once a stretch of the log is well
//! behind the end of the file, [`Trim`] has the kernel write it out and
//! drop it, so the log lives in a small window of pages used over and
//! over. On a VM that hands free memory back to its host, which is where
//! this showed up, a page used again costs a tenth of a fresh one.
//! PostgreSQL treats its write-ahead log the same way.

use std::num::NonZeroU64;
use std::os::fd::AsFd;

use rustix::fs::{Advice, FileType, SeekFrom};

/// How much of the file's end stays cached, for `tail -f` and friends.
const KEEP: u64 = 8 << 20;

/// Stretches shorter than this are left for the next call, so that the
/// kernel is asked once per few megabytes, not once per write.
const STEP: u64 = 2 << 20;

/// A regular file's trimming state.
pub struct Trim {
    /// Where the last advice ended: everything before it was advised
    /// away.
    from: u64,
}

impl Trim {
    /// For what `fd` writes to, when it is a regular file; pipes, ttys and
    /// /dev/null have no pages to give back.
    pub fn new(fd: impl AsFd) -> Option<Trim> {
        let stat = rustix::fs::fstat(fd).ok()?;
        (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then_some(Trim { from: 0 })
    }

    /// Call after writing to `fd`. Asks the kernel to drop what lies more
    /// than [`KEEP`] behind the file position. The advice starts the
    /// write-out of dirty pages and leaves them; a later call drops them,
    /// clean by then.
    pub fn written(&mut self, fd: impl AsFd) {
        let fd = fd.as_fd();
        // The position, not a count of our own bytes: stderr may be
        // opened for appending and shared with others.
        let Ok(end) = rustix::fs::seek(fd, SeekFrom::Current(0)) else {
            return;
        };
        if end < self.from {
            // Truncated under us, as logrotate's copytruncate does.
            self.from = 0;
        }
        let until = end.saturating_sub(KEEP);
        if until < self.from + STEP {
            return;
        }
        // From the start, not from where the last call ended: pages that
        // were still being written out then are clean now. Ranges the
        // kernel holds no pages for cost it next to nothing.
        if rustix::fs::fadvise(fd, 0, NonZeroU64::new(until), Advice::DontNeed).is_ok() {
            self.from = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes of the file at `path` in the page cache, as util-linux's
    /// fincore counts them.
    fn cached_bytes(path: &std::path::Path) -> u64 {
        let out = std::process::Command::new("fincore")
            .args(["--bytes", "--noheadings", "--output", "RES"])
            .arg(path)
            .output()
            .expect("fincore, from util-linux");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    #[test]
    fn only_a_window_of_a_long_log_stays_cached() {
        let log = tempfile::NamedTempFile::new().unwrap();
        let file = log.as_file();
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        if rustix::fs::fstatfs(file).unwrap().f_type as i64 == TMPFS_MAGIC {
            eprintln!("skipped: the temporary directory is tmpfs, which has no pages to drop");
            return;
        }
        let mut trim = Trim::new(file).expect("a regular file");
        fn write(mut file: &std::fs::File, trim: &mut Trim, bytes: u64) {
            let chunk = [b'x'; 64 << 10];
            for _ in 0..bytes / chunk.len() as u64 {
                file.write_all(&chunk).unwrap();
                trim.written(file);
            }
        }
        write(file, &mut trim, 64 << 20);
        // How soon the kernel gets the pages to the disk depends on what
        // else it is writing; once they are there, the next stretch
        // written drops all of them but the window.
        file.sync_data().unwrap();
        write(file, &mut trim, STEP);
        let cached = cached_bytes(log.path());
        assert!(
            cached <= KEEP + STEP,
            "{cached} bytes of 66 MiB still cached"
        );
        assert!(Trim::new(std::fs::File::open("/dev/null").unwrap()).is_none());
    }
}
