//! What loopback never shows: two network namespaces joined by a veth pair,
//! packets dropped at random by nftables and, where the kernel has netem,
//! delayed. Each test builds its own pair and removes it; where namespaces
//! are not permitted, or a kernel lacks what a test needs, it says so and
//! skips.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{STEP, Server, read_all, run, stderr_of, wait_within};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Two namespaces, `a` at 10.9.0.1 and `b` at 10.9.0.2, on one veth link.
struct Link {
    a: String,
    b: String,
}

const A: &str = "10.9.0.1";
const B: &str = "10.9.0.2";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Link {
    fn new() -> Option<Link> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("sk{}x{n}", std::process::id());
        let link = Link {
            a: format!("{tag}a"),
            b: format!("{tag}b"),
        };
        let (va, vb) = (format!("{tag}va"), format!("{tag}vb"));
        let ok = ip(&["netns", "add", &link.a])
            && ip(&["netns", "add", &link.b])
            && ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])
            && ip(&["link", "set", &va, "netns", &link.a])
            && ip(&["link", "set", &vb, "netns", &link.b])
            && ip(&["-n", &link.a, "addr", "add", &format!("{A}/24"), "dev", &va])
            && ip(&["-n", &link.b, "addr", "add", &format!("{B}/24"), "dev", &vb])
            && [&link.a, &link.b].iter().all(|ns| {
                ip(&["-n", ns, "link", "set", "lo", "up"])
                    && ip(&[
                        "-n",
                        ns,
                        "link",
                        "set",
                        if *ns == &link.a { &va } else { &vb },
                        "up",
                    ])
            });
        if !ok {
            eprintln!("skipped: this test needs network namespaces and veth (run as root)");
            return None;
        }
        Some(link)
    }

    /// `program ARGS` inside namespace `ns`.
    fn exec(&self, ns: &str, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program])
            .args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        cmd
    }

    fn sockit(&self, ns: &str, args: &[&str]) -> Command {
        self.exec(ns, env!("CARGO_BIN_EXE_sockit"), args)
    }

    /// Drops `percent` of the packets `ns` receives over the link
    /// (nftables, on input: a drop on output would tell the sender),
    /// `filter` narrowing which (`tcp flags syn`, `meta l4proto udp`, …).
    fn drop(&self, ns: &str, percent: u32, filter: &str) {
        let chance = if percent >= 100 {
            String::new()
        } else {
            format!("numgen random mod 100 < {percent}")
        };
        let rule = format!("ip saddr 10.9.0.0/24 {filter} {chance} drop");
        let steps: [&[&str]; 3] = [
            &["add", "table", "inet", "lossy"],
            &[
                "add",
                "chain",
                "inet",
                "lossy",
                "in",
                "{ type filter hook input priority 0; }",
            ],
            &["add", "rule", "inet", "lossy", "in", &rule],
        ];
        for step in steps {
            let out = run(&mut self.exec(ns, "nft", step), b"", STEP);
            assert!(out.status.success(), "nft {step:?}: {}", stderr_of(&out));
        }
    }

    /// Delays every packet each way by `ms`, if the kernel has netem.
    fn delay(&self, ms: u32) -> bool {
        let delay = format!("{ms}ms");
        [&self.a, &self.b].iter().all(|ns| {
            let dev = format!("{}v{}", &ns[..ns.len() - 1], &ns[ns.len() - 1..]);
            run(
                &mut self.exec(
                    ns,
                    "tc",
                    &[
                        "qdisc", "add", "dev", &dev, "root", "netem", "delay", &delay,
                    ],
                ),
                b"",
                STEP,
            )
            .status
            .success()
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Deleting a namespace ends its processes' sockets and its veth end.
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}

/// A server inside a namespace, announced as usual.
fn serve_in(link: &Link, ns: &str, args: &[&str]) -> Server {
    Server::start(&mut link.sockit(ns, args), false)
}

fn port_of(srv: &Server) -> String {
    srv.endpoint.rsplit(':').next().unwrap().to_string()
}

#[test]
fn the_udp_time_client_resends_through_thirty_percent_loss() {
    let Some(link) = Link::new() else { return };
    let srv = serve_in(&link, &link.b, &["time", "serve", &format!("{B}:0")]);
    let at = format!("{B}:{}", port_of(&srv));
    // Both ways: a request or its answer may be lost.
    link.drop(&link.a, 30, "meta l4proto udp");
    link.drop(&link.b, 30, "meta l4proto udp");
    for _ in 0..10 {
        let out = run(
            &mut link.sockit(&link.a, &["time", &at, "%Y", "-r", "15", "-w", "0.2"]),
            b"",
            STEP,
        );
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 4);
    }
}

#[test]
fn forward_stays_byte_exact_under_loss_and_delay() {
    let Some(link) = Link::new() else { return };
    let delayed = link.delay(50);
    if !delayed {
        eprintln!("note: this kernel has no netem (CONFIG_NET_SCH_NETEM): loss only, no delay");
    }
    link.drop(&link.a, 5, "meta l4proto tcp");
    link.drop(&link.b, 5, "meta l4proto tcp");
    let script = r#"
import hashlib, socket, sys
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
h, n = hashlib.sha256(), 0
while chunk := conn.recv(1 << 20):
    h.update(chunk)
    n += len(chunk)
print(n, h.hexdigest(), flush=True)
"#;
    let mut target = link
        .exec(&link.b, "python3", &["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = target.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    use std::io::Read;
    while !first.ends_with(b"\n") {
        out.read_exact(&mut byte).unwrap();
        first.push(byte[0]);
    }
    let port = String::from_utf8(first).unwrap().trim().to_string();
    let relay = serve_in(
        &link,
        &link.b,
        &["forward", &format!("{B}:0"), &format!("127.0.0.1:{port}")],
    );
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let want = {
        use sha2::Digest;
        format!("{} {:x}", data.len(), sha2::Sha256::digest(&data))
    };
    let mut client = link
        .sockit(&link.a, &["connect", &format!("{B}:{}", port_of(&relay))])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&data);
    });
    let status = wait_within(&mut client, Duration::from_secs(120));
    writer.join().unwrap();
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(&read_all(client.stderr.take().unwrap()))
    );
    let got = String::from_utf8(read_all(out)).unwrap();
    assert_eq!(got.trim(), want);
    let _ = target.wait();
}

#[test]
fn chat_and_http_work_at_a_hundred_milliseconds_round_trip() {
    let Some(link) = Link::new() else { return };
    if !link.delay(50) {
        eprintln!("skipped: this kernel has no netem (CONFIG_NET_SCH_NETEM) to delay packets");
        return;
    }
    let chat = serve_in(&link, &link.b, &["chat", "serve", &format!("{B}:0")]);
    let script = r#"
import socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
def join(nick):
    s = socket.create_connection(addr, timeout=10)
    s.sendall(f"/nick {nick}\n".encode())
    buf = b""
    while f"known as {nick}".encode() not in buf:
        buf += s.recv(4096)
    return s
a, b = join("alice"), join("bob")
start = time.time()
a.sendall(b"slow link\n")
buf = b""
while b"<alice> slow link" not in buf:
    buf += b.recv(4096)
print("heard", "delayed" if time.time() - start >= 0.1 else "fast")
"#;
    let out = run(
        &mut link.exec(&link.a, "python3", &["-c", script, B, &port_of(&chat)]),
        b"",
        STEP,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "heard delayed",
        "{}",
        stderr_of(&out)
    );
    let http = serve_in(&link, &link.b, &["http", "serve", "-l", &format!("{B}:0")]);
    let started = Instant::now();
    let out = run(
        &mut link.exec(
            &link.a,
            "curl",
            &["-sS", &format!("http://{B}:{}/", port_of(&http))],
        ),
        b"",
        STEP,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello World!",
        "{}",
        stderr_of(&out)
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "a connect and a request: two round trips"
    );
}

#[test]
fn a_target_that_drops_syns_hits_the_connect_timeout_and_fails_over() {
    let Some(link) = Link::new() else { return };
    // Every SYN from b to a is lost: a's port neither answers nor refuses.
    link.drop(&link.a, 100, "tcp flags syn");
    let echo = serve_in(&link, &link.b, &["echo", "127.0.0.1:0"]);
    let relay = serve_in(
        &link,
        &link.b,
        &[
            "forward",
            "127.0.0.1:0",
            &format!("{A}:7"),
            &format!("127.0.0.1:{}", port_of(&echo)),
            "--balance",
            "failover",
            "--connect-timeout",
            "0.5",
        ],
    );
    let started = Instant::now();
    let out: Output = run(
        &mut link.exec(&link.b, "nc", &["-N", "127.0.0.1", &port_of(&relay)]),
        b"over the second\n",
        STEP,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over the second\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "the first target was tried: {waited:?}"
    );
    let line = relay.wait_for_log("timed out");
    assert!(line.contains(&format!("{A}:7")), "{line}");
}
