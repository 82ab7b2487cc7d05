//! `sockit bench echo` measures a real server and reports sane numbers.

use crate::support::{Server, run, sockit, sockit_run, stderr_of, usage_error};

#[test]
fn bench_echo_reports_json() {
    let srv = Server::spawn(&["echo", ":0"]);
    let out = sockit_run(
        &[
            "bench",
            "echo",
            &srv.hostport(),
            "-c",
            "8",
            "-d",
            "0.5",
            "-s",
            "64",
            "--json",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one json object");
    assert_eq!(v["connections"], 8);
    assert_eq!(v["errors"], 0);
    assert!(v["round_trips"].as_u64().unwrap() > 100, "{v}");
    assert!(v["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(v["p99_ms"].as_f64().unwrap() >= v["p50_ms"].as_f64().unwrap());
}

#[test]
fn bench_echo_fails_against_a_server_that_does_not_echo() {
    // A server that replies with something else: no round trip can count.
    let srv = Server::spawn(&["echo", ":0", "--reply", "nope-{}"]);
    let out = sockit_run(
        &["bench", "echo", &srv.hostport(), "-c", "2", "-d", "0.3"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("all 2 loops failed"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bench_echo_table_output() {
    let srv = Server::spawn(&["echo", ":0"]);
    let out = sockit_run(&["bench", "echo", &srv.hostport(), "-d", "0.2"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("round trips") && text.contains("p99"),
        "{text}"
    );
}

#[test]
fn bench_udp_reports_requests_and_losses() {
    let srv = Server::spawn(&["time", "serve", ":0"]);
    let out = sockit_run(
        &[
            "bench",
            "udp",
            &srv.hostport(),
            "-c",
            "4",
            "-d",
            "0.5",
            "--json",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["round_trips"].as_u64().unwrap() > 100, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
}

#[test]
fn bench_udp_counts_lost_requests() {
    // Nobody answers on this socket: every request times out.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let out = sockit_run(
        &[
            "bench",
            "udp",
            &format!(":{port}"),
            "-c",
            "2",
            "-d",
            "0.6",
            "-w",
            "0.1",
            "--json",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["round_trips"], 0, "{v}");
    assert!(v["lost"].as_u64().unwrap() >= 6, "{v}");
}

#[test]
fn bench_udp_against_a_closed_port_fails() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = sockit_run(
        &["bench", "udp", &format!(":{port}"), "-c", "2", "-d", "0.3"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("no round trip completed"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn bench_udp_refuses_stream_endpoints_and_absurd_sizes() {
    for args in [
        &["bench", "udp", "tcp://127.0.0.1:9"][..],
        &["bench", "udp", ":9", "-c", "1000000"],
        &["bench", "echo", ":9", "-d", "1e9"],
    ] {
        usage_error(args);
    }
}

#[test]
fn bench_fanout_counts_every_delivery_from_the_chat_server() {
    let srv = Server::spawn(&["chat", "serve", ":0", "--rate", "0"]);
    let out = sockit_run(
        &[
            "bench",
            "fanout",
            &srv.hostport(),
            "-n",
            "5",
            "-m",
            "40",
            "--json",
        ],
        b"",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["delivered"], 200, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert!(v["p99_ms"].as_f64().unwrap() >= v["p50_ms"].as_f64().unwrap());
}

#[test]
fn bench_fanout_reports_loss_when_the_server_throttles_the_publisher() {
    // The chat server's flood control drops most of a burst: that is loss.
    let srv = Server::spawn(&["chat", "serve", ":0", "--rate", "0.001", "--burst", "50"]);
    // Lost messages are only known lost after the generator's 5 s grace
    // period, so this run needs more than the usual step.
    let out = run(
        sockit().args([
            "bench",
            "fanout",
            &srv.hostport(),
            "-n",
            "2",
            "-m",
            "200",
            "--json",
        ]),
        b"",
        std::time::Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["lost"].as_u64().unwrap() > 0, "{v}");
}
