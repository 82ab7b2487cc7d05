//! The receive loop every UDP service shares. It runs on a thread of its own
//! with blocking `recv_from`/`send_to`: one thread per UDP socket, never per
//! client. Waking through epoll and the scheduler for each datagram costs
//! about 40% of the request rate `sockperf server` reaches with plain
//! blocking calls, and a UDP service has no per-client state to multiplex.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::shutdown::Shutdown;

/// How often an idle loop checks for shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

/// Answers datagrams until shutdown. `answer` gets each request (truncated to
/// `max_request` bytes, so pass one more than the largest valid request to
/// detect over-long ones) and fills the reply; returning false sends nothing.
pub async fn serve<F>(
    socket: tokio::net::UdpSocket,
    shutdown: &Shutdown,
    max_request: usize,
    answer: F,
) -> io::Result<()>
where
    F: FnMut(&[u8], &mut Vec<u8>) -> bool + Send + 'static,
{
    let socket = socket.into_std()?;
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(SHUTDOWN_POLL))?;
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

fn serve_blocking<F>(
    socket: &UdpSocket,
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
        let (n, peer) = match socket.recv_from(&mut buf) {
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
                tracing::debug!(%err, "udp receive error");
                continue;
            }
        };
        reply.clear();
        if answer(&buf[..n], &mut reply) {
            if let Err(err) = socket.send_to(&reply, peer) {
                tracing::debug!(%err, %peer, "udp send failed");
            }
        }
    }
    Ok(())
}
