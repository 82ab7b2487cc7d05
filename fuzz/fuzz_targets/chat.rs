//! A chat client's input, any bytes, through the whole session: framing,
//! commands, flood control and the room, with a second client listening.
//! The clock is tokio's paused one, so flood control sees time pass
//! between chunks without the target waiting.
#![no_main]

#[path = "harness.rs"]
mod harness;

use libfuzzer_sys::fuzz_target;
use sockit::chat::{Config, serve_client};
use sockit::net::PeerAddr;

fuzz_target!(|data: &[u8]| {
    let cfg = Config {
        max_line: 256,
        history: 4,
        ..Config::default()
    };
    harness::run(data, 97, cfg, |stream, chat| async move {
        serve_client(stream, PeerAddr::Unix, &chat).await
    });
});
