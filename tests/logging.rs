//! The log writer: lines leave the request path, none is lost on a clean
//! exit, and when stderr cannot keep up lines are dropped and counted
//! instead of slowing the server.

use std::io::Read;
use std::process::Stdio;

use crate::support::{STEP, python, read_all, sockit, wait_child};

/// `count` pipelined GETs on one connection; returns once every response
/// has arrived.
fn requests(port: u16, count: usize) {
    let got = python(
        r#"
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * n)
seen, buf = 0, b""
while seen < n:
    chunk = s.recv(1 << 20)
    assert chunk, f"closed after {seen} responses"
    buf += chunk
    seen = buf.count(b"HTTP/1.1 200 OK")
print(seen)
"#,
        &[&port.to_string(), &count.to_string()],
    );
    assert_eq!(got.trim(), count.to_string());
}

/// Starts `http serve` (with `args`, say a root) at the default log level
/// with stderr on a pipe the test reads only when it chooses to.
fn http_server(args: &[&str]) -> (std::process::Child, u16, std::process::ChildStderr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The port was free a moment ago; the server binds it at once.
    let mut child = sockit()
        .args(["http", "serve"])
        .args(args)
        .args(["-l", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while !first.ends_with(b"\n") {
        assert_eq!(stderr.read(&mut byte).unwrap(), 1, "server died");
        first.push(byte[0]);
    }
    assert!(first.starts_with(b"listening on "), "{first:?}");
    (child, port, stderr)
}

fn stop(child: &mut std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn no_line_is_lost_on_a_clean_exit() {
    let (mut child, port, stderr) = http_server(&[]);
    let reader = std::thread::spawn(move || read_all(stderr));
    requests(port, 3000);
    stop(&mut child);
    assert!(wait_child(&mut child).success());
    let text = String::from_utf8(reader.join().unwrap()).unwrap();
    assert_eq!(
        text.matches("\"GET /\" 200").count(),
        3000,
        "{}",
        &text[..200]
    );
    assert!(text.contains("stopped accepting"));
}

#[test]
fn a_stalled_stderr_costs_lines_not_requests() {
    let (mut child, port, stderr) = http_server(&[]);
    // Nobody reads stderr: its pipe fills, then the queue, and the server
    // must keep answering at full speed, dropping what it cannot log.
    let total = 60_000;
    let started = std::time::Instant::now();
    requests(port, total);
    assert!(started.elapsed() < STEP, "logging held up the requests");
    let reader = std::thread::spawn(move || read_all(stderr));
    stop(&mut child);
    assert!(wait_child(&mut child).success());
    let text = String::from_utf8(reader.join().unwrap()).unwrap();
    let logged = text.matches("\"GET /\" 200").count();
    let dropped: usize = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("sockit: ")?
                .strip_suffix(" log lines dropped: stderr could not keep up")
        })
        .expect("the dropped lines are reported")
        .parse()
        .unwrap();
    assert!(
        dropped > 0 && logged > 0,
        "{logged} logged, {dropped} dropped"
    );
    // Every request's line and the two shutdown lines, written or counted.
    let written = text.lines().filter(|l| l.contains(" INFO ")).count();
    assert_eq!(written + dropped, total + 2, "{written} written");
}

#[test]
fn a_pipelined_requests_time_counts_from_its_arrival() {
    let root = crate::support::tempdir();
    std::fs::write(root.path().join("big"), vec![b'x'; 32 << 20]).unwrap();
    std::fs::write(root.path().join("small"), b"small").unwrap();
    let dir = root.path().to_str().unwrap();
    let (mut child, port, stderr) = http_server(&[dir]);
    let lines = crate::support::lines_of(stderr);
    // Both requests come in one read. The client takes its time over the
    // first answer, which is more than the sockets hold, so the second
    // waits that long behind it, and its line says so.
    python(
        r#"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(0.5)
while s.recv(1 << 20):
    pass
"#,
        &[&port.to_string()],
    );
    let took = |path: &str| -> f64 {
        let line = loop {
            let line = lines.recv_timeout(STEP).expect("a request line");
            if line.contains(&format!("\"GET {path}\" 200")) {
                break line;
            }
        };
        let ms = line.strip_suffix(" ms").expect(&line);
        ms[ms.rfind(' ').unwrap() + 1..].parse().expect(&line)
    };
    let (big, small) = (took("/big"), took("/small"));
    assert!(
        big < 400.0,
        "the first answer was ready at once, yet took {big} ms"
    );
    assert!(
        small >= 400.0,
        "the second waited 0.5 s, yet took {small} ms"
    );
    stop(&mut child);
    assert!(wait_child(&mut child).success());
}

#[test]
fn a_quiet_servers_line_is_out_within_a_second() {
    let (mut child, port, stderr) = http_server(&[]);
    let lines = crate::support::lines_of(stderr);
    let started = std::time::Instant::now();
    requests(port, 1);
    loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(1))
            .expect("the line was held back");
        if line.contains("\"GET /\" 200") {
            break;
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    stop(&mut child);
    assert!(wait_child(&mut child).success());
}

#[test]
fn json_request_lines_carry_the_message_service_and_peer() {
    let port = crate::support::free_port();
    let mut child = sockit()
        .args(["--log-format", "json", "http", "serve", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = crate::support::lines_of(child.stderr.take().unwrap());
    let first = lines.recv_timeout(STEP).expect("announced");
    assert!(first.starts_with("listening on "), "{first}");
    let out = python(
        r#"
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /some/where?q=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
while s.recv(65536):
    pass
print(s.getsockname()[1])
"#,
        &[&port.to_string()],
    );
    let client = out.trim();
    let line = loop {
        let line = lines.recv_timeout(STEP).expect("a request line");
        if line.contains("/some/where") {
            break line;
        }
    };
    let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
    let peer = format!("127.0.0.1:{client}");
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["service"], "http", "{line}");
    assert_eq!(v["peer"], peer.as_str(), "{line}");
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{peer} \"GET /some/where\" 200 12 "))
            && message.ends_with(" ms"),
        "{line}"
    );
    let stamp = v["timestamp"].as_str().unwrap();
    assert!(stamp.len() == 27 && stamp.ends_with('Z'), "{line}");
    stop(&mut child);
    assert!(wait_child(&mut child).success());
}
