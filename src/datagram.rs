//! The receive loop every datagram service shares (UDP, and Unix datagrams
//! for echo). It runs on a thread of its own with blocking
//! `recv_from`/`send_to`: one thread per socket, never per client. Waking through epoll and the scheduler for each datagram costs
//! about 40% of the request rate `sockperf server` reaches with plain
//! blocking calls, and a UDP service has no per-client state to multiplex.

use std::io;
use std::net::UdpSocket;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::net::Datagram;
use crate::shutdown::Shutdown;

/// How often an idle loop checks for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Answers datagrams until shutdown. `answer` gets each request (truncated to
/// `max_request` bytes, so pass one more than the largest valid request to
/// detect over-long ones) and fills the reply; returning false sends nothing.
pub async fn serve<F>(
    socket: Datagram,
    shutdown: &Shutdown,
    max_request: usize,
    answer: F,
) -> io::Result<()>
where
    F: FnMut(&[u8], &mut Vec<u8>) -> bool + Send + 'static,
{
    match socket {
        Datagram::Udp(s) => serve_std(s.into_std()?, shutdown, max_request, answer).await,
        // The socket file's guard outlives the loop.
        Datagram::Unix(s, _file) => serve_std(s.into_std()?, shutdown, max_request, answer).await,
    }
}

async fn serve_std<S, F>(
    socket: S,
    shutdown: &Shutdown,
    max_request: usize,
    answer: F,
) -> io::Result<()>
where
    S: Blocking + 'static,
    F: FnMut(&[u8], &mut Vec<u8>) -> bool + Send + 'static,
{
    socket.prepare()?;
    // The loop also stops if this future is dropped without a shutdown, so
    // it never outlives its caller holding the port.
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let stopped = stop.0.clone();
    let shutdown = shutdown.clone();
    let span = tracing::Span::current();
    let res = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let done = || shutdown.is_stopping() || stopped.load(Ordering::Relaxed);
        serve_blocking(&socket, done, max_request, answer)
    })
    .await
    .map_err(io::Error::other)?;
    drop(stop);
    res
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A blocking datagram socket of either family, answering a sender at
/// the address it sent from.
trait Blocking: Send {
    type Peer;
    fn prepare(&self) -> io::Result<()>;
    fn receive(&self, buf: &mut [u8]) -> io::Result<(usize, Self::Peer)>;
    fn answer(&self, reply: &[u8], to: &Self::Peer) -> io::Result<usize>;
}

/// `Blocking` for a socket type, its peers' address type, and the call
/// that sends to one.
macro_rules! blocking {
    ($socket:ty, $peer:ty, $send:ident) => {
        impl Blocking for $socket {
            type Peer = $peer;
            fn prepare(&self) -> io::Result<()> {
                self.set_nonblocking(false)?;
                self.set_read_timeout(Some(SHUTDOWN_POLL))
            }
            fn receive(&self, buf: &mut [u8]) -> io::Result<(usize, $peer)> {
                self.recv_from(buf)
            }
            fn answer(&self, reply: &[u8], to: &$peer) -> io::Result<usize> {
                self.$send(reply, to)
            }
        }
    };
}

blocking!(UdpSocket, std::net::SocketAddr, send_to);
// A Unix sender that bound no path cannot be answered: the send fails and
// is logged.
blocking!(UnixDatagram, SocketAddr, send_to_addr);

fn serve_blocking<S: Blocking, F>(
    socket: &S,
    done: impl Fn() -> bool,
    max_request: usize,
    mut answer: F,
) -> io::Result<()>
where
    F: FnMut(&[u8], &mut Vec<u8>) -> bool,
{
    let mut buf = vec![0u8; max_request];
    let mut reply = Vec::with_capacity(1024);
    while !done() {
        let (n, peer) = match socket.receive(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // ICMP errors from earlier replies land here; they concern one
            // peer, not the service.
            Err(err) => {
                tracing::debug!(%err, "datagram receive error");
                continue;
            }
        };
        reply.clear();
        if answer(&buf[..n], &mut reply)
            && let Err(err) = socket.answer(&reply, &peer)
        {
            tracing::debug!(%err, "datagram reply failed");
        }
    }
    Ok(())
}
