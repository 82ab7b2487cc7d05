//! A request for any path, with any Range, If-Range and conditional
//! headers, against a small tree with a dotfile, a subdirectory and a
//! symlink out of it: never a panic, never a file from outside, and a
//! status that fits.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sockit::http::files::{Root, serve};

fn tree() -> &'static (PathBuf, Arc<Root>) {
    static TREE: OnceLock<(PathBuf, Arc<Root>)> = OnceLock::new();
    TREE.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("sockit-fuzz-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), b"0123456789").unwrap();
        std::fs::write(root.join(".secret"), b"DOTFILE-CONTENT").unwrap();
        std::fs::write(root.join("sub").join("b.html"), b"<p>b</p>").unwrap();
        std::fs::write(base.join("outside.txt"), b"OUTSIDE").unwrap();
        let _ = std::os::unix::fs::symlink(base.join("outside.txt"), root.join("link"));
        let served = Arc::new(Root::new(&root, false, None).unwrap());
        (root, served)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(7, |&b| b == b'\n');
    let path = parts.next().unwrap_or_default();
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let mut req = http::Request::builder().uri(format!("/{path}"));
    for (name, value) in [
        "range",
        "if-none-match",
        "if-modified-since",
        "if-match",
        "if-unmodified-since",
        "if-range",
    ]
    .iter()
    .zip(parts)
    {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            req = req.header(*name, v);
        }
    }
    let Ok(req) = req.body(http_body_util::Empty::<bytes::Bytes>::new()) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let resp = rt.block_on(serve(&tree().1, req));
    let status = resp.status().as_u16();
    assert!(
        matches!(status, 200 | 206 | 301 | 304 | 400 | 403 | 404 | 412 | 416),
        "{status}"
    );
    let body = rt.block_on(http_body_util::BodyExt::collect(resp.into_body()));
    let body = body.map(|b| b.to_bytes()).unwrap_or_default();
    assert!(
        !body.windows(7).any(|w| w == b"OUTSIDE"),
        "served a file from outside"
    );
    // A marker no page of ours contains (listings say `aria-hidden`).
    assert!(
        !body.windows(15).any(|w| w == b"DOTFILE-CONTENT"),
        "served a dotfile"
    );
});
