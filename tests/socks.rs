//! `sockit socks` with curl and ncat as its clients, and `--proxy` on
//! connect and forward through microsocks, ncat's HTTP proxy and sockit's
//! own SOCKS server.

use std::process::Command;
use std::time::Duration;

use crate::support::{
    Daemon, Python, SILENT_SERVER, Server, free_port, python, run, sockit_run, stderr_of,
};

fn curl(args: &[&str]) -> std::process::Output {
    run(
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args),
        b"",
        Duration::from_secs(15),
    )
}

#[test]
fn curl_gets_a_page_through_sockit_socks_by_address_and_by_name() {
    let web = Server::spawn(&["http", "serve", "-l", "127.0.0.1:0"]);
    let socks = Server::spawn(&["socks", "127.0.0.1:0"]);
    let proxy = socks.hostport();
    for (flag, host) in [
        ("--socks5", "127.0.0.1"),
        ("--socks5-hostname", "localhost"),
    ] {
        let url = format!("http://{host}:{}/", web.port());
        let out = curl(&[flag, &proxy, &url]);
        assert!(out.status.success(), "{flag}: {}", stderr_of(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello World!");
    }
    // The forwarder's log lines, naming the target by what was asked.
    let open = socks.wait_for_log(&format!(" -> 127.0.0.1:{}", web.port()));
    assert!(open.contains("conn 1 127.0.0.1:"), "{open}");
    socks.wait_for_log("conn 1 closed:");
    socks.wait_for_log(&format!("(localhost:{})", web.port()));
}

#[test]
fn a_password_is_required_when_users_are_given() {
    let web = Server::spawn(&["http", "serve", "-l", "127.0.0.1:0"]);
    let socks = Server::spawn(&["socks", "127.0.0.1:0", "--user", "alice:s3cret"]);
    let url = format!("http://127.0.0.1:{}/", web.port());
    let good = curl(&[
        "--socks5",
        &socks.hostport(),
        "--proxy-user",
        "alice:s3cret",
        &url,
    ]);
    assert!(good.status.success(), "{}", stderr_of(&good));
    assert_eq!(String::from_utf8_lossy(&good.stdout), "Hello World!");
    let wrong = curl(&[
        "--socks5",
        &socks.hostport(),
        "--proxy-user",
        "alice:nope",
        &url,
    ]);
    assert!(!wrong.status.success());
    socks.wait_for_log("socks authentication failed for user 'alice'");
    let none = curl(&["--socks5", &socks.hostport(), &url]);
    assert!(!none.status.success());
    socks.wait_for_log("socks client offered no username/password method, refused");
}

#[test]
fn ncat_as_a_socks_client_and_the_rules_and_refusals() {
    let echo = Server::spawn(&["echo", "127.0.0.1:0"]);
    let socks = Server::spawn(&["socks", "127.0.0.1:0"]);
    let out = run(
        Command::new("ncat").args([
            "--proxy",
            &socks.hostport(),
            "--proxy-type",
            "socks5",
            "127.0.0.1",
            &echo.port().to_string(),
        ]),
        b"via ncat\n",
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"via ncat\n");
    // Malformed, unsupported and refused requests get their reply codes or
    // a closed connection, and a log line each; the server goes on.
    let closed = free_port();
    let got = python(
        r#"
import socket, sys
port, closed = int(sys.argv[1]), int(sys.argv[2])
def ask(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    got = b""
    while True:
        try:
            chunk = s.recv(100)
        except ConnectionResetError:
            # Closed with our request unread: a reset, not a FIN.
            return got
        if not chunk:
            return got
        got += chunk
# Plain HTTP on the SOCKS port: closed without a byte.
print(ask(b"GET / HTTP/1.0\r\n\r\n") == b"")
# UDP ASSOCIATE: method chosen, then reply 7 (command not supported).
print(ask(b"\x05\x01\x00" + b"\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x00")[:4].hex())
# CONNECT to a closed port: reply 5 (connection refused).
print(ask(b"\x05\x01\x00" + b"\x05\x01\x00\x01\x7f\x00\x00\x01" + closed.to_bytes(2, "big"))[:4].hex())
# An address type SOCKS5 lacks: reply 8 (address type not supported).
print(ask(b"\x05\x01\x00" + b"\x05\x01\x00\x09")[:4].hex())
# An empty host name: reply 4 (host unreachable).
print(ask(b"\x05\x01\x00" + b"\x05\x01\x00\x03\x00\x00\x50")[:4].hex())
"#,
        &[&socks.port().to_string(), &closed.to_string()],
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["True", "05000507", "05000505", "05000508", "05000504"],
        "{got}"
    );
    socks.wait_for_log("bad SOCKS5 handshake: not SOCKS5 (version byte 0x47)");
    socks.wait_for_log("socks command UDP ASSOCIATE (3) is not supported, refused");
    socks.wait_for_log(&format!(
        "connect to 127.0.0.1:{closed}: connection refused"
    ));
    socks.wait_for_log("address type 0x09 is not one SOCKS5 has");
    socks.wait_for_log("host name is empty or not text");
    let denied = Server::spawn(&["socks", "127.0.0.1:0", "--deny", "127.0.0.0/8"]);
    let out = curl(&[
        "--socks5",
        &denied.hostport(),
        &format!("http://127.0.0.1:{}/", echo.port()),
    ]);
    assert!(!out.status.success());
    denied.wait_for_log("denied by the access rules, closed");
}

#[test]
fn connect_reaches_a_target_through_microsocks_with_and_without_proxy_dns() {
    let echo = Server::spawn(&["echo", "127.0.0.1:0"]);
    let port = free_port();
    let _microsocks = Daemon::start(
        Command::new("microsocks").args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            "bob",
            "-P",
            "pw",
        ]),
        port,
    );
    let url = format!("socks5://bob:pw@127.0.0.1:{port}");
    let e = echo.port().to_string();
    // microsocks closes both ways when its client half-closes, so each
    // line waits for its echo (-l) before stdin's end is passed on.
    for args in [
        &["connect", "-l", "--proxy", &url, "127.0.0.1", &e][..],
        &[
            "connect",
            "-l",
            "--proxy",
            &url,
            "--proxy-dns",
            "localhost",
            &e,
        ][..],
    ] {
        let out = sockit_run(args, b"through microsocks\n");
        assert!(out.status.success(), "{args:?}: {}", stderr_of(&out));
        assert_eq!(out.stdout, b"through microsocks\n");
    }
    let bad = format!("socks5://bob:wrong@127.0.0.1:{port}");
    let out = sockit_run(&["connect", "--proxy", &bad, "127.0.0.1", &e], b"x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("the proxy refused the username or password"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn connect_tunnels_through_an_http_proxy_with_basic_auth() {
    let echo = Server::spawn(&["echo", "127.0.0.1:0"]);
    let port = free_port();
    let _ncat = Daemon::start(
        Command::new("ncat").args([
            "-l",
            "127.0.0.1",
            &port.to_string(),
            "--keep-open",
            "--proxy-type",
            "http",
            "--proxy-auth",
            "carol:pw",
        ]),
        port,
    );
    let e = echo.port().to_string();
    let good = format!("http://carol:pw@127.0.0.1:{port}");
    // ncat's proxy, like microsocks, closes both ways at a half-close: -l
    // waits for the echo first.
    let out = sockit_run(
        &["connect", "-l", "--proxy", &good, "127.0.0.1", &e],
        b"tunnelled\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"tunnelled\n");
    let bad = format!("http://carol:wrong@127.0.0.1:{port}");
    let out = sockit_run(&["connect", "--proxy", &bad, "127.0.0.1", &e], b"x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("the proxy said: HTTP/1.0 407"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn forward_targets_go_through_sockit_socks() {
    let echo = Server::spawn(&["echo", "127.0.0.1:0"]);
    let socks = Server::spawn(&["socks", "127.0.0.1:0", "--user", "fwd:pw"]);
    let proxy = format!("socks5://fwd:pw@{}", socks.hostport());
    let fwd = Server::spawn(&[
        "forward",
        "127.0.0.1:0",
        &echo.hostport(),
        "--proxy",
        &proxy,
    ]);
    let out = sockit_run(&["connect", &fwd.hostport()], b"relayed twice\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"relayed twice\n");
    socks.wait_for_log(&format!(" -> {}", echo.hostport()));
    let err = crate::support::usage_error(&[
        "forward",
        "--udp",
        "127.0.0.1:0",
        "127.0.0.1:53",
        "--proxy",
        &proxy,
    ]);
    assert!(
        err.contains("--proxy: reaches tcp targets, not udp or unix"),
        "{err}"
    );
}

/// A proxy that takes the connection and never answers is given up on
/// after the SOCKS handshake limit, even with no `-w`.
#[test]
fn a_silent_proxy_is_given_up_on_without_a_timeout_flag() {
    let (_silent, port) = Python::server(SILENT_SERVER, &[]);
    for scheme in ["socks5", "http"] {
        let proxy = format!("{scheme}://127.0.0.1:{port}");
        let out = run(
            crate::support::sockit().args(["connect", "--proxy", &proxy, "127.0.0.1", "9"]),
            b"",
            Duration::from_secs(30),
        );
        assert!(!out.status.success());
        let err = stderr_of(&out);
        assert!(
            err.contains("handshake") && err.contains("timed out"),
            "{err}"
        );
    }
}
