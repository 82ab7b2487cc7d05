//! The netcat server: one client piped to stdio, or with `keep_open` many
//! clients sharing stdin (broadcast) and stdout (ncat semantics), or a process
//! per client with `--exec`; over TCP, Unix or UDP (replies go to the last
//! sender).

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};
use tokio_util::codec::FramedRead;
use tracing::Level;

use clap::Args;

use crate::accept::{self, AcceptOptions};
use crate::endpoint::Endpoint;
use crate::exec;
use crate::frame::Framing;
use crate::net::{Bound, Datagram, DatagramPeer, Listener, MAX_DATAGRAM};
use crate::options::{FrameOptions, KeepsIdle, Limits, OptionError};
use crate::runner::Service;
use crate::shutdown::Shutdown;
use crate::stdio;
use crate::tls::{self, server::Tls};
use crate::ws;
use tokio_util::either::Either;

/// Chunks of stdin a client may fall behind before it is dropped.
const BROADCAST_DEPTH: usize = 1024;

/// Clients in their handshakes at once while `listen` without `-k` waits
/// for its one client; more wait in the backlog.
const MAX_OPENING: usize = 64;

/// Chunks from clients waiting for stdout; a full queue slows the senders.
const STDOUT_DEPTH: usize = 256;

/// Read size for client data in keep-open mode.
const READ_BUFFER: usize = 16 * 1024;

/// The flags of `sockit listen`, after its endpoint.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Keep accepting clients after the first one leaves.
    #[arg(short, long)]
    pub keep_open: bool,
    /// Send line endings as CRLF.
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// `-d`, `--send-only`, `-o` and `-x`, for one client on stdio.
    #[command(flatten)]
    pub io: stdio::Flags,
    /// `--frame` and `--max-frame`.
    #[command(flatten)]
    pub frame: FrameOptions,
    /// Server limits: `max_conns` and `drain_timeout` apply with -k, and
    /// `idle_timeout` to a single client.
    #[command(flatten)]
    pub limits: Limits<KeepsIdle>,
    /// With ws://: send each chunk of stdin as a binary message, and write
    /// messages out as they come (default: a text message per line).
    #[arg(long)]
    pub binary: bool,
    /// `--tls` and its certificate.
    #[command(flatten)]
    pub tls: Tls,
    /// Run PROG with ARGS per connection, wired to the socket (no shell).
    /// Everything after it belongs to the program.
    #[arg(short = 'e', long, value_name = "PROG [ARGS]", num_args = 1.., allow_hyphen_values = true)]
    pub exec: Option<Vec<String>>,
}

impl Options {
    /// Its one entry for the runner.
    pub fn service(&self, endpoint: Endpoint) -> Result<Service, OptionError> {
        let datagrams = endpoint.transport().is_datagram();
        if self.exec.is_some() && datagrams {
            return Err(OptionError::new(
                "exec",
                "needs a stream endpoint (tcp or unix), not datagrams",
            ));
        }
        if self.keep_open {
            self.io.only_with_stdio("-k's many clients")?;
        } else if self.exec.is_some() {
            self.io.only_with_stdio("--exec")?;
        } else if datagrams {
            self.io.only_with_stdio("datagrams")?;
        }
        let websocket = endpoint.websocket().is_some();
        if self.binary && !websocket {
            return Err(OptionError::new(
                "binary",
                "is for ws:// and wss:// endpoints",
            ));
        }
        let endpoints = vec![endpoint];
        // WebSocket is this service's own business; TLS below it is not.
        let plain = [endpoints[0].clone().without_websocket()];
        let tls = self.tls.server(&plain, &[])?;
        let mut stdio = stdio::Options::new(&self.frame, self.crlf, self.limits.idle());
        self.io.apply(&mut stdio);
        let cfg = Config {
            websocket: websocket.then_some(self.binary),
            keep_open: self.keep_open,
            exec: self.exec.clone(),
            max_conns: self.limits.max_conns()?,
            stdio,
            tls: tls.clone(),
        };
        let drain = self.limits.drain();
        Ok(Service::new("listen", endpoints, drain, cfg, run)
            .with_tls(tls)
            .taking_unix_datagrams())
    }
}

/// What the netcat server does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Speak WebSocket to each client (ws://), in binary messages if true.
    pub websocket: Option<bool>,
    /// Serve clients until shutdown instead of exiting after the first.
    pub keep_open: bool,
    /// Run this argv per connection instead of using stdio.
    pub exec: Option<Vec<String>>,
    /// Clients served at once in keep-open mode.
    pub max_conns: usize,
    /// How stdio maps onto each connection.
    pub stdio: stdio::Options,
    /// Terminate TLS on every connection.
    pub tls: Option<Arc<tls::server::Server>>,
}

/// Runs the server on a bound socket.
pub async fn run(cfg: Arc<Config>, bound: Bound, shutdown: Shutdown) -> io::Result<()> {
    let listener = match bound.into_datagram() {
        Ok(sock) => return run_udp(&cfg, sock, &shutdown).await,
        Err(stream) => stream.into_stream("listen")?,
    };
    if cfg.keep_open {
        run_many(&cfg, listener, shutdown).await
    } else {
        run_one(&cfg, listener, &shutdown).await
    }
}

async fn run_one(cfg: &Config, listener: Listener, shutdown: &Shutdown) -> io::Result<()> {
    // The one client is the first whose handshakes (TLS, WebSocket)
    // succeed: a stray probe must not end the session, and a silent client
    // must not keep the real one waiting, so handshakes run side by side.
    let mut opening = futures_util::stream::FuturesUnordered::new();
    let (session, peer) = loop {
        tokio::select! {
            res = listener.accept(), if opening.len() < MAX_OPENING => {
                let (stream, peer) = res?;
                opening.push(async move { (handshaken(cfg, stream).await, peer) });
            }
            Some((res, peer)) = opening.next() => match res {
                Ok(session) => break (session, peer),
                Err(err) => tracing::warn!(%peer, err = %crate::error::describe_io(&err), "connection refused"),
            },
            () = shutdown.stopping() => return Ok(()),
        }
    };
    drop(opening);
    // Later clients are refused rather than left hanging in the backlog.
    drop(listener);
    tracing::info!(%peer, "connection from");
    // With one client there is nothing to drain: Ctrl-C ends the session,
    // as it does for nc.
    let res = tokio::select! {
        res = session => res,
        () = shutdown.stopping() => Ok(()),
    };
    tracing::info!(%peer, "connection closed");
    res
}

/// The session of a client whose handshakes are done.
async fn handshaken(
    cfg: &Config,
    stream: crate::net::Stream,
) -> io::Result<futures_util::future::BoxFuture<'_, io::Result<()>>> {
    Ok(match &cfg.tls {
        None => session(cfg, upgrade(cfg, stream).await?).boxed(),
        Some(tls) => {
            let stream = tls.accept(stream).await?;
            session(cfg, upgrade(cfg, stream).await?).boxed()
        }
    })
}

/// A client's stream as its session sees it: for ws://, the messages
/// after the WebSocket handshake.
async fn upgrade<S>(cfg: &Config, stream: S) -> io::Result<Either<S, ws::Messages<S>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    Ok(match cfg.websocket {
        None => Either::Left(stream),
        Some(binary) => {
            let socket = ws::accept(stream, cfg.stdio.max_frame).await?;
            Either::Right(ws::Messages::new(socket, binary))
        }
    })
}

/// One client, past its handshakes, bridged to stdio or to its own
/// process.
async fn session<S>(cfg: &Config, stream: S) -> io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    match &cfg.exec {
        Some(argv) => exec::serve_with_process(stream, argv).await,
        None => stdio::bridge(stream, &cfg.stdio).await,
    }
}

async fn run_many(cfg: &Config, listener: Listener, shutdown: Shutdown) -> io::Result<()> {
    let mut opts = AcceptOptions::new("listen", cfg.max_conns, Level::INFO);
    opts.tls = cfg.tls.clone();
    if cfg.exec.is_some() {
        let cfg = Arc::new(cfg.clone());
        return accept::serve(listener, shutdown, opts, move |stream, _| {
            let cfg = cfg.clone();
            async move { session(&cfg, upgrade(&cfg, stream).await?).await }
        })
        .await;
    }
    let (to_clients, _) = broadcast::channel::<Bytes>(BROADCAST_DEPTH);
    let (to_stdout, from_clients) = mpsc::channel::<Bytes>(STDOUT_DEPTH);
    tokio::spawn(read_stdin(to_clients.clone(), cfg.stdio.clone()));
    // Tracked, so the drain also waits for client data still queued for
    // stdout; it ends once the last client is gone.
    shutdown.spawn(move || write_stdout(from_clients));
    let cfg = Arc::new(cfg.clone());
    accept::serve(listener, shutdown, opts, move |stream, _| {
        let rx = to_clients.subscribe();
        let tx = to_stdout.clone();
        let cfg = cfg.clone();
        async move {
            let stream = upgrade(&cfg, stream).await?;
            serve_hub_client(stream, rx, tx, cfg.stdio.framing, cfg.stdio.max_frame).await
        }
    })
    .await
}

/// Reads stdin into the broadcast channel. At EOF clients are left alone:
/// `listen -k </dev/null` is a plain sink, as with ncat.
async fn read_stdin(tx: broadcast::Sender<Bytes>, opts: stdio::Options) {
    let stdin = tokio::io::stdin();
    if opts.framing == Framing::Raw {
        let mut stdin = stdin;
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        loop {
            buf.reserve(READ_BUFFER);
            match stdin.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) if opts.crlf => {
                    let _ = tx.send(stdio::to_crlf(&buf.split()).into());
                }
                Ok(_) => {
                    let _ = tx.send(buf.split().freeze());
                }
            }
        }
    }
    let mut codec = opts.framing.codec(opts.max_frame);
    let mut lines = stdio::InputLines::new(stdin, opts.max_frame);
    while let Some(Ok(line)) = lines.next().await {
        match opts.encode_line(&line, &mut codec) {
            Ok(out) => {
                let _ = tx.send(out);
            }
            Err(err) => tracing::warn!(%err, "stdin line dropped"),
        }
    }
}

async fn write_stdout(mut rx: mpsc::Receiver<Bytes>) {
    let mut stdout = tokio::io::stdout();
    while let Some(chunk) = rx.recv().await {
        if stdout.write_all(&chunk).await.is_err() {
            return;
        }
        if rx.is_empty() && stdout.flush().await.is_err() {
            return;
        }
    }
}

async fn serve_hub_client<S>(
    stream: S,
    mut from_stdin: broadcast::Receiver<Bytes>,
    to_stdout: mpsc::Sender<Bytes>,
    framing: Framing,
    max_frame: usize,
) -> io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let reader = async {
        if framing == Framing::Raw {
            let mut buf = BytesMut::with_capacity(READ_BUFFER);
            loop {
                buf.reserve(READ_BUFFER);
                if rd.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
                if to_stdout.send(buf.split().freeze()).await.is_err() {
                    return Ok(());
                }
            }
        }
        let mut frames = FramedRead::new(&mut rd, framing.codec(max_frame));
        while let Some(frame) = frames.next().await {
            let mut line = BytesMut::from(&frame?[..]);
            line.extend_from_slice(b"\n");
            if to_stdout.send(line.freeze()).await.is_err() {
                break;
            }
        }
        Ok::<_, io::Error>(())
    };
    let writer = async {
        loop {
            match from_stdin.recv().await {
                Ok(chunk) => {
                    wr.write_all(&chunk).await?;
                    wr.flush().await?;
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Err(io::Error::other(format!(
                        "client fell {n} chunks behind stdin, dropping it"
                    )));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return std::future::pending::<io::Result<()>>().await;
                }
            }
        }
    };
    tokio::select! {
        res = reader => res,
        res = writer => res,
    }
}

async fn run_udp(cfg: &Config, sock: Datagram, shutdown: &Shutdown) -> io::Result<()> {
    if cfg.exec.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--exec needs a stream endpoint (tcp or unix)",
        ));
    }
    let mut last: Option<DatagramPeer> = None;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut stdout = tokio::io::stdout();
    let most = sock.max_payload();
    let mut lines = stdio::InputLines::new(tokio::io::stdin(), most);
    let mut stdin_open = true;
    loop {
        tokio::select! {
            res = sock.recv_from(&mut buf) => {
                let (n, peer) = match res {
                    Ok(x) => x,
                    Err(err) => {
                        tracing::debug!(%err, "udp receive error");
                        continue;
                    }
                };
                if last.as_ref() != Some(&peer) {
                    tracing::info!(%peer, "datagram from new peer");
                    last = Some(peer);
                }
                stdio::emit(&mut stdout, &buf[..n], false, true).await?;
            }
            line = lines.next(), if stdin_open => match line {
                Some(Ok(line)) => {
                    let Some(peer) = &last else {
                        tracing::warn!("no peer has sent a datagram yet, input line dropped");
                        continue;
                    };
                    let mut payload = line.to_vec();
                    payload.extend_from_slice(if cfg.stdio.crlf { b"\r\n" } else { b"\n" });
                    if let Err(err) = sock.send_to(&payload, peer).await {
                        tracing::warn!(%err, %peer, "datagram send failed");
                    }
                }
                _ => stdin_open = false,
            },
            () = shutdown.stopping() => return Ok(()),
        }
    }
}
