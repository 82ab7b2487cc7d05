//! Helpers that run the built binary and real peers (nc, python3) with every
//! wait bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Python's chat line client, shared by the chat and cluster scripts:
/// `Chat(port, nick)` turns `/echo on` unless told `echo=False` and takes
/// `nick`; `expect(text)` waits (bounded) for a line containing `text` and
/// forgets the lines up to it; `count(text, n)` waits until `n` such lines
/// came in all; `quiet(text, s)` checks none comes for `s` seconds;
/// `said(nick)` is what `nick` said as this client saw it.
/// `once_in_order(got, want, what)` checks numbered lines.
#[macro_export]
macro_rules! chat_client {
    () => {
        r##"
import socket, subprocess, sys, threading, time
class Chat:
    def __init__(self, port, nick=None, echo=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.lines = []
        self.seen = []
        self.expect("welcome")
        if echo:
            # Scripts check what the room saw, the sender's line too.
            self.send("/echo on")
            self.expect("* echo on")
        if nick:
            self.send("/nick " + nick)
            self.expect("is now known as " + nick)
    def send(self, line):
        self.s.sendall(line.encode() + b"\n")
    def send_raw(self, data):
        self.s.sendall(data)
    def pump(self, timeout):
        self.s.settimeout(timeout)
        try:
            chunk = self.s.recv(65536)
        except socket.timeout:
            return
        finally:
            self.s.settimeout(20)
        if not chunk:
            raise AssertionError(f"closed; have {self.lines[-5:]!r}")
        self.buf += chunk
        *done, self.buf = self.buf.split(b"\n")
        new = [d.decode("utf-8", "replace") for d in done]
        self.lines += new
        self.seen += new
    def expect(self, text, timeout=10):
        end = time.time() + timeout
        while True:
            for i, l in enumerate(self.lines):
                if text in l:
                    del self.lines[: i + 1]
                    return l
            if time.time() > end:
                raise AssertionError(f"never saw {text!r}; have {self.lines[-5:]!r}")
            self.pump(max(0.01, end - time.time()))
    def count(self, text, n, timeout=10):
        end = time.time() + timeout
        while sum(text in l for l in self.seen) < n:
            if time.time() > end:
                raise AssertionError(f"saw {text!r} fewer than {n} times; last {self.seen[-5:]!r}")
            self.pump(max(0.01, end - time.time()))
    def quiet(self, text, seconds):
        end = time.time() + seconds
        while time.time() < end:
            self.pump(max(0.01, end - time.time()))
        assert not any(text in l for l in self.lines), [l for l in self.lines if text in l]
    def closed(self):
        while True:
            if not self.s.recv(65536):
                return True
    def said(self, nick):
        return [l.split("> ", 1)[1] for l in self.seen if f"<{nick}> " in l]
def numbered(texts, tag):
    return [int(t.split()[1]) for t in texts if t.startswith(tag + " ")]
def once_in_order(got, want, what):
    assert len(got) == len(set(got)), f"{what}: duplicates {sorted(x for x in set(got) if got.count(x) > 1)[:5]}"
    assert got == sorted(got), f"{what}: out of order"
    missing = sorted(set(want) - set(got))
    assert not missing, f"{what}: missing {missing[:10]} of {len(want)}"
"##
    };
}

/// Longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(10);

/// The sockit binary with a clean environment.
pub fn sockit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sockit"));
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

/// A running sockit server, killed and reaped on drop.
pub struct Server {
    child: Child,
    /// What came after `listening on`: `tcp://127.0.0.1:40123`, `unix:/x`…
    pub endpoint: String,
    /// Everything the server printed on stderr, line by line, after the
    /// announcement.
    stderr: Receiver<String>,
    /// The server's stdin, if it was asked for.
    pub stdin: Option<ChildStdin>,
    stdout: Option<Receiver<Vec<u8>>>,
}

impl Server {
    /// Starts `sockit ARGS` and waits for its `listening on` line.
    pub fn spawn(args: &[&str]) -> Server {
        Self::start(sockit().args(args), false)
    }

    /// Like `spawn`, with stdin and stdout piped to the test.
    pub fn spawn_piped(args: &[&str]) -> Server {
        Self::start(sockit().args(args), true)
    }

    /// Starts a prepared command (e.g. under `sh -c 'ulimit …'`).
    pub fn start(cmd: &mut Command, piped: bool) -> Server {
        Self::launch(cmd, piped, |line, _| {
            line.strip_prefix("listening on ")
                .map(|ep| ep.trim().to_string())
        })
        .0
    }

    /// Starts `sockit serve ARGS` and reads its startup table: the header,
    /// then `count` rows of service and endpoint.
    pub fn spawn_suite(args: &[&str], count: usize) -> (Server, Vec<(String, String)>) {
        Self::start_suite(sockit().arg("serve").args(args), count)
    }

    /// [`Server::spawn_suite`] for a prepared command.
    pub fn start_suite(cmd: &mut Command, count: usize) -> (Server, Vec<(String, String)>) {
        let (mut srv, seen) = Self::launch(cmd, false, |line, seen| {
            let done = match seen.iter().position(|l| l.starts_with("service ")) {
                Some(header) => seen.len() - header == count,
                None => count == 0 && line.starts_with("service "),
            };
            done.then(|| line.to_string())
        });
        let last = srv.endpoint.clone();
        let rows: Vec<(String, String)> = seen
            .iter()
            .chain(std::iter::once(&last))
            .skip_while(|l| !l.starts_with("service "))
            .skip(1)
            .map(|l| {
                let (name, ep) = l.split_once(' ').expect("table row");
                (name.to_string(), ep.trim().to_string())
            })
            .collect();
        assert_eq!(rows.len(), count, "startup table: {seen:?}");
        srv.endpoint = rows.first().map(|r| r.1.clone()).unwrap_or_default();
        (srv, rows)
    }

    /// Starts `cmd` and reads stderr until `ready` says which line shows the
    /// server is up (given every line before it); bounded by `STEP`.
    fn launch(
        cmd: &mut Command,
        piped: bool,
        ready: impl Fn(&str, &[String]) -> Option<String>,
    ) -> (Server, Vec<String>) {
        cmd.stderr(Stdio::piped());
        if piped {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        }
        let mut child = cmd.spawn().expect("start sockit");
        let stderr = lines_of(child.stderr.take().unwrap());
        let stdout = child.stdout.take().map(chunks_of);
        let stdin = child.stdin.take();
        let deadline = Instant::now() + STEP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stderr.recv_timeout(left) {
                Ok(line) => {
                    if let Some(endpoint) = ready(&line, &seen) {
                        let srv = Server {
                            child,
                            endpoint,
                            stderr,
                            stdin,
                            stdout,
                        };
                        return (srv, seen);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("server never came up; stderr so far: {seen:?}");
                }
            }
        }
    }

    /// The socket address from the announcement (TCP or UDP).
    pub fn addr(&self) -> SocketAddr {
        let rest = self.endpoint.split_once("://").expect("inet endpoint").1;
        // A ws:// endpoint carries its path.
        let authority = rest.split('/').next().unwrap_or(rest);
        authority.parse().expect("socket address")
    }

    /// `127.0.0.1:PORT` style address for clients.
    pub fn hostport(&self) -> String {
        self.addr().to_string()
    }

    /// The port from the announcement.
    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.logs_until(needle).pop().expect("matching line")
    }

    /// Every stderr line up to and including the first containing `needle`.
    pub fn logs_until(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + STEP;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(needle);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no log line with {needle:?}; saw {seen:?}"),
            }
        }
    }

    /// Reads the server's stdout until it contains `needle` (bounded).
    pub fn read_stdout_until(&self, needle: &[u8]) -> Vec<u8> {
        let rx = self.stdout.as_ref().expect("stdout is piped");
        let deadline = Instant::now() + STEP;
        let mut out = Vec::new();
        while !contains(&out, needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => panic!(
                    "stdout never showed {:?}; got {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&out)
                ),
            }
        }
        out
    }

    /// Writes to the server's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(data).unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit, up to `limit`; panics (and kills it)
    /// if it does not.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        wait_within(&mut self.child, limit)
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines a reader yields, each echoed to the test log, on a channel.
pub fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            // Keep the test log useful when something fails.
            eprintln!("[server] {line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn chunks_of(mut r: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Runs a command to completion with `input` on stdin, killing it after
/// `limit`. Panics on timeout.
pub fn run(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("wait"),
        Err(RecvTimeoutError::Timeout) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("command timed out after {limit:?}: {cmd:?}");
        }
        Err(e) => panic!("{e}"),
    }
}

/// Runs `python3 -c SCRIPT ARGS…` and returns its stdout; fails the test if
/// the script fails.
pub fn python(script: &str, args: &[&str]) -> String {
    python_within(script, args, STEP)
}

/// [`python`] for a script that takes up to `limit`.
pub fn python_within(script: &str, args: &[&str], limit: Duration) -> String {
    let out = run(
        Command::new("python3").arg("-c").arg(script).args(args),
        b"",
        limit,
    );
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        script
    );
    String::from_utf8(out.stdout).expect("utf-8 from python")
}

/// A [`Python::server`] script that takes every connection and says
/// nothing, for clients' timeouts.
pub const SILENT_SERVER: &str = r#"
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
"#;

/// `python3 -c SCRIPT ARGS…` in the background: a peer written as a
/// user's own program would be. Its stdout comes line by line and its stdin
/// is a pipe the test writes to; it is killed when dropped, so a failing
/// test leaves nothing running.
pub struct Python {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Python {
    pub fn spawn(script: &str, args: &[&str]) -> Python {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take();
        let lines = lines_of(child.stdout.take().unwrap());
        Python {
            child,
            stdin,
            lines,
        }
    }

    /// For a server script that prints the port it listens on first.
    pub fn server(script: &str, args: &[&str]) -> (Python, u16) {
        let py = Python::spawn(script, args);
        let line = py.line();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a port from the python server, not {line:?}"));
        (py, port)
    }

    /// The next line it prints, within [`STEP`].
    pub fn line(&self) -> String {
        self.line_within(STEP)
    }

    pub fn line_within(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .expect("a line from the python peer")
    }

    /// Writes `line` and a newline to its stdin.
    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        writeln!(stdin, "{line}").expect("python's stdin");
    }

    /// Closes its stdin and waits for it to end, within [`STEP`].
    pub fn wait(&mut self) -> ExitStatus {
        self.wait_within(STEP)
    }

    pub fn wait_within(&mut self, limit: Duration) -> ExitStatus {
        self.stdin = None;
        wait_within(&mut self.child, limit)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sockit ARGS` with `input` and returns its output.
pub fn sockit_run(args: &[&str], input: &[u8]) -> Output {
    run(sockit().args(args), input, STEP)
}

/// Runs `sockit ARGS`, checks it exits 2 (a usage error) and returns its
/// stderr.
pub fn usage_error(args: &[&str]) -> String {
    let out = sockit_run(args, b"");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

/// stderr as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temporary directory that lives for the test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sockit-test")
        .tempdir_in("/tmp")
        .unwrap()
}

/// The classic tutorial server's flags for `sockit echo`.
pub const TUTORIAL: &[&str] = &[
    "--greeting",
    "Welcome!",
    "--reply",
    "Hello, {}!",
    "--exit-word",
    "exit",
];

/// A TCP client with every read bounded by `STEP`.
pub fn tcp(addr: SocketAddr) -> std::net::TcpStream {
    let c = std::net::TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(STEP)).unwrap();
    c
}

/// Writes `msg` and reads back exactly `want.len()` bytes, which must match.
pub fn expect_reply(c: &mut std::net::TcpStream, msg: &[u8], want: &[u8]) {
    c.write_all(msg).unwrap();
    let mut got = vec![0u8; want.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// Accepts one connection within `STEP` (panicking otherwise), with every
/// read and write on it bounded by `STEP` too.
pub fn accept(listener: &std::net::TcpListener) -> std::net::TcpStream {
    let listener = listener.try_clone().expect("clone listener");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(listener.accept());
    });
    let (s, _) = rx
        .recv_timeout(STEP)
        .expect("no connection arrived in time")
        .expect("accept");
    s.set_read_timeout(Some(STEP)).unwrap();
    s.set_write_timeout(Some(STEP)).unwrap();
    s
}

/// Everything `r` yields until its end, which must come within `STEP`.
pub fn read_all(mut r: impl Read + Send + 'static) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut got = Vec::new();
        let _ = tx.send(r.read_to_end(&mut got).map(|_| got));
    });
    rx.recv_timeout(STEP)
        .expect("input did not end in time")
        .expect("read")
}

/// Waits for a child process to exit within `STEP`, killing it (and
/// failing the test) if it does not.
pub fn wait_child(child: &mut Child) -> ExitStatus {
    wait_within(child, STEP)
}

/// Waits for `child` to exit, up to `limit`; kills it and panics if not.
pub fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let killer = thread::spawn(move || {
        let _ = rx.recv_timeout(limit).is_err()
            && Command::new("kill")
                .arg("-9")
                .arg(pid.to_string())
                .status()
                .is_ok();
    });
    let status = child.wait().unwrap();
    let _ = tx.send(());
    let _ = killer.join();
    assert!(
        status.code().is_some(),
        "process did not exit in {limit:?} and was killed"
    );
    status
}

/// A one-connection TCP server on a free port: reads everything the client
/// sends, answers with `reply(received)`, closes, and hands back what it got.
pub fn capture_server(
    reply: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static,
) -> (u16, thread::JoinHandle<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let mut s = accept(&listener);
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&reply(&got)).unwrap();
        got
    });
    (port, handle)
}

/// `program ARGS` in a network namespace of its own with loopback up, so it
/// may bind fixed ports without meeting anything else on the machine; `None`
/// (and a note on stderr) where namespaces are not permitted.
pub fn in_netns(program: &str, args: &[&str]) -> Option<Command> {
    let allowed = Command::new("unshare")
        .args(["-n", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("skipped: this test needs `unshare -n` (root or user namespaces)");
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-n",
        "sh",
        "-c",
        "ip link set lo up && exec \"$@\"",
        "sh",
        program,
    ])
    .args(args)
    .env_remove("RUST_LOG")
    .env("NO_COLOR", "1");
    Some(cmd)
}

/// `program ARGS` inside the network namespace of process `pid`.
pub fn netns_of(pid: u32, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &pid.to_string(), "-n", program]).args(args);
    cmd
}

/// Config lines that turn off every suite service but echo, so a test's
/// config binds only the ports it names.
pub const ONLY_ECHO: &str = "
[discard]
enabled = false
[daytime]
enabled = false
[chargen]
enabled = false
[time]
enabled = false
[format_time]
enabled = false
[chat]
enabled = false
[http]
enabled = false
[socks]
enabled = false
";

/// `section` (a config's text for one service) with every other suite
/// service turned off, so the config binds only what `section` names.
pub fn only(section: &str) -> String {
    let others: String = [
        "echo",
        "discard",
        "daytime",
        "chargen",
        "time",
        "format_time",
        "chat",
        "http",
        "socks",
    ]
    .iter()
    .filter(|s| !section.starts_with(&format!("[{s}]")))
    .map(|s| format!("[{s}]\nenabled = false\n"))
    .collect();
    format!("{section}{others}")
}

/// Floods a UDP server at `port` with 5000 datagrams of random bytes and
/// sizes, then sends `probe` until a reply starting with `expect` comes back
/// (bounded): the server must survive and still answer.
pub fn udp_flood_then_probe(port: u16, probe: &str, expect: &str) {
    let got = python(
        r#"
import random, socket, sys, time
addr = ("127.0.0.1", int(sys.argv[1]))
probe, expect = sys.argv[2].encode(), sys.argv[3].encode()
r = random.Random(3)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5000):
    s.sendto(r.randbytes(r.choice([0, 1, 7, 64, 700, 1400, 9000])), addr)
# Prove the server still answers. The flood may still fill its receive
# queue, where a probe would be dropped, so resend as a UDP client does;
# replies to the flood that arrive meanwhile are skipped.
s.settimeout(0.5)
end = time.time() + 8
while time.time() < end:
    s.sendto(probe, addr)
    try:
        while not s.recv(65536).startswith(expect):
            pass
        print("alive")
        break
    except socket.timeout:
        pass
"#,
        &[&port.to_string(), probe, expect],
    );
    assert_eq!(got.trim(), "alive");
}

/// A self-signed P-256 certificate for `cn` and 127.0.0.1, made by
/// openssl in `dir`: its certificate and key files.
pub fn self_signed(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = run(
        Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]),
        b"",
        STEP,
    );
    assert!(made.status.success(), "openssl: {}", stderr_of(&made));
    (cert, key)
}

/// A redis-server of the test's own on a free loopback port, with its
/// data in a directory of its own so that a restart keeps it; killed on
/// drop.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl Redis {
    /// Starts one with `extra` arguments (`--requirepass x`).
    pub fn start(extra: &[&str]) -> Redis {
        let port = free_port();
        let mut redis = Redis {
            child: None,
            port,
            dir: tempdir(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        redis.restart();
        redis
    }

    /// A port nothing listens on, for a Redis that starts later.
    pub fn later(extra: &[&str]) -> Redis {
        Redis {
            child: None,
            port: free_port(),
            dir: tempdir(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on its port and waits until it takes connections.
    pub fn restart(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (scripts/test.sh installs it)");
        let lines = lines_of(child.stdout.take().unwrap());
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("Ready to accept connections") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("redis-server never became ready on port {}", self.port);
                }
            }
        }
        // Keep draining its log so it never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    /// Stops it as `systemctl stop` would (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            wait_within(&mut child, STEP);
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A TCP port free on loopback just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A real peer (microsocks, ncat -l, haproxy…) running for a test, killed
/// and reaped on drop.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Daemon {
    /// Starts `cmd`, which is to listen on 127.0.0.1:`port`, and waits until
    /// it accepts: these peers print no readiness line, and a connect is
    /// refused at once until they listen. Bounded by `STEP`.
    pub fn start(cmd: &mut Command, port: u16) -> Daemon {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?} (scripts/test.sh installs it): {e}"));
        let mut daemon = Daemon { child, port };
        let deadline = Instant::now() + STEP;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("{cmd:?} exited with {status} before listening");
            }
            assert!(
                Instant::now() < deadline,
                "{cmd:?} never listened on {port}"
            );
            thread::yield_now();
        }
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `iperf3 -s -1` on 127.0.0.1:`port`, once it says it listens: a client
/// sent earlier would be refused. Killed and reaped on drop.
pub struct Iperf3(Child);

impl Iperf3 {
    pub fn serve(port: u16) -> Iperf3 {
        let mut me = Iperf3(
            Command::new("iperf3")
                .args(["-s", "-1", "--forceflush", "-B", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("iperf3 is installed"),
        );
        let said = lines_of(me.0.stdout.take().unwrap());
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = said
                .recv_timeout(left)
                .expect("iperf3 -s says it is listening");
            if line.contains("Server listening") {
                return me;
            }
        }
    }
}

impl Drop for Iperf3 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
