//! UDP peer chat, the textbook "QQ-style" tool: each instance listens on its
//! own port and sends each typed line as one datagram to a chosen peer.

use std::io;
use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

use clap::Args;

use crate::endpoint::Endpoint;
use crate::options::OptionError;

use crate::net::MAX_DATAGRAM;

/// A named peer.
#[derive(Debug, Clone)]
pub struct Peer {
    /// How it is shown and chosen.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The flags of `sockit chat udp`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Where this instance listens: :PORT, HOST:PORT, udp://….
    #[arg(short, long, value_name = "EP")]
    pub bind: Endpoint,
    /// A peer to talk to, NAME=HOST:PORT (repeatable; the first is current).
    #[arg(short, long, value_name = "NAME=HOST:PORT")]
    pub peer: Vec<String>,
}

impl Options {
    /// Where to listen and whom to talk to, with every peer resolved.
    pub async fn config(&self) -> anyhow::Result<(Endpoint, Config)> {
        use anyhow::Context;
        let bind = self
            .bind
            .clone()
            .with_udp_flag(true)
            .map_err(|e| OptionError::new("bind", e.to_string()))?;
        let mut peers = Vec::new();
        for spec in &self.peer {
            peers.push(match parse_peer(spec).await {
                Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                    return Err(OptionError::new("peer", e.to_string()).into());
                }
                other => other.with_context(|| format!("peer {spec}"))?,
            });
        }
        let cfg = Config {
            peers,
            color: super::client::color_wanted(),
        };
        Ok((bind, cfg))
    }
}

/// What the peer chat does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Known peers; the first is talked to until `/to` says otherwise.
    pub peers: Vec<Peer>,
    /// Colour peer names.
    pub color: bool,
}

/// Resolves `NAME=HOST:PORT`.
pub async fn parse_peer(spec: &str) -> io::Result<Peer> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid peer '{spec}' (expected NAME=HOST:PORT)"),
        )
    };
    let (name, at) = spec.split_once('=').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad());
    }
    let ep: Endpoint = at
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let addr = *ep.resolve().await?.first().ok_or_else(bad)?;
    Ok(Peer {
        name: name.to_string(),
        addr,
    })
}

/// Chats until `q`, `/quit` or the end of stdin.
pub async fn run(cfg: &Config, socket: UdpSocket) -> io::Result<()> {
    let mut out = tokio::io::stdout();
    let mut target = cfg.peers.first().cloned();
    // Whoever sent the last datagram: the textbook server replies there.
    let mut last: Option<Peer> = None;
    let most = socket
        .local_addr()
        .map_or(MAX_DATAGRAM, crate::net::max_payload);
    let mut lines = crate::stdio::InputLines::new(tokio::io::stdin(), most);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            got = socket.recv_from(&mut buf) => {
                let (n, from) = match got {
                    Ok(x) => x,
                    // An ICMP error for an earlier datagram: the peer is not
                    // there. Say so and carry on.
                    Err(err) => {
                        say(&mut out, &format!("! {err}")).await?;
                        continue;
                    }
                };
                let shown = show_incoming(cfg, from, &buf[..n]);
                say(&mut out, &shown).await?;
                last = Some(known(cfg, from));
            }
            line = lines.next() => {
                let Some(line) = line else { return Ok(()) };
                let text = String::from_utf8_lossy(&line?).into_owned();
                match text.as_str() {
                    "q" | "/quit" => return Ok(()),
                    "" => continue,
                    _ => {}
                }
                if let Some(who) = text.strip_prefix("/to ") {
                    match find(cfg, who.trim()) {
                        Some(p) => {
                            say(&mut out, &format!("* talking to {}", p.name)).await?;
                            target = Some(p);
                        }
                        None => say(&mut out, &format!("! unknown peer {}", who.trim())).await?,
                    }
                    continue;
                }
                // `/reply text` answers the last sender; `NAME: text` sends
                // once to NAME; neither changes the target. With no target,
                // a line goes to the last sender, as the textbook server's
                // `sendto(reply, addr)` does.
                let (to, body) = if let Some(body) = text.strip_prefix("/reply ") {
                    (last.clone(), body.to_string())
                } else {
                    match text.split_once(": ").and_then(|(n, b)| Some((find(cfg, n)?, b))) {
                        Some((p, body)) => (Some(p), body.to_string()),
                        None => (target.clone().or_else(|| last.clone()), text),
                    }
                };
                let Some(to) = to else {
                    say(&mut out, "! nobody to send to yet: /to NAME, NAME: text, or wait for a message").await?;
                    continue;
                };
                if let Err(err) = socket.send_to(body.as_bytes(), to.addr).await {
                    say(&mut out, &format!("! send to {}: {err}", to.name)).await?;
                }
            }
        }
    }
}

/// The peer at `addr`: a named one, or an ad-hoc one named by its address.
fn known(cfg: &Config, addr: SocketAddr) -> Peer {
    cfg.peers
        .iter()
        .find(|p| p.addr == addr)
        .cloned()
        .unwrap_or_else(|| Peer {
            name: addr.to_string(),
            addr,
        })
}

/// A known peer by name, or any `HOST:PORT` literal as an ad-hoc peer.
fn find(cfg: &Config, who: &str) -> Option<Peer> {
    if let Some(p) = cfg.peers.iter().find(|p| p.name == who) {
        return Some(p.clone());
    }
    who.parse().ok().map(|addr| Peer {
        name: who.to_string(),
        addr,
    })
}

/// `[NAME ip:port] text`, unknown senders by address alone; control
/// characters are neutralised so a datagram cannot drive the terminal.
fn show_incoming(cfg: &Config, from: SocketAddr, data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let text = super::proto::defuse(text.trim_end_matches(['\r', '\n']).to_string());
    let label = match cfg.peers.iter().find(|p| p.addr == from) {
        Some(p) => format!("{} {from}", super::client::paint(&p.name, cfg.color)),
        None => from.to_string(),
    };
    format!("[{label}] {text}")
}

async fn say(out: &mut tokio::io::Stdout, line: &str) -> io::Result<()> {
    out.write_all(line.as_bytes()).await?;
    out.write_all(b"\n").await?;
    out.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_text_is_labelled_and_defused() {
        let cfg = Config {
            peers: vec![Peer {
                name: "bob".into(),
                addr: "127.0.0.1:9".parse().unwrap(),
            }],
            color: false,
        };
        let bob = "127.0.0.1:9".parse().unwrap();
        assert_eq!(show_incoming(&cfg, bob, b"hi\n"), "[bob 127.0.0.1:9] hi");
        let other = "127.0.0.1:10".parse().unwrap();
        assert_eq!(
            show_incoming(&cfg, other, b"\x1b[2J\xff"),
            "[127.0.0.1:10] \u{FFFD}[2J\u{FFFD}"
        );
    }
}
