//! `sockit echo` with the clients the tutorials write.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};

use crate::support::{STEP, Server, TUTORIAL, python, run, tempdir};

#[test]
fn textbook_python_client_gets_exact_replies() {
    let srv = Server::spawn(&[&["echo", ":0"], TUTORIAL].concat());
    let got = python(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect(("127.0.0.1", int(sys.argv[1])))
print(s.recv(1024).decode("utf-8"))
for data in [b"Michael", b"Tracy", b"Sarah"]:
    s.send(data)
    print(s.recv(1024).decode("utf-8"))
s.send(b"exit")
print(repr(s.recv(1024)))
s.close()
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(
        got,
        "Welcome!\nHello, Michael!\nHello, Tracy!\nHello, Sarah!\nb''\n"
    );
}

#[test]
fn rfc862_echo_with_nc() {
    let srv = Server::spawn(&["echo", ":0"]);
    let out = run(
        std::process::Command::new("nc").args(["-N", "127.0.0.1", &srv.port().to_string()]),
        b"echo me\nand me\n",
        STEP,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "echo me\nand me\n");
}

#[test]
fn udp_echo_with_python_and_nc() {
    let srv = Server::spawn(&["echo", "--udp", ":0"]);
    let got = python(
        r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
for data in [b"one", b"", b"\x00\xff binary"]:
    s.sendto(data, ("127.0.0.1", int(sys.argv[1])))
    reply, _ = s.recvfrom(2048)
    print(repr(reply))
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(got, "b'one'\nb''\nb'\\x00\\xff binary'\n");
    let out = run(
        std::process::Command::new("nc").args([
            "-u",
            "-w",
            "1",
            "127.0.0.1",
            &srv.port().to_string(),
        ]),
        b"via nc\n",
        STEP,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via nc\n");
}

#[test]
fn udp_reply_template_applies_per_datagram() {
    let srv = Server::spawn(&["echo", "--udp", ":0", "--reply", "Hello, {}!"]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    s.send_to(b"Michael", srv.addr()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"Hello, Michael!");
}

#[test]
fn unix_echo() {
    let dir = tempdir();
    let path = dir.path().join("e.sock");
    let _srv = Server::spawn(&["echo", &format!("unix:{}", path.display())]);
    let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
fn lines_mode_replies_one_line_per_line() {
    let srv = Server::spawn(&["echo", ":0", "--frame", "lines", "--reply", "Hello, {}!"]);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(STEP)).unwrap();
    c.write_all(b"Michael\r\nTracy\n").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "Hello, Michael!\nHello, Tracy!\n");
}

#[test]
fn many_concurrent_clients_are_served() {
    let srv = Server::spawn(&["echo", ":0"]);
    let got = python(
        r#"
import socket, sys
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(500)]
for i, s in enumerate(socks):
    s.sendall(b"%d;" % i)
ok = 0
for i, s in enumerate(socks):
    want = b"%d;" % i
    got = b""
    while len(got) < len(want):
        chunk = s.recv(64)
        if not chunk: break
        got += chunk
    ok += got == want
print(ok)
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(got.trim(), "500");
}

#[test]
fn idle_clients_are_closed_after_the_idle_timeout() {
    let srv = Server::spawn(&["echo", ":0", "--idle-timeout", "0.3"]);
    let mut c = crate::support::tcp(srv.addr());
    crate::support::expect_reply(&mut c, b"hi", b"hi");
    let mut buf = [0u8; 1];
    // Ok(0) is the server's close; a read timeout would be an error.
    assert_eq!(c.read(&mut buf).unwrap(), 0);
}
