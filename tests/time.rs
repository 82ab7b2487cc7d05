//! The format-time service, RFC 868 and RFC 867, with rdate, nc, python3 and
//! sockit's own client.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{STEP, Server, python, run, sockit_run, stderr_of, tcp};

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Parses rdate's `-p` output (ctime in UTC) and checks it is within a few
/// seconds of our clock.
fn assert_rdate_is_now(out: &std::process::Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rdate failed: {text} {}",
        stderr_of(out)
    );
    let when = text
        .trim()
        .rsplit_once("]\t")
        .map_or(text.trim(), |(_, t)| t);
    let parsed = chrono::NaiveDateTime::parse_from_str(when, "%a %b %e %H:%M:%S %Y")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(when, "%a %b %e %H:%M:%S UTC %Y"))
        .unwrap_or_else(|e| panic!("cannot parse rdate output {when:?}: {e}"));
    let diff = (parsed.and_utc().timestamp() - now_unix()).abs();
    assert!(diff <= 5, "rdate says {when}, {diff} s off");
}

#[test]
fn rdate_over_tcp_and_udp_prints_the_right_time() {
    let tcp_srv = Server::spawn(&["time", "serve", ":0", "--protocol", "rfc868", "--tcp"]);
    let out = run(
        Command::new("rdate")
            .args(["-p", "-o", &tcp_srv.port().to_string(), "127.0.0.1"])
            .env("TZ", "UTC"),
        b"",
        STEP,
    );
    assert_rdate_is_now(&out);
    let udp_srv = Server::spawn(&["time", "serve", ":0", "--protocol", "rfc868"]);
    assert!(udp_srv.endpoint.starts_with("udp://"));
    let out = run(
        Command::new("rdate")
            .args(["-pu", "-o", &udp_srv.port().to_string(), "127.0.0.1"])
            .env("TZ", "UTC"),
        b"",
        STEP,
    );
    assert_rdate_is_now(&out);
}

#[test]
fn textbook_python_udp_client_gets_the_formatted_time() {
    let srv = Server::spawn(&["time", "serve", ":0", "--utc"]);
    let got = python(
        r#"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
addr = ("127.0.0.1", int(sys.argv[1]))
for fmt in [b"%Y-%m-%d", b"", b"%H"]:
    s.sendto(fmt, addr)
    data, _ = s.recvfrom(1024)
    print(data.decode("utf-8"))
print(time.strftime("%Y-%m-%d", time.gmtime()))
"#,
        &[&srv.port().to_string()],
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert_eq!(lines[0], lines[3], "today's date");
    assert!(
        lines[1].starts_with(lines[3]) && lines[1].len() == 19,
        "{got}"
    );
    assert_eq!(lines[2].len(), 2);
}

#[test]
fn bad_requests_get_error_replies_and_never_silence() {
    let srv = Server::spawn(&["time", "serve", ":0"]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let ask = |req: &[u8]| {
        s.send_to(req, srv.addr()).unwrap();
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(ask(b"%Q"), "error: unknown strftime directive '%Q'");
    assert_eq!(ask(&[b'%'; 600]), "error: request too long");
    assert_eq!(
        ask(&[0xc3, 0x28, 0xff]),
        "error: request is not valid UTF-8"
    );
    assert!(ask(b"%Y %").starts_with("error: "));
    assert_eq!(ask(&[b'x'; 512]).len(), 512, "512 bytes is still allowed");
    assert!(
        ask(b"%Y\n").ends_with('\n'),
        "a request line gets a reply line"
    );
}

#[test]
fn datagram_flood_is_survived() {
    let srv = Server::spawn(&["time", "serve", ":0"]);
    crate::support::udp_flood_then_probe(srv.port(), "alive %Y", "alive ");
}

#[test]
fn tcp_format_time_answers_each_line_and_survives_long_ones() {
    let srv = Server::spawn(&["time", "serve", ":0", "--tcp", "--utc"]);
    assert!(srv.endpoint.starts_with("tcp://"));
    let mut c = tcp(srv.addr());
    let mut req = b"%Y\n".to_vec();
    req.extend_from_slice(&[b'a'; 1000]);
    req.extend_from_slice(b"\n%m\r\n");
    c.write_all(&req).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    assert_eq!(lines[0].len(), 4);
    assert_eq!(lines[1], "error: request too long");
    assert_eq!(lines[2].len(), 2);
}

#[test]
fn daytime_over_tcp_and_udp() {
    let srv = Server::spawn(&["time", "serve", ":0", "--protocol", "daytime", "--tcp"]);
    let out = run(
        Command::new("nc").args(["127.0.0.1", &srv.port().to_string()]),
        b"",
        STEP,
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.ends_with("-UTC\r\n"), "{line:?}");
    let udp = Server::spawn(&["time", "serve", ":0", "--protocol", "daytime"]);
    let out = sockit_run(&["time", &udp.hostport(), "--protocol", "daytime"], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .ends_with("-UTC")
    );
}

#[test]
fn client_prints_rfc868_time_and_offset() {
    let srv = Server::spawn(&["time", "serve", ":0", "--protocol", "rfc868"]);
    let out = sockit_run(&["time", &srv.hostport(), "--protocol", "rfc868"], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let (when, rest) = text.split_once("  (offset ").expect("time and offset");
    let when = chrono::NaiveDateTime::parse_from_str(when, "%a %b %e %H:%M:%S %Y UTC")
        .unwrap_or_else(|e| panic!("{when:?}: {e}"));
    assert!(
        (when.and_utc().timestamp() - now_unix()).abs() <= 2,
        "{text}"
    );
    let offset: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
    assert!(offset.abs() <= 1.0, "same clock, offset {offset}");
    let srv = Server::spawn(&["time", "serve", "tcp://:0", "--protocol", "rfc868"]);
    let out = sockit_run(&["time", &srv.endpoint, "--protocol", "rfc868"], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn local_time_by_default_and_utc_on_request() {
    // A POSIX TZ string: no tzdata needed. India is UTC+05:30.
    let local = Server::start(
        crate::support::sockit()
            .env("TZ", "IST-5:30")
            .args(["time", "serve", ":0"]),
        false,
    );
    let utc = Server::start(
        crate::support::sockit()
            .env("TZ", "IST-5:30")
            .args(["time", "serve", ":0", "--utc"]),
        false,
    );
    let ask = |srv: &Server| {
        let out = sockit_run(&["time", &srv.hostport(), "%z"], b"");
        assert!(out.status.success(), "{}", stderr_of(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(ask(&local), "+0530");
    assert_eq!(ask(&utc), "+0000");
}

#[test]
fn tcp_client_and_edge_requests() {
    let srv = Server::spawn(&["time", "serve", ":0", "--tcp", "--utc"]);
    let out = sockit_run(&["time", &srv.endpoint, "%Y%n%m"], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    // %n would split the reply line: TCP replies stay one line.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 7);
    let mut c = tcp(srv.addr());
    let mut req = vec![b'x'; 512];
    req.extend_from_slice(b"\r\n\n");
    req.extend_from_slice(&[0xff, 0xfe, b'\n']);
    c.write_all(&req).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0].len(), 512, "512 bytes plus CRLF is allowed");
    assert_eq!(lines[1].len(), 19, "empty request: default format");
    assert_eq!(lines[2], "error: request is not valid UTF-8");
}

#[test]
fn client_reports_server_errors_with_exit_1() {
    let srv = Server::spawn(&["time", "serve", ":0"]);
    let out = sockit_run(&["time", &srv.hostport(), "%Q"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("server says: unknown strftime directive '%Q'"));
}

#[test]
fn client_resends_over_udp_until_a_reply_comes() {
    // A server that ignores the first two datagrams, like a lossy network.
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server.set_read_timeout(Some(STEP)).unwrap();
    let port = server.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        let mut seen = 0;
        loop {
            let (n, peer) = server.recv_from(&mut buf).unwrap();
            seen += 1;
            if seen == 3 {
                assert_eq!(&buf[..n], b"%Y");
                server.send_to(b"2026", peer).unwrap();
                return seen;
            }
        }
    });
    let out = sockit_run(
        &["time", &format!(":{port}"), "%Y", "-w", "0.2", "-r", "3"],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2026\n");
    assert_eq!(answer.join().unwrap(), 3);
}

#[test]
fn client_gives_up_after_its_retries() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let start = Instant::now();
    let out = sockit_run(&["time", &format!(":{port}"), "-w", "0.2", "-r", "2"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no reply after 3 attempts"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(silent);
}
