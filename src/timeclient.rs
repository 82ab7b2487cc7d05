//! The time client: asks a format-time, RFC 868 or RFC 867 server for the
//! time, over UDP with retries (UDP is lossy) or TCP.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use clap::Args;

use crate::classic;
use crate::endpoint::{Endpoint, Transport};
use crate::net;
use crate::options::OptionError;
use crate::units::Secs;

/// Longest reply read from a TCP server: as much as UDP could carry.
const MAX_REPLY: usize = net::MAX_DATAGRAM;

/// Which time protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Send a strftime format, get the time rendered with it.
    #[default]
    Format,
    /// RFC 868: 32-bit seconds since 1900.
    Rfc868,
    /// RFC 867: one human-readable line.
    Daytime,
}

/// The flags of `sockit time` (the client).
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The server: HOST:PORT (UDP unless --tcp or tcp://), udp://…, unix:PATH.
    #[arg(required = true)]
    pub endpoint: Option<Endpoint>,
    /// strftime format to ask for (format protocol); empty asks for the
    /// server's default.
    #[arg(default_value = "")]
    pub format: String,
    /// Which time protocol to speak.
    #[arg(short, long, value_enum, default_value_t = Protocol::Format)]
    pub protocol: Protocol,
    /// Use TCP instead of UDP.
    #[arg(short, long)]
    pub tcp: bool,
    /// UDP resends after the first try.
    #[arg(short, long, default_value_t = 3)]
    pub retries: u32,
    /// How long to wait for each reply.
    #[arg(
        short = 'w',
        long,
        value_name = "SECS",
        default_value = "1",
        allow_negative_numbers = true
    )]
    pub timeout: Secs,
}

impl Options {
    /// The query, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        let endpoint = self
            .endpoint
            .clone()
            .ok_or_else(|| OptionError::new("endpoint", "is required"))?
            .udp_unless(self.tcp)
            .map_err(|e| OptionError::new("endpoint", e.to_string()))?;
        Ok(Config {
            endpoint,
            protocol: self.protocol,
            format: self.format.clone(),
            retries: self.retries,
            timeout: self.timeout.0,
        })
    }
}

/// What to ask and how hard to try.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub endpoint: Endpoint,
    /// The protocol.
    pub protocol: Protocol,
    /// The strftime format (format protocol; empty asks for the default).
    pub format: String,
    /// UDP resends after the first try.
    pub retries: u32,
    /// How long to wait for each reply (and for a TCP connect).
    pub timeout: Duration,
}

/// A server's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A text reply (format or daytime), without its line ending.
    Text(String),
    /// An RFC 868 reply decoded.
    Clock {
        /// The remote time, seconds since the Unix epoch.
        remote: i64,
        /// Remote minus local time at the midpoint of the exchange, seconds.
        offset: f64,
    },
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Text(t) => f.write_str(t),
            Answer::Clock { remote, offset } => {
                let when = DateTime::<Utc>::from_timestamp(*remote, 0).map_or_else(
                    || remote.to_string(),
                    |t| t.format("%a %b %e %H:%M:%S %Y UTC").to_string(),
                );
                write!(f, "{when}  (offset {offset:+.1} s from the local clock)")
            }
        }
    }
}

/// Asks the server once (TCP) or up to `retries + 1` times (UDP).
pub async fn query(cfg: &Config) -> io::Result<Answer> {
    match cfg.endpoint.transport() {
        Transport::Udp => query_udp(cfg).await,
        Transport::UnixDatagram => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the time client speaks tcp, udp or unix, not unixgram",
        )),
        Transport::Tcp | Transport::Unix => {
            tokio::time::timeout(cfg.timeout.saturating_mul(2), query_stream(cfg))
                .await
                .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no reply")))
        }
    }
}

async fn query_udp(cfg: &Config) -> io::Result<Answer> {
    let sock = net::connect_udp(&cfg.endpoint, Some(cfg.timeout)).await?;
    // RFC 868 and 867 over UDP answer any datagram; an empty one is usual.
    let request: &[u8] = match cfg.protocol {
        Protocol::Format => cfg.format.as_bytes(),
        Protocol::Rfc868 | Protocol::Daytime => b"",
    };
    let mut buf = vec![0u8; net::MAX_DATAGRAM];
    let attempts = cfg.retries.saturating_add(1);
    for attempt in 1..=attempts {
        let sent_at = SystemTime::now();
        sock.send(request).await?;
        match tokio::time::timeout(cfg.timeout, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => return decode(cfg.protocol, &buf[..n], sent_at),
            Ok(Err(e)) => return Err(e),
            Err(_) => tracing::debug!(attempt, "no reply, resending"),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "no reply after {attempts} attempts of {}",
            humantime::format_duration(cfg.timeout)
        ),
    ))
}

async fn query_stream(cfg: &Config) -> io::Result<Answer> {
    let sent_at = SystemTime::now();
    let mut stream = net::connect(&cfg.endpoint, Some(cfg.timeout)).await?;
    let mut reply = Vec::new();
    match cfg.protocol {
        Protocol::Format => {
            stream
                .write_all(format!("{}\n", cfg.format).as_bytes())
                .await?;
            let mut reader = BufReader::new(stream).take(MAX_REPLY as u64);
            reader.read_until(b'\n', &mut reply).await?;
        }
        Protocol::Rfc868 => {
            let mut four = [0u8; 4];
            stream.read_exact(&mut four).await?;
            reply.extend_from_slice(&four);
        }
        Protocol::Daytime => {
            stream
                .take(MAX_REPLY as u64)
                .read_to_end(&mut reply)
                .await?;
        }
    }
    decode(cfg.protocol, &reply, sent_at)
}

fn decode(protocol: Protocol, reply: &[u8], sent_at: SystemTime) -> io::Result<Answer> {
    match protocol {
        Protocol::Rfc868 => {
            let bytes: [u8; 4] = reply.try_into().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("expected 4 bytes of RFC 868 time, got {}", reply.len()),
                )
            })?;
            let now = SystemTime::now();
            let remote = classic::rfc868_to_unix(bytes, now);
            let secs = |t: SystemTime| {
                t.duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64())
            };
            let midpoint = (secs(sent_at) + secs(now)) / 2.0;
            // The reply truncates to whole seconds: on average the true
            // remote time is half a second later.
            Ok(Answer::Clock {
                remote,
                offset: remote as f64 + 0.5 - midpoint,
            })
        }
        Protocol::Format | Protocol::Daytime => {
            let text = String::from_utf8_lossy(reply);
            let text = text.trim_end_matches(['\r', '\n']);
            // The format-time service reports bad requests this way.
            if let Some(problem) = text.strip_prefix("error: ") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("server says: {problem}"),
                ));
            }
            Ok(Answer::Text(text.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc868_reply_needs_exactly_four_bytes() {
        assert!(decode(Protocol::Rfc868, b"abc", SystemTime::now()).is_err());
        let now = SystemTime::now();
        let Answer::Clock { offset, .. } =
            decode(Protocol::Rfc868, &classic::rfc868_bytes(now), now).unwrap()
        else {
            panic!("not a clock answer")
        };
        assert!(offset.abs() <= 1.0, "{offset}");
    }

    #[test]
    fn text_replies_lose_their_line_ending() {
        let a = decode(Protocol::Daytime, b"Sunday\r\n", SystemTime::now()).unwrap();
        assert_eq!(a, Answer::Text("Sunday".into()));
    }
}
