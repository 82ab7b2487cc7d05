//! `sockit listen` with real clients: nc, python3 and sockit connect.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};

use crate::support::{STEP, Server, run, sockit_run, stderr_of, tempdir};

fn nc(args: &[&str], input: &[u8]) -> std::process::Output {
    run(std::process::Command::new("nc").args(args), input, STEP)
}

#[test]
fn one_client_is_piped_to_stdio_and_the_server_exits_when_it_leaves() {
    let mut srv = Server::spawn_piped(&["listen", ":0"]);
    srv.write_stdin(b"hello client\n");
    drop(srv.stdin.take());
    let port = srv.port().to_string();
    let out = nc(&["-N", "127.0.0.1", &port], b"hello server\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello client\n");
    srv.read_stdout_until(b"hello server\n");
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn logs_each_client_address() {
    let srv = Server::spawn(&["listen", "-k", ":0"]);
    let c = TcpStream::connect(srv.addr()).unwrap();
    let line = srv.wait_for_log("connection accepted");
    assert!(
        line.contains(&c.local_addr().unwrap().to_string()),
        "{line}"
    );
}

#[test]
fn keep_open_broadcasts_stdin_and_collects_every_client() {
    let mut srv = Server::spawn_piped(&["listen", "-k", ":0"]);
    let mut a = TcpStream::connect(srv.addr()).unwrap();
    let mut b = TcpStream::connect(srv.addr()).unwrap();
    srv.wait_for_log("connection accepted");
    srv.wait_for_log("connection accepted");
    srv.write_stdin(b"to all\n");
    for c in [&mut a, &mut b] {
        c.set_read_timeout(Some(STEP)).unwrap();
        let mut buf = [0u8; 7];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"to all\n");
    }
    a.write_all(b"from a\n").unwrap();
    srv.read_stdout_until(b"from a\n");
    b.write_all(b"from b\n").unwrap();
    srv.read_stdout_until(b"from b\n");
    // One client leaving does not end the server.
    drop(a);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.write_all(b"from c\n").unwrap();
    srv.read_stdout_until(b"from c\n");
}

#[test]
fn exec_runs_a_process_per_connection() {
    let srv = Server::spawn(&["listen", "-k", ":0", "--exec", "tr", "a-z", "A-Z"]);
    for word in ["first", "second"] {
        let mut c = TcpStream::connect(srv.addr()).unwrap();
        c.set_read_timeout(Some(STEP)).unwrap();
        c.write_all(word.as_bytes()).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap();
        assert_eq!(got, word.to_uppercase());
    }
}

#[test]
fn exec_closes_the_client_when_the_program_exits() {
    let srv = Server::spawn(&["listen", "-k", ":0", "--exec", "echo", "bye"]);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "bye\n");
}

#[test]
fn max_conns_closes_extra_clients_at_once() {
    let srv = Server::spawn(&["listen", "-k", ":0", "--max-conns", "1"]);
    let _first = TcpStream::connect(srv.addr()).unwrap();
    srv.wait_for_log("connection accepted");
    let mut second = TcpStream::connect(srv.addr()).unwrap();
    second.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 1];
    // Ok(0) is a close; a read timeout would be an error.
    assert_eq!(second.read(&mut buf).unwrap(), 0, "extra client closed");
    srv.wait_for_log("connection limit reached");
}

#[test]
fn udp_prints_datagrams_and_replies_to_the_last_sender() {
    let mut srv = Server::spawn_piped(&["listen", "--udp", ":0"]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(STEP)).unwrap();
    a.send_to(b"from a\n", srv.addr()).unwrap();
    srv.read_stdout_until(b"from a\n");
    b.send_to(b"from b\n", srv.addr()).unwrap();
    srv.read_stdout_until(b"from b\n");
    srv.write_stdin(b"answer\n");
    let mut buf = [0u8; 64];
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"answer\n");
}

#[test]
fn unix_listener_with_nc_client() {
    let dir = tempdir();
    let path = dir.path().join("l.sock");
    let mut srv = Server::spawn_piped(&["listen", &format!("unix:{}", path.display())]);
    srv.write_stdin(b"over unix\n");
    drop(srv.stdin.take());
    let out = nc(&["-N", "-U", path.to_str().unwrap()], b"back\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "over unix\n");
    srv.read_stdout_until(b"back\n");
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn len_framing_with_sockit_on_both_ends() {
    let mut srv = Server::spawn_piped(&["listen", ":0", "--frame", "len"]);
    srv.write_stdin(b"framed hello\n");
    drop(srv.stdin.take());
    let out = sockit_run(
        &["connect", "--frame", "len", &srv.hostport()],
        b"framed reply\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "framed hello\n");
    srv.read_stdout_until(b"framed reply\n");
}

#[test]
fn sigint_ends_a_single_client_session() {
    let mut srv = Server::spawn_piped(&["listen", ":0"]);
    let _c = TcpStream::connect(srv.addr()).unwrap();
    srv.wait_for_log("connection from");
    srv.signal("INT");
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn exits_when_its_client_closes_even_with_stdin_still_open() {
    let mut srv = Server::spawn_piped(&["listen", ":0"]);
    srv.write_stdin(b"some input\n");
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 11];
    c.read_exact(&mut buf).unwrap();
    drop(c);
    // stdin stays open: the server must not wait for it.
    assert!(srv.wait_exit(STEP).success());
}

#[test]
fn oversized_frame_from_a_keep_open_client_drops_only_that_client() {
    let srv = Server::spawn_piped(&["listen", "-k", ":0", "--frame", "lines", "--max-frame", "8"]);
    let mut bad = TcpStream::connect(srv.addr()).unwrap();
    bad.write_all(b"far too long for eight\n").unwrap();
    srv.wait_for_log("frame longer than 8 bytes");
    let mut good = TcpStream::connect(srv.addr()).unwrap();
    good.write_all(b"short\n").unwrap();
    srv.read_stdout_until(b"short\n");
}

#[test]
fn keep_open_skips_an_overlong_stdin_line_and_carries_on() {
    let mut srv =
        Server::spawn_piped(&["listen", "-k", ":0", "--frame", "lines", "--max-frame", "8"]);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    srv.wait_for_log("connection accepted");
    srv.write_stdin(b"this line is too long\nok\n");
    let mut buf = [0u8; 3];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok\n");
}

#[test]
fn udp_skips_an_overlong_stdin_line_and_keeps_reading_stdin() {
    let mut srv = Server::spawn_piped(&["listen", "--udp", ":0"]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(STEP)).unwrap();
    peer.send_to(b"hi\n", srv.addr()).unwrap();
    srv.read_stdout_until(b"hi\n");
    // Longer than any datagram: skipped, and the next line still goes out.
    let mut input = vec![b'x'; 70_000];
    input.extend_from_slice(b"\nafter\n");
    srv.write_stdin(&input);
    srv.wait_for_log("input line longer than");
    let mut buf = [0u8; 64];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after\n");
}
