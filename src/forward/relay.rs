//! One relayed TCP connection: both directions at once in one task, each
//! half-close passed on as a half-close, a reset or write failure on either
//! side passed on as a reset to the other, bytes counted each way.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio_util::sync::CancellationToken;

use crate::dump::{Direction, Dumper};
use crate::idle::Activity;
use crate::net::Stream;

/// User-space copy buffer, per direction, allocated on first data.
const COPY_BUF: usize = 64 * 1024;

/// The copy buffer on a TLS leg.
const TLS_COPY_BUF: usize = 16 * 1024;

/// How a relay moves bytes.
#[derive(Clone)]
pub struct Options {
    /// Connection number, for dumps.
    pub conn: u64,
    /// Hex-dump every chunk here (forces the copying path).
    pub dump: Option<Arc<Dumper>>,
    /// Use splice(2) when possible.
    pub splice: bool,
    /// Close both sides after this long with no bytes either way.
    pub idle: Option<Duration>,
}

/// How a relay ended.
#[derive(Debug)]
pub enum End {
    /// Both sides closed their halves.
    Closed,
    /// Nothing moved for the idle timeout.
    Idle,
    /// One side failed or reset; the other was reset in turn.
    Reset(io::Error),
}

/// What one relay did.
#[derive(Debug)]
pub struct Summary {
    /// Bytes from client to target.
    pub up: u64,
    /// Bytes from target to client.
    pub down: u64,
    /// How it ended.
    pub end: End,
    /// How long it lasted.
    pub took: Duration,
}

/// Bytes moved each way, shared by both directions.
struct Meter {
    up: AtomicU64,
    down: AtomicU64,
    activity: Activity,
}

impl Meter {
    fn new() -> Self {
        Meter {
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            activity: Activity::new(),
        }
    }

    /// Runs both directions within the idle limit; what the relay moved.
    async fn measure(
        &self,
        idle: Option<Duration>,
        both: impl Future<Output = io::Result<End>>,
        on_error: impl FnOnce(),
    ) -> Summary {
        let end = match idle {
            Some(limit) => tokio::select! {
                res = both => res,
                () = self.activity.idle_for(limit) => Ok(End::Idle),
            },
            None => both.await,
        };
        let end = end.unwrap_or_else(|e| {
            on_error();
            End::Reset(e)
        });
        Summary {
            up: self.up.load(Ordering::Relaxed),
            down: self.down.load(Ordering::Relaxed),
            end,
            took: self.activity.age(),
        }
    }

    fn count(&self, dir: Direction, n: usize) {
        let total = match dir {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        };
        total.fetch_add(n as u64, Ordering::Relaxed);
        self.activity.touch();
    }
}

/// Relays between `client` and `target` until both directions are done.
pub async fn run(client: Stream, target: Stream, opts: &Options) -> Summary {
    let meter = Meter::new();
    let both = both_ways(&client, &target, opts, &meter);
    meter
        .measure(opts.idle, both, || {
            // Dropping both streams below then sends RST on each, as a
            // direct connection would have seen.
            client.reset_on_close();
            target.reset_on_close();
        })
        .await
}

/// Relays when a leg speaks TLS: both directions through user space, a
/// half-close passed on as a half-close (close_notify, then FIN, on a TLS
/// leg), plaintext bytes counted. A failure on one side closes the other.
pub async fn run_io<A, B>(client: A, target: B, opts: &Options) -> Summary
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let meter = Meter::new();
    let (mut client_rd, mut client_wr) = tokio::io::split(client);
    let (mut target_rd, mut target_wr) = tokio::io::split(target);
    let both = async {
        tokio::try_join!(
            copy_io(&mut client_rd, &mut target_wr, Direction::Up, opts, &meter),
            copy_io(
                &mut target_rd,
                &mut client_wr,
                Direction::Down,
                opts,
                &meter
            ),
        )?;
        Ok(End::Closed)
    };
    meter.measure(opts.idle, both, || {}).await
}

/// One direction of [`run_io`].
async fn copy_io<R, W>(
    from: &mut R,
    to: &mut W,
    dir: Direction,
    opts: &Options,
    meter: &Meter,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // A TLS record holds at most 16 KiB, so a bigger buffer would not fill.
    let mut buf = vec![0u8; TLS_COPY_BUF];
    let mut offset = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if let Some(d) = &opts.dump {
            d.chunk(opts.conn, dir, offset, &buf[..n]).await;
        }
        to.write_all(&buf[..n]).await?;
        meter.count(dir, n);
        offset += n as u64;
    }
}

async fn both_ways(
    client: &Stream,
    target: &Stream,
    opts: &Options,
    meter: &Meter,
) -> io::Result<End> {
    let (up_done, down_done) = (CancellationToken::new(), CancellationToken::new());
    tokio::try_join!(
        async {
            one_way(client, target, Direction::Up, opts, meter).await?;
            up_done.cancel();
            watch_for_reset(client, &down_done).await
        },
        async {
            one_way(target, client, Direction::Down, opts, meter).await?;
            down_done.cancel();
            watch_for_reset(target, &up_done).await
        },
    )?;
    Ok(End::Closed)
}

/// Once a side has sent EOF nothing reads from it, so a reset from it would
/// go unnoticed until the other direction next writes (never, for a silent
/// long-poll). This waits for one while the other direction still runs.
async fn watch_for_reset(side: &Stream, other_done: &CancellationToken) -> io::Result<()> {
    tokio::select! {
        () = other_done.cancelled() => Ok(()),
        res = side.ready(Interest::ERROR) => {
            res?;
            Err(side
                .take_error()
                .unwrap_or_else(|| io::ErrorKind::ConnectionReset.into()))
        }
    }
}

/// Moves one direction until EOF, then half-closes `to`.
async fn one_way(
    from: &Stream,
    to: &Stream,
    dir: Direction,
    opts: &Options,
    meter: &Meter,
) -> io::Result<()> {
    // A direction holds no pipe or buffer until its first bytes arrive, so
    // idle connections cost neither descriptors nor memory.
    from.wait_for_data().await?;
    #[cfg(target_os = "linux")]
    if opts.splice && opts.dump.is_none() {
        // Out of descriptors for a pipe is no reason to drop the client:
        // copying still works. Past the per-user pipe allowance the kernel
        // hands out one-page pipes, which move less per call than copying.
        if let Ok(pipe) = super::splice::Pipe::new()
            && pipe.size() >= COPY_BUF
        {
            return super::splice::relay(from, to, &pipe, |n| meter.count(dir, n)).await;
        }
    }
    copy(from, to, dir, opts.conn, opts.dump.as_deref(), meter).await
}

/// The user-space path: read, dump, write.
async fn copy(
    from: &Stream,
    to: &Stream,
    dir: Direction,
    conn: u64,
    dump: Option<&Dumper>,
    meter: &Meter,
) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_BUF];
    let mut offset = 0u64;
    loop {
        let n = from.read_drained(&mut buf).await?;
        if n == 0 {
            return to.shutdown_write();
        }
        if let Some(d) = dump {
            d.chunk(conn, dir, offset, &buf[..n]).await;
        }
        // Counted as it leaves, so a slow reader that keeps taking bytes is
        // not mistaken for an idle connection.
        to.write_all_shared(&buf[..n], |m| meter.count(dir, m))
            .await?;
        offset += n as u64;
    }
}
