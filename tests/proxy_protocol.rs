//! forward's `--send-proxy` and `--accept-proxy` with haproxy on the other
//! side: haproxy reading the header sockit sends, and sending the header
//! sockit takes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;

use crate::support::{Daemon, Server, free_port, python, tempdir};

const DEFAULTS: &str =
    "defaults\n  timeout connect 5s\n  timeout client 10s\n  timeout server 10s\n";

fn haproxy(config: &str, port: u16) -> (Daemon, tempfile::TempDir) {
    let dir = tempdir();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, format!("{DEFAULTS}{config}")).unwrap();
    let daemon = Daemon::start(
        Command::new("haproxy").args(["-db", "-f", path.to_str().unwrap()]),
        port,
    );
    (daemon, dir)
}

/// The address a Python client connected from, and what came back to it.
const ASK: &str = r#"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
# A slow client, when asked for: this long before it says anything.
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
got = b""
while True:
    try:
        chunk = s.recv(4096)
    except ConnectionResetError:
        break  # closed with our bytes unread
    if not chunk:
        break
    got += chunk
host, port = s.getsockname()[:2]
print(f"{host}:{port}")
print(got.decode(errors="replace"))
"#;

#[test]
fn haproxy_sees_the_real_client_behind_send_proxy() {
    let port = free_port();
    let (_haproxy, _dir) = haproxy(
        &format!(
            "frontend f\n  mode http\n  bind 127.0.0.1:{port} accept-proxy\n  \
             http-request return status 200 content-type text/plain lf-string \"%[src]:%[src_port]\"\n"
        ),
        port,
    );
    for version in ["v1", "v2"] {
        let fwd = Server::spawn(&[
            "forward",
            "127.0.0.1:0",
            &format!("127.0.0.1:{port}"),
            "--send-proxy",
            version,
        ]);
        let out = python(
            ASK,
            &[
                &fwd.port().to_string(),
                "GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n",
            ],
        );
        let (me, reply) = out.split_once('\n').unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{version}: {reply}");
        assert_eq!(
            reply.trim_end().lines().last().map(str::trim),
            Some(me),
            "{version}: haproxy saw another client than {me:?}: {reply:?}"
        );
    }
}

#[test]
fn accept_proxy_takes_haproxys_header_and_refuses_what_is_not_one() {
    // The target writes back the v1 header the relay passes on.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = target.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in target.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            let _ = conn.write_all(line.as_bytes());
        }
    });
    let fwd = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &format!("127.0.0.1:{target_port}"),
        "--accept-proxy",
        "--proxy-from",
        "127.0.0.1",
        "--send-proxy",
        "v1",
    ]);
    let (v1, v2) = (free_port(), free_port());
    let (_haproxy, _dir) = haproxy(
        &format!(
            "listen one\n  mode tcp\n  bind 127.0.0.1:{v1}\n  server s {0} send-proxy\n\
             listen two\n  mode tcp\n  bind 127.0.0.1:{v2}\n  server s {0} send-proxy-v2\n",
            fwd.hostport()
        ),
        v1,
    );
    for port in [v1, v2] {
        let out = python(ASK, &[&port.to_string(), ""]);
        let (me, reply) = out.split_once('\n').unwrap();
        let (ip, cport) = me.split_once(':').unwrap();
        assert_eq!(
            reply.trim_end(),
            format!("PROXY TCP4 {ip} 127.0.0.1 {cport} {port}"),
            "through haproxy port {port}"
        );
        fwd.wait_for_log(&format!("{me} (via 127.0.0.1:"));
    }
    // Without a header, with a broken one, or silent: closed, each logged.
    for (send, log) in [
        (
            "hello\\n",
            "no PROXY header (the connection starts \"hello\"), closed",
        ),
        ("PROXY TCP4 1.2.3.4\\r\\n", "malformed PROXY v1 line"),
        (
            "\\r\\n\\r\\n\\x00\\r\\nQUIT\\n\\x21\\x11\\xff\\xff",
            "PROXY v2 header of 65535 bytes is over the 4096-byte limit",
        ),
    ] {
        let out = python(ASK, &[&fwd.port().to_string(), send]);
        assert_eq!(out.lines().nth(1).unwrap_or_default(), "", "{send}: {out}");
        fwd.wait_for_log(log);
    }
    let quick = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &format!("127.0.0.1:{target_port}"),
        "--accept-proxy",
        "--proxy-timeout",
        "0.3",
    ]);
    quick.wait_for_log("--accept-proxy without --proxy-from: any client may name any address");
    python(ASK, &[&quick.port().to_string(), ""]);
    quick.wait_for_log("no PROXY header within 300ms, closed");
    // 0 is no limit, as for every other timeout: a slow header still counts.
    let patient = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &format!("127.0.0.1:{target_port}"),
        "--accept-proxy",
        "--proxy-timeout",
        "0",
    ]);
    let out = python(
        ASK,
        &[
            &patient.port().to_string(),
            "PROXY TCP4 192.0.2.1 127.0.0.1 1111 2222\\r\\nafter\\n",
            "0.5",
        ],
    );
    assert_eq!(out.lines().nth(1), Some("after"), "{out}");
    patient.wait_for_log("192.0.2.1:1111 (via 127.0.0.1:");
    let strict = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &format!("127.0.0.1:{target_port}"),
        "--accept-proxy",
        "--proxy-from",
        "10.0.0.0/8",
    ]);
    python(ASK, &[&strict.port().to_string(), "PROXY UNKNOWN\\r\\n"]);
    strict.wait_for_log("is outside --proxy-from, closed");
}
