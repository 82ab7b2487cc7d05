//! Framing over TCP: the sticky-packet problem and its cure, and frame caps.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::{STEP, Server, python};

/// Sends `count` messages in one write and counts the replies that come back.
const STICKY_CLIENT: &str = r#"
import socket, struct, sys
port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
msgs = [b"msg%d" % i for i in range(count)]
if mode == "lines":
    s.sendall(b"".join(m + b"\n" for m in msgs))
elif mode == "len":
    s.sendall(b"".join(struct.pack(">I", len(m)) + m for m in msgs))
else:
    s.sendall(b"".join(msgs))
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
replies = []
if mode == "lines":
    replies = data.split(b"\n")[:-1]
elif mode == "len":
    while data:
        n = struct.unpack(">I", data[:4])[0]
        replies.append(data[4:4 + n]); data = data[4 + n:]
else:
    replies = [r + b"!" for r in data.split(b"!") if r]
want = [b"Hello, " + m + b"!" for m in msgs]
print(len(replies), replies == want)
"#;

fn sticky(mode: &str) -> (usize, bool) {
    let srv = Server::spawn(&["echo", ":0", "--frame", mode, "--reply", "Hello, {}!"]);
    let out = python(STICKY_CLIENT, &[&srv.port().to_string(), mode, "1000"]);
    let mut parts = out.split_whitespace();
    let n = parts.next().unwrap().parse().unwrap();
    (n, parts.next() == Some("True"))
}

#[test]
fn lines_framing_keeps_1000_back_to_back_messages_apart() {
    assert_eq!(sticky("lines"), (1000, true));
}

#[test]
fn len_framing_keeps_1000_back_to_back_messages_apart() {
    assert_eq!(sticky("len"), (1000, true));
}

/// The sticky-packet problem itself: in raw mode a "message" is whatever one
/// read returns, so messages sent in one write come back merged.
#[test]
fn raw_framing_merges_back_to_back_messages() {
    let (n, exact) = sticky("raw");
    assert!(n < 1000, "raw mode answered {n} separate messages");
    assert!(!exact);
}

#[test]
fn oversized_frame_closes_only_that_client() {
    let srv = Server::spawn(&["echo", ":0", "--frame", "lines", "--max-frame", "16"]);
    let mut good = TcpStream::connect(srv.addr()).unwrap();
    good.set_read_timeout(Some(STEP)).unwrap();
    let mut bad = TcpStream::connect(srv.addr()).unwrap();
    bad.set_read_timeout(Some(STEP)).unwrap();
    bad.write_all(&[b'x'; 100]).unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no reply to an oversized frame");
    srv.wait_for_log("exceeded --max-frame");
    good.write_all(b"still here\n").unwrap();
    let mut buf = [0u8; 11];
    good.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still here\n");
}

#[test]
fn oversized_length_prefix_is_refused_before_allocation() {
    let srv = Server::spawn(&["echo", ":0", "--frame", "len"]);
    let mut bad = TcpStream::connect(srv.addr()).unwrap();
    bad.set_read_timeout(Some(STEP)).unwrap();
    // Claims a 4 GiB frame; the default 1 MiB cap must refuse it.
    bad.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap();
    let mut rest = Vec::new();
    let _ = bad.read_to_end(&mut rest);
    assert!(rest.is_empty());
    srv.wait_for_log("exceeded --max-frame");
}
