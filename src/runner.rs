//! The one path every server takes, whether `sockit echo` (a suite of one)
//! or `sockit serve`: bind every endpoint before anything starts, announce
//! them, run each service on its sockets until a signal, then drain each
//! service within its own drain timeout.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;

use crate::endpoint::Endpoint;
use crate::net::{self, Bound};
use crate::shutdown::{Shutdown, Signals};
use crate::tls;

/// A running service instance on one bound socket.
pub type ServiceFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// Starts a service on one of its bound sockets.
pub type Starter = Arc<dyn Fn(Bound, Shutdown) -> ServiceFuture + Send + Sync>;

/// A named service, where it listens, how long it drains, how it starts.
#[derive(Clone)]
pub struct Service {
    /// Shown in the startup table and logs.
    pub name: &'static str,
    /// Every endpoint it listens on.
    pub endpoints: Vec<Endpoint>,
    /// How long its connections may finish after a shutdown signal.
    pub drain: Duration,
    /// Runs it on one bound socket until shutdown.
    pub start: Starter,
    /// Its TLS, if it speaks TLS: its endpoints show as `tls://`, with the
    /// certificate's fingerprint beside them.
    pub tls: Option<Arc<tls::server::Server>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("endpoints", &self.endpoints)
            .field("drain", &self.drain)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service from its config and its `run_bound`, which every one of
    /// its sockets shares.
    pub fn new<C, F, Fut>(
        name: &'static str,
        endpoints: Vec<Endpoint>,
        drain: Duration,
        cfg: C,
        run: F,
    ) -> Service
    where
        C: Send + Sync + 'static,
        F: Fn(Arc<C>, Bound, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        let cfg = Arc::new(cfg);
        Service {
            name,
            endpoints,
            drain,
            start: Arc::new(move |bound, sd| {
                Box::pin(run(cfg.clone(), bound, sd)) as ServiceFuture
            }),
            tls: None,
        }
    }

    /// The same service, speaking TLS through `tls` if there is one.
    pub fn with_tls(mut self, tls: Option<Arc<tls::server::Server>>) -> Service {
        self.tls = tls;
        self
    }
}

/// How the bound endpoints are made known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// One `listening on SCHEME://ADDR` line per endpoint, for scripts.
    Lines,
    /// The suite's table of services and endpoints.
    Table,
}

/// A service bound to one endpoint, not yet started.
pub struct Binding {
    /// Index of its service in the list given to [`bind_all`].
    service: usize,
    /// Shown in the table.
    pub name: &'static str,
    /// The endpoint actually bound, with the real port.
    pub endpoint: Endpoint,
    bound: Bound,
}

/// Binds every endpoint of every service, failing before anything starts if
/// one cannot be bound.
pub async fn bind_all(services: &[Service], announce: Announce) -> anyhow::Result<Vec<Binding>> {
    let mut out = Vec::new();
    for (i, service) in services.iter().enumerate() {
        for ep in &service.endpoints {
            let bound = net::bind(ep).await.with_context(|| match announce {
                // A subcommand names one service already.
                Announce::Lines => format!("bind {ep}"),
                Announce::Table => format!("bind {} for {}", ep, service.name),
            })?;
            out.push(Binding {
                service: i,
                name: service.name,
                endpoint: bound.local_endpoint()?.with_tls(service.tls.is_some()),
                bound,
            });
        }
    }
    Ok(out)
}

/// The startup table: one row per service endpoint.
pub fn table(bindings: &[Binding]) -> String {
    let width = bindings
        .iter()
        .map(|b| b.name.len())
        .max()
        .unwrap_or(0)
        .max(7);
    let mut out = format!("{:<width$}  endpoint\n", "service");
    for b in bindings {
        out.push_str(&format!("{:<width$}  {}\n", b.name, b.endpoint));
    }
    out
}

/// Binds, announces, runs until a signal or until every service has ended
/// by itself, then drains. A lone failing endpoint's error is returned as
/// it is; several are logged and counted.
pub async fn run(services: Vec<Service>, announce: Announce) -> anyhow::Result<()> {
    if services.is_empty() || services.iter().all(|s| s.endpoints.is_empty()) {
        anyhow::bail!("no services enabled in the config");
    }
    // Installed before the announcement: a signal sent right after it must
    // be a clean shutdown, not the default death by signal.
    let signals = Signals::install()?;
    let bindings = bind_all(&services, announce).await?;
    match announce {
        Announce::Lines => bindings.iter().for_each(|b| announce_line(&b.endpoint)),
        Announce::Table => eprint!("{}", table(&bindings)),
    }
    // After the endpoints, so `--pin` can be taken from here.
    for tls in services.iter().filter_map(|s| s.tls.as_ref()) {
        eprintln!("{}", tls.banner());
    }
    let shutdowns: Vec<Shutdown> = services.iter().map(|_| Shutdown::new()).collect();
    let mut set = JoinSet::new();
    let mut running = HashMap::new();
    let alone = bindings.len() == 1;
    for b in bindings {
        let service = &services[b.service];
        let fut = (service.start)(b.bound, shutdowns[b.service].clone());
        running.insert(set.spawn(fut).id(), (service.name, b.endpoint));
    }
    let all = wait_all(&mut set, &running, alone);
    let failures = run_until_signal(&shutdowns, signals, all).await;
    drain(&services, &shutdowns).await;
    match failures {
        Failures::None => Ok(()),
        Failures::Alone(endpoint, err) => Err(err).with_context(|| format!("serve {endpoint}")),
        Failures::Logged(n) => anyhow::bail!("{n} service endpoint(s) stopped with errors"),
    }
}

/// How the services ended.
enum Failures {
    None,
    /// The only endpoint failed: its error is the command's.
    Alone(Endpoint, io::Error),
    /// In a suite, each failure is logged as it happens, and counted.
    Logged(usize),
}

async fn wait_all(
    set: &mut JoinSet<io::Result<()>>,
    running: &HashMap<tokio::task::Id, (&'static str, Endpoint)>,
    alone: bool,
) -> Failures {
    let mut failed = 0;
    while let Some(joined) = set.join_next_with_id().await {
        let (id, err) = match joined {
            Ok((_, Ok(()))) => continue,
            Ok((id, Err(err))) => (id, err),
            Err(err) => (err.id(), io::Error::other(err)),
        };
        let (name, endpoint) = &running[&id];
        if alone {
            return Failures::Alone(endpoint.clone(), err);
        }
        tracing::error!(service = name, endpoint = %endpoint, %err, "service stopped");
        failed += 1;
    }
    if failed == 0 {
        Failures::None
    } else {
        Failures::Logged(failed)
    }
}

/// Runs the services until they end or a signal arrives; on a signal every
/// accept loop stops and the services are awaited.
async fn run_until_signal<F, T>(shutdowns: &[Shutdown], mut signals: Signals, server: F) -> T
where
    F: Future<Output = T>,
{
    tokio::pin!(server);
    tokio::select! {
        out = &mut server => out,
        () = signals.recv() => {
            tracing::info!("shutting down");
            for sd in shutdowns {
                sd.trigger();
            }
            server.await
        }
    }
}

/// Drains every service at once, each within its own timeout.
async fn drain(services: &[Service], shutdowns: &[Shutdown]) {
    let drains = services
        .iter()
        .zip(shutdowns)
        .map(|(service, sd)| async move { (service.name, sd.drain(service.drain).await) });
    for (name, cut) in futures_util::future::join_all(drains).await {
        if cut > 0 {
            tracing::warn!(
                service = name,
                connections = cut,
                "drain timeout reached, closed live connections"
            );
        }
    }
}

/// The one `listening on SCHEME://ADDR` line scripts wait for, straight to
/// stderr so `-q` or JSON logs never hide or reshape it.
fn announce_line(endpoint: &Endpoint) {
    eprintln!("listening on {endpoint}");
}

/// Binds and announces one UDP endpoint for a tool that listens but is not
/// a server (`chat udp`).
pub async fn bind_datagram(ep: &Endpoint) -> anyhow::Result<tokio::net::UdpSocket> {
    match net::bind(ep).await.with_context(|| format!("bind {ep}"))? {
        Bound::Datagram(socket) => {
            announce_line(&Endpoint::udp(socket.local_addr()?));
            Ok(socket)
        }
        Bound::Stream(_) => anyhow::bail!("{ep} is not a udp endpoint"),
    }
}
