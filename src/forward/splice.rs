//! Zero-copy relaying on Linux: bytes go socket → pipe → socket with
//! `splice(2)` and never enter user space. Each direction owns one pipe and
//! only fills it when it is empty, so a would-block on the way in means the
//! socket is drained and one on the way out means the socket is full.

use std::io;
use std::os::fd::OwnedFd;

use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::Interest;

use crate::net::Stream;

/// Pipe capacity asked for: one splice moves up to this much. 256 KiB moves
/// about half as many bytes per second again as the default 64 KiB on
/// loopback, and 1 MiB no more; pipe pages count against a per-user limit
/// (`pipe-user-pages-soft`), past which new pipes shrink to one page.
const PIPE_SIZE: usize = 256 * 1024;

/// A kernel pipe used as the relay buffer of one direction.
pub struct Pipe {
    rd: OwnedFd,
    wr: OwnedFd,
    size: usize,
}

impl Pipe {
    /// A non-blocking pipe as large as the system allows up to `PIPE_SIZE`.
    pub fn new() -> io::Result<Pipe> {
        let (rd, wr) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        // The default 64 KiB works too; a bigger pipe means fewer syscalls
        // per megabyte, and a lower pipe-max-size is no reason to fail.
        let size = rustix::pipe::fcntl_setpipe_size(&wr, PIPE_SIZE)
            .or_else(|_| rustix::pipe::fcntl_getpipe_size(&wr))?;
        Ok(Pipe { rd, wr, size })
    }

    /// Bytes the pipe holds.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Moves `from`'s bytes to `to` until EOF, then half-closes `to`. `moved` is
/// called with each chunk's length as it leaves.
pub async fn relay(
    from: &Stream,
    to: &Stream,
    pipe: &Pipe,
    mut moved: impl FnMut(usize),
) -> io::Result<()> {
    let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
    loop {
        let n = loop {
            from.ready(Interest::READABLE).await?;
            let res = from.try_io(Interest::READABLE, || {
                Ok(rustix::pipe::splice(
                    from, None, &pipe.wr, None, pipe.size, flags,
                )?)
            });
            match res {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return to.shutdown_write();
        }
        let mut left = n;
        while left > 0 {
            to.ready(Interest::WRITABLE).await?;
            let res = to.try_io(Interest::WRITABLE, || {
                Ok(rustix::pipe::splice(&pipe.rd, None, to, None, left, flags)?)
            });
            match res {
                Ok(m) => {
                    left -= m;
                    moved(m);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}
