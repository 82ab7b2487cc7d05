//! `sockit http serve`: curl, python's raw sockets and slow or hostile
//! clients against the hello-world and static-file server.

use std::io::{Read, Write};
use std::process::Command;

use crate::support::*;

fn serve(args: &[&str]) -> Server {
    let mut all = vec!["http", "serve", "-l", "127.0.0.1:0"];
    all.extend(args);
    Server::spawn(&all)
}

/// `curl ARGS` against the server; returns stdout.
fn curl(args: &[&str]) -> Vec<u8> {
    let out = run(
        Command::new("curl")
            .args(["-s", "--max-time", "10"])
            .args(args),
        b"",
        STEP,
    );
    assert!(out.status.success(), "curl {args:?}: {}", stderr_of(&out));
    out.stdout
}

fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn hello_world_for_curl_and_the_textbook_raw_socket_client() {
    let s = serve(&[]);
    let url = format!("http://{}/", s.hostport());
    let head = text(curl(&["-i", &url]));
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-length: 12\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\nHello World!"), "{head}");
    s.wait_for_log(r#""GET /" 200 12"#);

    let got = python(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
# Two requests on one connection (keep-alive), the second asking to close.
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
first = s.recv(4096)
s.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
print(first.endswith(b"Hello World!"), data.startswith(b"HTTP/1.1 200 OK"), data.endswith(b"Hello World!"))
"#,
        &[&s.port().to_string()],
    );
    assert_eq!(got.trim(), "True True True");

    let custom = serve(&["--body", "bonjour"]);
    assert_eq!(
        curl(&[&format!("http://{}/", custom.hostport())]),
        b"bonjour"
    );
}

#[test]
fn verbose_logs_the_request_headers() {
    let s = serve(&["-v"]);
    curl(&["-H", "X-Test: 42", &format!("http://{}/", s.hostport())]);
    s.wait_for_log("> x-test: 42");
}

/// A directory with a file, a subdirectory, a dotfile, an HTML-hostile
/// name and a symlink that leads outside.
fn site() -> tempfile::TempDir {
    let dir = tempdir();
    let p = dir.path();
    let blob: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(p.join("blob.bin"), &blob).unwrap();
    std::fs::write(p.join("page.html"), "<p>page</p>").unwrap();
    std::fs::write(p.join(".secret"), "hidden").unwrap();
    std::fs::write(p.join("<b>&name.txt"), "x").unwrap();
    std::fs::create_dir(p.join("docs")).unwrap();
    std::fs::write(p.join("docs/index.html"), "<h1>docs</h1>").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", p.join("escape")).unwrap();
    dir
}

#[test]
fn static_files_download_exactly_with_types_ranges_and_head() {
    let dir = site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let base = format!("http://{}", s.hostport());
    let blob = std::fs::read(dir.path().join("blob.bin")).unwrap();
    assert!(
        curl(&[&format!("{base}/blob.bin")]) == blob,
        "download differs"
    );
    assert_eq!(
        curl(&["-r", "1000-1099", &format!("{base}/blob.bin")]),
        &blob[1000..1100]
    );
    let head = text(curl(&["-sI", &format!("{base}/page.html")]));
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(head.contains("content-length: 11"), "{head}");
    let ranged = text(curl(&["-si", "-r", "-10", &format!("{base}/blob.bin")]));
    assert!(ranged.starts_with("HTTP/1.1 206"), "{ranged}");
    assert!(
        ranged.contains("content-range: bytes 299990-299999/300000"),
        "{ranged}"
    );
    let bad = text(curl(&["-si", "-r", "400000-", &format!("{base}/blob.bin")]));
    assert!(bad.starts_with("HTTP/1.1 416"), "{bad}");
    // A directory serves its index.html; without the slash it redirects.
    assert_eq!(curl(&[&format!("{base}/docs/")]), b"<h1>docs</h1>");
    let redirect = text(curl(&["-si", &format!("{base}/docs")]));
    assert!(redirect.starts_with("HTTP/1.1 301"), "{redirect}");
    assert!(redirect.contains("location: /docs/"), "{redirect}");
}

#[test]
fn conditional_gets_get_304() {
    let dir = site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let url = format!("http://{}/page.html", s.hostport());
    let head = text(curl(&["-sI", &url]));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap()
    };
    let (etag, modified) = (header("etag:"), header("last-modified:"));
    let code = |h: &str| {
        text(curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            h,
            &url,
        ]))
    };
    assert_eq!(code(&format!("If-None-Match: {etag}")), "304");
    assert_eq!(code("If-None-Match: \"other\""), "200");
    assert_eq!(code(&format!("If-Modified-Since: {modified}")), "304");
    assert_eq!(
        code("If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"),
        "200"
    );
}

#[test]
fn nothing_outside_the_directory_is_served() {
    let dir = site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let base = format!("http://{}", s.hostport());
    let code = |path: &str| {
        text(curl(&[
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}{path}"),
        ]))
    };
    for path in [
        "/../../etc/passwd",
        "/docs/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E%2Fetc%2Fpasswd",
        "//etc/passwd",
        "/escape",
        "/.secret",
        "/missing",
    ] {
        assert_eq!(code(path), "404", "{path}");
    }
    let listing = text(curl(&[&format!("{base}/")]));
    assert!(listing.contains("&lt;b&gt;&amp;name.txt"), "{listing}");
    assert!(!listing.contains("<b>&name"), "{listing}");
    assert!(
        !listing.contains("secret") && !listing.contains("escape"),
        "{listing}"
    );
    assert!(listing.contains("blob.bin</a></td><td>300000"), "{listing}");

    let shown = serve(&["--hidden", dir.path().to_str().unwrap()]);
    assert_eq!(
        curl(&[&format!("http://{}/.secret", shown.hostport())]),
        b"hidden"
    );
}

#[test]
fn slow_oversized_and_garbage_requests_cost_only_their_connection() {
    let s = serve(&["--header-timeout", "1", "--max-header", "8KiB"]);
    let got = python(
        r#"
import socket, sys, time
addr = ("127.0.0.1", int(sys.argv[1]))
# Dribbles headers and never finishes: closed after the header timeout.
slow = socket.create_connection(addr, timeout=10)
slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
start = time.time()
rest = slow.recv(4096)
print("slow", "closed" if time.time() - start < 5 else "late")
# A head far over the cap.
big = socket.create_connection(addr, timeout=10)
big.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
print("big", big.recv(4096).split(b"\r\n")[0].decode() or "closed")
# Binary garbage.
junk = socket.create_connection(addr, timeout=10)
junk.sendall(bytes(range(256)) * 4)
print("junk", junk.recv(4096).split(b"\r\n")[0].decode() or "closed")
# And the server still answers.
ok = socket.create_connection(addr, timeout=10)
ok.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("ok", ok.recv(4096).split(b"\r\n")[0].decode())
"#,
        &[&s.port().to_string()],
    );
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "slow closed", "{got}");
    assert!(
        lines[1] == "big HTTP/1.1 431 Request Header Fields Too Large" || lines[1] == "big closed",
        "{got}"
    );
    assert!(
        lines[2] == "junk HTTP/1.1 400 Bad Request" || lines[2] == "junk closed",
        "{got}"
    );
    assert_eq!(lines[3], "ok HTTP/1.1 200 OK", "{got}");
}

#[test]
fn max_conns_closes_extra_clients() {
    let s = serve(&["--max-conns", "1"]);
    let mut first = tcp(s.addr());
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(first.read(&mut buf).unwrap() > 0);
    let mut second = tcp(s.addr());
    let _ = second.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(second.read(&mut buf), Ok(0) | Err(_)));
    s.wait_for_log("connection limit reached");
}
