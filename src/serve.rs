//! `sockit serve`: the suite's registry. Every service has a config section
//! made of `enabled`, `listen` and the service's own options type, the same
//! one its subcommand flattens into its flags; a section the file leaves out
//! runs with its defaults on the design's ports.

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::classic::Service as Classic;
use crate::config::{Doc, Located};
use crate::endpoint::Endpoint;
use crate::error::UsageError;
use crate::options::OptionError;
use crate::runner::Service;
use crate::units::Secs;
use crate::{chat, classic, echo, forward, http, socks, time};

/// The keys a config file may have at its top level.
pub const SECTIONS: [&str; 12] = [
    "drain_timeout",
    "metrics",
    "echo",
    "discard",
    "daytime",
    "chargen",
    "time",
    "format_time",
    "chat",
    "http",
    "socks",
    "forward",
];

/// One service's section: whether it runs, where, and its options. Unknown
/// keys are refused by [`Doc`], which knows their lines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Section<O> {
    /// Set to false to leave the service out.
    pub enabled: bool,
    /// Endpoints to listen on; unset, the service's defaults.
    pub listen: Option<Vec<Endpoint>>,
    /// Everything its subcommand's flags say.
    #[serde(flatten)]
    pub options: O,
}

impl<O: Default> Default for Section<O> {
    fn default() -> Self {
        Section {
            enabled: true,
            listen: None,
            options: O::default(),
        }
    }
}

/// One `[[forward]]` rule: a listener and the relay's options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rule {
    /// Where to listen.
    pub listen: Option<Endpoint>,
    /// Everything `sockit forward`'s flags say.
    #[serde(flatten)]
    pub options: forward::Options,
}

/// Endpoints `tcp://127.0.0.1:PORT` and `udp://127.0.0.1:PORT`.
fn both(port: u16) -> Vec<Endpoint> {
    let at = SocketAddr::from(([127, 0, 0, 1], port));
    vec![Endpoint::tcp(at), Endpoint::udp(at)]
}

fn tcp(port: u16) -> Vec<Endpoint> {
    vec![Endpoint::tcp(SocketAddr::from(([127, 0, 0, 1], port)))]
}

fn udp(port: u16) -> Vec<Endpoint> {
    vec![Endpoint::udp(SocketAddr::from(([127, 0, 0, 1], port)))]
}

/// Every enabled service the config describes, in the registry's order,
/// then the metrics endpoint. `drain` (`serve --drain-timeout`) overrides
/// every drain timeout, and `metrics` (`serve --metrics`) the file's.
pub fn services(
    doc: &Doc,
    drain: Option<Secs>,
    metrics: Option<Endpoint>,
) -> Result<Vec<Service>, UsageError> {
    doc.only(&SECTIONS)?;
    let mut suite = Suite {
        doc,
        // The file's top-level drain timeout is each section's default.
        drain: doc.value::<Secs>("drain_timeout")?.map(|s| s.0),
        services: Vec::new(),
    };
    suite.add("echo", both(7007), |o: &echo::Options, ep| o.service(ep))?;
    let classics = [
        ("discard", Classic::Discard, 7009),
        ("daytime", Classic::Daytime, 7013),
        ("chargen", Classic::Chargen, 7019),
        ("time", Classic::Time, 7037),
    ];
    for (key, kind, port) in classics {
        suite.add(key, both(port), |o: &classic::Options, ep| {
            o.service(kind, ep)
        })?;
    }
    suite.add("format_time", udp(9000), |o: &time::Options, ep| {
        o.service(ep)
    })?;
    suite.add("chat", tcp(12345), |o: &chat::Options, ep| {
        o.in_suite().service(ep)
    })?;
    let http = vec![http::default_listen()];
    suite.add("http", http, |o: &http::Options, ep| o.service(ep))?;
    suite.add("socks", tcp(1080), |o: &socks::Options, ep| o.service(ep))?;
    for rule in doc.tables::<Rule>("forward")? {
        let listen = rule
            .value
            .listen
            .clone()
            .ok_or_else(|| OptionError::new("listen", "a [[forward]] rule needs one"));
        let key = match &listen {
            Ok(l) => format!("forward {l}"),
            Err(_) => "forward".to_string(),
        };
        let service = listen.and_then(|l| rule.value.options.service(l));
        suite.push(key, &rule, service)?;
    }
    let mut services = suite.services;
    if let Some(d) = drain {
        for s in &mut services {
            s.drain = d.0;
        }
    }
    let metrics = crate::metrics::MetricsArgs {
        metrics: metrics.or(doc.value::<Endpoint>("metrics")?),
    };
    services.extend(metrics.service().map_err(|e| UsageError(e.to_string()))?);
    Ok(services)
}

struct Suite<'d> {
    doc: &'d Doc<'d>,
    drain: Option<Duration>,
    services: Vec<Service>,
}

impl<'d> Suite<'d> {
    /// Adds the service of section `key`, if enabled, on its own endpoints
    /// or `defaults`.
    fn add<O>(
        &mut self,
        key: &str,
        defaults: Vec<Endpoint>,
        build: impl FnOnce(&O, Vec<Endpoint>) -> Result<Service, OptionError>,
    ) -> Result<(), UsageError>
    where
        O: DeserializeOwned + Default + Serialize,
    {
        let section = self.doc.section::<Section<O>>(key)?;
        if !section.value.enabled {
            return Ok(());
        }
        let listen = section.value.listen.clone().unwrap_or(defaults);
        let service = build(&section.value.options, listen);
        self.push(key.to_string(), &section, service)
    }

    fn push<T: Serialize>(
        &mut self,
        key: String,
        section: &Located<T>,
        service: Result<Service, OptionError>,
    ) -> Result<(), UsageError> {
        let mut service = service.map_err(|e| self.doc.option_error(section, e))?;
        if let Some(d) = self.drain
            && !section.has("drain_timeout")
        {
            service.drain = d;
        }
        service.key = key;
        // What a reload compares: the section as read, and the drain
        // timeout it ends up with.
        service.fingerprint = format!(
            "{} {:?}",
            serde_json::to_string(&section.value).unwrap_or_default(),
            service.drain
        );
        self.services.push(service);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(text: &str) -> Result<Vec<Service>, UsageError> {
        services(&Doc::parse(text, "t.toml")?, None, None)
    }

    fn rows(services: &[Service]) -> Vec<String> {
        services
            .iter()
            .flat_map(|s| {
                let main = s.endpoints.iter().map(move |e| format!("{} {e}", s.name));
                let extra = s.extra.iter().map(move |e| {
                    let url = e.endpoint.authority();
                    format!("{} {}://{url}", s.name, e.scheme)
                });
                main.chain(extra)
            })
            .collect()
    }

    #[test]
    fn defaults_match_the_design_ports() {
        assert_eq!(
            rows(&suite("").unwrap()),
            [
                "echo tcp://127.0.0.1:7007",
                "echo udp://127.0.0.1:7007",
                "discard tcp://127.0.0.1:7009",
                "discard udp://127.0.0.1:7009",
                "daytime tcp://127.0.0.1:7013",
                "daytime udp://127.0.0.1:7013",
                "chargen tcp://127.0.0.1:7019",
                "chargen udp://127.0.0.1:7019",
                "time tcp://127.0.0.1:7037",
                "time udp://127.0.0.1:7037",
                "format-time udp://127.0.0.1:9000",
                "chat tcp://127.0.0.1:12345",
                "chat http://127.0.0.1:8088",
                "http tcp://127.0.0.1:8080",
                "socks tcp://127.0.0.1:1080",
            ]
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = suite("[echo]\nlisten = []\nbogus = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("bogus"), "{text}");
        let err = suite("\n[nothing]\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("nothing"), "{err}");
    }

    #[test]
    fn bad_endpoint_value_names_line() {
        let err = suite("[echo]\n\nlisten = [\"tcp://:x\"]\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains("invalid port 'x'"), "{text}");
    }

    #[test]
    fn a_bad_value_in_a_flattened_group_names_its_own_line() {
        let err = suite("[chat]\nhistory = 5\n\nidle_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4: idle_timeout: invalid duration"),
            "{err}"
        );
    }

    #[test]
    fn classic_sections_choose_endpoints_and_limits() {
        let text = "[chargen]\nlisten = [\"tcp://127.0.0.1:0\"]\nmax_conns = 5\nidle_timeout = 0\n\
                    [format_time]\nlisten = [\"tcp://[::1]:9\"]\nutc = true\n";
        let services = suite(text).unwrap();
        let chargen = services.iter().find(|s| s.name == "chargen").unwrap();
        assert_eq!(chargen.endpoints, ["tcp://127.0.0.1:0".parse().unwrap()]);
        let doc = Doc::parse(text, "t").unwrap();
        let section = doc.section::<Section<classic::Options>>("chargen").unwrap();
        assert_eq!(section.value.options.limits.max_conns().unwrap(), 5);
        assert_eq!(section.value.options.limits.idle(), None);
        let ft = services.iter().find(|s| s.name == "format-time").unwrap();
        assert_eq!(ft.endpoints[0].to_string(), "tcp://[::1]:9");
        let ft = doc
            .section::<Section<time::Options>>("format_time")
            .unwrap();
        assert!(ft.value.options.utc);
        let err = suite("[daytime]\nutc = true\n").unwrap_err();
        assert!(err.to_string().contains("utc"), "{err}");
    }

    #[test]
    fn disabled_service_is_left_out() {
        let services = suite("[echo]\nenabled = false\n[time]\nenabled = false\n").unwrap();
        let names: Vec<_> = services.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "discard",
                "daytime",
                "chargen",
                "format-time",
                "chat",
                "http",
                "socks"
            ]
        );
    }

    #[test]
    fn drain_timeouts_come_from_the_section_the_file_or_the_flag() {
        let text = "drain_timeout = 7\n[echo]\ndrain_timeout = 2\n";
        let services = suite(text).unwrap();
        let drain = |name| services.iter().find(|s| s.name == name).unwrap().drain;
        assert_eq!(drain("echo"), Duration::from_secs(2));
        assert_eq!(drain("chat"), Duration::from_secs(7));
        let doc = Doc::parse(text, "t").unwrap();
        let flagged = services_with(&doc, "1");
        assert!(flagged.iter().all(|s| s.drain == Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn a_forward_rule_takes_tls_accept_and_tls_connect() {
        let text = "[[forward]]\nlisten = \"127.0.0.1:0\"\ntargets = [\":1\"]\n\
                    tls_accept = true\ntls_connect = { insecure = true, sni = \"example.org\" }\n";
        let services = suite(text).unwrap();
        let relay = services.iter().find(|s| s.name == "forward").unwrap();
        assert!(relay.tls.is_some(), "tls_accept makes it a TLS listener");
        let doc = Doc::parse(text, "t").unwrap();
        let rules = doc.tables::<Rule>("forward").unwrap();
        let target = &rules[0].value.options.tls_connect;
        assert!(target.tls_connect && target.target_insecure);
        assert_eq!(target.target_sni.as_deref(), Some("example.org"));
        let err =
            suite("[[forward]]\nlisten = \":0\"\ntargets = [\":1\"]\ntls_connect = { pinn = 1 }\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("line 4") && err.contains("pinn"), "{err}");
    }

    fn services_with(doc: &Doc, drain: &str) -> Vec<Service> {
        services(doc, Some(drain.parse().unwrap()), None).unwrap()
    }
}

/// Every flag of a served service has a config key and every key a flag,
/// read off clap's metadata and the sections' own keys.
#[cfg(test)]
mod parity {
    use super::*;
    use crate::config::keys_of;
    use clap::CommandFactory;

    /// Flags with no key, on purpose: the transport is part of each
    /// `listen` endpoint in the file, and `time serve --protocol` picks the
    /// section ([format_time], [time] or [daytime]).
    const FLAG_ONLY: &[(&str, &str)] = &[
        ("echo", "udp"),
        ("discard", "udp"),
        ("chargen", "udp"),
        ("forward", "udp"),
        ("time serve", "tcp"),
        ("time serve", "protocol"),
        // One per process, so a top-level key of serve's file, not a
        // section's.
        ("chat serve", "metrics"),
        ("http serve", "metrics"),
        ("forward", "metrics"),
    ];

    /// Keys with no flag, on purpose: a subcommand always runs its service.
    const KEY_ONLY: &[&str] = &["enabled"];

    /// A section's keys, and those of the tables inside it (`tls.cert`).
    fn nested_keys<T: Default + Serialize>() -> Vec<String> {
        let mut keys = keys_of::<T>();
        if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(T::default()) {
            for (name, value) in map {
                if let serde_json::Value::Object(inner) = value {
                    keys.extend(inner.keys().map(|k| format!("{name}.{k}")));
                }
            }
        }
        keys
    }

    /// Whether a flag has its key: the same name, or the name inside a
    /// table (`--cert` is `tls.cert`, `--target-sni` is `tls_connect.sni`).
    fn has_key(keys: &[String], flag: &str) -> bool {
        let bare = flag.strip_prefix("target_").unwrap_or(flag);
        keys.iter().any(|k| {
            k == flag
                || k.rsplit_once('.').is_some_and(|(table, name)| {
                    name == flag || (name == bare && table == "tls_connect")
                })
        })
    }

    fn flags(path: &str) -> Vec<String> {
        let mut cmd = crate::cli::Cli::command();
        cmd.build();
        for name in path.split(' ') {
            cmd = cmd.find_subcommand(name).expect("subcommand").clone();
        }
        cmd.get_arguments()
            .filter(|a| !a.is_global_set())
            .map(|a| a.get_id().to_string())
            .filter(|id| id != "help")
            .collect()
    }

    #[test]
    fn every_flag_has_a_key_and_every_key_a_flag() {
        let cases = [
            ("echo", nested_keys::<Section<echo::Options>>()),
            ("discard", nested_keys::<Section<classic::Options>>()),
            ("chargen", nested_keys::<Section<classic::Options>>()),
            ("time serve", nested_keys::<Section<time::Options>>()),
            ("chat serve", nested_keys::<Section<chat::Options>>()),
            ("http serve", nested_keys::<Section<http::Options>>()),
            ("forward", nested_keys::<Rule>()),
        ];
        for (path, keys) in cases {
            let flags = flags(path);
            assert!(flags.len() > 3, "{path}: {flags:?}");
            for flag in &flags {
                let allowed = FLAG_ONLY.contains(&(path, flag.as_str()));
                assert!(
                    has_key(&keys, flag) || allowed,
                    "sockit {path}: flag {flag} has no config key in {keys:?}"
                );
            }
            for key in &keys {
                let name = key.rsplit_once('.').map_or(key.as_str(), |(_, n)| n);
                let flagged = flags
                    .iter()
                    .any(|f| f == name || *f == format!("target_{name}"));
                assert!(
                    flagged || KEY_ONLY.contains(&key.as_str()),
                    "sockit {path}: config key {key} has no flag"
                );
            }
        }
    }
}
