//! A chat client's input, any bytes, through the whole session: framing,
//! commands, flood control and the room, with a second client listening.
//! The clock is tokio's paused one, so flood control sees time pass
//! between chunks without the target waiting.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
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
            ..Config::default()
        }));
        let session = |stream| {
            let chat = chat.clone();
            tokio::spawn(async move { serve_client(stream, PeerAddr::Unix, &chat).await })
        };
        let (listener_end, listener_peer) = tokio::net::UnixStream::pair().unwrap();
        let listener = session(Stream::Unix(listener_end));
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let speaker = session(Stream::Unix(theirs));
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
        // In chunks, a fake second apart, as a client would type them.
        for chunk in data.chunks(97) {
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
