//! The chat server with nc and python3 clients.

use crate::support::{STEP, Server, python, run};

/// A tiny line client shared by the scenarios: `c = C(port)`, `c.send(line)`,
/// `c.expect(text)` waits (bounded) for a line containing `text`.
const CLIENT: &str = r##"
import socket, sys, time
PORT = int(sys.argv[1])
class C:
    def __init__(self, nick=None):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        self.buf = b""
        self.lines = []
        self.seen = []
        self.expect("welcome")
        if nick:
            self.send("/nick " + nick)
            self.expect("is now known as " + nick)
    def send(self, line):
        self.s.sendall(line.encode() + b"\n")
    def send_raw(self, data):
        self.s.sendall(data)
    def expect(self, text, timeout=10):
        end = time.time() + timeout
        while True:
            for i, l in enumerate(self.lines):
                if text in l:
                    del self.lines[: i + 1]
                    return l
            if time.time() > end:
                raise AssertionError(f"never saw {text!r}; have {self.lines!r}")
            chunk = self.s.recv(65536)
            if not chunk:
                raise AssertionError(f"closed before {text!r}; have {self.lines!r}")
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            new = [d.decode("utf-8", "replace") for d in done]
            self.lines += new
            self.seen += new
    def closed(self):
        while True:
            if not self.s.recv(65536):
                return True
"##;

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
late = C()
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
a, b = C("alice"), C("bob")
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
    let srv = Server::spawn(&["chat", "serve", ":0", "--rate", "0"]);
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
    probe
        .send_to(&[0x1b, b'[', b'2', b'J', 0xff, b'\n'], alice.addr())
        .unwrap();
    probe.send_to(&vec![b'x'; 65_000], alice.addr()).unwrap();
    alice.read_stdout_until("\u{FFFD}[2J\u{FFFD}\n".as_bytes());
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
