//! inetd-style `--exec`: one child process per connection, its stdin fed from
//! the socket and its stdout sent back, started from an argv (no shell).

use std::io;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

/// How long a child may keep running after closing its stdout.
const CHILD_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `argv` wired to `stream` until the child closes its stdout. The
/// child's stdin is closed when the client half-closes, so filters like `sort`
/// see end of input; the child is killed if the connection task is dropped.
pub async fn serve_with_process<S>(stream: S, argv: &[String]) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "--exec needs a program"))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("start '{prog}': {e}")))?;
    let mut child_in = child.stdin.take().expect("stdin is piped");
    let mut child_out = child.stdout.take().expect("stdout is piped");
    let (mut sock_rd, mut sock_wr) = tokio::io::split(stream);

    let to_child = async {
        // A child that exits without reading makes this a broken pipe; that
        // is the child's choice, not an error of the connection.
        let _ = tokio::io::copy(&mut sock_rd, &mut child_in).await;
        drop(child_in);
    };
    let from_child = async {
        tokio::io::copy(&mut child_out, &mut sock_wr).await?;
        sock_wr.shutdown().await
    };
    tokio::pin!(to_child, from_child);
    let res = tokio::select! {
        res = &mut from_child => res,
        () = &mut to_child => from_child.await,
    };
    // The child closed its stdout; give it a moment to exit, then stop it so
    // a stuck child cannot outlive its connection.
    match tokio::time::timeout(CHILD_EXIT_WAIT, child.wait()).await {
        Ok(Ok(status)) => tracing::info!(%status, program = %prog, "child exited"),
        Ok(Err(err)) => tracing::warn!(%err, "waiting for child failed"),
        Err(_) => {
            tracing::warn!(program = %prog, "child still running after its output closed, killing it");
            let _ = child.kill().await;
        }
    }
    res
}
