//! `sockit forward`: exact relaying with half-closes and resets, logs, hex
//! dumps, access rules, limits, several targets and the UDP relay, against
//! nc, python3, iperf3 and test peers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A relay from a free port to `targets`, with extra flags.
fn relay(targets: &[String], flags: &[&str]) -> Server {
    let mut args = vec!["forward", "127.0.0.1:0"];
    args.extend(targets.iter().map(String::as_str));
    args.extend(flags);
    Server::spawn(&args)
}

/// An echo server to relay to.
fn echo(extra: &[&str]) -> Server {
    let mut args = vec!["echo", "127.0.0.1:0"];
    args.extend(extra);
    Server::spawn(&args)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether the relay closed or reset `c` without sending anything.
fn closed_without_data(c: &mut std::net::TcpStream) -> bool {
    let mut buf = [0u8; 8];
    matches!(c.read(&mut buf), Ok(0) | Err(_))
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Deterministic pseudo-random bytes (xorshift), shared by every stream.
fn noise(len: usize) -> Arc<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Arc::new(v)
}

/// Who finishes sending first on one connection.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Client sends everything and half-closes before reading a byte.
    ClientFirst,
    /// Target sends everything and half-closes before reading a byte.
    TargetFirst,
    /// Both at once.
    Together,
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    up: (usize, usize),
    down: (usize, usize),
    order: Order,
}

const MAX_SIZE: usize = 8 << 20;

/// 200 plans: sizes log-uniform from 0 to 8 MiB (both ends included), so
/// the run covers tiny and huge streams without moving gigabytes.
fn plans(n: usize) -> Vec<Plan> {
    let mut x: u64 = 12345;
    let mut next = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    (0..n)
        .map(|i| {
            let mut size = |fixed: Option<usize>| {
                let len = fixed.unwrap_or_else(|| {
                    let bits = next() % 24;
                    ((1u64 << bits) + next() % (1u64 << bits)).min(MAX_SIZE as u64) as usize
                });
                (len, next() as usize % (MAX_SIZE - len + 1))
            };
            let (up, down) = match i {
                0 => (size(Some(0)), size(Some(MAX_SIZE))),
                1 => (size(Some(MAX_SIZE)), size(Some(0))),
                2 => (size(Some(0)), size(Some(0))),
                _ => (size(None), size(None)),
            };
            let order = match next() % 3 {
                0 => Order::ClientFirst,
                1 => Order::TargetFirst,
                _ => Order::Together,
            };
            Plan { up, down, order }
        })
        .collect()
}

/// Sends `data` then FIN.
async fn send_all(w: &mut tokio::net::tcp::WriteHalf<'_>, data: &[u8]) -> std::io::Result<()> {
    w.write_all(data).await?;
    w.shutdown().await
}

/// Reads to EOF, hashing, and returns the hash and length.
async fn hash_all(r: &mut tokio::net::tcp::ReadHalf<'_>) -> std::io::Result<([u8; 32], usize)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok((h.finalize().into(), total));
        }
        h.update(&buf[..n]);
        total += n;
    }
}

/// One side of a connection: sends `out`, hashes what comes in, in the
/// order the plan says.
async fn converse(
    mut s: tokio::net::TcpStream,
    out: &[u8],
    sends_first: Option<bool>,
) -> std::io::Result<([u8; 32], usize)> {
    let (mut r, mut w) = s.split();
    match sends_first {
        Some(true) => {
            send_all(&mut w, out).await?;
            hash_all(&mut r).await
        }
        Some(false) => {
            let got = hash_all(&mut r).await?;
            send_all(&mut w, out).await?;
            Ok(got)
        }
        None => {
            let (sent, got) = tokio::join!(send_all(&mut w, out), hash_all(&mut r));
            sent?;
            got
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_streams_arrive_exactly_with_half_closes_both_ways() {
    exactly(&["-q"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copying_path_is_exact_too() {
    exactly(&["-q", "--no-splice"]).await;
}

/// 200 concurrent connections through a relay started with `flags`, every
/// byte checked by SHA-256 both ways.
async fn exactly(flags: &[&str]) {
    let data = noise(MAX_SIZE);
    let plans = Arc::new(plans(200));
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let r = relay(&[format!("127.0.0.1:{target_port}")], flags);
    let relay_addr = r.addr();

    // The target learns which plan a connection follows from a 4-byte
    // index at the start of the client's stream.
    let server = tokio::spawn({
        let (data, plans) = (data.clone(), plans.clone());
        async move {
            let mut conns = tokio::task::JoinSet::new();
            for _ in 0..plans.len() {
                let (mut s, _) = target.accept().await.unwrap();
                let (data, plans) = (data.clone(), plans.clone());
                conns.spawn(async move {
                    let i = s.read_u32().await.unwrap() as usize;
                    let p = plans[i];
                    let out = &data[p.down.1..p.down.1 + p.down.0];
                    let first = match p.order {
                        Order::ClientFirst => Some(false),
                        Order::TargetFirst => Some(true),
                        Order::Together => None,
                    };
                    (i, converse(s, out, first).await.unwrap())
                });
            }
            let mut got = vec![None; plans.len()];
            while let Some(res) = conns.join_next().await {
                let (i, h) = res.unwrap();
                got[i] = Some(h);
            }
            got
        }
    });

    let mut clients = tokio::task::JoinSet::new();
    for (i, p) in plans.iter().copied().enumerate() {
        let data = data.clone();
        clients.spawn(async move {
            let mut s = tokio::net::TcpStream::connect(relay_addr).await.unwrap();
            s.write_u32(i as u32).await.unwrap();
            let out = &data[p.up.1..p.up.1 + p.up.0];
            let first = match p.order {
                Order::ClientFirst => Some(true),
                Order::TargetFirst => Some(false),
                Order::Together => None,
            };
            (i, converse(s, out, first).await.unwrap())
        });
    }
    let all = async {
        let mut down_got = vec![None; plans.len()];
        while let Some(res) = clients.join_next().await {
            let (i, got) = res.unwrap();
            down_got[i] = Some(got);
        }
        (down_got, server.await.unwrap())
    };
    let (down_got, up_got) = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("all 200 relayed streams finish within 2 minutes");
    for (i, p) in plans.iter().enumerate() {
        let want_down = sha(&data[p.down.1..p.down.1 + p.down.0]);
        let (got_down, n_down) = down_got[i].unwrap();
        assert_eq!(n_down, p.down.0, "conn {i} ({p:?}): bytes down");
        assert!(got_down == want_down, "conn {i} ({p:?}): data down differs");
        // The target hashed everything after the 4-byte index.
        let (got_up, n_up) = up_got[i].unwrap();
        assert_eq!(n_up, p.up.0, "conn {i} ({p:?}): bytes up");
        let want_up = sha(&data[p.up.1..p.up.1 + p.up.0]);
        assert!(got_up == want_up, "conn {i} ({p:?}): data up differs");
    }
}

#[test]
fn nc_and_python_clients_get_their_echo_and_the_log_counts_bytes() {
    let e = echo(&[]);
    let r = relay(&[e.hostport()], &[]);
    let out = run(
        std::process::Command::new("nc").args(["-N", "127.0.0.1", &r.port().to_string()]),
        b"hello through the relay\n",
        STEP,
    );
    assert_eq!(out.stdout, b"hello through the relay\n");
    let open = r.wait_for_log("conn 1 127.0.0.1:");
    assert!(open.contains(&format!("-> {}", e.hostport())), "{open}");
    let close = r.wait_for_log("conn 1 closed");
    assert!(close.contains("24 bytes up, 24 bytes down"), "{close}");

    let got = python(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
data = bytes(range(256)) * 1000
s.sendall(data)
s.shutdown(socket.SHUT_WR)
back = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    back += chunk
print("same" if back == data else "differ %d" % len(back))
"#,
        &[&r.port().to_string()],
    );
    assert_eq!(got.trim(), "same");
    r.wait_for_log("conn 2 closed: 256000 bytes up, 256000 bytes down");
}

#[test]
fn json_logs_carry_the_same_facts_as_fields() {
    let e = echo(&[]);
    let r = relay(&[e.hostport()], &["--log-format", "json"]);
    let mut c = tcp(r.addr());
    expect_reply(&mut c, b"abc", b"abc");
    drop(c);
    let line = r.wait_for_log(r#""message":"close""#);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["conn"], 1);
    assert_eq!(v["bytes_up"], 3);
    assert_eq!(v["bytes_down"], 3);
    assert_eq!(v["end"], "closed");
}

#[test]
fn iperf3_runs_through_the_relay() {
    let port = closed_port();
    let _iperf = crate::support::Iperf3::serve(port);
    let r = relay(&[format!("127.0.0.1:{port}")], &[]);
    let out = run(
        std::process::Command::new("iperf3").args([
            "-c",
            "127.0.0.1",
            "-p",
            &r.port().to_string(),
            "-t",
            "1",
            "-J",
        ]),
        b"",
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "iperf3 client: {}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let received = v["end"]["sum_received"]["bytes"].as_u64().unwrap();
    assert!(received > 1_000_000, "iperf3 moved only {received} bytes");
}

#[test]
fn a_reset_on_either_side_resets_the_other() {
    // The target resets as soon as it accepts.
    let got = python(
        r#"
import socket, struct, sys, subprocess
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
relay = subprocess.Popen([sys.argv[1], "forward", "127.0.0.1:0", "127.0.0.1:%d" % srv.getsockname()[1]],
                         stderr=subprocess.PIPE, text=True)
port = int(relay.stderr.readline().rsplit(":", 1)[1])
c = socket.create_connection(("127.0.0.1", port), timeout=10)
t, _ = srv.accept()
t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
t.close()
try:
    print("eof" if c.recv(10) == b"" else "data")
except ConnectionResetError:
    print("reset")
# And the other way: the client resets, the target sees it.
c2 = socket.create_connection(("127.0.0.1", port), timeout=10)
t2, _ = srv.accept()
t2.settimeout(10)
c2.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c2.close()
try:
    print("eof" if t2.recv(10) == b"" else "data")
except ConnectionResetError:
    print("reset")
relay.kill()
"#,
        &[env!("CARGO_BIN_EXE_sockit")],
    );
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        ["reset", "reset"]
    );
}

#[test]
fn an_unreachable_target_closes_the_client_promptly_and_is_logged() {
    let dead = closed_port();
    let r = relay(&[format!("127.0.0.1:{dead}")], &[]);
    let mut c = tcp(r.addr());
    let started = std::time::Instant::now();
    assert!(closed_without_data(&mut c), "client got data from nowhere");
    assert!(started.elapsed() < Duration::from_secs(3));
    r.wait_for_log(&format!("target tcp://127.0.0.1:{dead} unreachable"));
    r.wait_for_log("no target reachable");
}

#[test]
fn failover_skips_a_dead_target_and_round_robin_alternates() {
    let a = echo(&["--frame", "lines", "--reply", "A {}"]);
    let b = echo(&["--frame", "lines", "--reply", "B {}"]);
    let dead = format!("127.0.0.1:{}", closed_port());
    let f = relay(&[dead, a.hostport()], &["--balance", "failover"]);
    for _ in 0..3 {
        let mut c = tcp(f.addr());
        expect_reply(&mut c, b"x\n", b"A x\n");
    }
    f.wait_for_log("skipping it for 1s");

    let rr = relay(&[a.hostport(), b.hostport()], &[]);
    let answers: Vec<u8> = (0..4)
        .map(|_| {
            let mut c = tcp(rr.addr());
            c.write_all(b"x\n").unwrap();
            let mut got = [0u8; 4];
            c.read_exact(&mut got).unwrap();
            got[0]
        })
        .collect();
    assert_eq!(answers, b"ABAB");
}

#[test]
fn deny_wins_and_allow_limits_who_may_connect() {
    let e = echo(&[]);
    let refused = |flags: &[&str]| {
        let r = relay(&[e.hostport()], flags);
        let mut c = tcp(r.addr());
        let _ = c.write_all(b"hi");
        let closed = closed_without_data(&mut c);
        r.wait_for_log("denied by the access rules");
        closed
    };
    assert!(refused(&["--deny", "127.0.0.1"]));
    assert!(refused(&["--allow", "10.0.0.0/8"]));
    assert!(refused(&[
        "--allow",
        "127.0.0.0/8",
        "--deny",
        "127.0.0.0/24"
    ]));
    let r = relay(&[e.hostport()], &["--allow", "127.0.0.0/8"]);
    let mut c = tcp(r.addr());
    expect_reply(&mut c, b"hi", b"hi");
}

#[test]
fn max_conns_closes_extra_clients_at_once() {
    let e = echo(&[]);
    let r = relay(&[e.hostport()], &["--max-conns", "1"]);
    let mut first = tcp(r.addr());
    expect_reply(&mut first, b"1", b"1");
    let mut second = tcp(r.addr());
    assert!(closed_without_data(&mut second));
    r.wait_for_log("connection limit reached");
    expect_reply(&mut first, b"2", b"2");
}

#[test]
fn idle_connections_are_closed() {
    let e = echo(&[]);
    let r = relay(&[e.hostport()], &["--idle-timeout", "1"]);
    let mut c = tcp(r.addr());
    expect_reply(&mut c, b"x", b"x");
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "closed after 1 s idle");
    r.wait_for_log("conn 1 idle timeout");
}

#[test]
fn the_hex_dump_of_a_known_exchange_matches() {
    let (port, target) = capture_server(|_| b"pong\n".to_vec());
    let dir = tempdir();
    let file = dir.path().join("dump.txt");
    let r = relay(
        &[format!("127.0.0.1:{port}")],
        &["--dump-file", file.to_str().unwrap()],
    );
    let mut c = tcp(r.addr());
    c.write_all(b"ping\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"pong\n");
    assert_eq!(target.join().unwrap(), b"ping\n");
    r.wait_for_log("conn 1 closed");
    let dump = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        dump,
        "conn 1 > 5 bytes\n  \
         00000000  70 69 6e 67 0a                                    |ping.|\n\
         conn 1 < 5 bytes\n  \
         00000000  70 6f 6e 67 0a                                    |pong.|\n"
    );
}

#[test]
fn hex_dump_to_stderr_keeps_data_exact() {
    let e = echo(&[]);
    let r = relay(&[e.hostport()], &["-x"]);
    let mut c = tcp(r.addr());
    let data: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    let reader = {
        let mut c = c.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut back = vec![0u8; 100_000];
            c.read_exact(&mut back).unwrap();
            back
        })
    };
    c.write_all(&data).unwrap();
    assert!(reader.join().unwrap() == data);
    r.wait_for_log("conn 1 > ");
}

#[test]
fn udp_relay_keeps_two_clients_and_datagram_boundaries_apart() {
    let e = echo(&["--udp"]);
    let r = relay(&[e.hostport()], &["--udp", "--udp-timeout", "1"]);
    let got = python(
        r#"
import socket, sys
addr = ("127.0.0.1", int(sys.argv[1]))
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.settimeout(10)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.settimeout(10)
ok = True
for size in [1, 100, 1400, 9000, 60000]:
    a.sendto(b"a" * size, addr)
    b.sendto(b"b" * (size + 1), addr)
    ok &= a.recv(65536) == b"a" * size
    ok &= b.recv(65536) == b"b" * (size + 1)
print("ok" if ok else "mixed")
"#,
        &[&r.port().to_string()],
    );
    assert_eq!(got.trim(), "ok");
    let logs = r.logs_until("expired");
    assert!(logs.iter().any(|l| l.contains("5 datagrams")), "{logs:?}");
}

#[test]
fn udp_sessions_are_capped_by_max_conns() {
    let e = echo(&["--udp"]);
    let r = relay(&[e.hostport()], &["--udp", "--max-conns", "1"]);
    let got = python(
        r#"
import socket, sys
addr = ("127.0.0.1", int(sys.argv[1]))
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.settimeout(10)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.settimeout(1)
a.sendto(b"first", addr)
print(a.recv(100).decode())
b.sendto(b"second", addr)
try:
    print(b.recv(100).decode())
except socket.timeout:
    print("dropped")
a.sendto(b"again", addr)
print(a.recv(100).decode())
"#,
        &[&r.port().to_string()],
    );
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        ["first", "dropped", "again"]
    );
    r.wait_for_log("udp session limit reached");
}

#[test]
fn relaying_goes_on_when_nobody_reads_the_logs() {
    let e = echo(&[]);
    let mut child = sockit()
        .args(["forward", "127.0.0.1:0", &e.hostport()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = crate::support::lines_of(child.stderr.take().unwrap());
    let line = stderr.recv_timeout(STEP).expect("the listening line");
    let addr = line.trim().rsplit_once("://").unwrap().1.parse().unwrap();
    // Once the reader notices nobody listens, every log line from here on
    // meets a broken pipe.
    drop(stderr);
    for i in 0..3 {
        let mut c = tcp(addr);
        expect_reply(
            &mut c,
            format!("try {i}").as_bytes(),
            format!("try {i}").as_bytes(),
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn idle_connections_hold_no_pipes() {
    let e = echo(&[]);
    let r = relay(&[e.hostport()], &[]);
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", r.pid()))
            .unwrap()
            .count()
    };
    let before = fds();
    let idle: Vec<_> = (0..20).map(|_| tcp(r.addr())).collect();
    // The last connection is relayed once its log line is out.
    r.wait_for_log("conn 20 ");
    let held = fds() - before;
    // Two sockets per connection; pipes would add four more.
    assert!(
        held <= 2 * idle.len() + 2,
        "{held} descriptors for 20 idle connections"
    );
    let mut c = tcp(r.addr());
    expect_reply(&mut c, b"still works", b"still works");
}

#[test]
fn a_reset_after_a_half_close_reaches_a_silent_target() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let r = relay(&[target.local_addr().unwrap().to_string()], &[]);
    // A python client, so the reset can wait until the target has the EOF.
    let mut client = Python::spawn(
        r#"
import socket, struct, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"request")
c.shutdown(socket.SHUT_WR)
sys.stdin.readline()
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
"#,
        &[&r.port().to_string()],
    );
    let mut t = crate::support::accept(&target);
    let mut req = Vec::new();
    t.read_to_end(&mut req).unwrap();
    assert_eq!(req, b"request");
    client.say("reset now");
    assert!(client.wait().success());
    // The target stays silent; the client's reset must still end the relay.
    r.wait_for_log("conn 1 reset");
}

#[test]
fn nonsense_combinations_are_usage_errors() {
    let cases: [(&[&str], &str); 7] = [
        (&["forward", "--udp", "-x", ":0", ":9"], "not udp"),
        (
            &["forward", ":0", "udp://127.0.0.1:9"],
            "both be udp or both stream",
        ),
        (
            &[
                "forward",
                "--deny",
                "10.0.0.0/8",
                "unix:/tmp/sockit-never",
                ":9",
            ],
            "not unix",
        ),
        (
            &["forward", "--congestion", "nosuchalgo", ":0", ":9"],
            "congestion control nosuchalgo: not available",
        ),
        (
            &["forward", "--udp", "--congestion", "reno", ":0", ":9"],
            "not udp",
        ),
        (
            &[
                "forward",
                "--congestion",
                "reno",
                "unix:/tmp/sockit-never-a",
                "unix:/tmp/sockit-never-b",
            ],
            "not unix to unix",
        ),
        (
            &["forward", "--congestion", "cu bic", ":0", ":9"],
            "expected auto, system",
        ),
    ];
    for (args, want) in cases {
        let err = usage_error(args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// The congestion control `ss` reports for the one established socket
/// matching `filter`.
fn congestion_of(filter: &str) -> String {
    let out = run(
        std::process::Command::new("ss").args(["-tinH", "state", "established", filter]),
        b"",
        STEP,
    );
    assert!(out.status.success(), "ss: {}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Each socket's details follow its addresses on an indented line that
    // starts with the algorithm's name.
    let details: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(char::is_whitespace))
        .collect();
    assert_eq!(details.len(), 1, "one socket for {filter}: {text}");
    details[0].split_whitespace().next().unwrap().to_string()
}

#[test]
fn each_leg_gets_the_congestion_control_asked_for() {
    let proc_net = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .unwrap()
            .trim()
            .to_string()
    };
    // Root may use (and load) any algorithm; others only the allowed ones.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let usable = proc_net(if root {
        "tcp_available_congestion_control"
    } else {
        "tcp_allowed_congestion_control"
    });
    let loopback = if usable.split_whitespace().any(|a| a == "cubic") {
        "cubic"
    } else {
        "reno"
    };
    let system = proc_net("tcp_congestion_control");
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = target.local_addr().unwrap().port();
    let cases: [(&[&str], &str); 3] = [
        (&[], loopback),
        (&["--congestion", "reno"], "reno"),
        (&["--congestion", "system"], &system),
    ];
    for (flags, want) in cases {
        let r = relay(&[format!("127.0.0.1:{tport}")], flags);
        let mut c = tcp(r.addr());
        let mut t = crate::support::accept(&target);
        // A byte through means both legs are set up.
        c.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        t.read_exact(&mut b).unwrap();
        assert_eq!(
            congestion_of(&format!("dport = :{tport}")),
            want,
            "{flags:?}"
        );
        let client_leg = format!("sport = :{}", r.port());
        assert_eq!(congestion_of(&client_leg), want, "{flags:?}");
    }
    // On a dual-stack listener an IPv4 loopback client is ::ffff:127.0.0.1.
    let r = Server::spawn(&["forward", "[::]:0", &format!("127.0.0.1:{tport}")]);
    let mut c = tcp(([127, 0, 0, 1], r.port()).into());
    let mut t = crate::support::accept(&target);
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    t.read_exact(&mut b).unwrap();
    assert_eq!(congestion_of(&format!("sport = :{}", r.port())), loopback);
}
