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

use crate::endpoint::{Endpoint, Transport};
use crate::net::{self, Bound};
use crate::shutdown::{Shutdown, Signals};
use crate::tls;

/// A running service instance on one bound socket.
pub type ServiceFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// Starts a service on one of its bound sockets.
pub type Starter = Arc<dyn Fn(Bound, Shutdown) -> ServiceFuture + Send + Sync>;

/// Starts work a service runs beside its sockets (chat's link to Redis).
/// Its error stops the whole server: it is one no retry would mend.
pub type Beside = Arc<dyn Fn(Shutdown) -> ServiceFuture + Send + Sync>;

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
    /// Endpoints that speak another protocol for the same service (chat's
    /// web page), each started its own way.
    pub extra: Vec<Extra>,
    /// Tasks it runs beside its sockets, started with them.
    pub beside: Vec<Beside>,
    /// Which service it is across a reload: its config section, or a
    /// forward rule's listener.
    pub key: String,
    /// Its settings as written; a reload that changes them swaps it.
    pub fingerprint: String,
    /// Whether it serves `unixgram:` endpoints (echo, listen); others
    /// refuse them before anything is bound.
    pub unix_datagrams: bool,
}

/// An endpoint of a service that speaks a protocol of its own, shown with
/// its URL scheme: `http://127.0.0.1:8088`.
#[derive(Clone)]
pub struct Extra {
    /// Where it listens.
    pub endpoint: Endpoint,
    /// `http`, shown as `https` when the service speaks TLS.
    pub scheme: &'static str,
    /// Runs its own protocol on its socket.
    pub start: Starter,
}

/// A starter for `run` on `cfg`, which every socket it runs on shares.
pub fn starter<C, F, Fut>(cfg: Arc<C>, run: F) -> Starter
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, Bound, Shutdown) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    Arc::new(move |bound, sd| Box::pin(run(cfg.clone(), bound, sd)) as ServiceFuture)
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("endpoints", &self.endpoints)
            .field("drain", &self.drain)
            .field("tls", &self.tls.is_some())
            .field(
                "extra",
                &self.extra.iter().map(|e| &e.endpoint).collect::<Vec<_>>(),
            )
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
        Service::shared(name, endpoints, drain, Arc::new(cfg), run)
    }

    /// [`Service::new`] on a config the caller keeps a handle to, for
    /// starters of its [`Extra`] endpoints.
    pub fn shared<C, F, Fut>(
        name: &'static str,
        endpoints: Vec<Endpoint>,
        drain: Duration,
        cfg: Arc<C>,
        run: F,
    ) -> Service
    where
        C: Send + Sync + 'static,
        F: Fn(Arc<C>, Bound, Shutdown) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<()>> + Send + 'static,
    {
        Service {
            name,
            endpoints,
            drain,
            start: starter(cfg, run),
            tls: None,
            extra: Vec::new(),
            beside: Vec::new(),
            key: name.to_string(),
            fingerprint: String::new(),
            unix_datagrams: false,
        }
    }

    /// The same service, speaking TLS through `tls` if there is one.
    pub fn with_tls(mut self, tls: Option<Arc<tls::server::Server>>) -> Service {
        self.tls = tls;
        self
    }

    /// The same service, also listening on `extra`.
    pub fn also(mut self, extra: Extra) -> Service {
        self.extra.push(extra);
        self
    }

    /// The same service, also serving `unixgram:` endpoints.
    pub fn taking_unix_datagrams(mut self) -> Service {
        self.unix_datagrams = true;
        self
    }

    /// The same service, also running `task` until shutdown.
    pub fn beside(mut self, task: Beside) -> Service {
        self.beside.push(task);
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
    pub(crate) service: usize,
    /// Shown in the table.
    pub name: &'static str,
    /// The endpoint actually bound, with the real port.
    pub endpoint: Endpoint,
    /// How it is announced: the endpoint, or an extra one's URL.
    pub shown: String,
    pub(crate) start: Starter,
    pub(crate) bound: Bound,
}

/// Binds every endpoint of every service, failing before anything starts if
/// one cannot be bound.
pub async fn bind_all(services: &[Service], announce: Announce) -> anyhow::Result<Vec<Binding>> {
    if let Some(service) = services.iter().find(|s| {
        !s.unix_datagrams
            && s.endpoints
                .iter()
                .chain(s.extra.iter().map(|e| &e.endpoint))
                .any(|ep| ep.transport() == Transport::UnixDatagram)
    }) {
        return Err(net::no_unix_datagrams(service.name).into());
    }
    let mut out = Vec::new();
    for (i, service) in services.iter().enumerate() {
        let tls = service.tls.is_some();
        let main = service
            .endpoints
            .iter()
            .map(|ep| (ep, None, &service.start));
        let extra = service
            .extra
            .iter()
            .map(|e| (&e.endpoint, Some(e.scheme), &e.start));
        for (ep, scheme, start) in main.chain(extra) {
            let bound = net::bind(ep).await.with_context(|| match announce {
                // A subcommand names one service already.
                Announce::Lines => format!("bind {ep}"),
                Announce::Table => format!("bind {} for {}", ep, service.name),
            })?;
            let endpoint = bound
                .local_endpoint()?
                .with_tls(tls)
                .with_websocket(ep.websocket());
            let shown = match scheme {
                Some(scheme) => url(scheme, tls, &endpoint),
                None => endpoint.to_string(),
            };
            out.push(Binding {
                service: i,
                name: service.name,
                endpoint,
                shown,
                start: start.clone(),
                bound,
            });
        }
    }
    Ok(out)
}

/// `http://ADDR` (`https` with TLS) for an extra endpoint; a Unix socket
/// has no URL and is shown as it is.
fn url(scheme: &str, tls: bool, endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Inet { .. } => {
            let s = if tls { "s" } else { "" };
            format!("{scheme}{s}://{}", endpoint.authority())
        }
        Endpoint::Unix(_) | Endpoint::UnixDatagram(_) => endpoint.to_string(),
    }
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
        out.push_str(&format!("{:<width$}  {}\n", b.name, b.shown));
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
        Announce::Lines => bindings.iter().for_each(|b| announce_line(&b.shown)),
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
        let fut = (b.start)(b.bound, shutdowns[b.service].clone());
        running.insert(set.spawn(fut).id(), (b.name, b.endpoint));
    }
    let mut beside = JoinSet::new();
    for (service, sd) in services.iter().zip(&shutdowns) {
        for task in &service.beside {
            let name = service.name;
            let task = task(sd.clone());
            beside.spawn(async move { task.await.map_err(|err| (name, err)) });
        }
    }
    let all = async {
        tokio::select! {
            failures = wait_all(&mut set, &running, alone) => failures,
            Some(Ok(Err((name, err)))) = beside.join_next() => Failures::Fatal(name, err),
        }
    };
    let failures = run_until_signal(&shutdowns, signals, all).await;
    if let Failures::Fatal(..) = failures {
        shutdowns.iter().for_each(Shutdown::trigger);
    }
    drain(&services, &shutdowns).await;
    match failures {
        Failures::None => Ok(()),
        Failures::Fatal(name, err) => Err(anyhow::Error::new(err).context(name)),
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
    /// A service's task beside its sockets failed for good.
    Fatal(&'static str, io::Error),
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
pub(crate) async fn drain(services: &[Service], shutdowns: &[Shutdown]) {
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
pub(crate) fn announce_line(shown: &str) {
    eprintln!("listening on {shown}");
}

/// Binds and announces one UDP endpoint for a tool that listens but is not
/// a server (`chat udp`).
pub async fn bind_datagram(ep: &Endpoint) -> anyhow::Result<tokio::net::UdpSocket> {
    match net::bind(ep).await.with_context(|| format!("bind {ep}"))? {
        Bound::Datagram(socket) => {
            announce_line(&Endpoint::udp(socket.local_addr()?).to_string());
            Ok(socket)
        }
        Bound::Stream(_) | Bound::UnixDatagram(..) => anyhow::bail!("{ep} is not a udp endpoint"),
    }
}
