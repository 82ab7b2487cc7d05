//! What the chat targets share: a room with a line client listening, one
//! speaker whose session gets the input in chunks a fake second apart
//! (tokio's clock is paused), and every task run to its end.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use sockit::chat::{Chat, Config, serve_client};
use sockit::net::{PeerAddr, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Feeds `data` in `chunk`-byte pieces to the session `speak` runs on its
/// end of a socket pair.
pub fn run<F, Fut>(data: &[u8], chunk: usize, cfg: Config, speak: F)
where
    F: FnOnce(Stream, Arc<Chat>) -> Fut,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let chat = Arc::new(Chat::new(cfg));
        let (listener_end, listener_peer) = tokio::net::UnixStream::pair().unwrap();
        let listener = {
            let chat = chat.clone();
            tokio::spawn(async move {
                serve_client(Stream::Unix(listener_end), PeerAddr::Unix, &chat).await
            })
        };
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let speaker = tokio::spawn(speak(Stream::Unix(theirs), chat.clone()));
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
        for piece in data.chunks(chunk) {
            if wr.write_all(piece).await.is_err() {
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
}
