//! TLS with real peers: openssl s_client and s_server, curl, ncat --ssl,
//! Python's ssl module, a mutual-TLS case, the relay both ways with 100+ MB
//! checked by SHA-256, and every bad input: plaintext, a stalled handshake,
//! a wrong name, an untrusted certificate, a client certificate from the
//! wrong CA, and a peer that closes without close_notify.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

use crate::support::{
    Python, STEP, Server, lines_of, python, read_all, run, sockit, sockit_run, stderr_of, tempdir,
    wait_child,
};

/// A test CA and what it signs, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

/// A certificate and its key on disk.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
    /// The certificate's SHA-256 fingerprint, as `--pin` takes it.
    pin: String,
}

impl Issued {
    fn args<'a>(&'a self, flags: [&'a str; 2]) -> [&'a str; 4] {
        [
            flags[0],
            self.cert.to_str().unwrap(),
            flags[1],
            self.key.to_str().unwrap(),
        ]
    }

    fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    fn key(&self) -> &str {
        self.key.to_str().unwrap()
    }

    fn pin(&self) -> String {
        self.pin.clone()
    }
}

impl Pki {
    fn new() -> Pki {
        Pki { dir: tempdir() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A CA named `name`; returns its params and key for signing.
    fn ca(&self, name: &str) -> (Issuer<'static, KeyPair>, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let path = self.path(&format!("{name}.pem"));
        std::fs::write(&path, cert.pem()).unwrap();
        (Issuer::new(params, key), path)
    }

    /// A certificate for `names`, signed by `ca`, expired if asked.
    fn issue(
        &self,
        file: &str,
        names: &[&str],
        ca: &Issuer<'_, KeyPair>,
        client: bool,
        expired: bool,
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        let digest = Sha256::digest(cert.der());
        let issued = Issued {
            cert: self.path(&format!("{file}.pem")),
            key: self.path(&format!("{file}.key")),
            pin: digest.iter().map(|b| format!("{b:02x}")).collect(),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

/// One CA with a server certificate for localhost and 127.0.0.1.
fn server_pki() -> (Pki, PathBuf, Issued) {
    let pki = Pki::new();
    let (ca, ca_path) = pki.ca("ca");
    let server = pki.issue("server", &["localhost", "127.0.0.1"], &ca, false, false);
    (pki, ca_path, server)
}

/// The fingerprint a server printed beside its `listening on` line.
fn printed_pin(srv: &Server) -> String {
    let line = srv.wait_for_log("sha256 ");
    line.rsplit(' ').next().unwrap().to_string()
}

fn connect(args: &[&str], input: &[u8]) -> std::process::Output {
    sockit_run(&[&["connect"], args].concat(), input)
}

/// A one-line TLS failure on the client: exit 1 and the words wanted.
fn refused(args: &[&str], want: &str) {
    let out = connect(args, b"hello\n");
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("sockit: tls to "), "{args:?}: {err}");
    assert!(last.contains(want), "{args:?}: {err}");
}

#[test]
fn connect_verifies_by_default_and_trusts_a_cacert_a_pin_or_nothing_when_told() {
    let (_pki, ca, server) = server_pki();
    let srv = Server::spawn(&[&["echo", ":0"], &server.args(["--cert", "--key"])[..]].concat());
    assert!(
        srv.endpoint.starts_with("tls://127.0.0.1:"),
        "{}",
        srv.endpoint
    );
    let at = srv.hostport();
    let ca = ca.to_str().unwrap();
    refused(&["--tls", &at], "unknown issuer");
    let out = connect(&["--tls", "--cacert", ca, &at], b"hi\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"hi\n");
    // The same endpoint written as tls://, by name.
    let port = srv.port().to_string();
    let named = format!("tls://localhost:{port}");
    let out = connect(&["--cacert", ca, &named], b"by name\n");
    assert_eq!(out.stdout, b"by name\n", "{}", stderr_of(&out));
    refused(
        &["--tls", "--cacert", ca, "--sni", "foo", &at],
        "certificate not valid for name \"foo\"",
    );
    let out = connect(&["--pin", &server.pin(), &at], b"pinned\n");
    assert_eq!(out.stdout, b"pinned\n", "{}", stderr_of(&out));
    refused(&["--pin", &"ab".repeat(32), &at], "is not the pinned one");
    // Line and length-prefixed framing ride on TLS as on TCP.
    let framed = Server::spawn(
        &[
            &["echo", ":0", "--frame", "len", "--reply", "<{}>"],
            &server.args(["--cert", "--key"])[..],
        ]
        .concat(),
    );
    let out = connect(
        &["--cacert", ca, "--frame", "len", &framed.hostport()],
        b"one\ntwo\n",
    );
    assert_eq!(out.stdout, b"<one>\n<two>\n", "{}", stderr_of(&out));
    let out = connect(&["--insecure", &at], b"anyway\n");
    assert_eq!(out.stdout, b"anyway\n");
    assert!(stderr_of(&out).contains("tls verification is off"));
}

#[test]
fn a_self_signed_server_prints_the_pin_that_connect_takes_and_v_shows_the_session() {
    let srv = Server::spawn(&["echo", "--tls", ":0"]);
    let pin = printed_pin(&srv);
    let out = connect(&["-v", "--pin", &pin, &srv.hostport()], b"x\n");
    assert!(out.status.success(), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("tls TLSv1_3 TLS13_"), "{err}");
    assert!(err.contains("subject \"CN=sockit self-signed\""), "{err}");
    assert!(
        err.contains("expires ") && err.contains(&format!("sha256 {pin}")),
        "{err}"
    );
    // Without the pin the self-signed certificate is refused.
    refused(&["--tls", &srv.hostport()], "unknown issuer");
}

#[test]
fn openssl_s_client_and_s_server_are_peers() {
    let (_pki, ca, server) = server_pki();
    // s_client against sockit.
    let srv = Server::spawn(&[&["echo", ":0"], &server.args(["--cert", "--key"])[..]].concat());
    // s_client quits at its stdin's end, reply or not: keep stdin open
    // until the echo is back.
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &srv.hostport(),
            "-CAfile",
            ca.to_str().unwrap(),
            "-verify_return_error",
            "-quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let echoed = lines_of(s_client.stdout.take().unwrap());
    s_client
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"through s_client\n")
        .unwrap();
    assert_eq!(echoed.recv_timeout(STEP).unwrap(), "through s_client");
    let _ = s_client.kill();
    let _ = s_client.wait();
    // sockit against s_server, which prints what it gets and answers.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut s_server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            server.cert(),
            "-key",
            server.key(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut to_server = s_server.stdin.take().unwrap();
    let lines = lines_of(s_server.stdout.take().unwrap());
    // s_server says ACCEPT once it listens.
    while lines.recv_timeout(STEP).unwrap() != "ACCEPT" {}
    let mut client = sockit()
        .args(["connect", "--cacert", ca.to_str().unwrap()])
        .arg(format!("tls://127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"to s_server\n").unwrap();
    // Past its session report, what the client sent.
    while lines.recv_timeout(STEP).unwrap() != "to s_server" {}
    to_server.write_all(b"from s_server\n").unwrap();
    drop(stdin);
    let got = lines_of(client.stdout.take().unwrap());
    assert_eq!(got.recv_timeout(STEP).unwrap(), "from s_server");
    let _ = s_server.kill();
    let _ = wait_child(&mut client);
    let _ = s_server.wait();
}

#[test]
fn curl_fetches_https_with_the_ca() {
    let (_pki, ca, server) = server_pki();
    let srv = Server::spawn(
        &[
            &["http", "serve", "-l", "127.0.0.1:0"],
            &server.args(["--cert", "--key"])[..],
        ]
        .concat(),
    );
    let url = format!("https://localhost:{}/", srv.port());
    let out = run(
        Command::new("curl").args(["-sS", "--cacert", ca.to_str().unwrap(), &url]),
        b"",
        STEP,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Hello World!",
        "{}",
        stderr_of(&out)
    );
    // And sockit's own fetcher, which verifies too.
    let out = sockit_run(
        &["http", "get", "--cacert", ca.to_str().unwrap(), &url],
        b"",
    );
    assert_eq!(out.stdout, b"Hello World!", "{}", stderr_of(&out));
    let out = run(Command::new("curl").args(["-sS", &url]), b"", STEP);
    assert!(!out.status.success(), "curl must refuse the unknown CA");
}

#[test]
fn ncat_ssl_works_both_ways() {
    // ncat --ssl as the client of sockit.
    let srv = Server::spawn(&["echo", "--tls", ":0"]);
    let out = run(
        Command::new("ncat").args(["--ssl", "127.0.0.1", &srv.port().to_string()]),
        b"via ncat\n",
        STEP,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via ncat\n");
    // ncat --ssl -l (a temporary certificate) as the server of sockit.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ncat = Command::new("ncat")
        .args(["--ssl", "-l", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let heard = lines_of(ncat.stdout.take().unwrap());
    let at = format!("127.0.0.1:{port}");
    // ncat prints nothing when it listens: try until it does, bounded.
    let deadline = std::time::Instant::now() + STEP;
    loop {
        let out = connect(&["--insecure", &at], b"to ncat\n");
        if out.status.success() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", stderr_of(&out));
    }
    assert_eq!(heard.recv_timeout(STEP).unwrap(), "to ncat");
    let _ = ncat.kill();
    let _ = ncat.wait();
}

#[test]
fn the_textbook_client_wrapped_in_ssl_gets_its_hello() {
    let srv = Server::spawn(&[
        "echo",
        "--tls",
        ":0",
        "--greeting",
        "Welcome!",
        "--reply",
        "Hello, {}!",
        "--exit-word",
        "exit",
    ]);
    let got = python(
        r#"
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s = ctx.wrap_socket(raw, server_hostname="localhost")
print(s.recv(1024).decode())
s.send(b"Michael")
print(s.recv(1024).decode())
s.send(b"exit")
print(s.recv(1024) == b"")
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        ["Welcome!", "Hello, Michael!", "True"]
    );
}

#[test]
fn mutual_tls_takes_only_clients_of_its_ca() {
    let pki = Pki::new();
    let (ca, ca_path) = pki.ca("ca");
    let (other_ca, _) = pki.ca("other-ca");
    let server = pki.issue("server", &["localhost", "127.0.0.1"], &ca, false, false);
    let good = pki.issue("good-client", &[], &ca, true, false);
    let stranger = pki.issue("stranger", &[], &other_ca, true, false);
    let ca = ca_path.to_str().unwrap();
    let srv = Server::spawn(
        &[
            &["echo", ":0", "--client-ca", ca],
            &server.args(["--cert", "--key"])[..],
        ]
        .concat(),
    );
    let at = srv.hostport();
    let mine = good.args(["--cert", "--key"]);
    let out = connect(&[&["--cacert", ca, &at], &mine[..]].concat(), b"mutual\n");
    assert_eq!(out.stdout, b"mutual\n", "{}", stderr_of(&out));
    // A client certificate from another CA, and none at all: each refused
    // with one line, and the server logs one line and carries on.
    let theirs = stranger.args(["--cert", "--key"]);
    let out = connect(&[&["--cacert", ca, &at], &theirs[..]].concat(), b"x\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    srv.wait_for_log("tls handshake failed");
    let out = connect(&["--cacert", ca, &at], b"x\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let out = connect(&[&["--cacert", ca, &at], &mine[..]].concat(), b"still\n");
    assert_eq!(out.stdout, b"still\n");
}

#[test]
fn bad_input_costs_only_its_own_connection() {
    let pki = Pki::new();
    let (ca, ca_path) = pki.ca("ca");
    let expired = pki.issue("expired", &["localhost", "127.0.0.1"], &ca, false, true);
    let srv = Server::spawn(&["echo", "--tls", ":0", "--handshake-timeout", "0.5"]);
    let pin = printed_pin(&srv);
    let got = python(
        r#"
import socket, sys, time
addr = ("127.0.0.1", int(sys.argv[1]))
# Plaintext, then garbage: each gets an alert or a close.
for junk in (b"GET / HTTP/1.0\r\n\r\n", bytes(range(256))):
    s = socket.create_connection(addr, timeout=10)
    s.sendall(junk)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
# A handshake that never starts is cut at the timeout.
stall = socket.create_connection(addr, timeout=10)
start = time.time()
try:
    stall.recv(1)
except ConnectionResetError:
    pass
print("stalled", "cut" if time.time() - start < 5 else "late")
"#,
        &[&srv.port().to_string()],
    );
    assert_eq!(got.trim(), "stalled cut");
    srv.wait_for_log("does not speak TLS");
    srv.wait_for_log("tls handshake not finished in 500ms");
    // Still serving.
    let out = connect(&["--pin", &pin, &srv.hostport()], b"alive\n");
    assert_eq!(out.stdout, b"alive\n", "{}", stderr_of(&out));
    // An expired certificate is refused by a verifying client.
    let old = Server::spawn(&[&["echo", ":0"], &expired.args(["--cert", "--key"])[..]].concat());
    let ca = ca_path.to_str().unwrap();
    refused(
        &["--tls", "--cacert", ca, &old.hostport()],
        "certificate has expired",
    );
    // A client that stalls: sockit connect against a port that never
    // answers the handshake gives up at its own timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = silent.local_addr().unwrap().to_string();
    refused(
        &["--insecure", "--handshake-timeout", "0.3", &at],
        "handshake not finished in 300ms",
    );
}

/// The start of a Python ssl server for one client, with the cert and
/// key its arguments: prints its port, then has the TLS session as `s`
/// (and the TCP connection under it as `raw`).
const TLS_SERVER_OF_ONE: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
print(srv.getsockname()[1], flush=True)
raw, _ = srv.accept()
s = ctx.wrap_socket(raw, server_side=True)
"#;

/// Python's ssl server that sends a line, then drops the TCP connection
/// without close_notify: the client keeps the line and warns.
#[test]
fn a_peer_that_skips_close_notify_is_reported_as_truncated() {
    let (_pki, ca, server) = server_pki();
    let script = &format!(
        "{TLS_SERVER_OF_ONE}{}",
        r#"
s.sendall(b"partial answer\n")
# Close the TCP connection under the TLS session: a FIN, no close_notify.
# Drain what the client sends first (its own close_notify at stdin EOF),
# or closing with unread bytes would send a reset that can overtake the line.
raw2 = socket.socket(fileno=s.detach())
raw2.settimeout(5)
while raw2.recv(4096):
    pass
raw2.close()
"#
    );
    let (mut py, port) = Python::server(script, &[server.cert(), server.key()]);
    let out = run(
        sockit()
            .args(["connect", "--cacert", ca.to_str().unwrap()])
            .arg(format!("tls://127.0.0.1:{port}"))
            .stdin(Stdio::null()),
        b"",
        STEP,
    );
    assert_eq!(out.stdout, b"partial answer\n", "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("without close_notify"),
        "{}",
        stderr_of(&out)
    );
    let _ = py.wait();
}

/// At stdin EOF the client sends close_notify and half-closes; the
/// server's answer, sent after it sees the end, still arrives.
#[test]
fn stdin_eof_half_closes_and_the_reply_still_arrives() {
    let (_pki, ca, server) = server_pki();
    let script = &format!(
        "{TLS_SERVER_OF_ONE}{}",
        r#"
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
s.sendall(b"got %d bytes\n" % len(got))
s.unwrap().close()
"#
    );
    let (mut py, port) = Python::server(script, &[server.cert(), server.key()]);
    let out = connect(
        &[
            "--cacert",
            ca.to_str().unwrap(),
            &format!("tls://localhost:{port}"),
        ],
        &[7u8; 100_000],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(out.stdout, b"got 100000 bytes\n");
    assert!(py.wait().success());
}

/// A Python sink that hashes everything it receives, plain or over TLS.
fn sink(tls: Option<&Issued>) -> (Python, u16) {
    let script = r#"
import hashlib, socket, ssl, sys
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
if len(sys.argv) > 2:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    conn = ctx.wrap_socket(conn, server_side=True)
h, n = hashlib.sha256(), 0
while True:
    chunk = conn.recv(1 << 20)
    if not chunk:
        break
    h.update(chunk)
    n += len(chunk)
print(n, h.hexdigest(), flush=True)
"#;
    match tls {
        Some(t) => Python::server(script, &[t.cert(), t.key()]),
        None => Python::server(script, &[]),
    }
}

fn payload(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("payload.bin");
    let mut data = Vec::with_capacity(120 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 120 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let hash = format!("{:x}", Sha256::digest(&data));
    std::fs::write(&path, &data).unwrap();
    (path, hash)
}

fn send_file(args: &[&str], file: &Path) {
    let mut child = sockit()
        .arg("connect")
        .args(args)
        .stdin(std::fs::File::open(file).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let status = crate::support::wait_within(&mut child, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&read_all(err)).into_owned();
    assert!(status.success(), "{err}");
}

#[test]
fn forward_terminates_and_originates_tls_byte_exact() {
    let (pki, ca, server) = server_pki();
    let (file, want) = payload(pki.dir.path());
    let ca = ca.to_str().unwrap();
    let want_line = format!("{} {want}", 120 << 20);

    // Terminate: TLS client -> relay -> plain sink.
    let (plain_sink, port) = sink(None);
    let relay = Server::spawn(
        &[
            &[
                "forward",
                "--tls-accept",
                ":0",
                &format!("127.0.0.1:{port}"),
            ],
            &server.args(["--cert", "--key"])[..],
        ]
        .concat(),
    );
    send_file(
        &["--cacert", ca, &format!("tls://localhost:{}", relay.port())],
        &file,
    );
    assert_eq!(plain_sink.line(), want_line);
    let open = relay.wait_for_log("conn 1 ");
    assert!(
        open.contains("(tls TLSv1_3 sni=localhost from client)"),
        "{open}"
    );
    let close = relay.wait_for_log("conn 1 closed");
    assert!(
        close.contains(&format!("{} bytes up", 120 << 20)),
        "{close}"
    );

    // Originate: plain client -> relay -> TLS sink, verified by the CA.
    let (tls_sink, port) = sink(Some(&server));
    let relay = Server::spawn(&[
        "forward",
        ":0",
        &format!("localhost:{port}"),
        "--tls-connect",
        "--target-cacert",
        ca,
    ]);
    send_file(&[&relay.hostport()], &file);
    assert_eq!(tls_sink.line(), want_line);
    let open = relay.wait_for_log("conn 1 ");
    assert!(open.contains("(tls TLSv1_3 to target)"), "{open}");
}

#[test]
fn forward_refuses_an_untrusted_target_and_keeps_serving() {
    let srv = Server::spawn(&["echo", "--tls", ":0"]);
    let relay = Server::spawn(&["forward", ":0", &srv.hostport(), "--tls-connect"]);
    let out = run(
        Command::new("nc").args(["-N", "127.0.0.1", &relay.port().to_string()]),
        b"x\n",
        STEP,
    );
    assert!(out.stdout.is_empty());
    let line = relay.wait_for_log("unknown issuer");
    assert!(line.contains("tls to 127.0.0.1:"), "{line}");
}

#[test]
fn sighup_reloads_the_certificate_and_live_sessions_stay() {
    let pki = Pki::new();
    let (ca, _) = pki.ca("ca");
    let first = pki.issue("first", &["localhost", "127.0.0.1"], &ca, false, false);
    let second = pki.issue("second", &["localhost", "127.0.0.1"], &ca, false, false);
    let live_cert = pki.path("live.pem");
    let live_key = pki.path("live.key");
    std::fs::copy(&first.cert, &live_cert).unwrap();
    std::fs::copy(&first.key, &live_key).unwrap();
    let srv = Server::spawn(&[
        "echo",
        ":0",
        "--cert",
        live_cert.to_str().unwrap(),
        "--key",
        live_key.to_str().unwrap(),
    ]);
    // A live session from before the reload.
    let mut live = sockit()
        .args(["connect", "--pin", &first.pin(), &srv.hostport()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut live_in = live.stdin.take().unwrap();
    let live_out = lines_of(live.stdout.take().unwrap());
    live_in.write_all(b"before\n").unwrap();
    assert_eq!(live_out.recv_timeout(STEP).unwrap(), "before");
    std::fs::copy(&second.cert, &live_cert).unwrap();
    std::fs::copy(&second.key, &live_key).unwrap();
    srv.signal("HUP");
    srv.wait_for_log("reloaded");
    let out = connect(&["--pin", &second.pin(), &srv.hostport()], b"new\n");
    assert_eq!(out.stdout, b"new\n", "{}", stderr_of(&out));
    refused(
        &["--pin", &first.pin(), &srv.hostport()],
        "is not the pinned one",
    );
    live_in.write_all(b"after\n").unwrap();
    assert_eq!(live_out.recv_timeout(STEP).unwrap(), "after");
    drop(live_in);
    assert!(wait_child(&mut live).success());
}

#[test]
fn serve_takes_a_tls_table_per_section() {
    let (pki, ca, server) = server_pki();
    let cfg = pki.path("s.toml");
    let text = crate::support::only(&format!(
        "[echo]\nlisten = [\"tcp://127.0.0.1:0\"]\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        server.cert(),
        server.key()
    ));
    std::fs::write(&cfg, text).unwrap();
    let (_srv, rows) = Server::spawn_suite(&["--config", cfg.to_str().unwrap()], 1);
    assert!(rows[0].1.starts_with("tls://127.0.0.1:"), "{rows:?}");
    let at = rows[0].1.trim_start_matches("tls://").to_string();
    let out = connect(
        &["--tls", "--cacert", ca.to_str().unwrap(), &at],
        b"suite\n",
    );
    assert_eq!(out.stdout, b"suite\n", "{}", stderr_of(&out));
    // A bad key in the table is a usage error on its line.
    std::fs::write(
        &cfg,
        "[echo]\nlisten = [\"tcp://127.0.0.1:0\"]\ntls = { cert = \"/x\", kee = 1 }\n",
    )
    .unwrap();
    let err = crate::support::usage_error(&["serve", "--config", cfg.to_str().unwrap()]);
    assert!(err.contains("line 3") && err.contains("kee"), "{err}");
}

#[test]
fn every_stream_server_takes_tls() {
    // listen -k --exec: a process per TLS client.
    let srv = Server::spawn(&["listen", "-k", "--tls", ":0", "--exec", "tr", "a-z", "A-Z"]);
    let pin = printed_pin(&srv);
    let out = connect(&["--pin", &pin, &srv.hostport()], b"shout\n");
    assert_eq!(out.stdout, b"SHOUT\n", "{}", stderr_of(&out));
    // listen, one client, bridged to stdio.
    let mut one = Server::spawn_piped(&["listen", "--tls", ":0"]);
    let pin = printed_pin(&one);
    one.write_stdin(b"from the server\n");
    let out = connect(&["--pin", &pin, &one.hostport()], b"from the client\n");
    assert_eq!(out.stdout, b"from the server\n", "{}", stderr_of(&out));
    one.read_stdout_until(b"from the client\n");
    // chat: a TLS client in a room with a plain one is not possible on one
    // port, so two TLS clients (Python's ssl) talk.
    let chat = Server::spawn(&["chat", "serve", "--tls", ":0"]);
    let got = python(
        r#"
import socket, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def join(nick):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10))
    s.sendall(f"/nick {nick}\n".encode())
    buf = b""
    while f"known as {nick}".encode() not in buf:
        buf += s.recv(4096)
    return s
a, b = join("alice"), join("bob")
a.sendall(b"over tls\n")
buf = b""
while b"<alice> over tls" not in buf:
    buf += b.recv(4096)
print("heard")
"#,
        &[&chat.port().to_string()],
    );
    assert_eq!(got.trim(), "heard");
    // The classics: chargen streams, daytime answers, over TLS.
    let chargen = Server::spawn(&["chargen", "--tls", ":0"]);
    let pin = printed_pin(&chargen);
    let mut child = sockit()
        .args(["connect", "--pin", &pin, &chargen.hostport()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    assert!(lines.recv_timeout(STEP).unwrap().starts_with(" !\"#$%"));
    let _ = child.kill();
    let _ = child.wait();
    let daytime = Server::spawn(&[
        "time",
        "serve",
        "--protocol",
        "daytime",
        "--tcp",
        "--tls",
        ":0",
    ]);
    let pin = printed_pin(&daytime);
    let out = connect(&["--pin", &pin, &daytime.hostport()], b"");
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("-UTC\r\n"),
        "{out:?}"
    );
    // A udp endpoint cannot take TLS.
    let err = crate::support::usage_error(&["echo", "--udp", "--tls", ":0"]);
    assert!(
        err.contains("--tls: is for tcp and unix endpoints"),
        "{err}"
    );
}
