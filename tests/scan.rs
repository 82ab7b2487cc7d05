//! `sockit connect -z`, the port scan, against ports whose state the test
//! sets up, with OpenBSD `nc -z` and `ncat -z` as the reference.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use crate::support::{Server, free_port, run, sockit_run, stderr_of};

/// Ports with a listener behind them, held for the test, and ports that
/// were free a moment ago.
fn ports() -> (Vec<TcpListener>, Vec<u16>) {
    let open: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let closed = (0..3).map(|_| free_port()).collect();
    (open, closed)
}

fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

/// The ports `sockit connect -z` printed with `state`.
fn shown(stdout: &[u8], state: &str) -> BTreeSet<u16> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            let (port, rest) = l.split_once('/')?;
            (rest.split_once(' ')?.1 == state).then(|| port.parse().unwrap())
        })
        .collect()
}

/// Whether `program -z 127.0.0.1 PORT` says the port is open.
fn reference_says_open(program: &str, port: u16) -> bool {
    run(
        Command::new(program).args(["-z", "-w", "2", "127.0.0.1", &port.to_string()]),
        b"",
        Duration::from_secs(10),
    )
    .status
    .success()
}

#[test]
fn open_and_closed_ports_agree_with_nc_and_ncat() {
    let (open, closed) = ports();
    let open: Vec<u16> = open.iter().map(port_of).collect();
    let all: Vec<String> = open.iter().chain(&closed).map(u16::to_string).collect();
    let out = sockit_run(&["connect", "-z", "127.0.0.1", &all.join(",")], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let found = shown(&out.stdout, "open");
    assert_eq!(found, open.iter().copied().collect(), "{out:?}");
    // Without -v only open ports are shown.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    for reference in ["nc", "ncat"] {
        let theirs: BTreeSet<u16> = open
            .iter()
            .chain(&closed)
            .copied()
            .filter(|&p| reference_says_open(reference, p))
            .collect();
        assert_eq!(found, theirs, "{reference} disagrees");
    }
    // -v shows every port, in the order written, and a summary.
    let out = sockit_run(&["-v", "connect", "-z", "127.0.0.1", &all.join(",")], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    let order: Vec<String> = text
        .lines()
        .map(|l| l.split('/').next().unwrap().to_string())
        .collect();
    assert_eq!(order, all, "{text}");
    assert_eq!(
        shown(&out.stdout, "closed"),
        closed.iter().copied().collect()
    );
    assert!(
        stderr_of(&out).contains("3 open, 3 closed, 0 timeout"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn ranges_cover_every_port_and_nothing_open_exits_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = port_of(&listener);
    // A range around the listener: every port in it is probed once.
    let (lo, hi) = (p.saturating_sub(20).max(1), p.saturating_add(20));
    let range = format!("{lo}-{hi},{p}");
    let out = sockit_run(&["-v", "connect", "-z", "127.0.0.1", &range, "--json"], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["scanned"], u64::from(hi - lo + 1));
    assert_eq!(
        doc["ports"].as_array().unwrap().len(),
        usize::from(hi - lo + 1)
    );
    assert!(
        doc["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["port"] == p && e["state"] == "open"),
        "{doc}"
    );
    drop(listener);
    let closed = free_port().to_string();
    let out = sockit_run(&["connect", "-z", "127.0.0.1", &closed], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr_of(&out).trim(),
        "sockit: no open port among the 1 scanned"
    );
}

#[test]
fn a_port_that_drops_syns_times_out() {
    // With its accept queue full and nobody accepting, Linux drops new
    // SYNs: the port neither accepts nor refuses.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let _held: Vec<TcpStream> = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).ok())
        .collect();
    let out = sockit_run(
        &[
            "-v",
            "connect",
            "-z",
            "-w",
            "0.5",
            "127.0.0.1",
            &addr.port().to_string(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}/tcp timeout", addr.port())
    );
}

#[test]
fn the_whole_port_range_on_loopback_finds_our_listeners() {
    let (open, _) = ports();
    let out = run(
        crate::support::sockit().args(["connect", "-z", "127.0.0.1", "1-65535"]),
        b"",
        Duration::from_secs(120),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let found = shown(&out.stdout, "open");
    for l in &open {
        assert!(found.contains(&port_of(l)), "{found:?}");
    }
}

#[test]
fn udp_probes_tell_answered_refused_and_silent_ports_apart() {
    let time = Server::spawn(&["time", "serve", "--protocol", "rfc868", "127.0.0.1:0"]);
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let silent_port = silent.local_addr().unwrap().port();
    let list = format!("{},{closed_port},{silent_port}", time.port());
    let out = sockit_run(
        &["-v", "connect", "-z", "-u", "-w", "1", "127.0.0.1", &list],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            format!("{}/udp open", time.port()),
            format!("{closed_port}/udp closed"),
            format!("{silent_port}/udp open|filtered"),
        ],
        "{text}"
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("open|filtered means no answer came") && err.contains("firewall"),
        "{err}"
    );
}

#[test]
fn bad_port_lists_are_usage_errors() {
    for (ports, want) in [
        ("25-20", "range '25-20' runs backwards"),
        ("0", "'0' is not a port from 1 to 65535"),
        ("http", "'http' is not a port"),
    ] {
        let err = crate::support::usage_error(&["connect", "-z", "127.0.0.1", ports]);
        assert!(err.contains(&format!("PORTS: {want}")), "{err}");
    }
    let err = crate::support::usage_error(&["connect", "-z", "127.0.0.1"]);
    assert!(err.contains("PORTS: is needed with -z"), "{err}");
}
