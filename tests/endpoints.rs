//! Endpoint forms, the announcement, address reuse and Unix socket files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use crate::support::{Python, Server, sockit_run, stderr_of, tempdir};

#[test]
fn announces_the_real_port_for_tcp_and_udp() {
    let tcp = Server::spawn(&["echo", ":0"]);
    assert!(
        tcp.endpoint.starts_with("tcp://127.0.0.1:"),
        "{}",
        tcp.endpoint
    );
    assert_ne!(tcp.port(), 0);
    let udp = Server::spawn(&["echo", "--udp", ":0"]);
    assert!(
        udp.endpoint.starts_with("udp://127.0.0.1:"),
        "{}",
        udp.endpoint
    );
    let udp2 = Server::spawn(&["echo", "udp://[::1]:0"]);
    assert!(
        udp2.endpoint.starts_with("udp://[::1]:"),
        "{}",
        udp2.endpoint
    );
}

#[test]
fn localhost_resolves_to_whichever_family_listens() {
    // The server is only on 127.0.0.1; "localhost" may resolve to ::1 first.
    let srv = Server::spawn(&["echo", "127.0.0.1:0"]);
    let out = sockit_run(
        &["connect", &format!("localhost:{}", srv.port())],
        b"via name\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"via name\n");
}

#[test]
fn restart_binds_at_once_after_serving_a_client() {
    let mut srv = Server::spawn(&["echo", ":0"]);
    let port = srv.port();
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    // Killing the server closes its side first, leaving TIME_WAIT on the
    // server's port: exactly what SO_REUSEADDR must get past.
    srv.kill();
    let again = Server::spawn(&["echo", &format!(":{port}")]);
    assert_eq!(again.port(), port);
    drop(c);
}

#[test]
fn unix_socket_stale_file_is_replaced_live_one_is_an_error() {
    let dir = tempdir();
    let path = dir.path().join("echo.sock");
    let ep = format!("unix:{}", path.display());
    let mut first = Server::spawn(&["echo", &ep]);
    assert_eq!(first.endpoint, ep);
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"unix!").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"unix!");

    // A live server's socket is not stolen.
    let out = sockit_run(&["echo", &ep], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("in use"), "{}", stderr_of(&out));

    // A dead server's socket file is replaced.
    first.kill();
    assert!(path.exists(), "SIGKILL leaves the file behind");
    let second = Server::spawn(&["echo", &ep]);
    assert_eq!(second.endpoint, ep);
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"again").unwrap();
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again");
}

#[test]
fn clean_shutdown_removes_the_unix_socket_file() {
    let dir = tempdir();
    let path = dir.path().join("s.sock");
    let mut srv = Server::spawn(&["echo", &format!("unix:{}", path.display())]);
    assert!(path.exists());
    srv.signal("TERM");
    assert!(srv.wait_exit(crate::support::STEP).success());
    assert!(!path.exists());
}

#[test]
fn ipv6_loopback_works_with_python_clients() {
    let srv = Server::spawn(&["echo", "[::1]:0"]);
    assert!(srv.endpoint.starts_with("tcp://[::1]:"), "{}", srv.endpoint);
    let got = crate::support::python(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.connect(("::1", int(sys.argv[1])))
s.send(b"six")
print(s.recv(1024).decode())
s.close()
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(got.trim(), "six");
}

#[test]
fn unix_bind_never_deletes_a_regular_file() {
    let dir = tempdir();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "precious").unwrap();
    let out = sockit_run(&["echo", &format!("unix:{}", path.display())], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("not a socket"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn abstract_unix_names_serve_python_and_sockit_with_no_file() {
    let name = format!("sockit-test-{}", std::process::id());
    let ep = format!("unix:@{name}");
    let srv = Server::spawn(&["echo", &ep]);
    assert_eq!(srv.endpoint, ep);
    let got = crate::support::python(
        r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0" + sys.argv[1])
s.sendall(b"abstract")
print(s.recv(100).decode())
"#,
        &[&name],
    );
    assert_eq!(got.trim(), "abstract");
    let out = sockit_run(&["connect", &ep], b"from sockit\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"from sockit\n");
    // Nothing was made in the working directory under that name.
    assert!(!std::path::Path::new(&format!("@{name}")).exists());
}

#[test]
fn unixgram_echo_answers_nc_and_python_and_ignores_an_unnamed_sender() {
    let dir = tempdir();
    let path = dir.path().join("echo.sock");
    let ep = format!("unixgram:{}", path.display());
    let srv = Server::spawn(&["echo", &ep]);
    assert_eq!(srv.endpoint, ep);
    // OpenBSD nc's Unix datagram client binds a path of its own to hear
    // the reply.
    let out = crate::support::run(
        std::process::Command::new("nc").args(["-uU", "-w", "2", path.to_str().unwrap()]),
        b"from nc\n",
        crate::support::STEP,
    );
    assert_eq!(out.stdout, b"from nc\n", "{}", stderr_of(&out));
    let got = crate::support::python(
        r#"
import os, socket, sys
server, me = sys.argv[1], sys.argv[2]
# No path: nothing can come back, and the server carries on.
anon = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
anon.sendto(b"unheard", server)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(me)
s.settimeout(10)
s.sendto(b"\x00binary\xff" * 1000, server)
print(s.recv(65536) == b"\x00binary\xff" * 1000)
os.unlink(me)
"#,
        &[
            path.to_str().unwrap(),
            dir.path().join("me.sock").to_str().unwrap(),
        ],
    );
    assert_eq!(got.trim(), "True");
    // A clean exit removes the socket file.
    let mut srv = srv;
    srv.signal("TERM");
    assert!(srv.wait_exit(crate::support::STEP).success());
    assert!(!path.exists());
}

#[test]
fn unixgram_connect_and_listen_talk_to_python_both_ways() {
    let dir = tempdir();
    let path = dir.path().join("srv.sock");
    let name = format!("@sockit-srv-{}", std::process::id());
    // A Python server that answers in capitals, to the client's own path,
    // bound to a path and then to an abstract name.
    for at in [path.to_str().unwrap(), &name] {
        let server = Python::spawn(
            r#"
import socket, sys
at = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + at[1:] if at.startswith("@") else at)
print("bound", flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data.upper(), peer)
"#,
            &[at],
        );
        assert_eq!(server.line(), "bound");
        let ep = format!("unixgram:{at}");
        let out = sockit_run(&["connect", &ep], b"one\ntwo\n");
        assert!(out.status.success(), "{at}: {}", stderr_of(&out));
        assert_eq!(out.stdout, b"ONE\nTWO\n", "{at}");
    }

    // listen: prints what a peer sends, and answers the last peer with
    // its stdin, whether the peer bound a path or an abstract name.
    let own_path = dir.path().join("py.sock");
    let own_name = format!("@sockit-test-{}", std::process::id());
    for own in [own_path.to_str().unwrap(), &own_name] {
        let lpath = dir.path().join("listen.sock");
        let lep = format!("unixgram:{}", lpath.display());
        let mut srv = Server::spawn_piped(&["listen", &lep]);
        let mut py = Python::spawn(
            r#"
import socket, sys
own = sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + own[1:] if own.startswith("@") else own)
s.settimeout(10)
s.sendto(b"hello listener\n", sys.argv[1])
print(s.recv(100).decode().strip(), flush=True)
"#,
            &[lpath.to_str().unwrap(), own],
        );
        srv.read_stdout_until(b"hello listener\n");
        srv.write_stdin(b"hello client\n");
        assert_eq!(py.line(), "hello client", "{own}");
        assert!(py.wait().success(), "{own}");
    }
}

#[test]
fn services_without_unix_datagrams_refuse_them_in_one_line() {
    let dir = tempdir();
    let ep = format!("unixgram:{}", dir.path().join("f.sock").display());
    let out = sockit_run(&["forward", &ep, "127.0.0.1:9"], b"");
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(err.contains("does not take unixgram"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
