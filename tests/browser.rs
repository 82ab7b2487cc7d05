//! The chat page and the file listing in headless Chromium, driven by
//! playwright-core (tests/browser/*.mjs; `scripts/test.sh` installs both).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{Server, wait_within};

/// Longest a whole browser script may take.
const SCRIPT_LIMIT: Duration = Duration::from_secs(150);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where screenshots go for review.
pub fn shots() -> PathBuf {
    let dir = root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `node SCRIPT ARGS` from tests/browser, with its output lines handed to
/// `on_line` (which may answer on its stdin) until it exits.
pub fn drive(script: &str, args: &[&str], mut on_line: impl FnMut(&str, &mut dyn Write)) {
    let dir = root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run scripts/test.sh, which runs npm ci in tests/browser"
    );
    let mut node = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut stdin = node.stdin.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let out = node.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let mut failed = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                eprintln!("[browser] {line}");
                if line.starts_with("FAIL") {
                    failed = Some(line);
                    break;
                }
                on_line(&line, &mut stdin);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = node.kill();
                panic!("{script} took longer than {SCRIPT_LIMIT:?}");
            }
        }
    }
    drop(stdin);
    let status = wait_within(&mut node, Duration::from_secs(20));
    if let Some(why) = failed {
        panic!("{script}: {why}");
    }
    assert!(status.success(), "{script} exited with {status}");
}

#[test]
fn chat_page_in_chromium_with_nc_alongside() {
    let start = |chat: &str, web: &str| {
        let srv = Server::spawn(&["chat", "serve", chat, "--web", web]);
        let line = srv.wait_for_log("listening on http://");
        let web = line.split("http://").nth(1).unwrap().trim().to_string();
        (srv, web)
    };
    let (srv, web) = start("127.0.0.1:0", "127.0.0.1:0");
    let chat = srv.hostport();
    let port = srv.port().to_string();
    let shots = shots();
    let mut srv = Some(srv);
    let mut restarted = false;
    drive(
        "chat.mjs",
        &[&web, &port, shots.to_str().unwrap()],
        |line, stdin| {
            if line == "restart" {
                // A new run of the server on the same ports: the page must
                // find it again by itself.
                drop(srv.take());
                srv = Some(start(&chat, &web).0);
                restarted = true;
                writeln!(stdin, "restarted").unwrap();
            }
        },
    );
    assert!(restarted, "the script reached the restart");
    assert!(shots.join("chat.png").exists() && shots.join("chat-phone.png").exists());
}

#[test]
fn file_listing_in_chromium_sorts_uploads_and_fits_a_phone() {
    let dir = crate::support::tempdir();
    let p = dir.path();
    std::fs::create_dir(p.join("photos")).unwrap();
    std::fs::create_dir(p.join("src")).unwrap();
    for (name, len) in [
        ("big.tar.gz", 2_000_000),
        ("cat.png", 40_000),
        ("notes.txt", 12),
        ("main.rs", 900),
    ] {
        std::fs::write(p.join(name), vec![b'x'; len]).unwrap();
    }
    let src = crate::support::tempdir();
    let upload = src.path().join("from-the-browser.txt");
    std::fs::write(&upload, "sent by chromium\n").unwrap();
    let srv = Server::spawn(&[
        "http",
        "serve",
        "-l",
        "127.0.0.1:0",
        "--upload",
        p.to_str().unwrap(),
    ]);
    let base = format!("http://{}", srv.hostport());
    let shots = shots();
    drive(
        "listing.mjs",
        &[&base, upload.to_str().unwrap(), shots.to_str().unwrap()],
        |_, _| {},
    );
    assert_eq!(
        std::fs::read(p.join("from-the-browser.txt")).unwrap(),
        b"sent by chromium\n"
    );
    assert!(shots.join("listing.png").exists() && shots.join("listing-phone-dark.png").exists());
}
