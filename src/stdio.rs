//! The netcat data path: stdin and stdout bridged to one stream or one UDP
//! peer, raw or framed, with half-close, idle timeout and the classic
//! interactive line mode.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::codec::FramedRead;

use crate::dump::{Direction, DumpTo, Dumper, HexDump};
use crate::frame::{FrameCodec, Framing, Line, TolerantLines};
use crate::idle::Activity;
use crate::net::MAX_DATAGRAM;
use crate::options::{FrameOptions, OptionError};

/// Read size for raw copies between stdio and a socket.
const COPY_BUFFER: usize = 64 * 1024;

/// How long interactive mode waits for a reply before showing the next prompt.
const REPLY_WAIT: Duration = Duration::from_secs(1);

/// After the peer closes, how long stdin may stay silent before we quit.
const PEER_EOF_LINGER: Duration = Duration::from_millis(500);

/// How long line mode waits for a server's greeting before sending.
const GREETING_WAIT: Duration = Duration::from_millis(300);

/// After the exit word, the peer counts as done once it is silent this long.
const QUIET_PERIOD: Duration = Duration::from_millis(250);

/// After stdin ends, how long a UDP client waits for outstanding replies
/// unless `--idle-timeout` says otherwise.
pub const UDP_LINGER: Duration = Duration::from_secs(2);

/// What netcat does with each direction besides copying it, for connect
/// and listen: `-d`, `--send-only`, `-o` and `-x`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Flags {
    /// Never read stdin; only show what arrives (nc -d).
    #[arg(short = 'd', long = "no-stdin", visible_alias = "recv-only")]
    pub no_stdin: bool,
    /// Only send stdin: what arrives is thrown away, and the session ends
    /// when stdin does.
    #[arg(long, conflicts_with_all = ["no_stdin", "output"])]
    pub send_only: bool,
    /// Also write what arrives to FILE, emptied first unless --append.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With -o, add to FILE rather than empty it.
    #[arg(long, requires = "output")]
    pub append: bool,
    /// `-x` and `--dump-file`.
    #[command(flatten)]
    pub dump: HexDump,
}

impl Flags {
    /// Sets these flags on `opts`.
    pub fn apply(&self, opts: &mut Options) {
        opts.read_input = !self.no_stdin;
        opts.send_only = self.send_only;
        opts.copy_to = self.output.clone().map(|path| CopyTo {
            path,
            append: self.append,
        });
        opts.dump = self.dump.to();
    }

    /// Refuses the flags a mode without stdio cannot honour (`-e`, `-k`).
    pub fn only_with_stdio(&self, mode: &str) -> Result<(), OptionError> {
        let key = if self.no_stdin {
            "no_stdin"
        } else if self.send_only {
            "send_only"
        } else if self.output.is_some() {
            "output"
        } else if self.dump.to() != DumpTo::Off {
            self.dump.key()
        } else {
            return Ok(());
        };
        Err(OptionError::new(
            key,
            format!("is for one session on stdio, not {mode}"),
        ))
    }
}

/// Where `-o` copies what arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyTo {
    /// The file, created if missing.
    pub path: PathBuf,
    /// Add to the file rather than empty it first.
    pub append: bool,
}

/// How stdin and stdout map onto the socket.
#[derive(Debug, Clone)]
pub struct Options {
    /// Framing on the socket side.
    pub framing: Framing,
    /// Largest frame accepted from the socket or stdin.
    pub max_frame: usize,
    /// Send line endings as CRLF.
    pub crlf: bool,
    /// End the session after this long with no data either way.
    pub idle_timeout: Option<Duration>,
    /// Line-at-a-time client with an exit word; `prompt` adds `> ` on stderr.
    pub interactive: Option<Interactive>,
    /// Shut down the socket's write half when stdin ends (netcat's default).
    pub half_close: bool,
    /// After the peer closes, keep sending stdin until it ends, so piped
    /// input arrives whole at a peer that only half-closed. A terminal
    /// session ends when the peer closes.
    pub send_all_input: bool,
    /// Read stdin and send it; off, the session only receives.
    pub read_input: bool,
    /// Throw away what arrives and end when stdin does.
    pub send_only: bool,
    /// A copy of what is written to stdout.
    pub copy_to: Option<CopyTo>,
    /// A hex dump of both directions.
    pub dump: DumpTo,
}

/// The copies one session makes: what arrives to `-o`'s file, and both
/// directions to the hex dump.
struct Taps {
    copy: Option<tokio::fs::File>,
    dump: Option<Arc<Dumper>>,
    /// Bytes of the peer's dumped so far.
    down: u64,
}

impl Taps {
    async fn open(opts: &Options) -> io::Result<Taps> {
        let copy = match &opts.copy_to {
            None => None,
            Some(to) => Some(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(to.append)
                    .truncate(!to.append)
                    .open(&to.path)
                    .await
                    .map_err(|e| {
                        crate::error::context(e, format!("output file {}", to.path.display()))
                    })?,
            ),
        };
        Ok(Taps {
            copy,
            dump: opts.dump.open()?,
            down: 0,
        })
    }

    /// A share of the dump for the sending side, which runs beside the
    /// receiving one.
    fn sender(&self) -> SendTap {
        SendTap {
            dump: self.dump.clone(),
            offset: 0,
        }
    }

    /// Records a chunk that came in and goes to stdout as `shown`.
    async fn received(&mut self, data: &[u8], newline: bool) -> io::Result<()> {
        if let Some(dump) = &self.dump {
            dump.chunk(1, Direction::Down, self.down, data).await;
        }
        self.down += data.len() as u64;
        if let Some(file) = &mut self.copy {
            file.write_all(data).await?;
            if newline {
                file.write_all(b"\n").await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        match &mut self.copy {
            Some(file) => file.flush().await,
            None => Ok(()),
        }
    }
}

/// The hex dump of what is sent.
struct SendTap {
    dump: Option<Arc<Dumper>>,
    offset: u64,
}

impl SendTap {
    async fn sent(&mut self, data: &[u8]) {
        if let Some(dump) = &self.dump {
            dump.chunk(1, Direction::Up, self.offset, data).await;
        }
        self.offset += data.len() as u64;
    }
}

/// The classic tutorial client: read a line, send it, print the reply.
#[derive(Debug, Clone)]
pub struct Interactive {
    /// Typing this line ends the session.
    pub exit_word: String,
    /// Show a `> ` prompt on stderr (stdin is a terminal).
    pub prompt: bool,
}

/// Lines read from stdin (or any input), each without its line ending.
///
/// The policy for a line longer than `max`, the same for every command: it
/// is skipped with one warning naming the limit, and reading goes on. A
/// stray paste must neither end a session nor stop stdin for the rest of
/// the run.
pub struct InputLines<R> {
    lines: FramedRead<R, TolerantLines>,
    max: usize,
}

impl<R: AsyncRead + Unpin> InputLines<R> {
    /// Lines of at most `max` bytes from `input`.
    pub fn new(input: R, max: usize) -> Self {
        InputLines {
            lines: FramedRead::new(input, TolerantLines::new(max)),
            max,
        }
    }

    /// The next line, or `None` at the end of input.
    pub async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            match self.lines.next().await? {
                Ok(Line::Text(line)) => return Some(Ok(line)),
                Ok(Line::TooLong) => {
                    tracing::warn!(
                        max = self.max,
                        "input line longer than {} bytes skipped",
                        self.max
                    )
                }
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

impl Options {
    /// The netcat defaults for `frame`, `crlf` and an idle limit: half-close
    /// at stdin EOF, and piped input is sent whole even after the peer
    /// closes.
    pub fn new(frame: &FrameOptions, crlf: bool, idle_timeout: Option<Duration>) -> Self {
        Options {
            framing: frame.frame,
            max_frame: frame.max_frame.0,
            crlf,
            idle_timeout,
            interactive: None,
            half_close: true,
            send_all_input: !std::io::stdin().is_terminal(),
            read_input: true,
            send_only: false,
            copy_to: None,
            dump: DumpTo::Off,
        }
    }

    /// Whether stdin is read line by line (framed or interactive).
    fn stdin_lines(&self) -> bool {
        self.framing != Framing::Raw || self.interactive.is_some()
    }

    /// What goes on the wire for one line read from stdin.
    pub(crate) fn encode_line(&self, line: &[u8], codec: &mut FrameCodec) -> io::Result<Bytes> {
        let eol: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = BytesMut::with_capacity(line.len() + 4);
        match self.framing {
            // Interactive raw mode sends the line as typed, like the textbook
            // client's `s.send(input())`; --crlf asks for a line ending.
            Framing::Raw if self.crlf => {
                out.extend_from_slice(line);
                out.extend_from_slice(eol);
            }
            Framing::Raw => out.extend_from_slice(line),
            Framing::Lines => {
                out.extend_from_slice(line);
                out.extend_from_slice(eol);
            }
            Framing::Len => {
                tokio_util::codec::Encoder::encode(codec, Bytes::copy_from_slice(line), &mut out)?
            }
        }
        Ok(out.freeze())
    }
}

/// Bridges stdin/stdout to a connected stream until the peer closes, the
/// user types the exit word, or the idle timeout passes.
pub async fn bridge<S>(stream: S, opts: &Options) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    bridge_with(stream, tokio::io::stdin(), tokio::io::stdout(), opts).await
}

/// [`bridge`] over any input and output, so it can be tested without stdio.
pub async fn bridge_with<S, I, O>(stream: S, input: I, output: O, opts: &Options) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let (sock_rd, mut sock_wr) = tokio::io::split(stream);
    let activity = Activity::new();
    let replied = watch::Sender::new(0u64);
    let mut taps = Taps::open(opts).await?;
    let mut sent = taps.sender();

    let outbound = async {
        if !opts.read_input {
            // Neither read nor ended: the peer decides when it is over.
            return std::future::pending().await;
        }
        let res = send_input(input, &mut sock_wr, opts, &activity, &replied, &mut sent).await;
        let close = match &res {
            Ok(InputEnd::Eof) => opts.half_close,
            Ok(InputEnd::ExitWord) => true,
            Err(_) => false,
        };
        if close {
            let _ = sock_wr.shutdown().await;
        }
        res
    };
    let inbound = print_incoming(sock_rd, output, opts, &activity, &replied, &mut taps);
    let idle = async { Err::<(), _>(activity.expired(opts.idle_timeout).await) };
    tokio::pin!(outbound, inbound, idle);

    tokio::select! {
        res = &mut inbound => {
            res?;
            if !opts.send_all_input {
                return Ok(());
            }
            // Keep sending what stdin still has, but end once it stalls, so
            // a finished peer is not held by a producer that has gone quiet
            // (socat's -t does the same). The stall counts from now.
            activity.touch();
            let linger = activity.idle_for(PEER_EOF_LINGER);
            tokio::select! {
                res = &mut outbound => match res {
                    // The peer closed both ways: nothing more can arrive.
                    Err(e) if is_peer_gone(&e) => Ok(()),
                    other => other.map(drop),
                },
                _ = linger => Ok(()),
                res = &mut idle => res,
            }
        }
        res = &mut outbound => match res? {
            InputEnd::ExitWord => {
                // Replies to the last lines may still be on their way: show
                // them, but do not wait for a peer that never closes.
                let mut reply = replied.subscribe();
                let settle = async {
                    loop {
                        tokio::select! {
                            res = &mut inbound => return res,
                            quiet = tokio::time::timeout(QUIET_PERIOD, reply.changed()) => {
                                if quiet.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                };
                tokio::time::timeout(REPLY_WAIT, settle).await.unwrap_or(Ok(()))
            }
            InputEnd::Eof if opts.send_only => Ok(()),
            InputEnd::Eof => tokio::select! {
                res = &mut inbound => res,
                res = &mut idle => res,
            },
        },
        res = &mut idle => res,
    }
}

fn is_peer_gone(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

#[derive(Debug, PartialEq, Eq)]
enum InputEnd {
    Eof,
    ExitWord,
}

enum Typed {
    Line(Bytes),
    End(InputEnd),
}

/// Reads the next input line, showing the prompt first and spotting the
/// exit word.
async fn read_line<I: AsyncRead + Unpin>(
    lines: &mut InputLines<I>,
    opts: &Options,
) -> io::Result<Typed> {
    if let Some(Interactive { prompt: true, .. }) = &opts.interactive {
        eprint!("> ");
    }
    let Some(line) = lines.next().await else {
        return Ok(Typed::End(InputEnd::Eof));
    };
    let line = line?;
    match &opts.interactive {
        Some(i) if line.as_ref() == i.exit_word.as_bytes() => Ok(Typed::End(InputEnd::ExitWord)),
        _ => Ok(Typed::Line(line)),
    }
}

async fn send_input<I, W>(
    mut input: I,
    sock: &mut W,
    opts: &Options,
    activity: &Activity,
    replied: &watch::Sender<u64>,
    tap: &mut SendTap,
) -> io::Result<InputEnd>
where
    I: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !opts.stdin_lines() {
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                return Ok(InputEnd::Eof);
            }
            if opts.crlf {
                let data = to_crlf(&buf[..n]);
                tap.sent(&data).await;
                sock.write_all(&data).await?;
            } else {
                tap.sent(&buf[..n]).await;
                sock.write_all(&buf[..n]).await?;
            }
            // A no-op on a socket; TLS and WebSocket hold bytes until it.
            sock.flush().await?;
            activity.touch();
        }
    }
    let mut codec = opts.framing.codec(opts.max_frame);
    let mut lines = InputLines::new(input, opts.max_frame);
    if opts.interactive.is_some() {
        // Like the textbook client, read the greeting before the first line,
        // or a late greeting is taken for the first reply and two lines merge
        // at a raw-mode server.
        let mut greeting = replied.subscribe();
        if *greeting.borrow_and_update() == 0 {
            let _ = tokio::time::timeout(GREETING_WAIT, greeting.changed()).await;
        }
    }
    loop {
        let line = match read_line(&mut lines, opts).await? {
            Typed::Line(line) => line,
            Typed::End(end) => return Ok(end),
        };
        let mut reply = replied.subscribe();
        let data = opts.encode_line(&line, &mut codec)?;
        tap.sent(&data).await;
        sock.write_all(&data).await?;
        sock.flush().await?;
        activity.touch();
        if opts.interactive.is_some() {
            await_reply(&mut reply).await;
        }
    }
}

/// LF becomes CRLF, leaving existing CRLF pairs alone.
pub(crate) fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

async fn print_incoming<R, O>(
    mut sock: R,
    mut output: O,
    opts: &Options,
    activity: &Activity,
    replied: &watch::Sender<u64>,
    taps: &mut Taps,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
{
    let mut show = async |data: &[u8], newline: bool, flush: bool| {
        if !opts.send_only {
            taps.received(data, newline).await?;
            emit(&mut output, data, newline, flush).await?;
        }
        activity.touch();
        replied.send_modify(|n| *n += 1);
        io::Result::Ok(())
    };
    if opts.framing == Framing::Raw {
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = sock.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            // The textbook client prints each reply on its own line.
            let newline = opts.interactive.is_some() && buf[n - 1] != b'\n';
            show(&buf[..n], newline, true).await?;
        }
    } else {
        let mut frames = FramedRead::new(sock, opts.framing.codec(opts.max_frame));
        while let Some(frame) = frames.next().await {
            let frame = frame?;
            let flush = frames.read_buffer().is_empty();
            show(&frame, true, flush).await?;
        }
    }
    taps.flush().await?;
    output.flush().await.map_err(stdout_error)
}

/// stdout went away (`sockit … | head`): a normal end of a pipeline, told
/// apart from a broken socket so only this one exits 0.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
pub struct StdoutClosed;

/// Marks a broken pipe on stdout as [`StdoutClosed`].
pub(crate) fn stdout_error(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        err
    }
}

/// Writes one chunk of received data to stdout, optionally ending it with a
/// newline and flushing.
pub(crate) async fn emit<O: AsyncWrite + Unpin>(
    out: &mut O,
    data: &[u8],
    newline: bool,
    flush: bool,
) -> io::Result<()> {
    let res = async {
        out.write_all(data).await?;
        if newline {
            out.write_all(b"\n").await?;
        }
        if flush {
            out.flush().await?;
        }
        Ok(())
    };
    res.await.map_err(stdout_error)
}

/// The classic client reads the reply before asking for the next line; wait
/// for one (bounded, since not every server answers every line).
async fn await_reply(reply: &mut watch::Receiver<u64>) {
    let _ = tokio::time::timeout(REPLY_WAIT, reply.changed()).await;
}

/// Sends stdin to a connected UDP socket, one datagram per line, and prints
/// each reply on its own line. After stdin ends it waits until every datagram
/// has been answered or the peer is quiet for `linger`.
pub async fn bridge_udp(
    socket: &crate::net::Datagram,
    opts: &Options,
    linger: Duration,
) -> io::Result<()> {
    let activity = Activity::new();
    let replied = watch::Sender::new(0u64);
    let sent = std::sync::atomic::AtomicU64::new(0);
    let received = std::sync::atomic::AtomicU64::new(0);
    use std::sync::atomic::Ordering::Relaxed;
    let mut taps = Taps::open(opts).await?;
    let mut tap = taps.sender();

    let outbound = async {
        if !opts.read_input {
            return std::future::pending().await;
        }
        let most = socket.max_payload();
        let mut lines = InputLines::new(tokio::io::stdin(), most);
        loop {
            let line = match read_line(&mut lines, opts).await? {
                Typed::Line(line) => line,
                Typed::End(end) => return Ok::<_, io::Error>(end),
            };
            let mut payload = line.to_vec();
            if opts.crlf {
                payload.extend_from_slice(b"\r\n");
            }
            let mut reply = replied.subscribe();
            tap.sent(&payload).await;
            socket.send(&payload).await?;
            sent.fetch_add(1, Relaxed);
            activity.touch();
            if opts.interactive.is_some() {
                await_reply(&mut reply).await;
            }
        }
    };
    let inbound = async {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut stdout = tokio::io::stdout();
        loop {
            let n = socket.recv(&mut buf).await?;
            let newline = n == 0 || buf[n - 1] != b'\n';
            if !opts.send_only {
                taps.received(&buf[..n], newline).await?;
                taps.flush().await?;
                emit(&mut stdout, &buf[..n], newline, true).await?;
            }
            received.fetch_add(1, Relaxed);
            activity.touch();
            replied.send_modify(|n| *n += 1);
        }
    };
    let idle = async { Err::<(), _>(activity.expired(opts.idle_timeout).await) };
    tokio::pin!(outbound, inbound, idle);
    tokio::select! {
        res = &mut inbound => return res,
        res = &mut idle => return res,
        res = &mut outbound => if res? == InputEnd::ExitWord || opts.send_only { return Ok(()) },
    }
    // stdin is done: wait for the replies still owed, within the linger time.
    let mut seen = replied.subscribe();
    let drained = async {
        while received.load(Relaxed) < sent.load(Relaxed) {
            tokio::select! {
                res = &mut inbound => return res,
                _ = seen.changed() => {}
            }
        }
        Ok(())
    };
    match tokio::time::timeout(linger, drained).await {
        Ok(res) => res,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_conversion_keeps_existing_pairs() {
        assert_eq!(to_crlf(b"a\nb\r\nc"), b"a\r\nb\r\nc");
    }

    fn piped(framing: Framing) -> Options {
        Options {
            framing,
            max_frame: 1024,
            crlf: false,
            idle_timeout: None,
            interactive: None,
            half_close: true,
            send_all_input: true,
            read_input: true,
            send_only: false,
            copy_to: None,
            dump: DumpTo::Off,
        }
    }

    #[tokio::test]
    async fn bridge_half_closes_and_prints_until_peer_closes() {
        let (client, mut server) = tokio::io::duplex(1024);
        let opts = piped(Framing::Raw);
        let peer = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            server.write_all(b"reply:").await.unwrap();
            server.write_all(&got).await.unwrap();
        });
        let mut out = Vec::new();
        bridge_with(client, &b"hello"[..], &mut out, &opts)
            .await
            .unwrap();
        peer.await.unwrap();
        assert_eq!(out, b"reply:hello");
    }

    #[tokio::test]
    async fn len_framing_wraps_each_input_line() {
        let (client, mut server) = tokio::io::duplex(1024);
        let opts = piped(Framing::Len);
        let peer = tokio::spawn(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            server.write_all(&got).await.unwrap();
            got
        });
        let mut out = Vec::new();
        bridge_with(client, &b"ab\ncde\n"[..], &mut out, &opts)
            .await
            .unwrap();
        assert_eq!(peer.await.unwrap(), b"\0\0\0\x02ab\0\0\0\x03cde");
        assert_eq!(out, b"ab\ncde\n");
    }
}
