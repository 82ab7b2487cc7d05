//! Floods and restarts: tens of thousands of held connections, connect and
//! close cycles by the hundred thousand, and SIGTERM in the middle of full
//! load. Each measures the server from outside, through /proc.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::{Python, STEP, Server, expect_reply, tcp};

/// Connections each flood opens and holds, where the descriptor limit
/// allows.
const HELD: usize = 20_000;

/// Connections a server may be flooded with when each costs it `fds_each`
/// descriptors: `HELD`, or as many as its descriptor limit (inherited from
/// this process, raised if permitted) leaves room for, with a message.
fn flood_size(fds_each: usize) -> usize {
    use rlimit::Resource;
    let want = (HELD * fds_each + 256) as u64;
    let (soft, hard) = Resource::NOFILE.get().expect("getrlimit");
    let limit = if hard >= want || Resource::NOFILE.set(soft.max(want), want).is_ok() {
        want
    } else {
        hard
    };
    let n = (limit as usize - 256) / fds_each;
    if n < HELD {
        eprintln!(
            "the descriptor hard limit here is {hard} and cannot be raised \
             (no CAP_SYS_RESOURCE): flooding with {n} connections, not {HELD}"
        );
    }
    n.min(HELD)
}

fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server alive");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
}

fn rss_mib(pid: u32) -> f64 {
    proc_status(pid, "VmRSS:") as f64 / 1024.0
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("server alive")
        .count()
}

/// Polls until `pid`'s count of open descriptors satisfies `done`; bounded.
fn wait_fds(pid: u32, what: &str, done: impl Fn(usize) -> bool, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let n = open_fds(pid);
        if done(n) {
            return n;
        }
        assert!(Instant::now() < deadline, "{what}: server has {n} fds open");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Client processes holding connections open until dropped. Separate
/// processes, so neither this process's descriptor limit nor the other
/// tests running beside it are touched.
struct Holders(Vec<Python>);

/// Connections one holder process opens.
const PER_HOLDER: usize = 5_000;

impl Holders {
    fn open(addr: SocketAddr, n: usize) -> Holders {
        let start = Instant::now();
        let mut holders = Holders(Vec::new());
        let mut left = n;
        while left > 0 {
            let count = left.min(PER_HOLDER);
            left -= count;
            let source = format!("127.0.0.{}", 10 + holders.0.len());
            holders.0.push(Python::spawn(
                HOLDER,
                &[
                    &addr.ip().to_string(),
                    &addr.port().to_string(),
                    &count.to_string(),
                    &source,
                ],
            ));
        }
        for holder in &holders.0 {
            let line = holder.line_within(6 * STEP);
            assert_eq!(line.trim(), "held", "holder: {line}");
        }
        eprintln!("holding {n} connections, opened in {:?}", start.elapsed());
        holders
    }
}

/// Opens argv[3] connections from source address argv[4], says `held`,
/// and keeps them until killed. Each holder has its own source address, so
/// each has the whole ephemeral port range to itself: past half of one
/// range, Linux's search for a free port gets slow.
const HOLDER: &str = r#"
import socket, sys
host, port, n, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def conn():
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
    s.bind((source, 0))
    s.settimeout(10)
    s.connect((host, port))
    return s
held = [conn() for _ in range(n)]
print("held", flush=True)
sys.stdin.read()
"#;

/// Holds a flood of connections against `srv` (each costs it `fds_each`
/// descriptors), checks that `probe` is still served and that memory stays
/// under `max_kib_each` a connection (measured in this debug build: about
/// 3-4 KiB for echo, chat and http, 5.3 KiB for forward's two sockets; 32
/// KiB for http before its buffers waited for the first request, 7 KiB
/// for all of them while TLS's handshake state sized every task), then
/// lets go and checks that every descriptor comes back and `probe` still
/// works.
fn flood(srv: &Server, fds_each: usize, max_kib_each: f64, probe: impl Fn()) {
    let pid = srv.pid();
    let n = flood_size(fds_each);
    let base = open_fds(pid);
    probe();
    // The probe's descriptor may linger for a moment.
    wait_fds(pid, "after the probe", |n| n <= base, STEP);
    let base_rss = rss_mib(pid);
    let held = Holders::open(srv.addr(), n);
    let want = base + n * fds_each;
    wait_fds(pid, "accepting the flood", |n| n >= want, 6 * STEP);
    probe();
    let rss = rss_mib(pid);
    let each = (rss - base_rss) * 1024.0 / n as f64;
    eprintln!("{n} held: {rss:.1} MiB RSS (from {base_rss:.1}), {each:.1} KiB each");
    assert!(
        each < max_kib_each,
        "{each:.1} KiB a connection ({rss:.1} MiB RSS) with {n} held"
    );
    drop(held);
    wait_fds(pid, "closing the flood", |n| n <= base, 6 * STEP);
    probe();
}

fn sigterm_exits_zero(mut srv: Server) {
    srv.signal("TERM");
    assert!(srv.wait_exit(STEP).success(), "clean exit after the flood");
}

#[test]
fn echo_holds_20k_connections_and_serves_others() {
    let srv = Server::spawn(&["echo", "127.0.0.1:0", "--max-conns", "30000"]);
    flood(&srv, 1, 6.0, || {
        expect_reply(&mut tcp(srv.addr()), b"still here\n", b"still here\n")
    });
    sigterm_exits_zero(srv);
}

#[test]
fn forward_holds_20k_connections_and_serves_others() {
    let target = Server::spawn(&["echo", "127.0.0.1:0", "--max-conns", "30000"]);
    let srv = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &target.hostport(),
        "--max-conns",
        "30000",
    ]);
    // Each relayed connection is two descriptors: client side and target side.
    flood(&srv, 2, 9.0, || {
        expect_reply(&mut tcp(srv.addr()), b"relayed\n", b"relayed\n")
    });
    sigterm_exits_zero(srv);
}

/// A line-mode chat client that reads what it needs, bounded.
struct Line(BufReader<TcpStream>);

impl Line {
    fn new(addr: SocketAddr) -> Line {
        let s = tcp(addr);
        s.set_read_timeout(Some(STEP)).unwrap();
        Line(BufReader::new(s))
    }

    fn send(&mut self, line: &str) {
        self.0
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    fn expect(&mut self, needle: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.0.read_line(&mut line).expect("chat line within STEP");
            assert!(n > 0, "chat closed before {needle:?}");
            if line.contains(needle) {
                return;
            }
        }
    }
}

#[test]
fn chat_holds_20k_clients_and_serves_others() {
    let srv = Server::spawn(&["chat", "serve", "127.0.0.1:0", "--max-conns", "30000"]);
    flood(&srv, 1, 6.0, || {
        let mut a = Line::new(srv.addr());
        a.expect("welcome");
        a.send("/nick probe-a");
        a.expect("now known as probe-a");
        a.send("/join #probe");
        a.expect("joined #probe");
        let mut b = Line::new(srv.addr());
        b.send("/join #probe");
        b.expect("joined #probe");
        a.expect("joined #probe");
        a.send("still talking");
        b.expect("<probe-a> still talking");
    });
    sigterm_exits_zero(srv);
}

#[test]
fn http_holds_20k_connections_and_serves_others() {
    let srv = Server::spawn(&[
        "http",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--max-conns",
        "30000",
        "--header-timeout",
        "120",
    ]);
    flood(&srv, 1, 6.0, || {
        let mut c = tcp(srv.addr());
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 "), "{reply:?}");
        assert!(reply.ends_with("Hello World!\n") || reply.ends_with("Hello World!"));
    });
    sigterm_exits_zero(srv);
}

/// Runs `cycles` connect/exchange/close cycles against `addr` from
/// `threads` threads; each cycle lets the server close first (half-close,
/// then read to EOF), so the client side keeps no TIME_WAIT port.
fn cycle(addr: SocketAddr, cycles: usize, threads: usize) {
    let left = Arc::new(AtomicUsize::new(cycles));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let left = left.clone();
            thread::spawn(move || {
                let mut buf = Vec::with_capacity(16);
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let mut c = TcpStream::connect_timeout(&addr, STEP).expect("connect");
                    c.set_read_timeout(Some(STEP)).unwrap();
                    c.write_all(b"ping\n").unwrap();
                    c.shutdown(Shutdown::Write).unwrap();
                    buf.clear();
                    c.read_to_end(&mut buf).expect("echo then EOF");
                    assert_eq!(buf, b"ping\n");
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("cycle worker");
    }
}

/// 100k cycles against `srv`: after a warm-up, neither its descriptors nor
/// its memory may grow.
fn cycles_leak_nothing(srv: &Server) {
    let pid = srv.pid();
    cycle(srv.addr(), 10_000, 4);
    let base = wait_fds(pid, "after warm-up", |_| true, STEP);
    let base_rss = rss_mib(pid);
    let start = Instant::now();
    cycle(srv.addr(), 100_000, 4);
    eprintln!("100k cycles in {:?}", start.elapsed());
    wait_fds(pid, "after 100k cycles", |n| n <= base, STEP);
    let rss = rss_mib(pid);
    eprintln!("RSS {base_rss:.1} MiB after warm-up, {rss:.1} MiB after 100k cycles");
    // Allocator slack aside, a leak of even 64 bytes a cycle would show.
    assert!(
        rss <= base_rss * 1.05 + 2.0,
        "RSS grew from {base_rss:.1} to {rss:.1} MiB over 100k cycles"
    );
}

#[test]
fn echo_connect_close_cycles_leak_nothing() {
    let srv = Server::spawn(&["echo", "127.0.0.1:0"]);
    cycles_leak_nothing(&srv);
}

#[test]
fn forward_connect_close_cycles_leak_nothing() {
    let target = Server::spawn(&["echo", "127.0.0.1:0"]);
    let srv = Server::spawn(&["forward", "127.0.0.1:0", &target.hostport()]);
    cycles_leak_nothing(&srv);
}

/// The bytes client `i` sends: `len` of a cheap pseudo-random stream, so a
/// byte lost, repeated or swapped changes the hash.
fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i + 1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `clients` connections each stream `len` bytes through `srv` (an echo,
/// directly or behind a forward). Once every one has had its first bytes
/// back, the server gets SIGTERM; each must still get back exactly what it
/// sent, checked by hash, and the server must then exit 0.
fn sigterm_loses_no_accepted_byte(mut srv: Server, clients: usize, len: usize) {
    let addr = srv.addr();
    let (started_tx, started) = std::sync::mpsc::channel();
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let started_tx = started_tx.clone();
            thread::spawn(move || {
                let data = payload(i as u64, len);
                let sent = Sha256::digest(&data);
                let c = tcp(addr);
                c.set_read_timeout(Some(STEP)).unwrap();
                let mut writer = c.try_clone().unwrap();
                let feeder = thread::spawn(move || {
                    for chunk in data.chunks(64 * 1024) {
                        writer.write_all(chunk).expect("server still reading");
                    }
                    writer.shutdown(Shutdown::Write).unwrap();
                });
                let mut reader = c;
                let mut hash = Sha256::new();
                let mut got = 0usize;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = reader.read(&mut buf).expect("echo within STEP");
                    if n == 0 {
                        break;
                    }
                    if got == 0 {
                        started_tx.send(()).unwrap();
                    }
                    got += n;
                    hash.update(&buf[..n]);
                }
                feeder.join().unwrap();
                assert_eq!(got, len, "client {i}: bytes back");
                assert_eq!(hash.finalize(), sent, "client {i}: what came back");
            })
        })
        .collect();
    drop(started_tx);
    for _ in 0..clients {
        started.recv_timeout(STEP).expect("every client under way");
    }
    srv.signal("TERM");
    srv.wait_for_log("stopped accepting");
    for w in workers {
        w.join().expect("client kept every byte");
    }
    assert!(srv.wait_exit(STEP).success(), "exit 0 after draining");
}

#[test]
fn sigterm_under_load_loses_no_echoed_byte() {
    let srv = Server::spawn(&["echo", "127.0.0.1:0", "--drain-timeout", "60"]);
    sigterm_loses_no_accepted_byte(srv, 32, 4 << 20);
}

#[test]
fn sigterm_under_load_loses_no_forwarded_byte() {
    let target = Server::spawn(&["echo", "127.0.0.1:0", "--drain-timeout", "60"]);
    let srv = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &target.hostport(),
        "--drain-timeout",
        "60",
    ]);
    sigterm_loses_no_accepted_byte(srv, 32, 4 << 20);
}
