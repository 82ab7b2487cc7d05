//! `sockit connect` against real servers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::{
    STEP, Server, TUTORIAL, accept, capture_server, python, read_all, sockit_run, stderr_of,
    tempdir, wait_child,
};

#[test]
fn pipes_stdin_prints_reply_and_exits_zero() {
    let srv = Server::spawn(&["echo", ":0"]);
    let out = sockit_run(&["connect", &srv.hostport()], b"hi\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"hi\n");
}

#[test]
fn half_closes_on_stdin_eof_and_reads_until_the_peer_closes() {
    // The server answers only after it sees EOF, then closes: the reply can
    // only arrive if the client shut down its write half and kept reading.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut s = accept(&listener);
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(format!("got {} bytes", got.len()).as_bytes())
            .unwrap();
    });
    let out = sockit_run(&["connect", &format!(":{port}")], &[7u8; 100_000]);
    server.join().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"got 100000 bytes");
}

#[test]
fn binary_data_round_trips_exactly() {
    let srv = Server::spawn(&["echo", ":0"]);
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let out = sockit_run(&["connect", &srv.hostport()], &data);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "echoed bytes differ");
}

#[test]
fn works_against_openbsd_nc_server() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut nc = std::process::Command::new("nc")
        .args(["-l", "127.0.0.1", &port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("nc is installed");
    let mut nc_in = nc.stdin.take().unwrap();
    nc_in.write_all(b"from nc\n").unwrap();
    drop(nc_in);
    // nc prints no readiness line: retry the (instantly refused) connect
    // until it listens, bounded in time.
    let start = Instant::now();
    let out = loop {
        let out = sockit_run(&["connect", &format!(":{port}")], b"to nc\n");
        if out.status.success() || start.elapsed() > STEP {
            break out;
        }
    };
    let got = String::from_utf8(read_all(nc.stdout.take().unwrap())).unwrap();
    wait_child(&mut nc);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from nc\n");
    assert_eq!(got, "to nc\n");
}

#[test]
fn udp_sends_one_datagram_per_line_and_prints_replies() {
    let srv = Server::spawn(&["echo", "--udp", ":0", "--reply", "<{}>"]);
    let out = sockit_run(&["connect", "--udp", &srv.hostport()], b"one\ntwo\nthree\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<one>\n<two>\n<three>\n"
    );
}

#[test]
fn unix_socket_client() {
    let dir = tempdir();
    let ep = format!("unix:{}", dir.path().join("e.sock").display());
    let _srv = Server::spawn(&["echo", &ep]);
    let out = sockit_run(&["connect", &ep], b"over unix\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"over unix\n");
}

#[test]
fn classic_line_mode_against_the_tutorial_server() {
    let srv = Server::spawn(&[&["echo", ":0"], TUTORIAL].concat());
    let out = sockit_run(
        &["connect", "--lines", &srv.hostport()],
        b"Michael\nTracy\nexit\nnever sent\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Welcome!\nHello, Michael!\nHello, Tracy!\n"
    );
}

#[test]
fn crlf_flag_sends_crlf_line_endings() {
    let (port, server) = capture_server(|_| Vec::new());
    let out = sockit_run(
        &["connect", "-C", &format!(":{port}")],
        b"GET / HTTP/1.0\n\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(server.join().unwrap(), b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn refused_and_unknown_host_are_one_line_exit_1() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = sockit_run(&["connect", &format!("127.0.0.1:{port}")], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_of(&out).trim(),
        format!("sockit: connect to tcp://127.0.0.1:{port}: connection refused")
    );
    let out = sockit_run(&["connect", "no-such-host.invalid:80"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot resolve host 'no-such-host.invalid'"),
        "{err}"
    );
}

#[test]
fn connect_timeout_gives_up() {
    // A listener with a full backlog that never accepts: the kernel drops
    // further SYNs, so a connect hangs until our timeout.
    let port = python(
        r#"
import socket, os, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(0)
port = l.getsockname()[1]
fill = []
for _ in range(8):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    fill.append(c)
print(port, flush=True)
if os.fork() == 0:
    import time
    for fd in (0, 1, 2): os.close(fd)
    time.sleep(15)
    os._exit(0)
os._exit(0)
"#,
        &[],
    );
    let port = port.trim();
    let start = Instant::now();
    let out = sockit_run(&["connect", "-w", "0.5", &format!(":{port}")], b"x");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("timed out"), "{}", stderr_of(&out));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn idle_timeout_ends_a_silent_session() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut s = accept(&listener);
        let mut rest = Vec::new();
        // The client half-closes at once (empty stdin); keep our side open
        // and silent so only the idle timer can end the session.
        let _ = s.read_to_end(&mut rest);
        let _ = done_rx.recv_timeout(STEP);
    });
    let out = sockit_run(
        &["connect", "--idle-timeout", "0.3", &format!(":{port}")],
        b"",
    );
    let _ = done_tx.send(());
    holder.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("idle for 300ms"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn udp_to_localhost_reaches_an_ipv4_server() {
    let srv = Server::spawn(&["echo", "--udp", ":0"]);
    let out = sockit_run(
        &["connect", "--udp", &format!("localhost:{}", srv.port())],
        b"lo\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"lo\n");
}

#[test]
fn ipv6_tcp_and_udp_clients() {
    let tcp = Server::spawn(&["echo", "[::1]:0"]);
    let out = sockit_run(&["connect", &format!("[::1]:{}", tcp.port())], b"v6 tcp\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"v6 tcp\n");
    let udp = Server::spawn(&["echo", "udp://[::1]:0"]);
    let out = sockit_run(
        &["connect", &format!("udp://[::1]:{}", udp.port())],
        b"v6 udp\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"v6 udp\n");
}

#[test]
fn max_frame_on_the_client_side_is_an_error() {
    let (port, _server) = capture_server(|_| b"a line much longer than eight bytes\n".to_vec());
    let out = sockit_run(
        &[
            "connect",
            "--frame",
            "lines",
            "--max-frame",
            "8",
            &format!(":{port}"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("frame longer than 8 bytes"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn custom_exit_word_quits_line_mode() {
    let srv = Server::spawn(&["echo", ":0", "--frame", "lines", "--exit-word", "quit"]);
    let out = sockit_run(
        &[
            "connect",
            "--lines",
            "--frame",
            "lines",
            "--exit-word",
            "bye",
            &srv.hostport(),
        ],
        b"one\nquit\nbye\nnever\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    // "quit" reaches the server, which closes; "bye" would have quit locally.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
}

#[test]
fn on_a_terminal_it_prompts_and_talks_line_by_line() {
    // script(1) gives sockit a pseudo-terminal for stdin and stdout.
    let srv = Server::spawn(&[&["echo", ":0"], TUTORIAL].concat());
    let inner = format!(
        "{} connect {}",
        env!("CARGO_BIN_EXE_sockit"),
        srv.hostport()
    );
    let out = crate::support::run(
        std::process::Command::new("script")
            .args(["-qefc", &inner, "/dev/null"])
            .env("NO_COLOR", "1"),
        b"Michael\nexit\n",
        STEP,
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("Welcome!"), "{screen}");
    assert!(screen.contains("> "), "no prompt: {screen}");
    assert!(screen.contains("Hello, Michael!"), "{screen}");
}

#[test]
fn an_overlong_stdin_line_is_skipped_and_the_session_goes_on() {
    let (port, server) = capture_server(|got| got.to_vec());
    let out = sockit_run(
        &[
            "connect",
            "--frame",
            "lines",
            "--max-frame",
            "8",
            &format!(":{port}"),
        ],
        b"far too long for eight\nok\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(server.join().unwrap(), b"ok\n");
    assert_eq!(out.stdout, b"ok\n");
    assert!(stderr_of(&out).contains("input line longer than 8 bytes skipped"));
}

#[test]
fn source_address_and_port_are_what_the_server_sees() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let source_port = crate::support::free_port();
    let server = std::thread::spawn(move || {
        let mut s = accept(&listener);
        let peer = s.peer_addr().unwrap();
        s.write_all(b"seen\n").unwrap();
        peer
    });
    let out = sockit_run(
        &[
            "connect",
            "-s",
            "127.0.0.2",
            "-p",
            &source_port.to_string(),
            "127.0.0.1",
            &port,
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let peer = server.join().unwrap();
    assert_eq!(peer, format!("127.0.0.2:{source_port}").parse().unwrap());
    assert_eq!(out.stdout, b"seen\n");
}

#[test]
fn families_and_numeric_only_hold_the_client_to_what_was_asked() {
    let srv = Server::spawn(&["echo", "[::1]:0"]);
    let port = srv.port().to_string();
    // nc's two-argument form, with a bare IPv6 address.
    let out = sockit_run(&["connect", "-6", "-n", "::1", &port], b"six\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"six\n");
    for (args, want) in [
        (
            &["connect", "-4", "::1", &port][..],
            "'::1' has no IPv4 address",
        ),
        (
            &["connect", "-n", "localhost", &port][..],
            "'localhost' is not a numeric address, and -n asks for no DNS",
        ),
    ] {
        let out = sockit_run(args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr_of(&out).contains(want), "{}", stderr_of(&out));
    }
    let err = crate::support::usage_error(&["connect", "-4", "-s", "::1", "::1", &port]);
    assert!(
        err.contains("--source: ::1 is not of the family -4 asks for"),
        "{err}"
    );
}

#[test]
fn no_stdin_only_receives_and_never_half_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let mut s = accept(&listener);
        s.write_all(b"news\n").unwrap();
        // Neither data nor EOF comes from a client that does not read stdin.
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 16];
        s.read(&mut buf).unwrap_err().kind()
    });
    let out = sockit_run(&["connect", "-d", &format!(":{port}")], b"secret\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"news\n");
    assert_eq!(server.join().unwrap(), std::io::ErrorKind::WouldBlock);
}

#[test]
fn send_only_discards_replies_and_ends_with_stdin() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = accept(&listener);
        s.write_all(b"ignored reply\n").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let _ = tx.send(got);
        // Held open: the client must not wait for the server to close.
        std::thread::sleep(STEP * 2);
    });
    let started = Instant::now();
    let out = sockit_run(
        &["connect", "--send-only", &format!(":{port}")],
        b"payload\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(started.elapsed() < STEP);
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    assert_eq!(rx.recv_timeout(STEP).unwrap(), b"payload\n");
}

#[test]
fn output_file_copies_what_arrives_and_append_adds_to_it() {
    let srv = Server::spawn(&["echo", ":0"]);
    let dir = tempdir();
    let file = dir.path().join("copy.txt");
    let path = file.to_str().unwrap();
    let ep = srv.hostport();
    for (input, extra, want) in [
        (&b"one\n"[..], &[][..], "one\n"),
        (b"two\n", &["--append"][..], "one\ntwo\n"),
        (b"three\n", &[][..], "three\n"),
    ] {
        let args = [&["connect", "-o", path, &ep][..], extra].concat();
        let out = sockit_run(&args, input);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert_eq!(out.stdout, input);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), want);
    }
    let out = sockit_run(&["connect", "-o", "/nonexistent/dir/f", &ep], b"x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("output file /nonexistent/dir/f: no such file or directory"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn hex_dump_shows_both_directions_in_connect_and_listen() {
    let srv = Server::spawn(&["echo", ":0"]);
    let out = sockit_run(&["connect", "-x", &srv.hostport()], b"hi\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"hi\n");
    let err = stderr_of(&out);
    for want in ["conn 1 > 3 bytes", "conn 1 < 3 bytes", "68 69 0a", "|hi.|"] {
        assert!(err.contains(want), "{want}: {err}");
    }
    let listen = Server::spawn_piped(&["listen", "-x", "127.0.0.1:0"]);
    let mut c = crate::support::tcp(listen.addr());
    c.write_all(b"ping\n").unwrap();
    listen.wait_for_log("conn 1 < 5 bytes");
    listen.wait_for_log("|ping.|");
    let err = crate::support::usage_error(&["listen", "-k", "-o", "/tmp/x", ":0"]);
    assert!(
        err.contains("--output: is for one session on stdio, not -k's many clients"),
        "{err}"
    );
}
