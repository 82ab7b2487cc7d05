//! The command line itself: help, version, usage errors, log formats.

use crate::support::{Server, sockit_run, usage_error};

#[test]
fn help_shows_examples_for_every_subcommand() {
    for sub in [
        vec![],
        vec!["connect"],
        vec!["listen"],
        vec!["echo"],
        vec!["serve"],
        vec!["bench"],
        vec!["bench", "echo"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        let out = sockit_run(&args, b"");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:"),
            "no examples in {args:?}:\n{text}"
        );
    }
}

#[test]
fn version_prints_name_and_version() {
    let out = sockit_run(&["--version"], b"");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sockit {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_one_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["connect", "localhost:abc"],
            "invalid port 'abc' in 'localhost:abc'",
        ),
        (&["echo", "--bogus", ":0"], "unexpected argument '--bogus'"),
        (
            &["connect", "--udp", "unix:/tmp/x"],
            "--udp conflicts with 'unix:/tmp/x'",
        ),
        (&["listen", "::1:80"], "write it as [V6ADDR]:PORT"),
        (&["echo", ":0", "--frame", "xml"], "invalid value 'xml'"),
        (
            &["echo", ":0", "--max-frame", "lots"],
            "invalid size 'lots'",
        ),
    ];
    for (args, want) in cases {
        let err = usage_error(args);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("sockit: "), "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn json_logs_are_one_object_per_line() {
    let srv = Server::spawn(&["--log-format", "json", "listen", "-k", ":0"]);
    let _client = std::net::TcpStream::connect(srv.addr()).unwrap();
    let line = srv.wait_for_log("connection accepted");
    let v: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    assert_eq!(v["message"], "connection accepted");
    assert_eq!(v["level"], "INFO");
}

#[test]
fn quiet_hides_info_logs_but_not_the_announcement() {
    let srv = Server::spawn(&["-q", "listen", "-k", ":0", "--max-conns", "1"]);
    let _a = std::net::TcpStream::connect(srv.addr()).unwrap();
    let _b = std::net::TcpStream::connect(srv.addr()).unwrap();
    // The warning for the refused second client shows; the info line for the
    // first client's accept must not come before it.
    let lines = srv.logs_until("connection limit");
    assert!(lines.last().unwrap().contains("WARN"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("accepted")), "{lines:?}");
}

#[test]
fn verbose_shows_debug_logs() {
    let srv = Server::spawn(&["-v", "echo", ":0"]);
    let _c = std::net::TcpStream::connect(srv.addr()).unwrap();
    let line = srv.wait_for_log("connection accepted");
    assert!(line.contains("DEBUG"), "{line}");
}

#[test]
fn zero_and_huge_values_are_usage_errors_not_panics() {
    for args in [
        &["echo", ":0", "--max-frame", "0"][..],
        &["echo", ":0", "--max-conns", "0"],
        &["connect", "-w", "1e30", ":1"],
        &["echo", ":0", "--drain-timeout", "1e30"],
    ] {
        usage_error(args);
    }
}

#[test]
fn completions_load_in_their_shells() {
    let dir = crate::support::tempdir();
    for (shell, check) in [("bash", "bash"), ("zsh", "zsh"), ("fish", "fish")] {
        let out = sockit_run(&["completions", shell], b"");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("max-conns"), "{shell} completes flags");
        let path = dir.path().join(format!("sockit.{shell}"));
        std::fs::write(&path, &script).unwrap();
        let loaded = crate::support::run(
            std::process::Command::new(check).arg("-n").arg(&path),
            b"",
            crate::support::STEP,
        );
        assert!(
            loaded.status.success(),
            "{check} -n: {}",
            crate::support::stderr_of(&loaded)
        );
    }
    let out = sockit_run(&["completions", "tcsh"], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_renders_every_subcommand() {
    let dir = crate::support::tempdir();
    let out = sockit_run(&["man"], b"");
    assert!(out.status.success());
    let page = dir.path().join("sockit.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let shown = crate::support::run(
        std::process::Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100"),
        b"",
        crate::support::STEP,
    );
    assert!(
        shown.status.success(),
        "{}",
        crate::support::stderr_of(&shown)
    );
    let text = String::from_utf8_lossy(&shown.stdout);
    for needle in [
        "sockit-chat-serve",
        "sockit-forward",
        "--max-conns",
        "--idle-timeout",
    ] {
        assert!(text.contains(needle), "man page lacks {needle}");
    }
}

#[test]
fn each_service_shows_its_own_limit_defaults() {
    let default_of = |args: &[&str], flag: &str| {
        let out = sockit_run(args, b"");
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let at = help.find(&format!("{flag} <")).expect("flag in help");
        let rest = &help[at..];
        let start = rest.find("[default: ").expect("a default") + 10;
        rest[start..start + rest[start..].find(']').unwrap()].to_string()
    };
    assert_eq!(default_of(&["echo", "--help"], "--idle-timeout"), "5m");
    assert_eq!(default_of(&["forward", "--help"], "--idle-timeout"), "0s");
    assert_eq!(
        default_of(&["chat", "serve", "--help"], "--max-conns"),
        "10000"
    );
    assert_eq!(default_of(&["echo", "--help"], "--max-conns"), "16384");
}
