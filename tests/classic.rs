//! Discard and chargen with nc and python3.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::process::Command;

use crate::support::{STEP, Server, python, run, tcp};

#[test]
fn discard_swallows_everything_over_tcp_and_udp() {
    let srv = Server::spawn(&["discard", ":0"]);
    let out = run(
        Command::new("nc").args(["-N", "127.0.0.1", &srv.port().to_string()]),
        &vec![b'z'; 1 << 20],
        STEP,
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let udp = Server::spawn(&["discard", "--udp", ":0"]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"gone", udp.addr()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(s.recv(&mut buf).is_err(), "discard never answers");
}

#[test]
fn chargen_streams_rotating_72_character_lines() {
    let srv = Server::spawn(&["chargen", ":0"]);
    let mut c = tcp(srv.addr());
    let mut buf = vec![0u8; 74 * 200];
    c.read_exact(&mut buf).unwrap();
    let lines: Vec<&[u8]> = buf.chunks(74).collect();
    for (i, line) in lines.iter().enumerate() {
        assert!(line.ends_with(b"\r\n"), "line {i}");
        assert_eq!(
            line[0],
            b' ' + (i % 95) as u8,
            "line {i} starts one further"
        );
        assert!(line[..72].iter().all(|b| (b' '..=b'~').contains(b)));
    }
}

#[test]
fn chargen_with_nc_and_head() {
    let srv = Server::spawn(&["chargen", ":0"]);
    let out = run(
        Command::new("sh").args(["-c", &format!("nc 127.0.0.1 {} | head -c 148", srv.port())]),
        b"",
        STEP,
    );
    assert_eq!(out.stdout.len(), 148);
    // The server notices the client left and keeps serving others.
    let mut c = tcp(srv.addr());
    let mut line = [0u8; 74];
    c.read_exact(&mut line).unwrap();
    assert_eq!(line[0], b' ');
}

#[test]
fn chargen_keeps_streaming_to_a_half_closed_client() {
    let srv = Server::spawn(&["chargen", ":0"]);
    let out = run(
        Command::new("sh").args([
            "-c",
            &format!("nc -N 127.0.0.1 {} </dev/null | head -c 740", srv.port()),
        ]),
        b"",
        STEP,
    );
    assert_eq!(out.stdout.len(), 740);
}

#[test]
fn chargen_clients_that_never_read_cost_bounded_memory() {
    let srv = Server::spawn(&["chargen", ":0"]);
    let got = python(
        r#"
import socket, sys, time
port, pid = int(sys.argv[1]), sys.argv[2]
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
# Sample while the server pushes at clients that never read.
peak = 0
for _ in range(20):
    time.sleep(0.05)
    peak = max(peak, rss_kib())
print(peak)
"#,
        &[&srv.port().to_string(), &srv.pid().to_string()],
    );
    let peak_kib: u64 = got.trim().parse().unwrap();
    assert!(peak_kib < 64 * 1024, "server RSS reached {peak_kib} KiB");
}

#[test]
fn udp_chargen_answers_with_at_most_512_characters() {
    let srv = Server::spawn(&["chargen", "--udp", ":0"]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(STEP)).unwrap();
    let mut lens = Vec::new();
    for _ in 0..50 {
        s.send_to(b"?", srv.addr()).unwrap();
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).unwrap();
        assert!(n <= 512);
        assert!(
            buf[..n]
                .iter()
                .all(|b| (b' '..=b'~').contains(b) || *b == b'\r' || *b == b'\n')
        );
        lens.push(n);
    }
    lens.sort();
    assert!(lens[0] < lens[49], "lengths vary: {lens:?}");
}

#[test]
fn rfc868_over_tcp_sends_four_bytes_and_closes() {
    let srv = Server::spawn(&["time", "serve", "tcp://:0", "--protocol", "rfc868"]);
    let mut c = tcp(srv.addr());
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 4);
    c.write_all(b"x").ok();
}
