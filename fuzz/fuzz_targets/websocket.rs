//! A WebSocket client's bytes after the handshake, any bytes, through the
//! line bridge and the whole session: frame decoding (by tokio-websockets
//! and the resting tracker beside it), lines, commands and the room, with
//! a line client listening. The clock is tokio's paused one, so pings and
//! flood control see time pass between chunks.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sockit::chat::web::serve_upgraded;
use sockit::chat::{Chat, Config, serve_client};
use sockit::net::{PeerAddr, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let chat = Arc::new(Chat::new(Config {
            max_line: 256,
            history: 4,
            web_ping: Some(Duration::from_secs(5)),
            ..Config::default()
        }));
        let (listener_end, listener_peer) = tokio::net::UnixStream::pair().unwrap();
        let listener = {
            let chat = chat.clone();
            tokio::spawn(async move {
                serve_client(Stream::Unix(listener_end), PeerAddr::Unix, &chat).await
            })
        };
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let speaker = {
            let chat = chat.clone();
            tokio::spawn(async move {
                serve_upgraded(Stream::Unix(theirs), PeerAddr::Unix, &chat).await
            })
        };
        let (mut rd, mut wr) = ours.into_split();
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = rd.read_to_end(&mut sink).await;
        });
        let (mut lrd, lwr) = listener_peer.into_split();
        let listen = tokio::spawn(async move {
            let mut sink = vec![0u8; 1 << 16];
            while matches!(lrd.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        // Chunks that cut frames at odd places, a fake second apart.
        for chunk in data.chunks(61) {
            if wr.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::advance(Duration::from_millis(1000)).await;
        }
        drop(wr);
        let _ = speaker.await;
        let _ = reader.await;
        drop(lwr);
        let _ = listener.await;
        let _ = listen.await;
    });
});
