//! The relay's log lines, as the textbook forwarder printed them: one when a
//! connection opens, one when it closes with the bytes each way. With
//! `--log-format json` the same facts come as fields.

use std::io;
use std::time::Duration;

use super::relay::{End, Summary};
use crate::endpoint::Endpoint;
use crate::logging;

/// `conn 17 127.0.0.1:50122 -> 127.0.0.1:8080`, and what TLS its legs speak
/// (` (tls TLSv1_3 sni=example.org from client)`).
pub fn open(conn: u64, client: &str, target: &str, tls: &str) {
    if logging::json() {
        let tls = tls.trim();
        tracing::info!(conn, client, target, tls, "open");
    } else {
        tracing::info!("conn {conn} {client} -> {target}{tls}");
    }
}

/// How a TCP relay ended, with bytes each way and how long it lasted.
pub fn close(conn: u64, s: &Summary) {
    let (end, err) = match &s.end {
        End::Closed => ("closed", None),
        End::Idle => ("idle timeout", None),
        End::Reset(e) => ("reset", Some(e.to_string())),
    };
    let secs = s.took.as_secs_f64();
    if logging::json() {
        tracing::info!(
            conn,
            end,
            error = err,
            bytes_up = s.up,
            bytes_down = s.down,
            secs,
            "close"
        );
    } else {
        let why = err.map(|e| format!(" ({e})")).unwrap_or_default();
        tracing::info!(
            "conn {conn} {end}{why}: {} bytes up, {} bytes down, {secs:.3} s",
            s.up,
            s.down
        );
    }
}

/// How a UDP session ended: datagrams and bytes each way.
pub fn udp_close(conn: u64, end: &str, up: (u64, u64), down: (u64, u64), took: Duration) {
    let secs = took.as_secs_f64();
    if logging::json() {
        tracing::info!(
            conn,
            end,
            datagrams_up = up.0,
            bytes_up = up.1,
            datagrams_down = down.0,
            bytes_down = down.1,
            secs,
            "close"
        );
    } else {
        tracing::info!(
            "conn {conn} {end}: {} datagrams ({} bytes) up, {} datagrams ({} bytes) down, {secs:.3} s",
            up.0,
            up.1,
            down.0,
            down.1
        );
    }
}

/// A target refused or timed out and is rested for `pause`.
pub fn target_failed(target: &Endpoint, err: &io::Error, pause: Duration) {
    // To the millisecond: the pause carries jitter down to the nanosecond.
    let pause = Duration::from_millis(pause.as_millis().try_into().unwrap_or(u64::MAX));
    tracing::warn!(
        "target {target} unreachable ({}), skipping it for {}",
        crate::error::describe_io(err),
        humantime::format_duration(pause)
    );
}
