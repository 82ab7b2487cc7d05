//! `sockit serve`: the suite, its table and its config file.

use crate::support::{
    ONLY_ECHO, STEP, Server, expect_reply, in_netns, netns_of, run, sockit_run, stderr_of, tcp,
    tempdir, usage_error,
};

/// A running `sockit serve` and the rows of its startup table.
struct Suite {
    _server: Server,
    rows: Vec<(String, String)>,
}

fn start_suite(args: &[&str], count: usize) -> Suite {
    let (server, rows) = Server::spawn_suite(args, count);
    Suite {
        _server: server,
        rows,
    }
}

fn addr_of(ep: &str) -> std::net::SocketAddr {
    ep.split_once("://").unwrap().1.parse().unwrap()
}

/// The design's ports are fixed, so the suite runs in a network namespace
/// of its own, and so do its clients.
#[test]
fn defaults_serve_the_suite_on_the_design_ports() {
    let Some(mut cmd) = in_netns(env!("CARGO_BIN_EXE_sockit"), &["serve"]) else {
        return;
    };
    let (server, rows) = Server::start_suite(&mut cmd, 15);
    let rows: Vec<String> = rows.iter().map(|(s, e)| format!("{s} {e}")).collect();
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
            "chat http://127.0.0.1:8088",
            "http tcp://127.0.0.1:8080",
            "socks tcp://127.0.0.1:1080",
        ]
    );
    let inside =
        |program: &str, args: &[&str]| run(&mut netns_of(server.pid(), program, args), b"", STEP);
    let page = inside("curl", &["-sS", "http://127.0.0.1:8088/"]);
    assert!(String::from_utf8_lossy(&page.stdout).contains("<title>sockit chat</title>"));
    let out = inside(env!("CARGO_BIN_EXE_sockit"), &["time", ":9000", "%Y"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().len(), 4);
    let script = r#"
import socket
t = socket.create_connection(("127.0.0.1", 7007), timeout=10)
t.sendall(b"suite")
got = b""
while len(got) < 5:
    got += t.recv(5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(10)
u.sendto(b"dgram", ("127.0.0.1", 7007))
print(got.decode(), u.recv(5).decode())
"#;
    let out = inside("python3", &["-c", script]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "suite dgram");
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

    // Each error names the rule's header and the line of its key.
    for (rule, line, why) in [
        ("targets = []\n", 5, "at least one target"),
        (
            "targets = [\":2\"]\ncongestion = \"nosuchalgo\"\n",
            6,
            "congestion control nosuchalgo",
        ),
    ] {
        let text = format!("drain_timeout = \"1s\"\n\n[[forward]]\nlisten = \":1\"\n{rule}");
        let err = config_error(&dir, &text);
        assert!(
            err.contains(&format!("line {line}")) && err.contains(why),
            "{err}"
        );
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

/// A config of only the services given, on fixed free ports.
fn reload_config(body: &str) -> String {
    format!("{ONLY_ECHO}{body}")
}

#[test]
fn sighup_adds_removes_and_swaps_while_iperf3_runs_through_a_rule_that_stays() {
    use crate::support::free_port;
    use std::io::{Read, Write};
    let dir = tempdir();
    let cfg = dir.path().join("s.toml");
    let iperf_port = free_port();
    let _iperf = crate::support::Iperf3::serve(iperf_port);
    let (echo, stays, goes, comes) = (free_port(), free_port(), free_port(), free_port());
    let rule = |listen: u16, target: u16| {
        format!(
            "[[forward]]\nlisten = \"127.0.0.1:{listen}\"\ntargets = [\"127.0.0.1:{target}\"]\n"
        )
    };
    let echo_section =
        |extra: &str| format!("[echo]\nlisten = [\"tcp://127.0.0.1:{echo}\"]\n{extra}");
    let first = format!(
        "{}{}{}",
        echo_section(""),
        rule(stays, iperf_port),
        rule(goes, echo)
    );
    std::fs::write(&cfg, reload_config(&first)).unwrap();
    let (srv, rows) = Server::spawn_suite(&["--config", cfg.to_str().unwrap()], 3);
    assert_eq!(rows.len(), 3);
    // Open before the reload: an echo client, and a client through the
    // rule that is about to go.
    let mut old_echo = tcp(format!("127.0.0.1:{echo}").parse().unwrap());
    expect_reply(&mut old_echo, b"before\n", b"before\n");
    let mut through_goes = tcp(format!("127.0.0.1:{goes}").parse().unwrap());
    expect_reply(&mut through_goes, b"relayed\n", b"relayed\n");
    let mut client = std::process::Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &stays.to_string(), "-t", "3", "-J"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    srv.wait_for_log(&format!("-> 127.0.0.1:{iperf_port}"));
    // A bad file first: one line, nothing changes.
    std::fs::write(&cfg, "[echo\n").unwrap();
    srv.signal("HUP");
    let bad = srv.wait_for_log("reload:");
    assert!(bad.contains("the old config stays"), "{bad}");
    let second = format!(
        "{}{}{}",
        echo_section("greeting = \"v2\"\n"),
        rule(stays, iperf_port),
        rule(comes, echo)
    );
    std::fs::write(&cfg, reload_config(&second)).unwrap();
    srv.signal("HUP");
    srv.wait_for_log("reload: done, 3 services running");
    // The changed echo answers new clients with the new greeting; the old
    // client is still served as before.
    let mut new_echo = tcp(format!("127.0.0.1:{echo}").parse().unwrap());
    // Raw echo sends the greeting as written.
    let mut greeting = [0u8; 2];
    new_echo.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"v2");
    expect_reply(&mut old_echo, b"after\n", b"after\n");
    // The removed rule takes no one new, and its live connection goes on.
    assert!(std::net::TcpStream::connect(("127.0.0.1", goes)).is_err());
    expect_reply(&mut through_goes, b"still\n", b"still\n");
    let mut through_comes = tcp(format!("127.0.0.1:{comes}").parse().unwrap());
    through_comes.write_all(b"new rule\n").unwrap();
    // It reaches the new echo, greeting first.
    let mut got = [0u8; 11];
    through_comes.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"v2new rule\n");
    let status = crate::support::wait_within(&mut client, STEP * 2);
    let out = crate::support::read_all(client.stdout.take().unwrap());
    assert!(status.success(), "iperf3 through the kept rule failed");
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(v["error"].is_null(), "{v}");
    assert!(v["end"]["sum_received"]["bytes"].as_u64().unwrap() > 1_000_000);
}
