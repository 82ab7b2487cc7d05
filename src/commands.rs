//! Dispatch: each subcommand to its service or client. Servers, alone or
//! as the suite, all go through [`runner::run`].

use anyhow::Context;

use crate::classic::Service as Classic;
use crate::cli::{BenchCommand, ChatCommand, Cli, Command, HttpCommand, TimeCommand};
use crate::config::Doc;
use crate::options::OptionError;
use crate::runner::{self, Announce, Service};
use crate::timeclient::Protocol;
use crate::{bench, chat, connect, http, scan, serve, timeclient};

/// Runs one parsed command line to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Connect(a) => match a.job(cli.verbose > 0)? {
            connect::Job::Connect(cfg) => Ok(connect::run(&cfg).await?),
            connect::Job::Scan(cfg) => {
                let report = scan::run(&cfg)
                    .await
                    .with_context(|| format!("scan {}", cfg.host))?;
                if report.any_open() {
                    Ok(())
                } else {
                    Err(NothingOpen(report.scanned).into())
                }
            }
        },
        Command::Listen(a) => one(a.options.service(a.at.endpoint()?)).await,
        Command::Echo(a) => one(a.options.service(vec![a.at.endpoint()?])).await,
        Command::Discard(a) => {
            let ep = vec![a.at.endpoint()?];
            one(a.options.service(Classic::Discard, ep)).await
        }
        Command::Chargen(a) => {
            let ep = vec![a.at.endpoint()?];
            one(a.options.service(Classic::Chargen, ep)).await
        }
        Command::Time(t) => match t.command {
            Some(TimeCommand::Serve(a)) => {
                let ep = vec![
                    a.listen
                        .udp_unless(a.tcp)
                        .map_err(|e| OptionError::new("listen", e.to_string()))?,
                ];
                if a.options.utc && a.protocol != Protocol::Format {
                    // RFC 868 counts seconds and RFC 867 is always UTC here.
                    let why = "is for the format protocol only";
                    return Err(OptionError::new("utc", why).into());
                }
                let classic = crate::classic::Options {
                    tls: a.options.tls.clone(),
                    limits: a.options.limits.clone(),
                };
                one(match a.protocol {
                    Protocol::Format => a.options.service(ep),
                    Protocol::Rfc868 => classic.service(Classic::Time, ep),
                    Protocol::Daytime => classic.service(Classic::Daytime, ep),
                })
                .await
            }
            None => {
                let cfg = t.client.config()?;
                let answer = timeclient::query(&cfg)
                    .await
                    .with_context(|| format!("time from {}", cfg.endpoint))?;
                println!("{answer}");
                Ok(())
            }
        },
        Command::Chat(c) => match c.command {
            Some(ChatCommand::Serve(a)) => {
                with_metrics(a.options.service(vec![a.listen]), &a.metrics).await
            }
            Some(ChatCommand::Udp(a)) => {
                let (bind, cfg) = a.config().await?;
                let socket = runner::bind_datagram(&bind).await?;
                Ok(chat::peer::run(&cfg, socket).await?)
            }
            None => {
                let cfg = c.client.config()?;
                chat::client::run(&cfg)
                    .await
                    .with_context(|| format!("chat on {}", cfg.endpoint))
            }
        },
        Command::Forward(a) => with_metrics(a.options.service(a.at.endpoint()?), &a.metrics).await,
        Command::Socks(a) => with_metrics(a.options.service(vec![a.listen]), &a.metrics).await,
        Command::Http(h) => match h.command {
            HttpCommand::Serve(a) => {
                with_metrics(a.options.service(vec![a.listen]), &a.metrics).await
            }
            HttpCommand::Get(a) => http::get::run(a.config()).await,
        },
        Command::Serve(a) => {
            // Read again on each SIGHUP.
            let load = move || -> anyhow::Result<Vec<runner::Service>> {
                let text = match &a.config {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| format!("read config {}", path.display()))?,
                    None => String::new(),
                };
                let origin = a
                    .config
                    .as_ref()
                    .map_or_else(|| "(defaults)".into(), |p| p.display().to_string());
                let doc = Doc::parse(&text, &origin)?;
                Ok(serve::services(
                    &doc,
                    a.drain_timeout,
                    a.metrics.metrics.clone(),
                )?)
            };
            let services = load()?;
            crate::reload::run(services, load).await
        }
        Command::Bench(b) => match b.command {
            BenchCommand::Echo(a) => {
                let cfg = a.config()?;
                let report = bench::echo::run(cfg)
                    .await
                    .with_context(|| format!("bench echo {}", a.endpoint))?;
                bench::print(&report, |r| r.table(), a.json);
                Ok(())
            }
            BenchCommand::Udp(a) => {
                let cfg = a.config()?;
                let target = cfg.endpoint.clone();
                let report = bench::udp::run(cfg)
                    .await
                    .with_context(|| format!("bench udp {target}"))?;
                bench::print(&report, |r| r.table(), a.json);
                Ok(())
            }
            BenchCommand::Fanout(a) => {
                let report = bench::fanout::run(a.config()?)
                    .await
                    .with_context(|| format!("bench fanout {}", a.endpoint))?;
                bench::print(&report, |r| r.table(), a.json);
                Ok(())
            }
        },
        Command::Completions(a) => {
            crate::manual::completions(a.shell, &mut std::io::stdout())?;
            Ok(())
        }
        Command::Man => Ok(crate::manual::man(&mut std::io::stdout())?),
    }
}

/// A scan found no port that may be open: exit status 1, as for `nc -z`.
#[derive(Debug, thiserror::Error)]
#[error("no open port among the {0} scanned")]
struct NothingOpen(usize);

/// A server subcommand: a suite of one.
async fn one(service: Result<Service, OptionError>) -> anyhow::Result<()> {
    with_metrics(service, &crate::metrics::MetricsArgs::default()).await
}

/// A server subcommand, and its metrics endpoint if asked for, announced
/// after it.
async fn with_metrics(
    service: Result<Service, OptionError>,
    metrics: &crate::metrics::MetricsArgs,
) -> anyhow::Result<()> {
    let mut services = vec![service?];
    services.extend(metrics.service()?);
    runner::run(services, Announce::Lines).await
}
