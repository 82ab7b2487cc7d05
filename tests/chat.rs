//! The chat server with nc and python3 clients.

use crate::support::{Python, STEP, Server, python, run};

/// The shared chat client (`crate::chat_client!`) on the server's port:
/// `c = C(nick)`, `c.send(line)`, `c.expect(text)`.
const CLIENT: &str = concat!(
    crate::chat_client!(),
    r##"
PORT = int(sys.argv[1])
def C(nick=None, echo=True):
    return Chat(PORT, nick, echo)
"##
);

fn scenario(args: &[&str], script: &str) {
    let srv = Server::spawn(&[&["chat", "serve", ":0"], args].concat());
    let out = python(
        &format!("{CLIENT}\n{script}\nprint('ok')"),
        &[&srv.port().to_string()],
    );
    assert_eq!(out.trim().lines().last(), Some("ok"), "{out}");
}

#[test]
fn a_room_of_clients_hears_each_other() {
    scenario(
        &[],
        r##"
a, b, c = C("alice"), C("bob"), C("carol")
a.send("hello room")
for x in (b, c):
    line = x.expect("<alice> hello room")
    assert line.startswith("[") and line[9] == "]", line
a.send("/me waves")
b.expect("* alice waves")
b.send("/who")
b.expect("* in #lobby: alice, bob, carol")
c.send("/join dev")
a.expect("* carol left #lobby")
c.send("/rooms")
c.expect("#dev (1)")
a.send("only lobby hears this")
b.expect("only lobby hears this")
c.send("hi dev")
c.expect("<carol> hi dev")
"##,
    );
}

#[test]
fn a_burst_arrives_whole_in_order_with_its_replies_in_place() {
    // Everything one read brings in goes to the room as one batch; commands
    // inside the burst must still answer between the lines around them.
    scenario(
        &["--rate", "0"],
        r##"
a, b = C("alice"), C("bob")
burst = "".join(f"line {i}\n" for i in range(3000))
a.send_raw((burst + "/who\n" + "after who\n" + "/me is done\n").encode())
for i in range(3000):
    b.expect(f"<alice> line {i}")
b.expect("<alice> after who")
b.expect("* alice is done")
a.expect("<alice> line 2999")
a.expect("* in #lobby: alice, bob")
a.expect("<alice> after who")
said = [l.split("> ", 1)[1] for l in b.seen if "<alice> " in l]
assert said == [f"line {i}" for i in range(3000)] + ["after who"], said[-3:]
"##,
    );
}

#[test]
fn nc_clients_chat_and_leave_with_byebye() {
    let srv = Server::spawn(&["-v", "chat", "serve", ":0"]);
    let port = srv.port().to_string();
    let listener = std::thread::spawn({
        let port = port.clone();
        move || {
            python(
                &format!(
                    "{CLIENT}\nx = C('watcher')\nprint(x.expect('<guest'))\nx.expect('left #lobby')\nprint('ok')"
                ),
                &[&port],
            )
        }
    });
    // The watcher must be in the room before nc speaks: wait for its join.
    srv.wait_for_log("joined");
    let out = run(
        std::process::Command::new("nc").args(["-q", "2", "127.0.0.1", &port]),
        b"hi from nc\nbyebye\n",
        STEP,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("* bye"), "{text}");
    let seen = listener.join().unwrap();
    assert!(seen.contains("> hi from nc"), "{seen}");
}

#[test]
fn private_messages_reach_only_their_target() {
    scenario(
        &[],
        r##"
a, b, c = C("alice"), C("bob"), C("carol")
a.send("/msg bob psst")
b.expect("-alice- psst")
a.expect("-> bob: psst")
a.send("public")
c.expect("<alice> public")
assert not any("psst" in l for l in c.lines), c.lines
a.send("/msg nobody hi")
a.expect("! no such nick: nobody")
"##,
    );
}

#[test]
fn history_is_replayed_to_newcomers() {
    scenario(
        &["--history", "3"],
        r##"
a = C("alice")
for i in range(5):
    a.send(f"msg {i}")
    a.expect(f"msg {i}")
late = C(echo=False)
for i in (2, 3, 4):
    late.expect(f"<alice> msg {i}")
assert not any("msg 0" in l or "msg 1" in l for l in late.lines), late.lines
"##,
    );
}

#[test]
fn nick_rules_and_clashes() {
    scenario(
        &[],
        r##"
a, b = C("alice"), C()
b.send("/nick alice")
b.expect("! nick alice is taken")
b.send("/nick bad nick!")
b.expect("! invalid nick")
b.send("/nick " + "x" * 33)
b.expect("! invalid nick")
b.send("/frob")
b.expect("! unknown command /frob")
b.send("/nick bob")
a.expect("is now known as bob")
# A guest's name taken before that guest comes: its number is skipped.
d = C(echo=False)
n = int(next(l for l in d.seen if "welcome" in l).split("you are guest-")[1].split(";")[0])
d.send("/nick guest-%d" % (n + 1))
d.expect("is now known as guest-%d" % (n + 1))
e = C(echo=False)
welcome = next(l for l in e.seen if "welcome" in l)
assert "guest-%d;" % (n + 1) not in welcome, welcome
e.send("/who")
who = e.expect("* in #lobby")
names = who.split(":", 1)[1].replace(",", " ").split()
assert len(names) == len(set(names)) == 4, who
"##,
    );
}

#[test]
fn overlong_lines_and_binary_garbage_cost_nothing() {
    scenario(
        &["--max-line", "64"],
        r##"
a, b = C("alice"), C("bob")
a.send("y" * 500)
a.expect("! line too long (max 64 bytes)")
a.send_raw(b"\xff\xfe bad \xc3\x28 bytes\n")
b.expect("bad")
# Control characters would let a line write over its sender's name or
# drive the others' terminals: they arrive defused.
a.send_raw(b"hi\r[12:00:00] <admin> spoof\x1b[2J\x1b]0;pwned\x07\tend\n")
got = b.expect("spoof")
assert got.endswith("<alice> hi\ufffd[12:00:00] <admin> spoof\ufffd[2J\ufffd]0;pwned\ufffd\tend"), repr(got)
a.send_raw(bytes(range(256)) * 4 + b"\n")
a.send("still here")
b.expect("<alice> still here")
"##,
    );
}

#[test]
fn flood_control_drops_lines_with_one_notice() {
    // Refilling is covered by the bucket's unit test with paused time.
    scenario(
        &["--rate", "0.001", "--burst", "3"],
        r##"
a, b = C("alice", echo=False), C("bob")
# /nick used one of alice's three tokens: two flood lines get through.
for i in range(10):
    a.send(f"flood {i}")
a.expect("! slow down")
b.expect("flood 1")
# bob's next line proves nothing more of alice's flood was delivered.
b.send("bob speaks")
a.expect("<bob> bob speaks")
b.expect("<bob> bob speaks")
assert not any(f"flood {i}" in l for l in b.seen for i in range(2, 10)), b.seen
assert sum("slow down" in l for l in a.seen) == 1, "one notice per run of drops"
"##,
    );
}

#[test]
fn full_server_says_so_and_closes() {
    let srv = Server::spawn(&["chat", "serve", ":0", "--max-clients", "2"]);
    let out = python(
        &format!(
            "{CLIENT}\na, b = C(), C()\ns = socket.create_connection(('127.0.0.1', PORT), timeout=10)\ndata = b''\nwhile True:\n    chunk = s.recv(1024)\n    if not chunk: break\n    data += chunk\nprint(data.decode())"
        ),
        &[&srv.port().to_string()],
    );
    assert!(out.contains("! server is full (2 clients)"), "{out}");
}

#[test]
fn a_client_that_never_reads_is_dropped_and_the_room_goes_on() {
    // A short grace: past the soft limit the hog is let go soon.
    let srv = Server::spawn(&["chat", "serve", ":0", "--rate", "0", "--queue-grace", "1"]);
    let out = python(
        &format!(
            "{CLIENT}\n{}",
            r##"
# A small receive window, set before connecting, so the kernel buffers
# little for the hog and its outbound queue fills.
hog = socket.socket()
hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
hog.connect(("127.0.0.1", PORT))
a, b = C("alice"), C("bob")
for i in range(4000):
    a.send(f"line {i} " + "z" * 4000)
    if i % 200 == 199:
        a.expect(f"line {i} ")
        b.expect(f"line {i} ")
# Past the soft limit, the hog goes once the grace period is over.
b.expect("left #lobby (too slow)")
print("ok")
"##
        ),
        &[&srv.port().to_string()],
    );
    assert!(out.contains("ok"), "{out}");
    srv.wait_for_log("fell behind");
    let rss = std::fs::read_to_string(format!("/proc/{}/status", srv.pid())).unwrap();
    let kib: u64 = rss
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(kib < 64 * 1024, "server RSS {kib} KiB");
}

#[test]
fn abrupt_disconnects_are_announced() {
    scenario(
        &[],
        r##"
import struct
a, b = C("alice"), C("bob")
a.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
a.s.close()
b.expect("* alice left #lobby")
b.send("/who")
b.expect("* in #lobby: bob")
"##,
    );
}

#[test]
fn piped_client_runs_a_script_and_exits_after_the_replies() {
    let srv = Server::spawn(&["chat", "serve", ":0"]);
    let out = crate::support::sockit_run(
        &[
            "chat",
            &srv.hostport(),
            "--nick",
            "scripter",
            "--room",
            "dev",
        ],
        b"hello all\n/who\n",
    );
    assert!(out.status.success(), "{}", crate::support::stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("* scripter joined #dev"), "{text}");
    assert!(text.contains("<scripter> hello all"), "{text}");
    assert!(text.ends_with("* in #dev: scripter\n"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when stdout is a pipe");
}

#[test]
fn terminal_client_colours_nicks_unless_no_color() {
    let srv = Server::spawn(&["chat", "serve", ":0"]);
    let screen = |no_color: bool| {
        let inner = format!(
            "{} chat {} --nick tty",
            env!("CARGO_BIN_EXE_sockit"),
            srv.hostport()
        );
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qefc", &inner, "/dev/null"]);
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let out = run(&mut cmd, b"typed line\n/quit\n", STEP);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = screen(false);
    assert!(coloured.contains("typed line"), "{coloured:?}");
    assert!(
        coloured.contains("tty\x1b[0m>"),
        "nick in colour: {coloured:?}"
    );
    let plain = screen(true);
    assert!(plain.contains("<tty> typed line"), "{plain:?}");
}

#[test]
fn udp_peer_chat_between_two_instances() {
    let mut bob = Server::spawn_piped(&["chat", "udp", "--bind", ":0"]);
    let bob_at = bob.hostport();
    let mut alice = Server::spawn_piped(&[
        "chat",
        "udp",
        "--bind",
        ":0",
        "--peer",
        &format!("bob={bob_at}"),
    ]);
    let alice_at = alice.hostport();
    alice.write_stdin(b"hello bob\n");
    // bob does not know alice by name: she shows up by address.
    bob.read_stdout_until(format!("[{alice_at}] hello bob\n").as_bytes());
    bob.write_stdin(format!("/to {alice_at}\nhi alice\n").as_bytes());
    alice.read_stdout_until(format!("[bob {bob_at}] hi alice\n").as_bytes());
    // Binary and oversized datagrams are shown safely.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // One at a time: output read past the first needle is not kept, so a
    // busy machine printing both in one chunk must not hide the second.
    probe
        .send_to(&[0x1b, b'[', b'2', b'J', 0xff, b'\n'], alice.addr())
        .unwrap();
    alice.read_stdout_until("\u{FFFD}[2J\u{FFFD}\n".as_bytes());
    probe.send_to(&vec![b'x'; 65_000], alice.addr()).unwrap();
    alice.read_stdout_until(&[b'x'; 1000]);
    alice.write_stdin(b"q\n");
    assert!(alice.wait_exit(STEP).success());
}

#[test]
fn idle_timeout_closes_a_silent_client_and_keeps_a_talking_one() {
    scenario(
        &["--idle-timeout", "0.5"],
        r##"
a = C("alice")
b = C("bob")
for i in range(6):
    time.sleep(0.25)
    b.send("still here %d" % i)
a.expect("! idle for 500ms without a line, closing")
assert a.closed()
b.send("/who")
b.expect("bob")
"##,
    );
}

#[test]
fn max_conns_is_the_clients_cap_under_either_name() {
    for flag in ["--max-conns", "--max-clients"] {
        let srv = Server::spawn(&["chat", "serve", ":0", flag, "1"]);
        let out = python(
            &format!(
                "{CLIENT}\na = C()\ns = socket.create_connection(('127.0.0.1', PORT), timeout=10)\nprint(s.recv(1024).decode())"
            ),
            &[&srv.port().to_string()],
        );
        assert!(
            out.contains("! server is full (1 clients)"),
            "{flag}: {out}"
        );
    }
}

#[test]
fn a_sender_does_not_get_its_own_lines_back_unless_it_asks() {
    scenario(
        &["--rate", "0"],
        r##"
a, b = C("alice", echo=False), C("bob", echo=False)
a.send("first")
b.expect("<alice> first")
b.send("/who")
b.expect("* in #lobby")
a.send("/echo on")
a.expect("* echo on")
a.send("second")
a.expect("<alice> second")
assert not any("<alice> first" in l for l in a.seen), a.seen
a.send("/echo off")
a.expect("* echo off")
"##,
    );
}

/// `tail -f log | nc host 12345`: a client that only sends, and never reads,
/// is not disconnected for falling behind on its own lines.
#[test]
fn a_client_that_only_sends_stays_connected() {
    scenario(
        &["--rate", "0"],
        r##"
listener = C("reader", echo=False)
writer = socket.create_connection(("127.0.0.1", PORT), timeout=10)
line = "x" * 3900
for i in range(3000):
    writer.sendall(f"{i} {line}\n".encode())
writer.sendall(b"/nick writer\n")
writer.sendall(b"the end\n")
listener.expect("<writer> the end", timeout=30)
assert sum(line in l for l in listener.seen) == 3000
"##,
    );
}

/// A never-reading client and a reader that keeps reading (appending each
/// `recv` to a bytes buffer, as scripts do) share a room with a sender that
/// posts 3,000 lines of 3.9 KB at once. With the default bounds the reader
/// gets every line, 20 runs out of 20, and the stuck client is still let go
/// once it has stayed past the soft limit for the grace period. The log
/// names the client that was dropped.
#[test]
fn a_burst_keeps_a_reader_and_drops_a_client_that_never_reads() {
    let srv = Server::spawn(&["chat", "serve", ":0", "--rate", "0"]);
    let script = r#"
import socket, sys
PORT = int(sys.argv[1])
def join(nick):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    s.sendall(f"/nick {nick}\n".encode())
    seen = b""
    while f"is now known as {nick}".encode() not in seen:
        seen += s.recv(65536)
    return s
stuck = socket.socket()
stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
stuck.connect(("127.0.0.1", PORT))
stuck.sendall(b"/nick stuck\n")
print(stuck.getsockname()[1])
text = "y" * 3900
burst = "".join(f"{i} {text}\n" for i in range(3000)).encode()
for run in range(20):
    reader, sender = join(f"reader{run}"), join(f"sender{run}")
    sender.sendall(burst + f"done {run}\n".encode())
    got = b""
    end = f"> done {run}\n".encode()
    while end not in got:
        chunk = reader.recv(65536)
        assert chunk, f"run {run}: the reader was cut off after {len(got)} bytes"
        got += chunk
    assert got.count(text.encode()) == 3000, run
    reader.close()
    sender.close()
print("20 of 20")
"#;
    // 20 bursts of 11.7 MB through a Python reader take longer than a step.
    let port = srv.port().to_string();
    let run = run(
        std::process::Command::new("python3").args(["-c", script, &port]),
        b"",
        std::time::Duration::from_secs(180),
    );
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut lines = out.lines();
    let stuck_port = lines.next().unwrap();
    assert_eq!(lines.next(), Some("20 of 20"), "{out}");
    let line = srv.wait_for_log("fell behind its outbound queue");
    assert!(line.contains("nick=stuck"), "{line}");
    assert!(
        line.contains(&format!("peer=127.0.0.1:{stuck_port}")),
        "{line}"
    );
}

/// Past the hard limit the stuck client is dropped during the fan-out, in
/// the sender's task; the log still names the stuck client, not the sender.
#[test]
fn the_hard_limit_drops_at_once_and_names_the_dropped_client() {
    let srv = Server::spawn(&[
        "chat",
        "serve",
        ":0",
        "--rate",
        "0",
        "--queue-hard",
        "2MiB",
        "--queue-soft",
        "1MiB",
    ]);
    let out = python(
        r#"
import socket, sys
PORT = int(sys.argv[1])
stuck = socket.socket()
stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
stuck.connect(("127.0.0.1", PORT))
stuck.sendall(b"/nick stuck\n")
sender = socket.create_connection(("127.0.0.1", PORT), timeout=30)
sender.sendall(b"/nick sender\n")
seen = b""
while b"is now known as sender" not in seen:
    seen += sender.recv(65536)
text = "y" * 3900
sender.sendall("".join(f"{i} {text}\n" for i in range(3000)).encode())
print(stuck.getsockname()[1], sender.getsockname()[1], flush=True)
while b"stuck left #lobby (too slow)" not in seen:
    seen += sender.recv(1 << 20)
"#,
        &[&srv.port().to_string()],
    );
    let ports: Vec<&str> = out.split_whitespace().collect();
    let line = srv.wait_for_log("fell behind its outbound queue");
    assert!(line.contains("nick=stuck"), "{line}");
    assert!(
        line.contains(&format!("peer=127.0.0.1:{}", ports[0])),
        "{line}"
    );
    assert!(!line.contains(&format!(":{}", ports[1])), "{line}");
}

/// The terminal client under tmux: a paste arrives in one read and must be
/// shown whole at once, and an incoming line must appear above a
/// half-typed one without disturbing it.
#[test]
fn a_paste_shows_whole_and_incoming_lines_keep_the_typed_one() {
    let srv = Server::spawn(&["chat", "serve", ":0"]);
    let session = format!("sockit-paste-{}", std::process::id());
    let tmux = |args: &[&str]| {
        let out = run(std::process::Command::new("tmux").args(args), b"", STEP);
        assert!(out.status.success(), "tmux {args:?}: {}", stderr_text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let client = format!(
        "env NO_COLOR=1 {} chat {} --nick alice",
        env!("CARGO_BIN_EXE_sockit"),
        srv.hostport()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "12",
        &client,
    ]);
    let _cleanup = KillSession(session.clone());
    // The pane has no event to wait on; poll its screen, bounded.
    let screen_until = |want: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + STEP;
        loop {
            let screen = tmux(&["capture-pane", "-p", "-t", &session]);
            if want(&screen) {
                return screen;
            }
            assert!(std::time::Instant::now() < deadline, "screen: {screen}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    screen_until(&|s| s.contains("is now known as alice"));
    tmux(&["set-buffer", "-b", &session, "pasted text"]);
    tmux(&["paste-buffer", "-b", &session, "-t", &session]);
    screen_until(&|s| s.lines().any(|l| l == "> pasted text"));
    let out = run(
        std::process::Command::new("nc").args(["-N", "127.0.0.1", &srv.port().to_string()]),
        b"/nick bob\nhello from bob\n",
        STEP,
    );
    assert!(out.status.success());
    let screen = screen_until(&|s| s.contains("<bob> hello from bob"));
    let lines: Vec<&str> = screen.lines().filter(|l| !l.is_empty()).collect();
    let bob = lines
        .iter()
        .position(|l| l.contains("<bob> hello from bob"));
    let prompt = lines.iter().position(|l| *l == "> pasted text");
    assert!(bob < prompt && prompt.is_some(), "{screen}");
}

struct KillSession(String);

impl Drop for KillSession {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn stderr_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The tutorial's UDP client sends and waits for the answer: with no peer
/// chosen a typed line goes to whoever sent last, and `/reply` does the
/// same even when another peer is chosen.
#[test]
fn udp_peer_chat_answers_the_textbook_client() {
    let mut srv = Server::spawn_piped(&["chat", "udp", "--bind", ":0"]);
    let textbook = r#"
import socket, sys
addr = ("127.0.0.1", int(sys.argv[1]))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"hello server", addr)
print(s.getsockname()[1], flush=True)
data, _ = s.recvfrom(1024)
print(data.decode(), flush=True)
s.sendto(b"again", addr)
data, _ = s.recvfrom(1024)
print(data.decode(), flush=True)
"#;
    let mut client = Python::spawn(textbook, &[&srv.port().to_string()]);
    let port = client.line();
    srv.read_stdout_until(format!("[127.0.0.1:{port}] hello server\n").as_bytes());
    srv.write_stdin(b"hi there\n");
    assert_eq!(client.line(), "hi there");
    srv.read_stdout_until(b"] again\n");
    // A chosen peer elsewhere does not stop /reply from answering.
    srv.write_stdin(b"/to 127.0.0.1:9\n/reply back to you\n");
    assert_eq!(client.line(), "back to you");
    assert!(client.wait().success());
}
