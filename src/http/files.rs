//! Static files from one directory: index.html or a listing for
//! directories, Content-Type by extension, HEAD, single byte ranges, ETag and
//! Last-Modified with 304s, and files streamed rather than read whole.
//!
//! Nothing outside the directory is served: a path with a `..` segment, a
//! dotfile (unless `--hidden`), or anything that resolves (through symlinks)
//! outside the canonical root is a 404, the same answer as a missing file so
//! a probe learns nothing.

use std::io::{self, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

use super::listing::{self, Entry, Listing, MAX_LISTED, Sort};
use super::upload::{self, Upload};
use super::{Body, full, method_not_allowed, status_page};

/// Read size when streaming a file: 1 MiB moved 1.2-1.5x the bytes per
/// second of 64 KiB on loopback (fewer trips to the blocking pool).
const CHUNK: usize = 1024 * 1024;

/// The served directory, canonicalised once.
#[derive(Debug)]
pub struct Root {
    dir: PathBuf,
    hidden: bool,
    /// `--upload`: files may be added by POST.
    upload: Option<Upload>,
}

impl Root {
    /// Checks `dir` is a directory and resolves it.
    pub fn new(dir: &Path, hidden: bool, upload: Option<Upload>) -> io::Result<Root> {
        let dir = dir
            .canonicalize()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Root {
            dir,
            hidden,
            upload,
        })
    }

    /// The file or directory a URL path names, if it may be served.
    pub(super) fn resolve(&self, url_path: &str) -> Option<PathBuf> {
        let decoded = percent_decode_str(url_path).decode_utf8().ok()?;
        let mut path = self.dir.clone();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => continue,
                ".." => return None,
                s if s.contains('\0') || s.contains('\\') => return None,
                s if s.starts_with('.') && !self.hidden => return None,
                s => path.push(s),
            }
        }
        self.resolve_entry(&path)
    }

    /// What `url_path` names: a file, a directory's index.html or listing.
    fn lookup(&self, url_path: &str) -> Found {
        let Some(path) = self.resolve(url_path) else {
            return Found::Missing;
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            return Found::Missing;
        };
        if meta.is_file() {
            return Found::File(path, meta);
        }
        if !meta.is_dir() {
            // A FIFO or a device: opening one could block a thread of the
            // pool for good.
            return Found::Missing;
        }
        if !url_path.ends_with('/') {
            return Found::NeedsSlash;
        }
        // index.html may be a symlink too: it is served only if it stays
        // inside the root, like any other file.
        let index = self.resolve_entry(&path.join("index.html"));
        match index.map(|i| (std::fs::metadata(&i), i)) {
            Some((Ok(m), index)) if m.is_file() => Found::File(index, m),
            _ => self.entries(&path).map_or(Found::Missing, Found::Listing),
        }
    }

    /// A directory's entries that may be served: the first `MAX_LISTED` it
    /// yields. Follows symlinks, like serving does; one that leads outside
    /// the root would only 404, so it is not listed either.
    fn entries(&self, dir: &Path) -> Option<Listing> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                if !self.may_name(&name) {
                    return None;
                }
                // `dir` is inside the root, so only a symlink can leave it.
                if e.file_type().ok()?.is_symlink() {
                    self.resolve_entry(&e.path())?;
                }
                let meta = std::fs::metadata(e.path()).ok()?;
                // Only what serving would answer.
                if !meta.is_file() && !meta.is_dir() {
                    return None;
                }
                Some(Entry {
                    name,
                    dir: meta.is_dir(),
                    len: meta.len(),
                    modified: meta.modified().ok(),
                })
            })
            .take(MAX_LISTED + 1)
            .collect();
        let truncated = entries.len() > MAX_LISTED;
        entries.truncate(MAX_LISTED);
        Some(Listing { entries, truncated })
    }

    /// Whether a name in a directory may be served: dotfiles only with
    /// `--hidden`.
    pub(super) fn may_name(&self, name: &str) -> bool {
        self.hidden || !name.starts_with('.')
    }

    /// Where `path` really ends up, if that is inside the root: symlinks may
    /// lead anywhere.
    pub(super) fn resolve_entry(&self, path: &Path) -> Option<PathBuf> {
        let real = path.canonicalize().ok()?;
        real.starts_with(&self.dir).then_some(real)
    }
}

/// What a URL path names, found on the blocking pool in one trip.
enum Found {
    Missing,
    /// A directory asked for without its trailing slash.
    NeedsSlash,
    File(PathBuf, std::fs::Metadata),
    Listing(Listing),
}

/// Answers one request from the directory. Generic in its body, which
/// only an upload reads, so the fuzz target can build requests itself.
pub async fn serve<B>(root: &Arc<Root>, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let head = req.method() == Method::HEAD;
    if req.method() == Method::POST
        && let Some(up) = &root.upload
    {
        return upload::receive(root, up, req).await;
    }
    if req.method() != Method::GET && !head {
        return method_not_allowed(if root.upload.is_some() {
            "GET, HEAD, POST"
        } else {
            "GET, HEAD"
        });
    }
    let url_path = req.uri().path();
    // Path checks, metadata and directory reads all block: one trip to the
    // blocking pool instead of one per call, and none on the runtime.
    let (r, url) = (root.clone(), url_path.to_owned());
    let found = blocking(move || Ok(r.lookup(&url)))
        .await
        .unwrap_or(Found::Missing);
    match found {
        Found::Missing => status_page(StatusCode::NOT_FOUND),
        Found::NeedsSlash => {
            // Relative links in the page need the trailing slash. One
            // leading slash only: `//name/` would send a browser to the
            // host `name`.
            let mut to = format!("/{}/", url_path.trim_start_matches('/'));
            if let Some(query) = req.uri().query() {
                to = format!("{to}?{query}");
            }
            let mut resp = status_page(StatusCode::MOVED_PERMANENTLY);
            if let Ok(v) = HeaderValue::from_str(&to) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Found::File(path, meta) => file(&path, &meta, req.headers(), head).await,
        Found::Listing(l) => {
            let sort = Sort::from_query(req.uri().query());
            let page = listing::page(l, url_path, sort, root.upload.is_some());
            html(page, head)
        }
    }
}

/// A page of HTML, or for HEAD only its length.
pub(super) fn html(page: String, head: bool) -> Response<Body> {
    let len = page.len();
    let mut resp = Response::new(if head { full("") } else { full(page) });
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// A file, whole or one byte range; or 304 if the client's copy is
/// current, 412 if the request's precondition fails.
async fn file(
    path: &Path,
    meta: &std::fs::Metadata,
    req: &HeaderMap,
    head: bool,
) -> Response<Body> {
    let len = meta.len();
    let modified = meta.modified().ok();
    let etag = etag(len, modified);
    match preconditions(req, &etag, modified) {
        Some(StatusCode::NOT_MODIFIED) => {
            let mut resp = Response::new(full(""));
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            set_validators(resp.headers_mut(), &etag, modified);
            return resp;
        }
        Some(status) => return status_page(status),
        None => {}
    }
    let range = match text(req, header::RANGE) {
        Some(spec) if range_still_applies(req, &etag, modified) => match parse_range(spec, len) {
            Ok(r) => r,
            Err(()) => {
                let mut resp = status_page(StatusCode::RANGE_NOT_SATISFIABLE);
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return resp;
            }
        },
        _ => None,
    };
    let (start, count) = range.unwrap_or((0, len));
    let body = if head {
        full("")
    } else {
        match open_at(path, start, count).await {
            Ok(b) => b,
            Err(_) => return status_page(StatusCode::NOT_FOUND),
        }
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let content_type = if mime.type_() == mime_guess::mime::TEXT {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    set_validators(h, &etag, modified);
    if range.is_some() {
        let end = (start + count).saturating_sub(1);
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    resp
}

/// `count` bytes of the file from `start`, read as they are sent. Each
/// chunk is read on the blocking pool straight into the buffer hyper sends
/// (tokio's `File` reads into a buffer of its own and copies), and the
/// buffer is not zeroed first.
async fn open_at(path: &Path, start: u64, count: u64) -> io::Result<Body> {
    let path = path.to_owned();
    let file = blocking(move || {
        // Non-blocking, so that a FIFO put in the file's place since it was
        // looked up cannot hold the thread; it is refused once open.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        if !f.metadata()?.is_file() {
            return Err(io::ErrorKind::NotFound.into());
        }
        std::io::Seek::seek(&mut f, SeekFrom::Start(start))?;
        Ok(f)
    })
    .await?;
    let chunks = futures_util::stream::try_unfold((file, count), |(f, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = left.min(CHUNK as u64) as usize;
        let (f, buf) = blocking(move || {
            let mut buf = Vec::with_capacity(want);
            rustix::io::read(&f, rustix::buffer::spare_capacity(&mut buf))?;
            Ok((f, buf))
        })
        .await?;
        if buf.is_empty() {
            // The file shrank after its length was sent: end the body
            // short (the client sees it) rather than wait forever.
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
        }
        let left = left - buf.len() as u64;
        Ok(Some((Frame::data(Bytes::from(buf)), (f, left))))
    });
    Ok(BodyExt::boxed(StreamBody::new(chunks)))
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

/// A strong validator from size and modification time.
fn etag(len: u64, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

fn set_validators(h: &mut HeaderMap, etag: &str, modified: Option<SystemTime>) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(m) = modified
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m))
    {
        h.insert(header::LAST_MODIFIED, v);
    }
}

fn text(req: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    req.get(name).and_then(|v| v.to_str().ok())
}

fn date(req: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    text(req, name).and_then(|v| httpdate::parse_http_date(v).ok())
}

/// Whole seconds: HTTP dates have no finer grain.
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The answer the request's preconditions give instead of the file, in
/// RFC 9110 13.2.2's order: 412 when If-Match (or, without it,
/// If-Unmodified-Since) fails; 304 when If-None-Match (or, without it,
/// If-Modified-Since) finds the client's copy current.
fn preconditions(req: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> Option<StatusCode> {
    if let Some(tags) = text(req, header::IF_MATCH) {
        // A strong comparison: a weak tag never matches.
        if !tags
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag)
        {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    } else if let (Some(since), Some(m)) = (date(req, header::IF_UNMODIFIED_SINCE), modified)
        && secs(m) > secs(since)
    {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if let Some(tags) = text(req, header::IF_NONE_MATCH) {
        return tags
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
            .then_some(StatusCode::NOT_MODIFIED);
    }
    match (date(req, header::IF_MODIFIED_SINCE), modified) {
        (Some(since), Some(m)) if secs(m) <= secs(since) => Some(StatusCode::NOT_MODIFIED),
        _ => None,
    }
}

/// Whether a Range still applies: without If-Range, or when If-Range names
/// the file as it is now, by its strong tag or its exact modification
/// time (RFC 9110 13.1.5). Otherwise the client's partial copy is of an
/// older file, and it gets the whole new one.
fn range_still_applies(req: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    let Some(validator) = text(req, header::IF_RANGE).map(str::trim) else {
        return true;
    };
    if validator.starts_with('"') || validator.starts_with("W/") {
        return validator == etag;
    }
    match (httpdate::parse_http_date(validator), modified) {
        (Ok(at), Some(m)) => secs(at) == secs(m),
        _ => false,
    }
}

/// Parses a single `bytes=` range against a file of `len` bytes: `Ok(None)`
/// means serve it whole (a form we do not take, like several ranges),
/// `Err` means unsatisfiable.
fn parse_range(spec: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some((unit, set)) = spec.trim().split_once('=') else {
        return Ok(None);
    };
    // Range units are case-insensitive.
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Ok(None);
    }
    if set.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            if len == 0 {
                // Satisfiable (RFC 9110 14.1.1), but no Content-Range can
                // name an empty part: the whole, empty, file.
                return Ok(None);
            }
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (false, true) => (a.parse().map_err(|_| ())?, len.saturating_sub(1)),
        (false, false) => {
            let (s, e): (u64, u64) = (a.parse().map_err(|_| ())?, b.parse().map_err(|_| ())?);
            if e < s {
                return Err(());
            }
            (s, e.min(len.saturating_sub(1)))
        }
        (true, true) => return Ok(None),
    };
    if start >= len {
        return Err(());
    }
    Ok(Some((start, end - start + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 10))));
        assert_eq!(parse_range("bytes=-5", 100), Ok(Some((95, 5))));
        assert_eq!(parse_range("bytes=95-200", 100), Ok(Some((95, 5))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("Bytes=0-9", 100), Ok(Some((0, 10))));
        assert_eq!(parse_range("bytes=-1", 0), Ok(None));
        assert_eq!(parse_range("bytes=0-", 0), Err(()));
    }

    #[test]
    fn paths_never_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        std::fs::write(dir.path().join(".secret"), "s").unwrap();
        let root = Root::new(dir.path(), false, None).unwrap();
        assert!(root.resolve("/a.txt").is_some());
        assert!(root.resolve("/%61.txt").is_some());
        assert!(root.resolve("/../etc/passwd").is_none());
        assert!(root.resolve("/%2e%2e/etc/passwd").is_none());
        assert!(root.resolve("/.secret").is_none());
        assert!(
            Root::new(dir.path(), true, None)
                .unwrap()
                .resolve("/.secret")
                .is_some()
        );
    }
}
