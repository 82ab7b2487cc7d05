//! `sockit serve`: the suite, its table and its config file.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::support::{
    ONLY_ECHO, STEP, expect_reply, sockit, sockit_run, stderr_of, tcp, tempdir, usage_error,
};

/// A running `sockit serve` and the endpoints from its startup table.
struct Suite {
    child: Child,
    rows: Vec<(String, String)>,
}

impl Drop for Suite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the suite and reads the header plus `count` table rows.
fn start_suite(args: &[&str], count: usize) -> Suite {
    let mut child = sockit()
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            eprintln!("[serve] {line}");
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + STEP;
    let next = || {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("startup table")
    };
    let header = next();
    assert!(header.starts_with("service"), "{header}");
    let rows = (0..count)
        .map(|_| {
            let line = next();
            let (name, ep) = line.split_once(' ').expect("table row");
            (name.to_string(), ep.trim().to_string())
        })
        .collect();
    Suite { child, rows }
}

fn addr_of(ep: &str) -> std::net::SocketAddr {
    ep.split_once("://").unwrap().1.parse().unwrap()
}

#[test]
fn defaults_serve_the_suite_on_the_design_ports() {
    let suite = start_suite(&[], 13);
    let rows: Vec<String> = suite.rows.iter().map(|(s, e)| format!("{s} {e}")).collect();
    assert_eq!(
        rows,
        [
            "echo tcp://127.0.0.1:7007",
            "echo udp://127.0.0.1:7007",
            "discard tcp://127.0.0.1:7009",
            "discard udp://127.0.0.1:7009",
            "daytime tcp://127.0.0.1:7013",
            "daytime udp://127.0.0.1:7013",
            "chargen tcp://127.0.0.1:7019",
            "chargen udp://127.0.0.1:7019",
            "time tcp://127.0.0.1:7037",
            "time udp://127.0.0.1:7037",
            "format-time udp://127.0.0.1:9000",
            "chat tcp://127.0.0.1:12345",
            "http tcp://127.0.0.1:8080",
        ]
    );
    let out = crate::support::sockit_run(&["time", ":9000", "%Y"], b"");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 4);
    expect_reply(
        &mut tcp("127.0.0.1:7007".parse().unwrap()),
        b"suite",
        b"suite",
    );
    let mut buf = [0u8; 5];
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(STEP)).unwrap();
    u.send_to(b"dgram", "127.0.0.1:7007").unwrap();
    let n = u.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"dgram");
}

#[test]
fn config_chooses_endpoints_and_options() {
    let dir = tempdir();
    let cfg = dir.path().join("sockit.toml");
    std::fs::write(
        &cfg,
        r#"
drain_timeout = "1s"

[echo]
listen = ["tcp://127.0.0.1:0", "udp://[::1]:0"]
frame = "lines"
reply = "Hello, {}!"
"#
        .to_string()
            + ONLY_ECHO,
    )
    .unwrap();
    let suite = start_suite(&["--config", cfg.to_str().unwrap()], 2);
    assert_eq!(suite.rows.len(), 2, "{:?}", suite.rows);
    assert!(suite.rows[1].1.starts_with("udp://[::1]:"));
    let mut c = tcp(addr_of(&suite.rows[0].1));
    expect_reply(&mut c, b"config\n", b"Hello, config!\n");
}

#[test]
fn unknown_key_and_bad_value_name_key_and_line() {
    let dir = tempdir();
    let err = config_error(
        &dir,
        "[echo]\nlisten = [\"tcp://127.0.0.1:0\"]\nreplly = \"x\"\n",
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("line 3") && err.contains("replly"), "{err}");

    let err = config_error(&dir, "[echo]\nframe = \"xml\"\n");
    assert!(err.contains("line 2") && err.contains("xml"), "{err}");
}

/// Writes `text` as a config in `dir` and returns the usage error
/// `sockit serve` gives for it.
fn config_error(dir: &tempfile::TempDir, text: &str) -> String {
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, text).unwrap();
    usage_error(&["serve", "--config", cfg.to_str().unwrap()])
}

#[test]
fn a_port_in_use_fails_before_anything_starts() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[echo]\nlisten = [\"udp://127.0.0.1:0\", \"tcp://127.0.0.1:{port}\"]\n{ONLY_ECHO}"
        ),
    )
    .unwrap();
    let out = sockit_run(&["serve", "--config", cfg.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_of(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("address already in use"), "{err}");
    assert!(!err.contains("service"), "no table was printed: {err}");
}

#[test]
fn forward_rules_run_alongside_the_other_services() {
    let target = crate::support::Server::spawn(&["echo", "127.0.0.1:0"]);
    let echo_ep = target.endpoint.clone();
    let dir = tempdir();
    let cfg = dir.path().join("forward.toml");
    let text = format!(
        "{ONLY_ECHO}[echo]\nenabled = false\n\
         [[forward]]\nlisten = \"127.0.0.1:0\"\ntargets = [\"{echo_ep}\"]\n\
         [[forward]]\nlisten = \"127.0.0.1:0\"\ntargets = [\"{echo_ep}\"]\nbalance = \"failover\"\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let suite = start_suite(&["--config", cfg.to_str().unwrap()], 2);
    for (name, ep) in &suite.rows {
        assert_eq!(name, "forward");
        let mut c = tcp(addr_of(ep));
        expect_reply(&mut c, b"via serve", b"via serve");
    }

    for (rule, why) in [
        ("targets = []\n", "at least one target"),
        (
            "targets = [\":2\"]\ncongestion = \"nosuchalgo\"\n",
            "congestion control nosuchalgo",
        ),
    ] {
        let text = format!("drain_timeout = \"1s\"\n\n[[forward]]\nlisten = \":1\"\n{rule}");
        let err = config_error(&dir, &text);
        assert!(err.contains("line 3") && err.contains(why), "{err}");
    }
}

#[test]
fn http_serves_hello_world_or_a_root_directory() {
    let dir = tempdir();
    std::fs::write(dir.path().join("a.txt"), "from the root").unwrap();
    let cfg = dir.path().join("http.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[echo]\nenabled = false\n[http]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\nroot = \"{}\"\n",
            ONLY_ECHO.replace("[http]\nenabled = false\n", ""),
            dir.path().display()
        ),
    )
    .unwrap();
    let suite = start_suite(&["--config", cfg.to_str().unwrap()], 2);
    let mut c = tcp(addr_of(&suite.rows[0].1));
    use std::io::{Read, Write};
    c.write_all(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.ends_with("\r\n\r\nfrom the root"), "{resp}");
}
