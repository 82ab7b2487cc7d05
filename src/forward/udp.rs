//! The UDP relay: each client address gets a session, an upstream socket
//! connected to one target, so replies find their way back; datagram
//! boundaries are kept; a session ends after `udp_timeout` without traffic.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::{Relay, log};
use crate::idle::Activity;
use crate::net::{self, MAX_DATAGRAM};
use crate::shutdown::Shutdown;
use crate::sync::lock;

/// Traffic of one session.
struct Session {
    upstream: UdpSocket,
    /// Index of the target in the relay's list.
    target: usize,
    id: u64,
    activity: Activity,
    up: (AtomicU64, AtomicU64),
    down: (AtomicU64, AtomicU64),
}

impl Session {
    fn touch(&self, counts: &(AtomicU64, AtomicU64), bytes: usize) {
        counts.0.fetch_add(1, Ordering::Relaxed);
        counts.1.fetch_add(bytes as u64, Ordering::Relaxed);
        self.activity.touch();
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
        // Found and touched under the lock, so an expiring session either
        // sees this datagram's touch or is already gone from the map.
        let existing = lock(&sessions)
            .get(&client)
            .cloned()
            .inspect(|s| s.touch(&s.up, n));
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
                    Some(session) => {
                        session.touch(&session.up, n);
                        lock(&sessions).insert(client, session.clone());
                        shutdown.spawn({
                            let (relay, sock, sessions) =
                                (relay.clone(), sock.clone(), sessions.clone());
                            let (session, stop) = (session.clone(), shutdown.clone());
                            move || serve(relay, sock, sessions, session, client, stop)
                        });
                        session
                    }
                    None => continue,
                }
            }
        };
        match session.upstream.send(&buf[..n]).await {
            Ok(_) => {}
            // An ICMP port unreachable from an earlier datagram can surface
            // on this send instead of the session's receive.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                refused(&relay, &sessions, &session, client, &e);
            }
            Err(e) => tracing::debug!(%e, %client, "udp send to target failed"),
        }
    }
    Ok(())
}

/// The session's target refused: rest it and drop the session, so the
/// client's next datagram opens one elsewhere.
fn refused(
    relay: &Relay,
    sessions: &Sessions,
    session: &Arc<Session>,
    client: SocketAddr,
    e: &io::Error,
) {
    let pause = relay.targets.failed(session.target);
    log::target_failed(relay.targets.endpoint(session.target), e, pause);
    forget(sessions, session, client);
}

/// Removes `session` from the map unless a newer one took its place.
fn forget(sessions: &Sessions, session: &Arc<Session>, client: SocketAddr) {
    let mut map = lock(sessions);
    if map.get(&client).is_some_and(|s| Arc::ptr_eq(s, session)) {
        map.remove(&client);
    }
}

/// Opens an upstream socket for a new client on the first target that
/// takes one.
async fn open(relay: &Relay, client: SocketAddr) -> Option<Arc<Session>> {
    let timeout = relay.cfg.connect_timeout;
    let Some((upstream, target)) = relay
        .first_reachable(|ep| async move { net::connect_udp(&ep, timeout).await })
        .await
    else {
        tracing::warn!(%client, "no udp target could be reached, datagram dropped");
        return None;
    };
    let id = relay.next_id();
    let to = upstream.peer_addr().map_or_else(
        |_| relay.targets.endpoint(target).to_string(),
        |a| a.to_string(),
    );
    log::open(id, &client.to_string(), &to, "");
    Some(Arc::new(Session {
        upstream,
        target,
        id,
        activity: Activity::new(),
        up: Default::default(),
        down: Default::default(),
    }))
}

/// Carries replies back to the client until the session expires or the
/// relay shuts down.
async fn serve(
    relay: Arc<Relay>,
    sock: Arc<UdpSocket>,
    sessions: Sessions,
    session: Arc<Session>,
    client: SocketAddr,
    shutdown: Shutdown,
) {
    let timeout = relay.cfg.udp_timeout;
    // Allocated when the first reply arrives: a session whose target never
    // answers holds no buffer.
    let mut buf = Vec::new();
    let mut answered = false;
    let reason = loop {
        let expiry = async {
            match timeout {
                Some(t) => session.activity.idle_for(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            res = session.upstream.readable() => {
                if let Err(e) = res {
                    tracing::debug!(%e, "udp receive from target failed");
                    break "target error";
                }
            }
            () = expiry => {
                // Checked again under the lock the receive loop touches
                // sessions under, so a datagram that just arrived keeps it.
                let mut map = lock(&sessions);
                if timeout.is_some_and(|t| session.activity.is_idle(t)) {
                    if map.get(&client).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                        map.remove(&client);
                    }
                    break "expired";
                }
                continue;
            }
            () = shutdown.stopping() => break "shutdown",
        }
        buf.resize(MAX_DATAGRAM, 0);
        match session.upstream.try_recv(&mut buf) {
            Ok(n) => {
                if !std::mem::replace(&mut answered, true) {
                    relay.targets.succeeded(session.target);
                }
                session.touch(&session.down, n);
                if let Err(e) = sock.send_to(&buf[..n], client).await {
                    tracing::debug!(%e, %client, "udp reply to client failed");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The target's port is closed (ICMP port unreachable).
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                refused(&relay, &sessions, &session, client, &e);
                break "target refused";
            }
            Err(e) => {
                tracing::debug!(%e, "udp receive from target failed");
                break "target error";
            }
        }
    };
    forget(&sessions, &session, client);
    let count =
        |c: &(AtomicU64, AtomicU64)| (c.0.load(Ordering::Relaxed), c.1.load(Ordering::Relaxed));
    log::udp_close(
        session.id,
        reason,
        count(&session.up),
        count(&session.down),
        session.activity.age(),
    );
}
