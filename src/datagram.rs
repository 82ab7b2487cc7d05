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
    // The socket file's guard outlives the loop.
    let (mut socket, _file): (Box<dyn Blocking>, _) = match socket {
        Datagram::Udp(s) => (Box::new((s.into_std()?, None)), None),
        Datagram::Unix(s, file) => (Box::new((s.into_std()?, None)), file),
    };
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
        serve_blocking(&mut *socket, done, max_request, answer)
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

/// A blocking datagram socket of either family: each answers the peer of
/// the datagram it last received.
trait Blocking: Send {
    fn prepare(&self) -> io::Result<()>;
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn answer(&self, reply: &[u8]) -> io::Result<usize>;
}

/// `Blocking` for a socket type, its peers' address type, and the call
/// that sends to one.
macro_rules! blocking {
    ($socket:ty, $peer:ty, $send:ident) => {
        impl Blocking for ($socket, Option<$peer>) {
            fn prepare(&self) -> io::Result<()> {
                self.0.set_nonblocking(false)?;
                self.0.set_read_timeout(Some(SHUTDOWN_POLL))
            }
            fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let (n, peer) = self.0.recv_from(buf)?;
                self.1 = Some(peer);
                Ok(n)
            }
            // A Unix peer that bound no path cannot be answered: the send
            // fails and is logged.
            fn answer(&self, reply: &[u8]) -> io::Result<usize> {
                match &self.1 {
                    Some(peer) => self.0.$send(reply, peer),
                    None => Ok(0),
                }
            }
        }
    };
}

blocking!(UdpSocket, std::net::SocketAddr, send_to);
blocking!(UnixDatagram, SocketAddr, send_to_addr);

fn serve_blocking<F>(
    socket: &mut dyn Blocking,
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
        let n = match socket.receive(&mut buf) {
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
            && let Err(err) = socket.answer(&reply)
        {
            tracing::debug!(%err, "datagram reply failed");
        }
    }
    Ok(())
}
