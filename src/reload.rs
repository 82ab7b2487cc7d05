//! `sockit serve` reloading its config on SIGHUP. Services are matched by
//! key (their section, or a forward rule's listener): one the new file
//! drops stops accepting and drains; one it adds starts; one whose
//! settings changed stops accepting, then starts again on the same
//! endpoints with the new settings. Connections already open keep the
//! service they came in on until they end or its drain timeout passes. A
//! file that does not load is reported in one line and changes nothing.

use std::collections::HashMap;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

use crate::runner::{self, Announce, Service};
use crate::shutdown::{Shutdown, Signals};

/// A service that is running, and what it needs to be stopped.
struct Live {
    service: Service,
    shutdown: Shutdown,
    /// Its accept loops; once they have ended its sockets are closed and
    /// the endpoints free for a successor.
    listeners: TaskTracker,
}

/// Runs `services` like [`runner::run`], and on each SIGHUP asks `load`
/// for the services the config now describes.
pub async fn run<L>(services: Vec<Service>, mut load: L) -> anyhow::Result<()>
where
    L: FnMut() -> anyhow::Result<Vec<Service>>,
{
    if services.is_empty() || services.iter().all(|s| s.endpoints.is_empty()) {
        anyhow::bail!("no services enabled in the config");
    }
    let mut signals = Signals::install()?;
    let mut hangups = signal(SignalKind::hangup()).context("install the SIGHUP handler")?;
    let mut tasks = Tasks {
        sockets: JoinSet::new(),
        beside: JoinSet::new(),
    };
    let mut live = start(services, &mut tasks, Announce::Table).await?;
    let mut retired = JoinSet::new();
    let fatal = loop {
        tokio::select! {
            () = signals.recv() => {
                tracing::info!("shutting down");
                break None;
            }
            _ = hangups.recv() => match load() {
                Ok(next) => live = apply(live, next, &mut tasks, &mut retired).await,
                Err(err) => tracing::error!("reload: {err:#}; the old config stays"),
            },
            // As in a server that never reloads, a service's task beside
            // its sockets failing for good stops everything.
            Some(Ok(Err((name, err)))) = tasks.beside.join_next() => break Some((name, err)),
            Some(joined) = tasks.sockets.join_next() => {
                match joined {
                    Ok(Err((name, err))) => tracing::error!(service = name, %err, "service stopped"),
                    Err(err) => tracing::error!(%err, "service task failed"),
                    Ok(Ok(())) => {}
                }
            }
            // Reaped as they finish, so many reloads leave nothing behind.
            Some(_) = retired.join_next() => {}
        }
    };
    for l in &live {
        l.shutdown.trigger();
    }
    let (services, shutdowns): (Vec<Service>, Vec<Shutdown>) =
        live.into_iter().map(|l| (l.service, l.shutdown)).unzip();
    runner::drain(&services, &shutdowns).await;
    while retired.join_next().await.is_some() {}
    match fatal {
        None => Ok(()),
        Some((name, err)) => Err(anyhow::Error::new(err).context(name)),
    }
}

/// What the services run: their accept loops, and their work beside them.
struct Tasks {
    sockets: JoinSet<Result<(), (&'static str, std::io::Error)>>,
    beside: JoinSet<Result<(), (&'static str, std::io::Error)>>,
}

/// Binds and starts `services`, announcing their endpoints as `how` says.
async fn start(
    services: Vec<Service>,
    tasks: &mut Tasks,
    how: Announce,
) -> anyhow::Result<Vec<Live>> {
    let bindings = runner::bind_all(&services, how).await?;
    match how {
        Announce::Table => eprint!("{}", runner::table(&bindings)),
        Announce::Lines => {
            for b in &bindings {
                tracing::info!("reload: {} listening on {}", b.name, b.shown);
            }
        }
    }
    for tls in services.iter().filter_map(|s| s.tls.as_ref()) {
        eprintln!("{}", tls.banner());
    }
    let live: Vec<Live> = services
        .into_iter()
        .map(|service| Live {
            service,
            shutdown: Shutdown::new(),
            listeners: TaskTracker::new(),
        })
        .collect();
    for b in bindings {
        let l = &live[b.service];
        let name = b.name;
        let fut = l
            .listeners
            .track_future((b.start)(b.bound, l.shutdown.clone()));
        tasks
            .sockets
            .spawn(async move { fut.await.map_err(|e| (name, e)) });
    }
    for l in &live {
        for task in &l.service.beside {
            let name = l.service.name;
            let fut = task(l.shutdown.clone());
            tasks
                .beside
                .spawn(async move { fut.await.map_err(|e| (name, e)) });
        }
        l.listeners.close();
    }
    Ok(live)
}

/// Moves from the running services to `next`.
async fn apply(
    live: Vec<Live>,
    next: Vec<Service>,
    tasks: &mut Tasks,
    retired: &mut JoinSet<()>,
) -> Vec<Live> {
    let mut wanted: HashMap<String, Service> =
        next.into_iter().map(|s| (s.key.clone(), s)).collect();
    let mut kept = Vec::new();
    let mut starting = Vec::new();
    for l in live {
        match wanted.remove(&l.service.key) {
            Some(s) if s.fingerprint == l.service.fingerprint => kept.push(l),
            changed => {
                l.shutdown.trigger();
                // The successor binds the same endpoints: wait until the
                // accept loops have let go of them.
                l.listeners.wait().await;
                match &changed {
                    Some(_) => tracing::info!("reload: {} changed", l.service.key),
                    None => tracing::info!("reload: {} removed, draining", l.service.key),
                }
                starting.extend(changed);
                retired.spawn(async move {
                    let cut = l.shutdown.drain(l.service.drain).await;
                    if cut > 0 {
                        tracing::warn!(
                            service = l.service.name,
                            connections = cut,
                            "drain timeout reached, closed live connections"
                        );
                    }
                });
            }
        }
    }
    starting.extend(wanted.into_values());
    // One at a time: an endpoint that cannot be bound costs its own
    // service, not the others.
    for service in starting {
        let key = service.key.clone();
        match start(vec![service], tasks, Announce::Lines).await {
            Ok(started) => kept.extend(started),
            Err(err) => tracing::error!("reload: {key} not started: {err:#}"),
        }
    }
    tracing::info!("reload: done, {} services running", kept.len());
    kept
}
