//! WebSocket against real peers: Python's `websockets` (and raw sockets for
//! frames no library will send) against chat's `--web` endpoint, and
//! `connect ws://` / `listen ws://` against a `websockets` server and client.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use crate::support::{
    Python, SILENT_SERVER, STEP, Server, python, python_within, run, self_signed, sockit,
    stderr_of, tempdir,
};

/// `chat serve` on free ports with the page: the server, and the web
/// endpoint's `HOST:PORT`.
fn chat_web(extra: &[&str]) -> (Server, String) {
    let mut args = vec!["chat", "serve", "127.0.0.1:0", "--web", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let srv = Server::spawn(&args);
    // The line protocol's line comes first, the page's second.
    assert!(srv.endpoint.starts_with("tcp://"), "{}", srv.endpoint);
    let line = srv.wait_for_log("listening on http://");
    let web = line
        .split("http://")
        .nth(1)
        .expect("address")
        .trim()
        .to_string();
    (srv, web)
}

/// Helpers every script below starts with: `ws()` a `websockets` client of
/// the page's socket, `Line()` a TCP chat client, `raw()` a hand-made
/// handshake for frames libraries refuse to send, `frame()` and
/// `read_frame()` for those.
const PRELUDE: &str = r#"
import base64, os, socket, struct, sys, time
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
WEB = sys.argv[1]
CHAT = ("127.0.0.1", int(sys.argv[2]))
WHOST, WPORT = WEB.rsplit(":", 1)

def ws(**kw):
    return connect("ws://" + WEB + "/ws", open_timeout=10, close_timeout=5, **kw)

# Every message any `until` read past, for checks after the fact.
HEARD = []

def until(c, needle, timeout=10):
    for m in HEARD:
        if needle in m:
            HEARD.remove(m)
            return m
    end = time.time() + timeout
    while True:
        m = c.recv(timeout=max(0.01, end - time.time()))
        if needle in m:
            return m
        HEARD.append(m)

class Line:
    def __init__(self):
        self.s = socket.create_connection(CHAT, timeout=10)
        self.f = self.s.makefile("rb")
    def send(self, text):
        self.s.sendall(text.encode() + b"\n")
    def expect(self, needle):
        while True:
            line = self.f.readline().decode()
            assert line, "closed before " + repr(needle)
            if needle in line:
                return line.rstrip("\n")

def raw(origin=None):
    s = socket.create_connection((WHOST, int(WPORT)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (WEB, key))
    if origin:
        req += "Origin: %s\r\n" % origin
    s.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        assert chunk, "closed during the handshake"
        head += chunk
    return s, head.decode()

def frame(opcode, payload, mask=True, fin=True):
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([(0x80 if fin else 0) | opcode, m | n])
    elif n < 65536:
        hdr = bytes([(0x80 if fin else 0) | opcode, m | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([(0x80 if fin else 0) | opcode, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))

def read_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "closed mid-frame"
        out += chunk
    return out

def read_frame(s):
    b0, b1 = read_exact(s, 2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack(">H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read_exact(s, 8))[0]
    assert not b1 & 0x80, "server frames are unmasked"
    return b0 & 0x0f, read_exact(s, n)

def close_code(s):
    while True:
        op, payload = read_frame(s)
        if op == 8:
            return struct.unpack(">H", payload[:2])[0]
"#;

fn chat_py(srv: &Server, web: &str, script: &str) -> String {
    chat_py_within(srv, web, script, STEP)
}

/// As [`chat_py`], for a script that takes longer than a step.
fn chat_py_within(srv: &Server, web: &str, script: &str, limit: std::time::Duration) -> String {
    python_within(
        &format!("{PRELUDE}\n{script}"),
        &[web, &srv.port().to_string()],
        limit,
    )
}

#[test]
fn browser_socket_and_nc_share_rooms_both_ways() {
    let (srv, web) = chat_web(&[]);
    let out = chat_py(
        &srv,
        &web,
        r#"
nc = Line()
nc.expect("welcome")
nc.send("/nick ncuser")
nc.expect("now known as ncuser")
with ws() as c:
    until(c, "welcome to sockit chat")
    c.send("/nick webby")
    until(c, "now known as webby")
    nc.send("hello from nc")
    print(until(c, "hello from nc"))
    c.send("hello from the web")
    print(nc.expect("hello from the web"))
    c.send("/msg ncuser psst")
    print(nc.expect("psst"))
    c.send("/who")
    print(until(c, "* in #lobby"))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].ends_with("<ncuser> hello from nc"), "{out}");
    assert!(lines[1].ends_with("<webby> hello from the web"), "{out}");
    assert!(lines[2].ends_with("-webby- psst"), "{out}");
    assert_eq!(lines[3], "* in #lobby: ncuser, webby");
}

#[test]
fn every_endpoint_of_a_chat_server_shares_one_set_of_rooms() {
    let dir = tempdir();
    let sock = dir.path().join("chat.sock");
    let cfg = dir.path().join("s.toml");
    let section = format!(
        "[chat]\nlisten = [\"tcp://127.0.0.1:0\", \"unix:{}\"]\nweb = false\n",
        sock.display()
    );
    std::fs::write(&cfg, crate::support::only(&section)).unwrap();
    let (srv, rows) = Server::spawn_suite(&["--config", cfg.to_str().unwrap()], 2);
    assert_eq!(rows[1].1, format!("unix:{}", sock.display()));
    let out = python(
        r#"
import socket, sys
tcp = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
u = socket.socket(socket.AF_UNIX); u.settimeout(10); u.connect(sys.argv[2])
tf, uf = tcp.makefile("rb"), u.makefile("rb")
for f in (tf, uf):
    assert b"welcome" in f.readline()
u.sendall(b"/nick overunix\n")
while b"now known as overunix" not in tf.readline():
    pass
tcp.sendall(b"/who\n")
while True:
    line = tf.readline().decode()
    if line.startswith("* in #lobby"):
        print(line.strip()); break
"#,
        &[&srv.port().to_string(), sock.to_str().unwrap()],
    );
    assert!(out.contains("overunix"), "{out}");
}

#[test]
fn tags_give_ids_and_resume_replays_exactly_what_was_missed() {
    let (srv, web) = chat_web(&["--history", "5"]);
    let out = chat_py(
        &srv,
        &web,
        r#"
nc = Line()
nc.expect("welcome")
with ws() as c:
    c.send("/tags on")
    until(c, "@kind=tags;nick=")
    nc.send("one")
    m = until(c, " one")
    assert m.startswith("@kind=msg;id="), m
    tags = dict(kv.split("=", 1) for kv in m[1:m.index(" ")].split(";"))
    assert tags["room"] == "lobby" and tags["from"].startswith("guest-"), tags
    last = tags["id"]
for t in ("two", "three", "four"):
    nc.send(t)
nc.send("/who")
nc.expect("* in #lobby")
with ws() as c:
    c.send("/tags on")
    c.send("/resume lobby " + last)
    got = []
    while True:
        m = c.recv(timeout=10)
        if m.startswith("@kind=resumed"):
            break
        if m.startswith("@kind=msg") or m.startswith("@kind=gap"):
            got.append(m.split(" ", 1)[1] if "kind=msg" in m else "GAP")
    print(got)
    # Six more, one past the history of five: resuming from "one" again
    # must say some are gone.
    for i in range(6):
        nc.send("more %d" % i)
    until(c, "more 5")
    c.send("/resume lobby " + last)
    gap = until(c, "@kind")
    while "kind=gap" not in gap and "kind=resumed" not in gap:
        gap = c.recv(timeout=10)
    print(gap.split(" ", 1)[0])
    c.send("/resume lobby 1-1")
    print(until(c, "kind=gap").split(" ", 1)[0])
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "['two', 'three', 'four']", "{out}");
    assert_eq!(lines[1], "@kind=gap;room=lobby", "{out}");
    assert_eq!(
        lines[2], "@kind=gap;room=lobby",
        "an id from another run: {out}"
    );
}

#[test]
fn protocol_violations_get_their_close_codes() {
    let (srv, web) = chat_web(&[]);
    let out = chat_py(
        &srv,
        &web,
        r#"
# A message past the 1 MiB cap: 1009.
with ws(max_size=None) as c:
    try:
        c.send("x" * (2 << 20))
        while True:
            c.recv(timeout=10)
    except ConnectionClosed as e:
        print("oversized", e.rcvd.code if e.rcvd else e)
# Invalid UTF-8 in a text frame: 1007.
s, head = raw()
assert " 101 " in head.split("\r\n")[0], head
s.sendall(frame(1, b"caf\xc3("))
print("utf8", close_code(s))
# An unmasked client frame: 1002.
s, head = raw()
s.sendall(frame(1, b"hello", mask=False))
print("unmasked", close_code(s))
# A fragmented message is one line, whole.
nc = Line()
nc.expect("welcome")
s, head = raw()
s.sendall(frame(1, b"/nick frag\n", fin=True))
s.sendall(frame(1, b"in ", fin=False) + frame(9, b"ping in between") + frame(0, b"three ", fin=False) + frame(0, b"parts", fin=True))
print(nc.expect("in three parts"))
"#,
    );
    assert!(out.contains("oversized 1009"), "{out}");
    assert!(out.contains("utf8 1007"), "{out}");
    assert!(out.contains("unmasked 1002"), "{out}");
    assert!(out.contains("<frag> in three parts"), "{out}");
    // Each bad client cost only itself.
    srv.wait_for_log("websocket");
}

#[test]
fn a_foreign_origin_is_refused_unless_allowed() {
    let (srv, web) = chat_web(&["--web-origin", "https://friend.example"]);
    let out = chat_py(
        &srv,
        &web,
        r#"
for origin in ("http://evil.example", "https://friend.example", "http://" + WEB):
    try:
        with ws(origin=origin) as c:
            until(c, "welcome")
            print(origin, "ok")
    except InvalidStatus as e:
        print(origin, e.response.status_code)
"#,
    );
    assert!(out.contains("http://evil.example 403"), "{out}");
    assert!(out.contains("https://friend.example ok"), "{out}");
    assert!(out.contains(&format!("http://{web} ok")), "{out}");
}

#[test]
fn a_client_that_never_reads_is_dropped_without_stalling_the_room() {
    let (srv, web) = chat_web(&[
        "--queue-hard",
        "2MiB",
        "--queue-soft",
        "1MiB",
        "--queue-grace",
        "1",
        "--rate",
        "0",
    ]);
    let out = chat_py(
        &srv,
        &web,
        r#"
stuck, head = raw()
stuck.sendall(frame(1, b"/nick stuck"))
with ws() as c:
    nc = Line()
    nc.expect("welcome")
    until(c, "joined")
    line = "y" * 3900
    # In batches the reader takes whole before the next: it keeps up, the
    # one that never reads falls 4 MB behind.
    for b in range(40):
        for i in range(25):
            nc.send("%d.%d %s" % (b, i, line))
        until(c, "%d.24 y" % b)
    print(until(c, "stuck left #lobby (too slow)"))
    c.send("/who")
    print(until(c, "* in #lobby"))
"#,
    );
    assert!(out.contains("* stuck left #lobby (too slow)"), "{out}");
    assert!(!out.contains("stuck,") && !out.contains(", stuck"), "{out}");
    srv.wait_for_log("fell behind");
}

#[test]
fn a_message_of_a_million_lines_does_not_hold_up_the_room() {
    let (srv, web) = chat_web(&["--rate", "0"]);
    let out = chat_py_within(
        &srv,
        &web,
        r#"
import threading
nc = Line()
nc.expect("welcome")
waits, done = [], threading.Event()
def ask():
    while not done.is_set():
        start = time.time()
        nc.send("/who")
        nc.expect("* in #lobby")
        waits.append(time.time() - start)
        time.sleep(0.1)
with ws() as c:
    until(c, "welcome")
    asker = threading.Thread(target=ask)
    asker.start()
    # 12 messages of 2**20 empty lines: each line is skipped at once, so
    # nothing but a yield point lets the /who asker in between.
    for _ in range(12):
        c.send("\n" * (1 << 20))
    c.send("/who")
    until(c, "* in #lobby")
    done.set()
    asker.join()
print(len(waits), "%.3f" % max(waits))
"#,
        6 * STEP,
    );
    let (count, worst) = out.trim().split_once(' ').unwrap();
    let worst: f64 = worst.parse().unwrap();
    eprintln!("/who asked {count} times, the worst wait {worst} s");
    // Without the yield point the worst wait was 4-5 s.
    assert!(worst < 2.0, "/who waited {worst} s ({count} asked)");
}

#[test]
fn listen_ws_waits_out_silent_and_stray_clients_for_a_real_one() {
    let mut srv = Server::spawn_piped(&["listen", "ws://127.0.0.1:0"]);
    let port = srv.port().to_string();
    let script = r#"
import socket, sys
from websockets.sync.client import connect
port = int(sys.argv[1])
# One says nothing; its handshake waits while others go on.
silent = socket.create_connection(("127.0.0.1", port), timeout=10)
# One is not a WebSocket client: refused, and listen goes on.
stray = socket.create_connection(("127.0.0.1", port), timeout=10)
stray.sendall(b"GET / HTTP/1.0\r\n\r\n")
stray.recv(4096)
with connect("ws://127.0.0.1:%d/" % port, open_timeout=10) as c:
    c.send("real one")
    print(c.recv(timeout=10), flush=True)
"#;
    let mut client = Python::spawn(script, &[&port]);
    assert_eq!(srv.read_stdout_until(b"\n"), b"real one\n");
    srv.write_stdin(b"back\n");
    assert_eq!(client.line(), "back");
    assert!(client.wait().success());
    srv.wait_for_log("websocket handshake");
}

#[test]
fn connect_ws_gives_up_on_a_server_that_never_answers_the_handshake() {
    let (_silent, port) = Python::server(SILENT_SERVER, &[]);
    let out = run(
        sockit().args(["connect", &format!("ws://127.0.0.1:{port}/")]),
        b"",
        2 * STEP,
    );
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("websocket handshake: none within 10s"),
        "{err}"
    );
}

#[test]
fn pings_keep_live_peers_and_close_dead_ones() {
    let (srv, web) = chat_web(&["--web-ping", "0.3"]);
    let out = chat_py(
        &srv,
        &web,
        r#"
# A peer that never answers pings: closed after two intervals of silence.
dead, head = raw()
start = time.time()
pings = 0
try:
    while True:
        op, _ = read_frame(dead)
        pings += op == 9
except (AssertionError, ConnectionResetError, OSError):
    pass
print("dead closed after", round(time.time() - start, 1), "s and", pings, "pings")
# websockets answers pings by itself: still here after many intervals.
with ws() as c:
    until(c, "welcome")
    time.sleep(1.5)
    c.send("/who")
    print(until(c, "* in #lobby"))
"#,
    );
    let secs: f64 = out
        .split_whitespace()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!((0.5..5.0).contains(&secs), "{out}");
    assert!(out.contains("* in #lobby"), "{out}");
    srv.wait_for_log("silent for");
}

#[test]
fn the_page_is_served_with_a_strict_policy() {
    let (_srv, web) = chat_web(&[]);
    let curl = |path: &str| {
        let out = run(
            Command::new("curl").args(["-sS", "-i", &format!("http://{web}{path}")]),
            b"",
            STEP,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = curl("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("content-security-policy: default-src 'none'; script-src 'self'"));
    assert!(page.contains("<script src=\"/chat.js\""));
    assert!(curl("/chat.js").contains("text/javascript"));
    assert!(curl("/chat.css").contains("text/css"));
    assert!(curl("/nope").starts_with("HTTP/1.1 404"));
    let plain_get = curl("/ws");
    assert!(plain_get.starts_with("HTTP/1.1 426"), "{plain_get}");
}

/// A `websockets` server for the client tests: echoes text back, says
/// `binary N` for a binary message of N bytes, and prints the close code
/// it got once the client leaves. `ssl` makes it wss:// with `cert`.
const ECHO_SERVER: &str = r#"
import asyncio, ssl, sys
from websockets.asyncio.server import serve
async def handler(c):
    try:
        async for m in c:
            await c.send(m if isinstance(m, str) else "binary %d" % len(m))
    finally:
        print("closed", c.close_code, flush=True)
async def main():
    ctx = None
    if len(sys.argv) > 1:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    async with serve(handler, "127.0.0.1", 0, ssl=ctx) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"#;

#[test]
fn connect_ws_sends_lines_as_text_and_closes_cleanly() {
    let (server, port) = Python::server(ECHO_SERVER, &[]);
    let out = run(
        sockit().args(["connect", &format!("ws://127.0.0.1:{port}/echo")]),
        b"first line\nsecond line\n",
        STEP,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "first line\nsecond line\n"
    );
    assert_eq!(server.line(), "closed 1000", "the close handshake ran");
    let out = run(
        sockit().args(["connect", "--binary", &format!("ws://127.0.0.1:{port}/")]),
        &[0u8, 1, 2, 255, 10, 7],
        STEP,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "binary 6");
}

#[test]
fn connect_wss_checks_the_certificate_unless_told_otherwise() {
    let dir = tempdir();
    let (cert, key) = self_signed(dir.path(), "localhost");
    let (server, port) = Python::server(
        ECHO_SERVER,
        &[cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let url = format!("wss://127.0.0.1:{port}/");
    let refused = run(sockit().args(["connect", &url]), b"x\n", STEP);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr_of(&refused).contains("certificate"),
        "{}",
        stderr_of(&refused)
    );
    let out = run(
        sockit().args(["connect", &url, "--cacert", cert.to_str().unwrap()]),
        b"over tls\n",
        STEP,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over tls\n");
    assert_eq!(server.line(), "closed 1000");
}

#[test]
fn listen_ws_bridges_websocket_clients_to_stdio() {
    let mut srv = Server::spawn_piped(&["listen", "-k", "ws://127.0.0.1:0"]);
    let port = srv.port().to_string();
    let script = r#"
import sys
from websockets.sync.client import connect
url = "ws://127.0.0.1:%s/any/path" % sys.argv[1]
with connect(url, open_timeout=10) as a, connect(url, open_timeout=10) as b:
    a.send("from a")
    b.send("from b")
    print(a.recv(timeout=10), "|", b.recv(timeout=10), flush=True)
"#;
    let mut child = Python::spawn(script, &[&port]);
    let mut got = srv.read_stdout_until(b"\n");
    while got.iter().filter(|&&b| b == b'\n').count() < 2 {
        got.extend(srv.read_stdout_until(b"\n"));
    }
    let got = String::from_utf8_lossy(&got);
    assert!(
        got.contains("from a\n") && got.contains("from b\n"),
        "{got}"
    );
    // Both clients are in: stdin goes to each as one text message.
    srv.write_stdin(b"to everyone\n");
    assert_eq!(child.line(), "to everyone | to everyone");
    assert!(child.wait().success());
    srv.signal("TERM");
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn websocket_endpoints_are_refused_where_they_mean_nothing() {
    let out = crate::support::usage_error(&["echo", "ws://127.0.0.1:0/"]);
    assert!(out.contains("is a WebSocket endpoint"), "{out}");
    let out = crate::support::usage_error(&["connect", "--binary", "127.0.0.1:9"]);
    assert!(
        out.contains("--binary: is for ws:// and wss:// endpoints"),
        "{out}"
    );
    let mut c = sockit()
        .args(["connect", "ws://127.0.0.1:1/"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let _ = c.stdin.take().map(|mut s| s.write_all(b""));
    assert!(!crate::support::wait_child(&mut c).success());
    assert!(err.contains("connection refused"), "{err}");
}
