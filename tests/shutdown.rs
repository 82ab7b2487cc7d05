//! SIGINT/SIGTERM: stop accepting, drain live connections, exit 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{STEP, Server};

#[test]
fn sigterm_with_no_clients_exits_zero() {
    let mut srv = Server::spawn(&["echo", ":0"]);
    srv.signal("TERM");
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn sigint_lets_a_live_connection_finish_then_exits_zero() {
    let mut srv = Server::spawn(&["echo", ":0", "--drain-timeout", "10"]);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"a").unwrap();
    let mut buf = [0u8; 1];
    c.read_exact(&mut buf).unwrap();
    srv.signal("INT");
    srv.wait_for_log("stopped accepting");
    // Stopped accepting: new clients are refused…
    assert!(TcpStream::connect(srv.addr()).is_err());
    // …while the live one is still served.
    c.write_all(b"b").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"b");
    drop(c);
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn drain_timeout_closes_lingering_connections() {
    let mut srv = Server::spawn(&["echo", ":0", "--drain-timeout", "0.3"]);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"a").unwrap();
    let mut buf = [0u8; 1];
    c.read_exact(&mut buf).unwrap();
    let start = Instant::now();
    srv.signal("TERM");
    // The idle client is cut after the drain period: it sees EOF.
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    assert!(srv.wait_exit(STEP).success());
    assert!(start.elapsed() < Duration::from_secs(5));
    srv.wait_for_log("drain timeout reached");
}
