//! `--allow` / `--deny`: which client addresses may use a relay.

use std::net::IpAddr;

use ipnet::IpNet;

/// Client address rules, `--allow` and `--deny` for forward and socks: any
/// matching deny refuses; with allow rules, only a matching one admits.
#[derive(Debug, Clone, Default, clap::Args, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Access {
    /// Admit only clients in this network (repeatable): 10.0.0.0/8, ::1, …
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    #[serde(
        deserialize_with = "deserialize_nets",
        serialize_with = "serialize_nets"
    )]
    pub allow: Vec<IpNet>,
    /// Refuse clients in this network (repeatable; wins over --allow).
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    #[serde(
        deserialize_with = "deserialize_nets",
        serialize_with = "serialize_nets"
    )]
    pub deny: Vec<IpNet>,
}

impl Access {
    /// Whether `ip` may connect.
    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d;
        // rules are written for a.b.c.d.
        let ip = ip.to_canonical();
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }
}

/// Reads a list of networks from a config file, each as `parse_cidr` takes.
pub fn deserialize_nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let texts = <Vec<String> as serde::Deserialize>::deserialize(d)?;
    texts
        .iter()
        .map(|t| parse_cidr(t).map_err(serde::de::Error::custom))
        .collect()
}

/// Writes a list of networks as `parse_cidr` reads them back.
pub fn serialize_nets<S: serde::Serializer>(nets: &[IpNet], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(nets.iter().map(ToString::to_string))
}

/// Parses `10.0.0.0/8`, `::1/128` or a bare address (a single host).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("invalid network '{s}' (expected e.g. 10.0.0.0/8 or 127.0.0.1)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> Access {
        let parse = |v: &[&str]| v.iter().map(|s| parse_cidr(s).unwrap()).collect();
        Access {
            allow: parse(allow),
            deny: parse(deny),
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let a = rules(&["127.0.0.0/8"], &["127.0.0.2"]);
        assert!(a.allows("127.0.0.1".parse().unwrap()));
        assert!(!a.allows("127.0.0.2".parse().unwrap()));
        assert!(!a.allows("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn no_rules_admit_everyone_and_mapped_v4_matches_v4_rules() {
        assert!(Access::default().allows("::1".parse().unwrap()));
        let a = rules(&[], &["127.0.0.0/8"]);
        assert!(!a.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(a.allows("::1".parse().unwrap()));
    }

    #[test]
    fn bad_networks_are_named() {
        assert!(
            parse_cidr("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
        assert!(parse_cidr("localhost").is_err());
    }
}
