//! `--metrics EP`: Prometheus text at /metrics, read by Python's
//! `prometheus_client` parsers (OpenMetrics, strict, and the classic text
//! format) after real traffic through forward, socks, http and chat.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// The metrics endpoint a server announced after its own.
fn metrics_url(s: &Server) -> String {
    let line = s.wait_for_log("listening on http://");
    let at = line.split("listening on ").nth(1).unwrap().trim();
    format!("{at}/metrics")
}

/// Every sample as `name{labels} value`, labels sorted, as parsed by
/// prometheus_client's OpenMetrics parser; the classic text parser must
/// read the same page too.
fn scrape(url: &str) -> Vec<String> {
    let out = python(
        r##"
import sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
from prometheus_client.parser import text_string_to_metric_families as classic
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    assert r.headers["Content-Type"].startswith("application/openmetrics-text"), r.headers
    page = r.read().decode()
assert page.endswith("# EOF\n"), page[-100:]
list(classic(page.replace("# EOF\n", "")))
for fam in om(page):
    for s in fam.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"##,
        &[url],
    );
    out.lines().map(str::to_string).collect()
}

/// The value of the sample `name{labels}` (labels in sorted order).
fn value(samples: &[String], sample: &str) -> Option<f64> {
    samples
        .iter()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `sample` has `want`, for a connection that closes just
/// after its log line; bounded by `STEP`.
fn scrape_until(url: &str, sample: &str, want: f64) -> Vec<String> {
    let deadline = Instant::now() + STEP;
    loop {
        let got = scrape(url);
        if value(&got, sample) == Some(want) {
            return got;
        }
        assert!(Instant::now() < deadline, "{sample} never {want}: {got:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forward_counts_connections_bytes_refusals_errors_and_connect_times() {
    let echo = Server::spawn(&["echo", "127.0.0.1:0"]);
    let fwd = Server::spawn(&[
        "forward",
        "--max-conns",
        "1",
        "--metrics",
        "127.0.0.1:0",
        "127.0.0.1:0",
        &echo.hostport(),
    ]);
    let url = metrics_url(&fwd);
    python(
        r#"
import socket, struct, sys
addr = ("127.0.0.1", int(sys.argv[1]))
held = socket.create_connection(addr, timeout=10)
held.sendall(b"x" * 1000)
got = b""
while len(got) < 1000:
    got += held.recv(65536)
# Over --max-conns: closed unserved.
extra = socket.create_connection(addr, timeout=10)
assert extra.recv(10) == b""
held.close()
"#,
        &[&fwd.port().to_string()],
    );
    fwd.wait_for_log("1000 bytes up, 1000 bytes down");
    let m = scrape_until(&url, r#"sockit_connections_open{service="forward"}"#, 0.0);
    let v = |s: &str| value(&m, s).unwrap_or_else(|| panic!("no {s} in {m:#?}"));
    assert_eq!(v(r#"sockit_connections_total{service="forward"}"#), 1.0);
    assert_eq!(
        v(r#"sockit_connections_refused_total{reason="max_conns",service="forward"}"#),
        1.0
    );
    assert_eq!(
        v(r#"sockit_received_bytes_total{service="forward"}"#),
        1000.0
    );
    assert_eq!(v(r#"sockit_sent_bytes_total{service="forward"}"#), 1000.0);
    assert_eq!(
        v(r#"sockit_connect_duration_seconds_count{service="forward"}"#),
        1.0
    );
    // The metrics endpoint counts itself like any service.
    assert!(v(r#"sockit_connections_total{service="metrics"}"#) >= 1.0);

    // A client that resets mid-relay is an error of kind "reset".
    python(
        r#"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"y" * 10)
assert s.recv(10) == b"y" * 10
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
"#,
        &[&fwd.port().to_string()],
    );
    scrape_until(
        &url,
        r#"sockit_errors_total{kind="reset",service="forward"}"#,
        1.0,
    );
}

#[test]
fn http_counts_requests_by_status_with_a_latency_histogram() {
    let s = Server::spawn(&[
        "http",
        "serve",
        "-l",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let url = metrics_url(&s);
    let base = format!("http://{}/", s.hostport());
    for args in [&[][..], &[], &[], &["-X", "POST"]] {
        let out = run(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null"])
                .args(args)
                .arg(&base),
            b"",
            STEP,
        );
        assert!(out.status.success());
    }
    // Garbage is a bad request for the error count.
    python(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"\x00\x01 not http\r\n\r\n")
s.recv(4096)
"#,
        &[&s.port().to_string()],
    );
    let m = scrape_until(
        &url,
        r#"sockit_errors_total{kind="bad_request",service="http"}"#,
        1.0,
    );
    let v = |n: &str| value(&m, n).unwrap_or_else(|| panic!("no {n} in {m:#?}"));
    assert_eq!(
        v(r#"sockit_http_requests_total{code="200",service="http"}"#),
        3.0
    );
    assert_eq!(
        v(r#"sockit_http_requests_total{code="405",service="http"}"#),
        1.0
    );
    assert_eq!(
        v(r#"sockit_http_request_duration_seconds_count{service="http"}"#),
        4.0
    );
    let inf = v(r#"sockit_http_request_duration_seconds_bucket{le="+Inf",service="http"}"#);
    assert_eq!(inf, 4.0);
    // Three "Hello World!" bodies and the 405 page.
    assert!(v(r#"sockit_sent_bytes_total{service="http"}"#) > 36.0);

    // Only /metrics, only GET.
    let code = |args: &[&str]| {
        let out = run(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(args),
            b"",
            STEP,
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(code(&[&url.replace("/metrics", "/other")]), "404");
    assert_eq!(code(&["-X", "POST", &url]), "405");
}

#[test]
fn chat_counts_messages_and_open_clients() {
    let s = Server::spawn(&["chat", "serve", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let url = metrics_url(&s);
    let script = format!(
        "{}\n{}",
        crate::chat_client!(),
        r#"
a, b = Chat(int(sys.argv[1]), "a"), Chat(int(sys.argv[1]), "b")
for i in range(3):
    a.send(f"line {i}")
b.count("<a> line 2", 1)
print(sys.argv[2], flush=True)
sys.stdin.readline()
"#
    );
    let mut py = Python::spawn(&script, &[&s.port().to_string(), "said"]);
    assert_eq!(py.line(), "said");
    let m = scrape(&url);
    assert_eq!(
        value(&m, "sockit_chat_messages_total{}"),
        Some(3.0),
        "{m:#?}"
    );
    assert_eq!(
        value(&m, r#"sockit_connections_open{service="chat"}"#),
        Some(2.0),
        "{m:#?}"
    );
    assert!(py.wait().success());
}

#[test]
fn serves_metrics_key_shows_in_its_table_and_socks_is_counted() {
    let dir = tempdir();
    let cfg = dir.path().join("m.toml");
    let only_socks = ONLY_ECHO.replace("[socks]\nenabled = false\n", "");
    std::fs::write(
        &cfg,
        // A top-level key, as --metrics on the command line.
        format!(
            "metrics = \"127.0.0.1:0\"\n{only_socks}[echo]\nenabled = false\n[socks]\nlisten = [\"127.0.0.1:0\"]\n"
        ),
    )
    .unwrap();
    let (srv, rows) = Server::spawn_suite(&["--config", cfg.to_str().unwrap()], 2);
    assert_eq!(rows[0].0, "socks", "{rows:?}");
    assert_eq!(rows[1].0, "metrics", "{rows:?}");
    assert!(rows[1].1.starts_with("http://127.0.0.1:"), "{rows:?}");
    let url = format!("{}/metrics", rows[1].1);
    let target = Server::spawn(&["echo", "127.0.0.1:0"]);
    let (host, port) = (target.addr().ip().to_string(), target.port().to_string());
    let out = run(
        Command::new("nc").args(["-N", "-X", "5", "-x", &srv.hostport(), &host, &port]),
        b"hello\n",
        STEP,
    );
    assert_eq!(out.stdout, b"hello\n");
    let m = scrape_until(&url, r#"sockit_connections_open{service="socks"}"#, 0.0);
    assert_eq!(
        value(
            &m,
            r#"sockit_connect_duration_seconds_count{service="socks"}"#
        ),
        Some(1.0),
        "{m:#?}"
    );
    assert_eq!(
        value(&m, r#"sockit_received_bytes_total{service="socks"}"#),
        Some(6.0),
        "{m:#?}"
    );
}
