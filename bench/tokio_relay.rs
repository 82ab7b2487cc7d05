//! The baseline for `bench/forward.sh`: the plain tokio relay, one task per
//! connection and `copy_bidirectional`.
//!   tokio_relay LISTEN TARGET

use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (listen, target) = match (args.next(), args.next()) {
        (Some(l), Some(t)) => (l, t),
        _ => {
            eprintln!("usage: tokio_relay LISTEN TARGET");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(&listen).await?;
    eprintln!("listening on tcp://{}", listener.local_addr()?);
    loop {
        let (mut client, _) = listener.accept().await?;
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut upstream) = TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
}
