//! A WebSocket client's bytes after the handshake, any bytes, through the
//! line bridge and the whole session: frame decoding (by tokio-websockets
//! and the resting tracker beside it), lines, commands and the room, with
//! a line client listening. The clock is tokio's paused one, so pings and
//! flood control see time pass between chunks.
#![no_main]

#[path = "harness.rs"]
mod harness;

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sockit::chat::Config;
use sockit::chat::web::serve_upgraded;
use sockit::net::PeerAddr;

fuzz_target!(|data: &[u8]| {
    let cfg = Config {
        max_line: 256,
        history: 4,
        web_ping: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    // Chunks of 61 bytes cut frames at odd places.
    harness::run(data, 61, cfg, |stream, chat| async move {
        serve_upgraded(stream, PeerAddr::Unix, &chat).await
    });
});
