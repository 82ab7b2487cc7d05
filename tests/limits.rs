//! Bad input and resource limits: resets, garbage, slow peers, fd exhaustion.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::support::{STEP, Server, expect_reply, python, sockit_run, stderr_of, tcp, usage_error};

fn still_echoes(srv: &Server) {
    expect_reply(&mut tcp(srv.addr()), b"alive\n", b"alive\n");
}

#[test]
fn port_in_use_is_one_line_exit_1() {
    let srv = Server::spawn(&["echo", ":0"]);
    let out = sockit_run(&["echo", &srv.hostport()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_of(&out).trim(),
        format!(
            "sockit: bind tcp://{}: address already in use",
            srv.hostport()
        )
    );
}

#[test]
fn unix_path_too_long_is_a_usage_error() {
    let long = format!("unix:/tmp/{}", "x".repeat(120));
    let err = usage_error(&["echo", &long]);
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("longer than the 107 allowed"), "{err}");
}

#[test]
fn unresolvable_listen_host_is_exit_1() {
    let out = sockit_run(&["echo", "no-such-host.invalid:0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("cannot resolve host"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn reset_mid_stream_is_logged_and_forgotten() {
    let srv = Server::spawn(&["echo", ":0", "-v"]);
    python(
        r#"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x" * 100000)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"#,
        &[&srv.port().to_string()],
    );
    srv.wait_for_log("connection ended by peer");
    still_echoes(&srv);
}

#[test]
fn binary_garbage_in_every_framing_costs_only_its_connection() {
    for frame in ["raw", "lines", "len"] {
        let srv = Server::spawn(&[
            "echo",
            ":0",
            "--frame",
            frame,
            "--reply",
            "[{}]",
            "--max-frame",
            "4096",
        ]);
        python(
            r#"
import socket, sys, random
r = random.Random(7)
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    try:
        s.sendall(bytes(r.getrandbits(8) for _ in range(r.randint(1, 20000))))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536): pass
    except (ConnectionResetError, BrokenPipeError, OSError) as e:
        # The server may close a client whose garbage breaks the framing.
        if isinstance(e, socket.timeout): raise
    s.close()
"#,
            &[&srv.port().to_string()],
        );
        let mut c = TcpStream::connect(srv.addr()).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        let msg: &[u8] = match frame {
            "len" => b"\0\0\0\x02ok",
            _ => b"ok\n",
        };
        c.write_all(msg).unwrap();
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf[..1]).unwrap();
    }
}

#[test]
fn slow_dribbling_client_does_not_block_others() {
    let srv = Server::spawn(&["echo", ":0", "--frame", "lines"]);
    let mut slow = TcpStream::connect(srv.addr()).unwrap();
    for b in b"half a li" {
        slow.write_all(&[*b]).unwrap();
    }
    still_echoes(&srv);
    slow.write_all(b"ne\n").unwrap();
    slow.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 12];
    slow.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"half a line\n");
}

/// `sockit echo :0` started under `ulimit ARGS`.
fn echo_under_ulimit(args: &str) -> Server {
    let script = format!(
        "ulimit {args} && exec {} echo :0",
        env!("CARGO_BIN_EXE_sockit")
    );
    Server::start(Command::new("sh").args(["-c", &script]), false)
}

#[test]
fn soft_fd_limit_is_raised_to_the_hard_limit() {
    // Soft limit 64 would allow ~60 clients; the server must lift it.
    let srv = echo_under_ulimit("-Sn 64");
    let got = python(
        r#"
import socket, sys
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(300)]
ok = 0
for s in socks:
    s.sendall(b"x")
for s in socks:
    ok += s.recv(1) == b"x"
print(ok)
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(got.trim(), "300");
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() {
    // Hard limit 64: the server cannot lift it, so 150 clients exhaust it.
    let srv = echo_under_ulimit("-n 64");
    python(
        r#"
import socket, sys
port = int(sys.argv[1])
socks = []
for _ in range(150):
    s = socket.socket(); s.settimeout(10); s.connect(("127.0.0.1", port)); socks.append(s)
for s in socks: s.close()
"#,
        &[&srv.port().to_string()],
    );
    srv.wait_for_log("accept failed, retrying");
    still_echoes(&srv);
}

#[test]
fn client_that_never_reads_costs_only_itself() {
    let srv = Server::spawn(&["echo", ":0"]);
    // Fill both socket buffers: the server blocks writing to this client
    // and stops reading from it, which must not stall anyone else.
    let mut hog = tcp(srv.addr());
    hog.set_nonblocking(true).unwrap();
    let chunk = vec![b'h'; 65536];
    let mut sent = 0usize;
    for _ in 0..4096 {
        match hog.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        sent > 0 && sent < 4096 * 65536,
        "the server applied backpressure"
    );
    still_echoes(&srv);
}

#[test]
fn udp_flood_of_odd_datagrams_is_survived() {
    let srv = Server::spawn(&["echo", "--udp", ":0", "--reply", "<{}>"]);
    crate::support::udp_flood_then_probe(srv.port(), "ok", "<ok>");
}
