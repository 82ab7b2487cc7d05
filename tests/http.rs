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
    std::fs::create_dir(p.join("trap")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", p.join("trap/index.html")).unwrap();
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
    assert!(redirect.contains("location: /docs/\r\n"), "{redirect}");
    // Not `//docs/`, which a browser reads as the host `docs`; and the
    // query goes along.
    let redirect = text(curl(&[
        "-si",
        "--path-as-is",
        &format!("{base}//docs?sort=size"),
    ]));
    assert!(
        redirect.contains("location: /docs/?sort=size\r\n"),
        "{redirect}"
    );
    // Range units are case-insensitive; an empty file's suffix range is
    // the whole (empty) file.
    let ranged = text(curl(&[
        "-si",
        "-H",
        "Range: Bytes=0-9",
        &format!("{base}/blob.bin"),
    ]));
    assert!(ranged.starts_with("HTTP/1.1 206"), "{ranged}");
    std::fs::write(dir.path().join("empty"), "").unwrap();
    let (code, body) = curl_status(&["-H", "Range: bytes=-1", &format!("{base}/empty")]);
    assert_eq!((code.as_str(), body.as_str()), ("200", ""));
}

#[test]
fn a_fifo_in_the_directory_is_neither_served_nor_listed() {
    let dir = site();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let s = serve(&[dir.path().to_str().unwrap()]);
    let base = format!("http://{}", s.hostport());
    // Opening a FIFO blocks until a writer comes: served as a file, each
    // request would hold one of the pool's threads for good, curl would
    // time out, and enough of them would stall every download.
    for _ in 0..3 {
        let (code, _) = curl_status(&[&format!("{base}/pipe")]);
        assert_eq!(code, "404");
    }
    let (code, _) = curl_status(&["-I", &format!("{base}/pipe")]);
    assert_eq!(code, "404");
    let listing = text(curl(&[&format!("{base}/")]));
    assert!(
        listing.contains("blob.bin") && !listing.contains("pipe"),
        "{listing}"
    );
}

#[test]
fn a_refused_method_is_told_which_ones_are_allowed() {
    let hello = serve(&[]);
    let dir = listing_site();
    let files = serve(&[dir.path().to_str().unwrap()]);
    let uploads = serve(&["--upload", dir.path().to_str().unwrap()]);
    for (s, allow) in [
        (&hello, "GET, HEAD"),
        (&files, "GET, HEAD"),
        (&uploads, "GET, HEAD, POST"),
    ] {
        let head = text(curl(&[
            "-si",
            "-X",
            "DELETE",
            &format!("http://{}/", s.hostport()),
        ]));
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
        assert!(head.contains(&format!("allow: {allow}\r\n")), "{head}");
    }
}

/// The ETag and Last-Modified that `url` is served with.
fn validators(url: &str) -> (String, String) {
    let head = text(curl(&["-sI", url]));
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    (header("etag:"), header("last-modified:"))
}

#[test]
fn conditional_gets_get_304_or_412() {
    let dir = site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let url = format!("http://{}/page.html", s.hostport());
    let (etag, modified) = validators(&url);
    let codes = |headers: &[&str]| {
        let mut args = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        for h in headers {
            args.extend(["-H", h]);
        }
        args.push(&url);
        text(curl(&args))
    };
    let code = |h: &str| codes(&[h]);
    assert_eq!(code(&format!("If-None-Match: {etag}")), "304");
    assert_eq!(code("If-None-Match: \"other\""), "200");
    assert_eq!(code(&format!("If-Modified-Since: {modified}")), "304");
    assert_eq!(
        code("If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT"),
        "200"
    );
    // If-Match and If-Unmodified-Since (RFC 9110 13.1.1, 13.1.4).
    assert_eq!(code(&format!("If-Match: {etag}")), "200");
    assert_eq!(code("If-Match: *"), "200");
    assert_eq!(code("If-Match: \"other\", W/\"x\""), "412");
    assert_eq!(code(&format!("If-Match: W/{etag}")), "412");
    assert_eq!(code(&format!("If-Unmodified-Since: {modified}")), "200");
    assert_eq!(
        code("If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"),
        "412"
    );
    // If-Match decides over If-Unmodified-Since.
    let both = codes(&[
        &format!("If-Match: {etag}"),
        "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT",
    ]);
    assert_eq!(both, "200");
}

#[test]
fn if_range_gives_the_part_only_of_the_same_file() {
    let dir = site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let url = format!("http://{}/page.html", s.hostport());
    let (etag, modified) = validators(&url);
    let ranged = |if_range: &str| curl_status(&["-r", "3-5", "-H", if_range, &url]);
    let part = ("206".to_string(), "pag".to_string());
    let whole = ("200".to_string(), "<p>page</p>".to_string());
    assert_eq!(ranged(&format!("If-Range: {etag}")), part);
    assert_eq!(ranged(&format!("If-Range: {modified}")), part);
    // A resumed download of a file that has changed since: all of it.
    assert_eq!(ranged("If-Range: \"bogus\""), whole);
    assert_eq!(ranged(&format!("If-Range: W/{etag}")), whole);
    assert_eq!(ranged("If-Range: Thu, 01 Jan 1970 00:00:00 GMT"), whole);
    assert_eq!(ranged("If-Range: nonsense"), whole);
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
    assert!(
        listing.contains("blob.bin</a></td><td class=\"size\" data-bytes=\"300000\""),
        "{listing}"
    );
    // An index.html that leads outside is neither served nor listed.
    let trap = text(curl(&[&format!("{base}/trap/")]));
    assert!(
        !trap.contains("root:") && !trap.contains("index.html"),
        "{trap}"
    );

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

/// `python3 -m http.server` on DIR, on a free port.
fn python_http_server(dir: &std::path::Path) -> (Python, u16) {
    Python::server(
        r#"
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#,
        &[dir.to_str().unwrap()],
    )
}

/// A raw socket server that accepts one connection, reads the request and
/// then runs `then` (Python, with the connection as `c`).
fn one_request_server(then: &str) -> (Python, u16) {
    Python::server(
        &format!(
            r#"
import socket, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
c, _ = srv.accept()
c.recv(4096)
{then}
"#
        ),
        &[],
    )
}

fn get(args: &[&str], cwd: &std::path::Path) -> std::process::Output {
    run(
        sockit().current_dir(cwd).args(["http", "get"]).args(args),
        b"",
        STEP,
    )
}

#[test]
fn a_huge_directory_lists_a_bounded_page() {
    let dir = tempdir();
    for i in 0..10_001 {
        std::fs::File::create(dir.path().join(format!("f{i:05}"))).unwrap();
    }
    let s = serve(&[dir.path().to_str().unwrap()]);
    let page = text(curl(&[&format!("http://{}/", s.hostport())]));
    assert_eq!(page.matches("<td class=\"name\"><a href=").count(), 10_000);
    assert!(
        page.contains("more than 10000 entries"),
        "{}",
        &page[page.len() - 300..]
    );
}

#[test]
fn get_piped_into_head_ends_quietly() {
    let dir = site();
    let (_py, port) = python_http_server(dir.path());
    let out = run(
        std::process::Command::new("bash").args([
            "-c",
            "set -o pipefail; \"$0\" http get \"$1\" | head -c 1 >/dev/null",
            env!("CARGO_BIN_EXE_sockit"),
            &format!("http://127.0.0.1:{port}/blob.bin"),
        ]),
        b"",
        STEP,
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(!stderr_of(&out).contains("pipe"), "{}", stderr_of(&out));
}

#[test]
fn get_downloads_exactly_names_files_follows_redirects_and_fails_on_404() {
    let dir = site();
    let (_py, port) = python_http_server(dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let out_dir = tempdir();
    let cwd = out_dir.path();

    let out = get(&[&format!("{base}/blob.bin")], cwd);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout == std::fs::read(dir.path().join("blob.bin")).unwrap());
    let err = stderr_of(&out);
    assert!(err.starts_with("HTTP/1.0 200 OK\n"), "{err}");
    assert!(err.contains("content-length: 300000"), "{err}");
    assert!(
        !err.contains("KiB"),
        "no progress bar without a terminal: {err}"
    );

    // On a terminal, a download to a file draws a progress bar.
    let inner = format!(
        "{} http get -o on-tty.bin {base}/blob.bin",
        env!("CARGO_BIN_EXE_sockit")
    );
    let tty = run(
        Command::new("script")
            .current_dir(cwd)
            .args(["-qefc", &inner, "/dev/null"]),
        b"",
        STEP,
    );
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(
        screen.contains("KiB/292.97 KiB"),
        "no progress bar: {screen}"
    );
    assert_eq!(
        std::fs::metadata(cwd.join("on-tty.bin")).unwrap().len(),
        300_000
    );

    let out = get(&["-o", "saved.bin", &format!("{base}/blob.bin")], cwd);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert!(
        std::fs::read(cwd.join("saved.bin")).unwrap()
            == std::fs::read(dir.path().join("blob.bin")).unwrap()
    );

    assert!(
        get(&["-O", &format!("{base}/page.html")], cwd)
            .status
            .success()
    );
    assert_eq!(
        std::fs::read_to_string(cwd.join("page.html")).unwrap(),
        "<p>page</p>"
    );
    assert!(get(&["-O", &format!("{base}/")], cwd).status.success());
    assert!(
        std::fs::read_to_string(cwd.join("index.html"))
            .unwrap()
            .contains("blob.bin")
    );

    // http.server redirects a directory without its slash.
    let out = get(&[&format!("{base}/docs")], cwd);
    assert!(
        stderr_of(&out).starts_with("HTTP/1.0 301"),
        "{}",
        stderr_of(&out)
    );
    let out = get(&["-L", &format!("{base}/docs")], cwd);
    assert_eq!(out.stdout, b"<h1>docs</h1>");

    let out = get(&["-I", &format!("{base}/page.html")], cwd);
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(stderr_of(&out).contains("content-length: 11"));

    let missing = format!("{base}/missing");
    assert!(
        get(&[&missing], cwd).status.success(),
        "a 404 alone is not a failure"
    );
    let out = get(&["--fail", &missing], cwd);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("404"), "{}", stderr_of(&out));
}

#[test]
fn get_takes_a_body_that_ends_when_the_server_closes() {
    // The textbook hello-world server: no Content-Length, then close.
    let (_py, port) = one_request_server(
        r#"c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nHello World! ")
c.sendall(b"and the rest")
c.close()"#,
    );
    let out = get(
        &[&format!("http://127.0.0.1:{port}/")],
        &std::env::temp_dir(),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"Hello World! and the rest");
}

#[test]
fn get_gives_up_on_a_silent_server_after_its_timeout() {
    // Accepts, reads the request, never answers.
    let (_py, port) = one_request_server("time.sleep(60)");
    let started = std::time::Instant::now();
    let out = get(
        &["--timeout", "1", &format!("http://127.0.0.1:{port}/")],
        &std::env::temp_dir(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("timed out"), "{}", stderr_of(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn get_verifies_https_and_trusts_a_private_ca_with_cacert() {
    let dir = tempdir();
    let (cert, key) = self_signed(dir.path(), "127.0.0.1");
    let (_py, port) = Python::server(
        r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"secure hello"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#,
        &[cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let url = format!("https://127.0.0.1:{port}/");
    let out = get(&[&url], dir.path());
    assert_eq!(out.status.code(), Some(1), "an unknown CA must be refused");
    assert!(
        stderr_of(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr_of(&out)
    );
    let out = get(&["--cacert", cert.to_str().unwrap(), &url], dir.path());
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"secure hello");
}

#[test]
fn sigterm_closes_idle_keep_alive_connections_and_exits_cleanly() {
    // A long drain timeout, so only closing the idle keep-alive connection
    // (rather than waiting it out) lets the server exit quickly.
    let mut s = serve(&["--drain-timeout", "30"]);
    let mut c = tcp(s.addr());
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).ends_with("Hello World!"));
    let started = std::time::Instant::now();
    s.signal("TERM");
    // The idle connection is closed, not left to the drain timeout.
    assert_eq!(c.read(&mut buf).unwrap(), 0);
    assert!(s.wait_exit(STEP).success());
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[test]
fn idle_timeout_closes_a_keep_alive_connection_and_a_reader_that_stalls() {
    // A body far larger than the socket buffers, so a client that stops
    // reading stalls the response.
    let dir = crate::support::tempdir();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 32 << 20]).unwrap();
    let root = dir.path().to_str().unwrap();
    let s = serve(&[root, "--idle-timeout", "0.5", "--header-timeout", "30"]);
    let got = python(
        r#"
import socket, sys, time
addr = ("127.0.0.1", int(sys.argv[1]))
keep = socket.create_connection(addr, timeout=10)
keep.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n")
head = keep.recv(4096)
start = time.time()
while keep.recv(4096):
    pass
print("keep-alive", head.split(b"\r\n")[0].decode(), "closed" if time.time() - start < 5 else "late")
# Reads nothing for a while: the response stalls once the socket buffers
# are full, and the connection is closed.
stall = socket.create_connection(addr, timeout=10)
stall.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(1.5)
got = 0
try:
    while True:
        chunk = stall.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
except ConnectionResetError:
    pass
print("stalled", "cut" if got < 32 << 20 else "whole")
"#,
        &[&s.port().to_string()],
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        [
            "keep-alive HTTP/1.1 206 Partial Content closed",
            "stalled cut"
        ]
    );
}

#[test]
fn header_timeout_and_max_header_are_config_keys() {
    let dir = crate::support::tempdir();
    let cfg = dir.path().join("h.toml");
    let off = crate::support::ONLY_ECHO.replace("[http]\nenabled = false\n", "");
    std::fs::write(
        &cfg,
        format!("{off}[echo]\nenabled = false\n[http]\nlisten = [\"127.0.0.1:0\"]\nheader_timeout = 1\nmax_header = \"8KiB\"\n"),
    )
    .unwrap();
    let (_srv, rows) = Server::spawn_suite(&["--config", cfg.to_str().unwrap()], 1);
    let port = rows[0].1.rsplit(':').next().unwrap();
    let got = python(
        r#"
import socket, sys, time
addr = ("127.0.0.1", int(sys.argv[1]))
# Within the default 16 KiB, over the 8 KiB the file sets: refused
# (with a 431, or closed if the reset outruns it).
big = socket.create_connection(addr, timeout=10)
big.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n")
try:
    print(big.recv(4096).split(b"\r\n")[0].decode() or "refused")
except ConnectionResetError:
    print("refused")
slow = socket.create_connection(addr, timeout=10)
slow.sendall(b"GET / HTTP/1.1\r\n")
start = time.time()
slow.recv(4096)
print("closed" if time.time() - start < 5 else "late")
"#,
        &[port],
    );
    let lines: Vec<&str> = got.lines().collect();
    assert!(
        lines[0] == "HTTP/1.1 431 Request Header Fields Too Large" || lines[0] == "refused",
        "{got}"
    );
    assert_eq!(lines[1], "closed", "{got}");
}

/// A tree for the listing: directories, files of each kind and size.
fn listing_site() -> tempfile::TempDir {
    let dir = tempdir();
    let p = dir.path();
    for d in ["photos", "Archive", "sub/deeper"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    let files: [(&str, usize); 5] = [
        ("notes.txt", 10),
        ("cat.png", 5_000),
        ("backup.tar.gz", 3 * 1024 * 1024),
        ("main.rs", 1_500),
        ("README", 0),
    ];
    for (name, len) in files {
        std::fs::write(p.join(name), vec![b'x'; len]).unwrap();
    }
    std::fs::write(p.join("sub/inner.md"), "# inner").unwrap();
    dir
}

/// The names a listing shows, in order.
fn names(page: &str) -> Vec<String> {
    page.split("<td class=\"name\"><a href=\"")
        .skip(1)
        .filter_map(|row| {
            let text = row.split("</span>").nth(1)?;
            Some(text.split("</a>").next()?.to_string())
        })
        .collect()
}

#[test]
fn the_listing_puts_directories_first_sorts_by_any_column_and_marks_kinds() {
    let dir = listing_site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let base = format!("http://{}", s.hostport());
    let page = text(curl(&[&format!("{base}/")]));
    assert_eq!(
        names(&page),
        [
            "Archive/",
            "photos/",
            "sub/",
            "README",
            "backup.tar.gz",
            "cat.png",
            "main.rs",
            "notes.txt"
        ]
    );
    let by_size = text(curl(&[&format!("{base}/?sort=size&order=desc")]));
    assert_eq!(
        names(&by_size)[3..],
        ["backup.tar.gz", "cat.png", "main.rs", "notes.txt", "README"]
    );
    let by_name_desc = text(curl(&[&format!("{base}/?sort=name&order=desc")]));
    assert_eq!(names(&by_name_desc)[..3], ["sub/", "photos/", "Archive/"]);
    // Sizes as people read them, exact bytes beside them.
    for (shown, bytes) in [("3.0 MiB", 3_145_728), ("4.9 KiB", 5_000), ("10 B", 10)] {
        assert!(
            page.contains(&format!(
                "data-bytes=\"{bytes}\" title=\"{bytes} bytes\">{shown}</td>"
            )),
            "{shown}: {page}"
        );
    }
    // A marker per kind, the sorted column's header says so, and the
    // header links turn the order around.
    for kind in ["directory", "image", "archive", "code", "text"] {
        assert!(page.contains(&format!("aria-label=\"{kind}\"")), "{kind}");
    }
    assert!(page.contains("aria-sort=\"ascending\"><a href=\"?sort=name&amp;order=desc\""));
    assert!(by_size.contains("aria-sort=\"descending\"><a href=\"?sort=size&amp;order=asc\""));
    // Phone width and dark mode are in the page itself.
    assert!(page.contains("name=\"viewport\"") && page.contains("prefers-color-scheme:dark"));
    assert!(page.contains("3 directories, 5 files"), "{page}");
    // The root has no parent link; a subdirectory has one, and crumbs.
    assert!(!page.contains("Parent directory"));
    let sub = text(curl(&[&format!("{base}/sub/")]));
    assert!(sub.contains("<a href=\"../\">") && sub.contains("Parent directory"));
    assert!(sub.contains("<a href=\"/sub/\">sub</a>/"), "{sub}");
    assert_eq!(names(&sub), ["Parent directory", "deeper/", "inner.md"]);
    // No upload form unless asked for.
    assert!(!page.contains("<form"));
}

/// A refusal sent before the body was read reaches a client that goes on
/// sending it: the server reads the rest and throws it away, instead of
/// closing on unread bytes, which would reset the connection under the
/// client's feet (curl's "Send failure" instead of a 413 or 404).
#[test]
fn an_early_refusal_reaches_a_client_still_sending_its_body() {
    let dir = listing_site();
    let s = serve(&[
        "--upload",
        "--upload-max",
        "1MiB",
        dir.path().to_str().unwrap(),
    ]);
    let got = python(
        r#"
import socket, sys
port = int(sys.argv[1])
# 12 MB: more than loopback's socket buffers hold, so a server that closed
# after answering would reset the connection while this is still sending.
body = b"x" * (12 << 20)
for path in ("/", "/missing/"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            # Declared over --upload-max for "/", chunked for "/missing/":
            # both are refused before a byte of the body is read.
            + (f"Content-Length: {len(body)}\r\n" if path == "/" else
               "Transfer-Encoding: chunked\r\n") + "\r\n")
    s.sendall(head.encode())
    if path == "/":
        s.sendall(body)
    else:
        s.sendall(b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    print(reply.split(b"\r\n", 1)[0].decode())
"#,
        &[&s.port().to_string()],
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["HTTP/1.1 413 Payload Too Large", "HTTP/1.1 404 Not Found"],
        "{got}"
    );
    // The server is still well.
    assert_eq!(
        curl(&[&format!("http://{}/notes.txt", s.hostport())]),
        vec![b'x'; 10]
    );
}

/// `curl ARGS`: the status and the body.
fn curl_status(args: &[&str]) -> (String, String) {
    let out = text(curl(&[&["-w", "\n%{http_code}"], args].concat()));
    let (body, code) = out.rsplit_once('\n').unwrap();
    (code.to_string(), body.to_string())
}

#[test]
fn upload_saves_exactly_refuses_clobbering_paths_and_oversize_and_stays_in_the_root() {
    let dir = listing_site();
    let outside = tempdir();
    let p = dir.path();
    std::os::unix::fs::symlink(outside.path(), p.join("out")).unwrap();
    std::fs::write(outside.path().join("victim"), "keep me").unwrap();
    std::os::unix::fs::symlink(outside.path().join("victim"), p.join("link")).unwrap();
    let src = tempdir();
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let file = src.path().join("data.bin");
    std::fs::write(&file, &payload).unwrap();
    let form = |name: &str| format!("file=@{};filename={name}", file.display());

    let s = serve(&["--upload", "--upload-max", "2MiB", p.to_str().unwrap()]);
    let base = format!("http://{}", s.hostport());
    let (code, body) = curl_status(&["-F", &form("data.bin"), &format!("{base}/sub/")]);
    assert_eq!(
        (code.as_str(), body.trim()),
        ("201", "saved data.bin (1000000 bytes)")
    );
    assert_eq!(std::fs::read(p.join("sub/data.bin")).unwrap(), payload);
    // Several files in one form, each saved.
    let (code, body) = curl_status(&[
        "-F",
        &form("one.bin"),
        "-F",
        &form("two.bin"),
        &format!("{base}/"),
    ]);
    assert_eq!(code, "201", "{body}");
    assert_eq!(std::fs::read(p.join("two.bin")).unwrap(), payload);
    // The listing offers the form.
    assert!(text(curl(&[&format!("{base}/")])).contains("enctype=\"multipart/form-data\""));

    // The same name again: refused, the first kept.
    std::fs::write(p.join("sub/data.bin"), "first").unwrap();
    let (code, body) = curl_status(&["-F", &form("data.bin"), &format!("{base}/sub/")]);
    assert_eq!(code, "409", "{body}");
    assert!(body.contains("data.bin exists"), "{body}");
    assert_eq!(std::fs::read(p.join("sub/data.bin")).unwrap(), b"first");
    // A symlink's name is taken too: nothing is written through it.
    let (code, _) = curl_status(&["-F", &form("link"), &format!("{base}/")]);
    assert_eq!(code, "409");

    // Names with a path, dotfiles, and directories outside or missing.
    for (name, url, want) in [
        ("../escaped.bin", "/sub/", "400"),
        ("a/b.bin", "/", "400"),
        (".profile", "/", "400"),
        ("x.bin", "/out/", "404"),
        ("x.bin", "/missing/", "404"),
        ("x.bin", "/notes.txt", "404"),
    ] {
        let (code, body) = curl_status(&["-F", &form(name), &format!("{base}{url}")]);
        assert_eq!(code, want, "{name} to {url}: {body}");
    }
    assert!(!p.join("escaped.bin").exists() && !p.join(".profile").exists());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);

    // Over --upload-max, declared or streamed: refused, nothing left.
    let big = src.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 3 * 1024 * 1024]).unwrap();
    let big_form = format!("file=@{};filename=big.bin", big.display());
    let (code, body) = curl_status(&["-F", &big_form, &format!("{base}/")]);
    assert_eq!(code, "413", "{body}");
    let (code, body) = curl_status(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-F",
        &big_form,
        &format!("{base}/"),
    ]);
    assert_eq!(code, "413", "{body}");
    assert!(!p.join("big.bin").exists());
    let leftovers: Vec<_> = std::fs::read_dir(p)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("sockit-upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Not a form at all.
    let (code, _) = curl_status(&["--data-binary", "raw", &format!("{base}/")]);
    assert_eq!(code, "415");
    // The server is still well.
    assert_eq!(curl(&[&format!("{base}/notes.txt")]), vec![b'x'; 10]);

    // --overwrite replaces a file, and a symlink itself, never its target.
    drop(s);
    let s = serve(&["--upload", "--overwrite", p.to_str().unwrap()]);
    let base = format!("http://{}", s.hostport());
    let (code, _) = curl_status(&["-F", &form("data.bin"), &format!("{base}/sub/")]);
    assert_eq!(code, "201");
    assert_eq!(std::fs::read(p.join("sub/data.bin")).unwrap(), payload);
    let (code, _) = curl_status(&["-F", &form("link"), &format!("{base}/")]);
    assert_eq!(code, "201");
    assert_eq!(
        std::fs::read(outside.path().join("victim")).unwrap(),
        b"keep me"
    );
    assert!(
        !std::fs::symlink_metadata(p.join("link"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn without_upload_a_post_is_refused() {
    let dir = listing_site();
    let s = serve(&[dir.path().to_str().unwrap()]);
    let (code, _) = curl_status(&[
        "-F",
        "file=@/etc/hostname",
        &format!("http://{}/", s.hostport()),
    ]);
    assert_eq!(code, "405");
    assert!(!dir.path().join("hostname").exists());
}
