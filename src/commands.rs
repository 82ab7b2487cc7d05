//! The command-line edge: turns each parsed subcommand into its service's
//! config, binds, announces, and runs it under the shared shutdown.

use std::io::IsTerminal;
use std::sync::Arc;

use std::future::Future;
use std::time::Duration;

use crate::cli::{
    BenchCommand, ChatCommand, ClassicArgs, Cli, Command, FrameArgs, HttpCommand, TimeCommand,
    TimeServeArgs,
};
use crate::endpoint::{Endpoint, Transport};
use crate::error::UsageError;
use crate::net::{self, Bound};
use crate::shutdown::{self, Shutdown, Signals};
use crate::timeclient::{self, Protocol};
use crate::{bench, chat, classic, connect, echo, forward, http, listen, serve, stdio, time};
use anyhow::Context;

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Connect(a) => {
            let endpoint = usage(a.endpoint.with_udp(a.udp))?;
            let interactive = a.lines || std::io::stdin().is_terminal();
            let mut stdio = stdio_options(&a.frame, a.crlf, a.idle_timeout.map(|s| s.0));
            stdio.interactive = interactive.then(|| stdio::Interactive {
                exit_word: a.exit_word.clone(),
                prompt: std::io::stdin().is_terminal(),
            });
            let cfg = connect::Config {
                endpoint,
                connect_timeout: a.connect_timeout.map(|s| s.0),
                stdio,
            };
            Ok(connect::run(&cfg).await?)
        }
        Command::Listen(a) => {
            let endpoint = usage(a.endpoint.with_udp(a.udp))?;
            if a.exec.is_some() && endpoint.transport() == Transport::Udp {
                return Err(UsageError(
                    "--exec needs a stream endpoint (tcp or unix), not udp".into(),
                )
                .into());
            }
            let cfg = listen::Config {
                keep_open: a.keep_open,
                exec: a.exec,
                max_conns: a.max_conns,
                stdio: stdio_options(&a.frame, a.crlf, a.idle_timeout.map(|s| s.0)),
            };
            serve_one(&endpoint, a.drain_timeout.0, |bound, sd| {
                listen::run(cfg, bound, sd)
            })
            .await
        }
        Command::Echo(a) => {
            let endpoint = usage(a.endpoint.with_udp(a.udp))?;
            let cfg = Arc::new(echo::Config {
                framing: a.frame.framing,
                max_frame: a.frame.max_frame.0,
                greeting: a.greeting.map(Into::into),
                reply: a.reply.as_deref().map(echo::Template::new),
                exit_word: a.exit_word.map(Into::into),
                max_conns: a.max_conns,
                idle_timeout: serve::nonzero_duration(a.idle_timeout.0),
            });
            serve_one(&endpoint, a.drain_timeout.0, |bound, sd| {
                echo::run_bound(cfg, bound, sd)
            })
            .await
        }
        Command::Time(a) => match a.command {
            Some(TimeCommand::Serve(s)) => serve_time(s).await,
            None => {
                let arg = a.endpoint.expect("clap requires the endpoint");
                let cfg = timeclient::Config {
                    endpoint: usage(arg.udp_unless(a.tcp))?,
                    protocol: a.protocol,
                    format: a.format,
                    retries: a.retries,
                    timeout: a.timeout.0,
                };
                let answer = timeclient::query(&cfg)
                    .await
                    .with_context(|| format!("time from {}", cfg.endpoint))?;
                println!("{answer}");
                Ok(())
            }
        },
        Command::Forward(a) => {
            let listen = usage(a.listen.with_udp(a.udp))?;
            let udp = listen.transport() == Transport::Udp;
            let targets = a
                .targets
                .iter()
                .map(|t| usage(t.with_udp(udp)))
                .collect::<Result<Vec<_>, _>>()?;
            let cfg = Arc::new(forward::Config {
                balance: a.balance,
                connect_timeout: serve::nonzero_duration(a.connect_timeout.0),
                idle_timeout: serve::nonzero_duration(a.idle_timeout.0),
                max_conns: a.max_conns,
                access: forward::access::Access {
                    allow: a.allow,
                    deny: a.deny,
                },
                dump: forward::DumpTo::from_flags(a.dump_file, a.hex_dump),
                splice: !a.no_splice,
                udp_timeout: serve::nonzero_duration(a.udp_timeout.0),
                congestion: a.congestion,
                ..forward::Config::new(targets)
            });
            cfg.validate(&listen).map_err(UsageError)?;
            serve_one(&listen, a.drain_timeout.0, |bound, sd| {
                forward::run_bound(cfg, bound, sd)
            })
            .await
        }
        Command::Http(h) => match h.command {
            HttpCommand::Get(a) => {
                let cfg = http::get::Config {
                    url: a.url,
                    output: match (a.output, a.remote_name) {
                        (Some(p), _) => http::get::Output::File(p),
                        (None, true) => http::get::Output::Remote,
                        (None, false) => http::get::Output::Stdout,
                    },
                    head: a.head,
                    redirects: if a.location { 10 } else { 0 },
                    fail: a.fail,
                    timeout: serve::nonzero_duration(a.timeout.0),
                    cacert: a.cacert,
                };
                http::get::run(cfg).await
            }
            HttpCommand::Serve(a) => {
                let listen = stream_endpoint(a.listen.endpoint.clone(), "http serve")?;
                let cfg = Arc::new(http::Config {
                    root: a.dir,
                    body: a.body,
                    hidden: a.hidden,
                    max_conns: a.max_conns,
                    header_timeout: a.header_timeout.0,
                    max_header: a.max_header.0,
                });
                serve_one(&listen, a.drain_timeout.0, |bound, sd| {
                    http::run_bound(cfg, bound, sd)
                })
                .await
            }
        },
        Command::Chat(c) => match c.command {
            None => {
                let arg = c.endpoint.expect("clap requires the endpoint");
                let endpoint = usage(arg.with_udp(false))?;
                let cfg = chat::client::Config {
                    endpoint: endpoint.clone(),
                    nick: c.nick,
                    room: c.room,
                    color: std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none(),
                };
                chat::client::run(&cfg)
                    .await
                    .with_context(|| format!("chat on {endpoint}"))
            }
            Some(ChatCommand::Udp(a)) => {
                let endpoint = usage(a.bind.with_udp(true))?;
                let mut peers = Vec::new();
                for spec in &a.peer {
                    let peer = chat::peer::parse_peer(spec).await;
                    peers.push(match peer {
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                            return Err(UsageError(e.to_string()).into());
                        }
                        other => other.with_context(|| format!("peer {spec}"))?,
                    });
                }
                let cfg = chat::peer::Config {
                    peers,
                    color: std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none(),
                };
                let Bound::Datagram(socket) = bind_and_announce(&endpoint).await? else {
                    return Err(UsageError("chat udp needs a udp endpoint".into()).into());
                };
                Ok(chat::peer::run(&cfg, socket).await?)
            }
            Some(ChatCommand::Serve(a)) => {
                let endpoint = stream_endpoint(usage(a.endpoint.with_udp(false))?, "chat serve")?;
                if !(a.rate.is_finite() && a.rate >= 0.0 && a.burst.is_finite() && a.burst >= 1.0) {
                    return Err(UsageError(
                        "--rate must be 0 or more and --burst at least 1".into(),
                    )
                    .into());
                }
                let cfg = Arc::new(chat::Config {
                    history: a.history,
                    max_line: a.max_line.0,
                    max_clients: a.max_clients,
                    rate: a.rate,
                    burst: a.burst,
                    outbox: chat::OUTBOX_BYTES,
                });
                serve_one(&endpoint, a.drain_timeout.0, |b, sd| {
                    chat::run_bound(cfg, b, sd)
                })
                .await
            }
        },
        Command::Discard(a) => serve_classic(classic::Service::Discard, a).await,
        Command::Chargen(a) => serve_classic(classic::Service::Chargen, a).await,
        Command::Serve(a) => {
            let suite = match &a.config {
                Some(path) => serve::SuiteConfig::load(path)?,
                None => serve::SuiteConfig::default(),
            };
            let drain = a
                .drain_timeout
                .map(|s| s.0)
                .unwrap_or_else(|| suite.drain_timeout());
            let signals = Signals::install()?;
            let bindings = serve::bind_all(&suite.specs()).await?;
            if bindings.is_empty() {
                anyhow::bail!("no services enabled in the config");
            }
            eprint!("{}", serve::table(&bindings));
            serve::run(bindings, Shutdown::new(), drain, signals).await
        }
        Command::Bench(b) => {
            let (report, json) = match b.command {
                BenchCommand::Echo(a) => {
                    check_bench(a.connections, &[a.duration.0])?;
                    let cfg = bench::echo::Config {
                        endpoint: stream_endpoint(a.endpoint.endpoint.clone(), "bench echo")?,
                        connections: a.connections,
                        duration: a.duration.0,
                        size: a.size.0,
                    };
                    let report = bench::echo::run(cfg)
                        .await
                        .with_context(|| format!("bench echo {}", a.endpoint.endpoint))?;
                    (report, a.json)
                }
                BenchCommand::Fanout(a) => {
                    check_bench(a.subscribers, &[])?;
                    if a.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
                        return Err(UsageError("--rate must be above 0".into()).into());
                    }
                    let cfg = bench::fanout::Config {
                        endpoint: stream_endpoint(a.endpoint.endpoint.clone(), "bench fanout")?,
                        subscribers: a.subscribers,
                        messages: a.messages,
                        rate: a.rate,
                        redis: a.redis,
                    };
                    let report = bench::fanout::run(cfg)
                        .await
                        .with_context(|| format!("bench fanout {}", a.endpoint.endpoint))?;
                    if a.json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        print!("{}", report.table());
                    }
                    return Ok(());
                }
                BenchCommand::Udp(a) => {
                    check_bench(a.in_flight, &[a.duration.0, a.timeout.0])?;
                    let named_stream = a.endpoint.text.starts_with("tcp://")
                        || a.endpoint.endpoint.transport() == Transport::Unix;
                    if named_stream {
                        return Err(UsageError(format!(
                            "bench udp needs a UDP endpoint, not '{}'",
                            a.endpoint.text
                        ))
                        .into());
                    }
                    let cfg = bench::udp::Config {
                        endpoint: usage(a.endpoint.udp_unless(false))?,
                        in_flight: a.in_flight,
                        duration: a.duration.0,
                        payload: a.payload.into_bytes(),
                        timeout: a.timeout.0,
                        sockperf: a.sockperf,
                    };
                    let target = cfg.endpoint.clone();
                    let report = bench::udp::run(cfg)
                        .await
                        .with_context(|| format!("bench udp {target}"))?;
                    (report, a.json)
                }
            };
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
    }
}

async fn serve_time(a: TimeServeArgs) -> anyhow::Result<()> {
    let endpoint = usage(a.endpoint.udp_unless(a.tcp))?;
    let limits = &a.limits;
    let classic = |service| classic::Config {
        service,
        max_conns: limits.max_conns,
        idle_timeout: serve::nonzero_duration(limits.idle_timeout.0),
    };
    let drain = limits.drain_timeout.0;
    match a.protocol {
        Protocol::Format => {
            let cfg = Arc::new(time::Config {
                utc: a.utc,
                max_conns: limits.max_conns,
                idle_timeout: serve::nonzero_duration(limits.idle_timeout.0),
            });
            serve_one(&endpoint, drain, |b, sd| time::run_bound(cfg, b, sd)).await
        }
        Protocol::Rfc868 => {
            let cfg = Arc::new(classic(classic::Service::Time));
            serve_one(&endpoint, drain, |b, sd| classic::run_bound(cfg, b, sd)).await
        }
        Protocol::Daytime => {
            let cfg = Arc::new(classic(classic::Service::Daytime));
            serve_one(&endpoint, drain, |b, sd| classic::run_bound(cfg, b, sd)).await
        }
    }
}

async fn serve_classic(service: classic::Service, a: ClassicArgs) -> anyhow::Result<()> {
    let endpoint = usage(a.endpoint.with_udp(a.udp))?;
    let cfg = Arc::new(classic::Config {
        service,
        max_conns: a.limits.max_conns,
        idle_timeout: serve::nonzero_duration(a.limits.idle_timeout.0),
    });
    serve_one(&endpoint, a.limits.drain_timeout.0, |b, sd| {
        classic::run_bound(cfg, b, sd)
    })
    .await
}

fn stdio_options(
    frame: &FrameArgs,
    crlf: bool,
    idle_timeout: Option<std::time::Duration>,
) -> stdio::Options {
    stdio::Options {
        framing: frame.framing,
        max_frame: frame.max_frame.0,
        crlf,
        idle_timeout,
        interactive: None,
        half_close: true,
        send_all_input: !std::io::stdin().is_terminal(),
    }
}

/// Runs one server: installs the signal handlers, binds, announces, serves
/// until a signal, drains. Every server subcommand goes through here.
async fn serve_one<F, Fut>(endpoint: &Endpoint, drain: Duration, start: F) -> anyhow::Result<()>
where
    F: FnOnce(Bound, Shutdown) -> Fut,
    Fut: Future<Output = std::io::Result<()>>,
{
    let signals = Signals::install()?;
    let bound = bind_and_announce(endpoint).await?;
    let sd = Shutdown::new();
    let server = start(bound, sd.clone());
    shutdown::run_until_signal(&sd, drain, signals, server)
        .await
        .with_context(|| format!("serve {endpoint}"))
}

async fn bind_and_announce(endpoint: &Endpoint) -> anyhow::Result<Bound> {
    let bound = net::bind(endpoint)
        .await
        .with_context(|| format!("bind {endpoint}"))?;
    bound.announce()?;
    Ok(bound)
}

/// Load runs are bounded: at most `MAX_BENCH_LOOPS` loops and a day per
/// duration, so a typo cannot exhaust memory or overflow a deadline.
fn check_bench(loops: usize, durations: &[Duration]) -> Result<(), UsageError> {
    const MAX_BENCH_LOOPS: usize = 100_000;
    const MAX_BENCH_TIME: Duration = Duration::from_secs(86_400);
    if loops == 0 || loops > MAX_BENCH_LOOPS {
        return Err(UsageError(format!(
            "connections/in-flight must be 1 to {MAX_BENCH_LOOPS}, not {loops}"
        )));
    }
    if durations.iter().any(|d| *d > MAX_BENCH_TIME) {
        return Err(UsageError("bench durations are limited to one day".into()));
    }
    Ok(())
}

/// `ep` if it is a stream endpoint; `who` names the command for the error.
fn stream_endpoint(ep: Endpoint, who: &str) -> Result<Endpoint, UsageError> {
    if ep.transport() == Transport::Udp {
        return Err(UsageError(format!("{who} needs a tcp or unix endpoint")));
    }
    Ok(ep)
}

/// Turns a flag combination error into a usage error (exit 2).
fn usage<T, E: std::fmt::Display>(res: Result<T, E>) -> Result<T, UsageError> {
    res.map_err(|e| UsageError(e.to_string()))
}
