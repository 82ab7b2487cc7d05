//! SIGINT/SIGTERM: stop accepting, drain live connections, exit 0.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{STEP, Server, expect_reply, tcp};

#[test]
fn sigterm_with_no_clients_exits_zero() {
    let mut srv = Server::spawn(&["echo", ":0"]);
    srv.signal("TERM");
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn sigint_lets_a_live_connection_finish_then_exits_zero() {
    let mut srv = Server::spawn(&["echo", ":0", "--drain-timeout", "10"]);
    let mut c = tcp(srv.addr());
    expect_reply(&mut c, b"a", b"a");
    srv.signal("INT");
    srv.wait_for_log("stopped accepting");
    // Stopped accepting: new clients are refused…
    assert!(TcpStream::connect(srv.addr()).is_err());
    // …while the live one is still served.
    expect_reply(&mut c, b"b", b"b");
    drop(c);
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn drain_timeout_closes_lingering_connections() {
    let mut srv = Server::spawn(&["echo", ":0", "--drain-timeout", "0.3"]);
    let mut c = tcp(srv.addr());
    expect_reply(&mut c, b"a", b"a");
    let mut buf = [0u8; 1];
    let start = Instant::now();
    srv.signal("TERM");
    // The idle client is cut after the drain period: it sees EOF.
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    assert!(srv.wait_exit(STEP).success());
    assert!(start.elapsed() < Duration::from_secs(5));
    srv.wait_for_log("drain timeout reached");
}

#[test]
fn serve_drains_and_exits_zero_on_sigterm() {
    let dir = crate::support::tempdir();
    let cfg = dir.path().join("s.toml");
    let text = format!(
        "[echo]\nlisten = [\"tcp://127.0.0.1:0\"]\n{}",
        crate::support::ONLY_ECHO
    );
    std::fs::write(&cfg, text).unwrap();
    let cfg = cfg.to_str().unwrap();
    let (mut srv, rows) = Server::spawn_suite(&["--config", cfg, "--drain-timeout", "0.3"], 1);
    let mut c = tcp(rows[0].1.trim_start_matches("tcp://").parse().unwrap());
    expect_reply(&mut c, b"x", b"x");
    srv.signal("TERM");
    // The idle client is cut when the drain period ends; then the suite exits 0.
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    assert!(srv.wait_exit(STEP).success());
}
