//! The UDP relay: each client address gets a session, an upstream socket
//! connected to one target, so replies find their way back; datagram
//! boundaries are kept; a session ends after `udp_timeout` without traffic.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{Relay, log};
use crate::net;
use crate::shutdown::Shutdown;

/// Largest datagram relayed (the UDP maximum).
const MAX_DATAGRAM: usize = 65_536;

/// Traffic of one session.
struct Session {
    upstream: UdpSocket,
    id: u64,
    start: Instant,
    /// Milliseconds after `start` of the last datagram either way.
    last: AtomicU64,
    up: (AtomicU64, AtomicU64),
    down: (AtomicU64, AtomicU64),
}

impl Session {
    fn touch(&self, counts: &(AtomicU64, AtomicU64), bytes: usize) {
        counts.0.fetch_add(1, Ordering::Relaxed);
        counts.1.fetch_add(bytes as u64, Ordering::Relaxed);
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<Session>>>>;

/// Relays datagrams arriving on `sock` until shutdown.
pub async fn run(relay: Arc<Relay>, sock: UdpSocket, shutdown: Shutdown) -> io::Result<()> {
    let sock = Arc::new(sock);
    let sessions: Sessions = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut warned_full = false;
    loop {
        let (n, client) = tokio::select! {
            res = sock.recv_from(&mut buf) => match res {
                Ok(got) => got,
                // ICMP errors from earlier replies surface here on some
                // systems; they concern one client, not the relay.
                Err(e) => {
                    tracing::debug!(%e, "udp receive failed");
                    continue;
                }
            },
            () = shutdown.stopping() => break,
        };
        if !relay.cfg.access.allows(client.ip()) {
            tracing::debug!(%client, "datagram from a denied address dropped");
            continue;
        }
        let existing = lock(&sessions).get(&client).cloned();
        let session = match existing {
            Some(s) => s,
            None => {
                if lock(&sessions).len() >= relay.cfg.max_conns {
                    if !std::mem::replace(&mut warned_full, true) {
                        tracing::warn!(%client, max = relay.cfg.max_conns,
                            "udp session limit reached, dropping datagrams from new clients");
                    }
                    continue;
                }
                warned_full = false;
                match open(&relay, client).await {
                    Some((session, target)) => {
                        lock(&sessions).insert(client, session.clone());
                        shutdown.spawn({
                            let (relay, sock, sessions) =
                                (relay.clone(), sock.clone(), sessions.clone());
                            let session = session.clone();
                            move || serve(relay, sock, sessions, session, client, target)
                        });
                        session
                    }
                    None => continue,
                }
            }
        };
        session.touch(&session.up, n);
        if let Err(e) = session.upstream.send(&buf[..n]).await {
            tracing::debug!(%e, %client, "udp send to target failed");
        }
    }
    Ok(())
}

fn lock(s: &Sessions) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<Session>>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens an upstream socket for a new client on the first target that
/// takes one.
async fn open(relay: &Relay, client: SocketAddr) -> Option<(Arc<Session>, usize)> {
    for i in relay.targets.order() {
        let ep = relay.targets.endpoint(i);
        match net::connect_udp(ep, Some(relay.cfg.connect_timeout)).await {
            Ok(upstream) => {
                let id = relay.next_id();
                let to = upstream
                    .peer_addr()
                    .map_or_else(|_| ep.to_string(), |a| a.to_string());
                log::open(id, &client.to_string(), &to);
                let session = Session {
                    upstream,
                    id,
                    start: Instant::now(),
                    last: AtomicU64::new(0),
                    up: Default::default(),
                    down: Default::default(),
                };
                return Some((Arc::new(session), i));
            }
            Err(e) => {
                let pause = relay.targets.failed(i);
                log::target_failed(ep, &e, pause);
            }
        }
    }
    tracing::warn!(%client, "no udp target could be reached, datagram dropped");
    None
}

/// Carries replies back to the client until the session expires.
async fn serve(
    relay: Arc<Relay>,
    sock: Arc<UdpSocket>,
    sessions: Sessions,
    session: Arc<Session>,
    client: SocketAddr,
    target: usize,
) {
    let timeout = relay.cfg.udp_timeout;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let reason = loop {
        let last = Duration::from_millis(session.last.load(Ordering::Relaxed));
        let deadline = session.start + last + timeout;
        let res = tokio::select! {
            res = session.upstream.recv(&mut buf) => res,
            () = tokio::time::sleep_until(deadline) => {
                let last = Duration::from_millis(session.last.load(Ordering::Relaxed));
                if Instant::now() >= session.start + last + timeout {
                    break "expired";
                }
                continue;
            }
        };
        match res {
            Ok(n) => {
                session.touch(&session.down, n);
                if let Err(e) = sock.send_to(&buf[..n], client).await {
                    tracing::debug!(%e, %client, "udp reply to client failed");
                }
            }
            // The target's port is closed (ICMP port unreachable): rest it
            // so the client's next datagram opens a session elsewhere.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let pause = relay.targets.failed(target);
                log::target_failed(relay.targets.endpoint(target), &e, pause);
                break "target refused";
            }
            Err(e) => {
                tracing::debug!(%e, "udp receive from target failed");
                break "target error";
            }
        }
    };
    lock(&sessions).remove(&client);
    let count =
        |c: &(AtomicU64, AtomicU64)| (c.0.load(Ordering::Relaxed), c.1.load(Ordering::Relaxed));
    log::udp_close(
        session.id,
        reason,
        count(&session.up),
        count(&session.down),
        session.start.elapsed(),
    );
}
