//! `sockit http get`: fetch a URL the way the textbook raw-socket client
//! did — status line and headers on stderr, the body on stdout or in a file
//! — on a maintained client stack (reqwest with rustls and bundled roots).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use crate::units::Secs;
use tokio::io::AsyncWriteExt;

/// The flags of `sockit http get`.
#[derive(Debug, Clone, Args)]
pub struct Options {
    /// The URL (http:// or https://).
    #[arg(value_parser = parse_url)]
    pub url: reqwest::Url,
    /// Save the body to FILE.
    #[arg(short, long, value_name = "FILE", conflicts_with = "remote_name")]
    pub output: Option<PathBuf>,
    /// Save the body under the URL's last path segment (index.html for /).
    #[arg(short = 'O', long)]
    pub remote_name: bool,
    /// Send HEAD and show only the headers.
    #[arg(short = 'I', long)]
    pub head: bool,
    /// Follow redirects (up to 10).
    #[arg(short = 'L', long)]
    pub location: bool,
    /// Exit non-zero on a 4xx or 5xx status.
    #[arg(short, long)]
    pub fail: bool,
    /// Give up after this long (0 = never).
    #[arg(
        long,
        value_name = "SECS",
        default_value = "0",
        allow_negative_numbers = true
    )]
    pub timeout: Secs,
    /// Trust this PEM certificate too (a private CA or self-signed server).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
}

/// Redirects `-L` follows, as curl's default of 50 is more than any page needs.
const MAX_REDIRECTS: usize = 10;

impl Options {
    /// The fetch, once every value is checked.
    pub fn config(&self) -> Config {
        Config {
            url: self.url.clone(),
            output: match (&self.output, self.remote_name) {
                (Some(p), _) => Output::File(p.clone()),
                (None, true) => Output::Remote,
                (None, false) => Output::Stdout,
            },
            head: self.head,
            redirects: if self.location { MAX_REDIRECTS } else { 0 },
            fail: self.fail,
            timeout: self.timeout.nonzero(),
            cacert: self.cacert.clone(),
        }
    }
}

/// An absolute http:// or https:// URL.
fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("invalid URL '{text}': {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "invalid URL '{text}': scheme '{other}' is not http or https"
        )),
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL.
    pub url: reqwest::Url,
    /// Where the body goes (`None`: stdout).
    pub output: Output,
    /// Send HEAD and print only the headers.
    pub head: bool,
    /// Follow up to this many redirects (0: none).
    pub redirects: usize,
    /// Fail on a 4xx or 5xx status.
    pub fail: bool,
    /// Give up after this long in all.
    pub timeout: Option<Duration>,
    /// Extra root certificate (PEM) for private CAs.
    pub cacert: Option<PathBuf>,
}

/// Where the body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// This file.
    File(PathBuf),
    /// A file named after the URL's last path segment.
    Remote,
}

/// The file name `-O` uses: the last path segment, `index.html` for `/`.
pub fn remote_name(url: &reqwest::Url) -> String {
    url.path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .replace(['/', '\\'], "_")
        })
        .filter(|s| s != "." && s != "..")
        .unwrap_or_else(|| "index.html".into())
}

/// Fetches the URL; returns an error for transport failures and, with
/// `fail`, for error statuses.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    let url = cfg.url.clone();
    let mut client = reqwest::Client::builder()
        .redirect(if cfg.redirects > 0 {
            reqwest::redirect::Policy::limited(cfg.redirects)
        } else {
            reqwest::redirect::Policy::none()
        })
        .user_agent(concat!("sockit/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = cfg.timeout {
        client = client.timeout(t);
    }
    if let Some(path) = &cfg.cacert {
        let pem = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{}: not a PEM certificate", path.display()))?;
        client = client.add_root_certificate(cert);
    }
    let client = client.build()?;
    let req = if cfg.head {
        client.head(url.clone())
    } else {
        client.get(url.clone())
    };
    let mut resp = req.send().await?;
    print_head(&resp)?;
    let status = resp.status();
    if cfg.fail && (status.is_client_error() || status.is_server_error()) {
        bail!("{} returned {status}", resp.url());
    }
    if cfg.head {
        return Ok(());
    }
    let path = match &cfg.output {
        Output::Stdout => None,
        Output::File(p) => Some(p.clone()),
        Output::Remote => Some(PathBuf::from(remote_name(resp.url()))),
    };
    let bar = progress(path.as_deref(), resp.content_length());
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match &path {
        Some(p) => Box::new(
            tokio::fs::File::create(p)
                .await
                .with_context(|| format!("create {}", p.display()))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    // `http get URL | head` ends the pipeline normally, as in netcat mode.
    let to_stdout = path.is_none();
    let written = |e: std::io::Error| {
        if to_stdout {
            crate::stdio::stdout_error(e)
        } else {
            e
        }
    };
    // A body without Content-Length ends when the server closes: whatever
    // arrived by then is the body (HTTP/1.0 style).
    while let Some(chunk) = resp.chunk().await? {
        out.write_all(&chunk).await.map_err(written)?;
        if let Some(b) = &bar {
            b.inc(chunk.len() as u64);
        }
    }
    out.flush().await.map_err(written)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(p) = path {
        tracing::info!("saved {}", p.display());
    }
    Ok(())
}

/// The status line and headers, as the server sent them, on stderr.
fn print_head(resp: &reqwest::Response) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    writeln!(err, "{:?} {}", resp.version(), resp.status())?;
    for (name, value) in resp.headers() {
        writeln!(err, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
    }
    writeln!(err)?;
    Ok(())
}

/// A download bar when saving to a file with a terminal to draw on.
fn progress(path: Option<&Path>, len: Option<u64>) -> Option<indicatif::ProgressBar> {
    if path.is_none() || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match len {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names() {
        let name = |u: &str| remote_name(&reqwest::Url::parse(u).unwrap());
        assert_eq!(name("http://h/"), "index.html");
        assert_eq!(name("http://h"), "index.html");
        assert_eq!(name("http://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(name("http://h/dir/"), "index.html");
        assert_eq!(name("http://h/a%2Fb"), "a_b");
        assert_eq!(name("http://h/%2e%2e"), "index.html");
    }
}
