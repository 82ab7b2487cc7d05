//! The chat client. On a terminal, incoming lines appear above the line
//! being typed (rustyline's external printer keeps the input intact) with
//! each nick in a stable colour; piped, it sends stdin's lines, prints what
//! arrives, and at EOF waits for the server to flush and close.

use std::hash::{Hash, Hasher};
use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use rustyline::ExternalPrinter;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use clap::Args;

use crate::endpoint::Endpoint;
use crate::frame::{Line, TolerantLines};
use crate::net;
use crate::options::OptionError;

/// Longest line shown from the server.
const MAX_INCOMING: usize = 64 * 1024;

/// ANSI colours nicks are drawn in.
const PALETTE: [u8; 6] = [31, 32, 33, 34, 35, 36];

/// The flags of `sockit chat` (the client).
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The server: HOST:PORT, tcp://…, unix:PATH.
    #[arg(required = true)]
    pub endpoint: Option<Endpoint>,
    /// Take this nick on arrival.
    #[arg(short, long)]
    pub nick: Option<String>,
    /// Join this room on arrival.
    #[arg(short, long)]
    pub room: Option<String>,
}

impl Options {
    /// The client's config, once every value is checked.
    pub fn config(&self) -> Result<Config, OptionError> {
        let endpoint = self
            .endpoint
            .clone()
            .ok_or_else(|| OptionError::new("endpoint", "is required"))?;
        if endpoint.transport().is_datagram() {
            return Err(OptionError::new(
                "endpoint",
                format!("chat needs a tcp or unix endpoint, not '{endpoint}' (see chat udp)"),
            ));
        }
        Ok(Config {
            endpoint,
            nick: self.nick.clone(),
            room: self.room.clone(),
            color: color_wanted(),
        })
    }
}

/// Colour on a terminal, unless NO_COLOR says otherwise.
pub(crate) fn color_wanted() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// What the client does.
#[derive(Debug, Clone)]
pub struct Config {
    /// The chat server.
    pub endpoint: Endpoint,
    /// Set this nick on arrival.
    pub nick: Option<String>,
    /// Join this room on arrival.
    pub room: Option<String>,
    /// Colour nicks (a terminal, and NO_COLOR unset).
    pub color: bool,
}

/// Connects and chats until the server closes, `/quit`, `byebye` or EOF.
pub async fn run(cfg: &Config) -> io::Result<()> {
    let stream = net::connect(&cfg.endpoint, None).await?;
    let (rd, mut wr) = tokio::io::split(stream);
    for line in arrival_lines(cfg) {
        wr.write_all(line.as_bytes()).await?;
    }
    if io::stdin().is_terminal() {
        interactive(rd, wr, cfg.color).await
    } else {
        piped(rd, wr, cfg.color).await
    }
}

fn arrival_lines(cfg: &Config) -> Vec<String> {
    // Your own lines come back stamped, in the order the room saw them.
    let mut out = vec![format!("/echo on\n")];
    if let Some(nick) = &cfg.nick {
        out.push(format!("/nick {nick}\n"));
    }
    if let Some(room) = &cfg.room {
        out.push(format!("/join {room}\n"));
    }
    out
}

/// Piped: send every stdin line, then half-close; the server answers what
/// it got, and closing its side ends the session.
async fn piped<R, W>(rd: R, mut wr: W, color: bool) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let send = async {
        let mut stdin = BufReader::new(tokio::io::stdin());
        tokio::io::copy_buf(&mut stdin, &mut wr).await?;
        wr.shutdown().await
    };
    let show = async {
        let mut out = tokio::io::stdout();
        let mut lines = Incoming::new(rd, color);
        while let Some(shown) = lines.next().await? {
            out.write_all(format!("{shown}\n").as_bytes()).await?;
            out.flush().await?;
        }
        io::Result::Ok(())
    };
    let (sent, shown) = tokio::join!(send, show);
    shown.and(sent.or_else(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e)
        }
    }))
}

/// A terminal: rustyline reads on its own thread; incoming lines go through
/// its external printer so they never cut into what is being typed.
async fn interactive<R, W>(rd: R, mut wr: W, color: bool) -> io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut editor = rustyline::DefaultEditor::new().map_err(io::Error::other)?;
    let mut printer = editor.create_external_printer().map_err(io::Error::other)?;
    let (typed_tx, mut typed) = mpsc::channel::<String>(64);
    let editing = Arc::new(AtomicBool::new(true));
    std::thread::spawn({
        let editing = editing.clone();
        move || {
            // Ctrl-D and Ctrl-C end the input; dropping the sender says so.
            while let Ok(line) = editor.readline("> ") {
                if typed_tx.blocking_send(line).is_err() {
                    break;
                }
            }
            editing.store(false, Ordering::Release);
        }
    });
    let show = async {
        let mut lines = Incoming::new(rd, color);
        let mut out = tokio::io::stdout();
        while let Some(shown) = lines.next().await? {
            // Once the editor has stopped (Ctrl-D), nobody would show what
            // goes through its printer, such as the server's goodbye: those
            // lines go straight to the terminal.
            if editing.load(Ordering::Acquire) {
                // With its newline: before the editor's first prompt the
                // printer writes the text as it is.
                printer
                    .print(format!("{shown}\n"))
                    .map_err(io::Error::other)?;
            } else {
                out.write_all(format!("{shown}\n").as_bytes()).await?;
                out.flush().await?;
            }
        }
        io::Result::Ok(())
    };
    let send = async {
        while let Some(line) = typed.recv().await {
            wr.write_all(format!("{line}\n").as_bytes()).await?;
            if line == "/quit" || line == "byebye" {
                break;
            }
        }
        // Ctrl-D or /quit: the server says goodbye and closes.
        wr.shutdown().await?;
        std::future::pending::<io::Result<()>>().await
    };
    tokio::select! {
        res = show => res,
        res = send => res,
    }
}

/// The server's lines as shown: coloured, and without the answer to the
/// `/echo on` the client sent for itself.
struct Incoming<R> {
    lines: FramedRead<R, TolerantLines>,
    color: bool,
    echo_acked: bool,
}

impl<R: tokio::io::AsyncRead + Unpin> Incoming<R> {
    fn new(rd: R, color: bool) -> Self {
        Incoming {
            lines: FramedRead::new(rd, TolerantLines::new(MAX_INCOMING)),
            color,
            echo_acked: false,
        }
    }

    async fn next(&mut self) -> io::Result<Option<String>> {
        while let Some(line) = self.lines.next().await {
            let Line::Text(text) = line? else { continue };
            // The server defuses what clients say; another server may not.
            let text = super::proto::defuse(String::from_utf8_lossy(&text).into_owned());
            if !self.echo_acked && text.starts_with("* echo on:") {
                self.echo_acked = true;
                continue;
            }
            return Ok(Some(render(&text, self.color)));
        }
        Ok(None)
    }
}

/// Colours the nick in `[HH:MM:SS] <nick> text`, `* nick …` and
/// `-nick- text` lines; everything else is shown as it came.
pub fn render(line: &str, color: bool) -> String {
    if !color {
        return line.to_string();
    }
    let (stamp, rest) = match line.strip_prefix('[').and_then(|l| l.split_once("] ")) {
        Some((t, rest)) => (format!("[{t}] "), rest),
        None => (String::new(), line),
    };
    let (open, close) = match rest.chars().next() {
        Some('<') => ("<", ">"),
        Some('-') => ("-", "-"),
        _ => return line.to_string(),
    };
    let Some((nick, text)) = rest[1..].split_once(close) else {
        return line.to_string();
    };
    format!("{stamp}{open}{}{close}{text}", paint(nick, true))
}

/// `name` in its stable colour, or as it is when `color` is off.
pub fn paint(name: &str, color: bool) -> String {
    if !color {
        return name.to_string();
    }
    let code = PALETTE[color_index(name)];
    format!("\x1b[{code}m{name}\x1b[0m")
}

/// The same nick always gets the same colour.
fn color_index(nick: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    nick.hash(&mut h);
    (h.finish() % PALETTE.len() as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_the_nick_and_only_when_asked() {
        let line = "[10:00:00] <alice> hi <there>";
        assert_eq!(render(line, false), line);
        let shown = render(line, true);
        assert!(shown.starts_with("[10:00:00] <\x1b["), "{shown:?}");
        assert!(shown.ends_with("alice\x1b[0m> hi <there>"), "{shown:?}");
        assert_eq!(render(line, true), shown, "stable");
        assert_eq!(render("* bob joined #lobby", true), "* bob joined #lobby");
    }
}
