//! `http serve DIR --upload`: files added by a multipart/form-data POST to
//! a directory's URL, as the listing's form or `curl -F file=@x URL/`
//! sends them. The body is streamed to disk, capped as a whole by
//! `--upload-max`; a name is a plain file name (no path, no dotfile
//! unless `--hidden`) in a directory inside the root; an existing file is
//! kept unless `--overwrite`. A refused or broken upload leaves nothing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::BodyStream;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::io::AsyncWriteExt;

use super::files::{Root, blocking};
use super::listing::{html_escape, human_size};
use super::{Body, full};

/// What uploads may do.
#[derive(Debug, Clone, Copy)]
pub struct Upload {
    /// Most bytes one request may carry, multipart framing included.
    pub max: u64,
    /// Replace a file of the same name instead of refusing.
    pub overwrite: bool,
}

/// Why an upload was refused, as the client is told.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("not a directory here")]
    NoDirectory,
    #[error("the body must be multipart/form-data")]
    NotMultipart,
    #[error("bad file name {0:?}: give a plain name, without a path")]
    BadName(String),
    #[error("{0} exists; the server keeps it (it was not started with --overwrite)")]
    Exists(String),
    #[error("upload larger than {} (--upload-max)", human_size(*.0))]
    TooLarge(u64),
    #[error("no file in the form")]
    NoFile,
    #[error("malformed multipart body: {0}")]
    Malformed(String),
    #[error("could not save {0}: {1}")]
    Io(String, io::Error),
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::NoDirectory => StatusCode::NOT_FOUND,
            Refused::NotMultipart => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::BadName(_) | Refused::NoFile | Refused::Malformed(_) => {
                StatusCode::BAD_REQUEST
            }
            Refused::Exists(_) => StatusCode::CONFLICT,
            Refused::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Io(..) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Takes a POST to a directory: saves its files and answers with what was
/// saved, or with why nothing (more) was.
pub async fn receive<B>(root: &Arc<Root>, up: &Upload, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let url_path = req.uri().path().to_owned();
    // A browser's form wants the listing back; curl wants to be told.
    let browser = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let saved = save_all(root, up, req).await;
    match saved {
        Ok(_) if browser => {
            let mut resp = Response::new(full(""));
            *resp.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&url_path) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Ok(files) => {
            let mut text = String::new();
            for (name, len) in files {
                text.push_str(&format!("saved {name} ({len} bytes)\n"));
            }
            reply(StatusCode::CREATED, text, false)
        }
        Err(why) => {
            tracing::info!(path = %url_path, "upload refused: {why}");
            reply(why.status(), format!("{why}\n"), browser)
        }
    }
}

fn reply(status: StatusCode, text: String, html: bool) -> Response<Body> {
    let (body, kind) = if html {
        let page = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body><p>{}</p><p><a href=\"\">Back to the listing</a></p></body></html>\n",
            status.as_u16(),
            html_escape(text.trim_end())
        );
        (page, "text/html; charset=utf-8")
    } else {
        (text, "text/plain; charset=utf-8")
    };
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    resp
}

async fn save_all<B>(
    root: &Arc<Root>,
    up: &Upload,
    req: Request<B>,
) -> Result<Vec<(String, u64)>, Refused>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    // Refused before a byte of the body is read.
    if declared.is_some_and(|n| n > up.max) {
        return Err(Refused::TooLarge(up.max));
    }
    let boundary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
        .ok_or(Refused::NotMultipart)?;
    let dir = {
        let (r, url) = (root.clone(), req.uri().path().to_owned());
        blocking(move || Ok(r.resolve(&url).filter(|p| url.ends_with('/') && p.is_dir())))
            .await
            .ok()
            .flatten()
            .ok_or(Refused::NoDirectory)?
    };
    let body = BodyStream::new(req.into_body())
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) });
    let limits =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(up.max));
    let mut form = multer::Multipart::with_constraints(body, boundary, limits);
    let mut saved = Vec::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| multipart(e, up))? {
        // Other fields of a form are read past, not kept.
        let Some(given) = field.file_name().map(str::to_owned) else {
            while field.chunk().await.map_err(|e| multipart(e, up))?.is_some() {}
            continue;
        };
        let name = plain_name(root, &given).ok_or(Refused::BadName(given))?;
        let mut file = Target::create(&dir, &name, up.overwrite).await?;
        let mut len = 0u64;
        let written: Result<(), Refused> = async {
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart(e, up))? {
                len += chunk.len() as u64;
                file.out
                    .write_all(&chunk)
                    .await
                    .map_err(|e| Refused::Io(name.clone(), e))?;
            }
            Ok(())
        }
        .await;
        match written {
            Ok(()) => file
                .finish()
                .await
                .map_err(|e| Refused::Io(name.clone(), e))?,
            Err(e) => {
                file.abandon().await;
                return Err(e);
            }
        }
        tracing::info!(file = %dir.join(&name).display(), bytes = len, "uploaded");
        saved.push((name, len));
    }
    if saved.is_empty() {
        return Err(Refused::NoFile);
    }
    Ok(saved)
}

fn multipart(e: multer::Error, up: &Upload) -> Refused {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            Refused::TooLarge(up.max)
        }
        e => Refused::Malformed(e.to_string()),
    }
}

/// The name as given if it is one plain file name that may be served:
/// browsers send only the last part of a path, so a path is refused, not
/// cut down to a name the sender did not mean.
fn plain_name(root: &Root, given: &str) -> Option<String> {
    let ok = !given.is_empty()
        && given.len() <= 255
        && given != "."
        && given != ".."
        && !given.contains(['/', '\\', '\0'])
        && !given.chars().any(char::is_control)
        && root.may_name(given);
    ok.then(|| given.to_owned())
}

/// Where one file's bytes go until they are all there.
struct Target {
    out: tokio::fs::File,
    /// The name being written: the file itself, or a temporary beside it
    /// that replaces it at the end.
    writing: PathBuf,
    replaces: Option<PathBuf>,
}

impl Target {
    async fn create(dir: &Path, name: &str, overwrite: bool) -> Result<Target, Refused> {
        let path = dir.join(name);
        let io = |e: io::Error| Refused::Io(name.to_owned(), e);
        if !overwrite {
            // O_EXCL: fails on any existing name, a symlink included, so
            // nothing is replaced and no link is followed out of the root.
            return match tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await
            {
                Ok(out) => Ok(Target {
                    out,
                    writing: path,
                    replaces: None,
                }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    Err(Refused::Exists(name.to_owned()))
                }
                Err(e) => Err(io(e)),
            };
        }
        if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
            return Err(Refused::Exists(name.to_owned()));
        }
        // Written beside it, then renamed over it: the rename replaces a
        // symlink itself, never what it points to, and readers see the old
        // file or the new one, never half of it.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.sockit-upload-{}-{n}", std::process::id()));
        let out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .await
            .map_err(io)?;
        Ok(Target {
            out,
            writing: temp,
            replaces: Some(path),
        })
    }

    async fn finish(mut self) -> io::Result<()> {
        self.out.flush().await?;
        if let Some(path) = &self.replaces
            && let Err(e) = tokio::fs::rename(&self.writing, path).await
        {
            let _ = tokio::fs::remove_file(&self.writing).await;
            return Err(e);
        }
        Ok(())
    }

    async fn abandon(self) {
        drop(self.out);
        let _ = tokio::fs::remove_file(&self.writing).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path(), false, None).unwrap();
        assert_eq!(plain_name(&root, "a b.txt").as_deref(), Some("a b.txt"));
        assert_eq!(plain_name(&root, "ünï.txt").as_deref(), Some("ünï.txt"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".env", "x\0y", "a\nb"] {
            assert_eq!(plain_name(&root, bad), None, "{bad:?}");
        }
        let hidden = Root::new(dir.path(), true, None).unwrap();
        assert_eq!(plain_name(&hidden, ".env").as_deref(), Some(".env"));
        assert_eq!(plain_name(&hidden, "..").as_deref(), None);
    }
}
