//! The netcat client: connect to an endpoint and bridge it to stdin/stdout.

use std::io;
use std::time::Duration;

use crate::endpoint::{Endpoint, Transport};
use crate::net;
use crate::stdio;

/// What the client does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Give up connecting after this long.
    pub connect_timeout: Option<Duration>,
    /// How stdio maps onto the connection.
    pub stdio: stdio::Options,
}

/// Why a client session failed, split by phase so the message says which.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not connect (refused, timed out, unknown host).
    #[error("connect to {endpoint}")]
    Connect {
        /// The target.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The connection failed after it was made.
    #[error("connection to {endpoint}")]
    Session {
        /// The target.
        endpoint: Endpoint,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Connects and bridges until the peer closes, stdin ends (UDP), the exit
/// word is typed or the idle timeout passes.
pub async fn run(cfg: &Config) -> Result<(), ClientError> {
    let connect_err = |source| ClientError::Connect {
        endpoint: cfg.endpoint.clone(),
        source,
    };
    let session_err = |source| ClientError::Session {
        endpoint: cfg.endpoint.clone(),
        source,
    };
    match cfg.endpoint.transport() {
        Transport::Udp => {
            let sock = net::connect_udp(&cfg.endpoint, cfg.connect_timeout)
                .await
                .map_err(connect_err)?;
            let linger = cfg.stdio.idle_timeout.unwrap_or(stdio::UDP_LINGER);
            stdio::bridge_udp(&sock, &cfg.stdio, linger)
                .await
                .map_err(session_err)
        }
        Transport::Tcp | Transport::Unix => {
            let stream = net::connect(&cfg.endpoint, cfg.connect_timeout)
                .await
                .map_err(connect_err)?;
            tracing::debug!(endpoint = %cfg.endpoint, "connected");
            stdio::bridge(stream, &cfg.stdio).await.map_err(session_err)
        }
    }
}
