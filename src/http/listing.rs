//! The HTML page for a directory without an index.html: directories first,
//! sizes people read, columns sorted by `?sort=name|size|modified` and
//! `&order=asc|desc`, a parent link, a marker for each kind of file, and
//! with `--upload` a form to add files. The page is self-contained (its
//! style inline, no script) and follows the system's dark mode.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::time::SystemTime;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters escaped in listing links (a path segment's reserved set).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\');

/// Entries one listing shows: a directory of millions would otherwise
/// cost that many stat calls and a page of hundreds of megabytes per
/// request.
pub const MAX_LISTED: usize = 10_000;

/// One directory's entries that may be served.
pub struct Listing {
    pub entries: Vec<Entry>,
    /// The directory has more than `MAX_LISTED` entries.
    pub truncated: bool,
}

/// A name in a listing with what the page shows of it.
pub struct Entry {
    pub name: String,
    pub dir: bool,
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// A column to sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Size,
    Modified,
}

impl Column {
    const ALL: [Column; 3] = [Column::Name, Column::Size, Column::Modified];

    fn key(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::Size => "size",
            Column::Modified => "modified",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Column::Name => "Name",
            Column::Size => "Size",
            Column::Modified => "Modified",
        }
    }
}

/// How the page is sorted, from its query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub by: Column,
    pub descending: bool,
}

impl Sort {
    /// `sort=` and `order=` from a query; anything else is ignored, as an
    /// unknown value is, so a stale link still shows the directory.
    pub fn from_query(query: Option<&str>) -> Sort {
        let mut sort = Sort {
            by: Column::Name,
            descending: false,
        };
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("sort", v)) => {
                    if let Some(c) = Column::ALL.into_iter().find(|c| c.key() == v) {
                        sort.by = c;
                    }
                }
                Some(("order", "desc")) => sort.descending = true,
                Some(("order", "asc")) => sort.descending = false,
                _ => {}
            }
        }
        sort
    }

    /// Directories first whatever the column, then the column, then the
    /// name so equal sizes or dates keep a stable order.
    fn order(&self, a: &Entry, b: &Entry) -> Ordering {
        let by = match self.by {
            Column::Name => Ordering::Equal,
            Column::Size if a.dir && b.dir => Ordering::Equal,
            Column::Size => a.len.cmp(&b.len),
            Column::Modified => a.modified.cmp(&b.modified),
        };
        let by = by.then_with(|| a.name.cmp(&b.name));
        let by = if self.descending { by.reverse() } else { by };
        b.dir.cmp(&a.dir).then(by)
    }
}

/// Sorts the listing and renders its page; `upload` adds the form.
pub fn page(mut l: Listing, url_path: &str, sort: Sort, upload: bool) -> String {
    l.entries.sort_by(|a, b| sort.order(a, b));
    let title = html_escape(url_path);
    let mut page = String::with_capacity(2048 + l.entries.len() * 256);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>Index of {title}</title>\n<style>{STYLE}</style></head>\n\
         <body><h1>Index of {}</h1>\n",
        crumbs(url_path)
    );
    if upload {
        page.push_str(
            "<form class=\"upload\" method=\"post\" enctype=\"multipart/form-data\">\
             <label>Upload <input type=\"file\" name=\"file\" multiple required></label> \
             <button type=\"submit\">Send</button></form>\n",
        );
    }
    page.push_str("<table>\n<thead><tr>");
    for column in Column::ALL {
        let current = column == sort.by;
        // A second click on the sorted column turns its order around.
        let order = if current && !sort.descending {
            "desc"
        } else {
            "asc"
        };
        let (arrow, aria) = match (current, sort.descending) {
            (false, _) => ("", "none"),
            (true, false) => (" ▲", "ascending"),
            (true, true) => (" ▼", "descending"),
        };
        let _ = write!(
            page,
            "<th class=\"{key}\" aria-sort=\"{aria}\"><a href=\"?sort={key}&amp;order={order}\">{}{arrow}</a></th>",
            column.title(),
            key = column.key(),
        );
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    if url_path != "/" {
        page.push_str(
            "<tr class=\"parent\"><td class=\"name\"><a href=\"../\"><span class=\"kind\" aria-hidden=\"true\">up</span>Parent directory</a></td><td class=\"size\"></td><td class=\"modified\"></td></tr>\n",
        );
    }
    for e in &l.entries {
        row(&mut page, e);
    }
    if l.truncated {
        let _ = writeln!(
            page,
            "<tr><td colspan=\"3\">more than {MAX_LISTED} entries; the rest are not listed</td></tr>"
        );
    }
    let dirs = l.entries.iter().filter(|e| e.dir).count();
    let files = l.entries.len() - dirs;
    let bytes: u64 = l.entries.iter().filter(|e| !e.dir).map(|e| e.len).sum();
    let _ = writeln!(
        page,
        "</tbody>\n</table>\n<p class=\"summary\">{dirs} {}, {files} {}, {}</p>\n</body></html>",
        plural(dirs, "directory", "directories"),
        plural(files, "file", "files"),
        human_size(bytes),
    );
    page
}

fn row(page: &mut String, e: &Entry) {
    let slash = if e.dir { "/" } else { "" };
    let kind = Kind::of(e);
    let size = if e.dir {
        "—".to_string()
    } else {
        human_size(e.len)
    };
    let (date, iso) = e
        .modified
        .map(|m| {
            let t = chrono::DateTime::<chrono::Utc>::from(m);
            (
                t.format("%Y-%m-%d %H:%M").to_string(),
                t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        page,
        "<tr class=\"{class}\"><td class=\"name\"><a href=\"{href}{slash}\"><span class=\"kind\" title=\"{label}\" aria-label=\"{label}\">{mark}</span>{name}{slash}</a></td>\
         <td class=\"size\" data-bytes=\"{bytes}\" title=\"{bytes} bytes\">{size}</td><td class=\"modified\"><time datetime=\"{iso}\">{date}</time></td></tr>",
        class = kind.class(),
        href = html_escape(&utf8_percent_encode(&e.name, SEGMENT).to_string()),
        label = kind.label(),
        mark = kind.mark(),
        name = html_escape(&e.name),
        bytes = if e.dir { 0 } else { e.len },
    );
}

/// The links in the heading: each ancestor of the directory.
fn crumbs(url_path: &str) -> String {
    let mut out = String::from("<a href=\"/\">/</a>");
    let mut at = String::from("/");
    for segment in url_path.split('/').filter(|s| !s.is_empty()) {
        at.push_str(segment);
        at.push('/');
        let shown = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        let _ = write!(
            out,
            "<a href=\"{}\">{}</a>/",
            html_escape(&at),
            html_escape(&shown)
        );
    }
    out
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// What kind of file a name is, by its extension: the marker a reader
/// scans a long listing by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    Image,
    Audio,
    Video,
    Archive,
    Code,
    Text,
    Document,
    Other,
}

impl Kind {
    fn of(e: &Entry) -> Kind {
        if e.dir {
            return Kind::Dir;
        }
        let ext = e
            .name
            .rsplit_once('.')
            .map(|(_, x)| x.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "png" | "jpg" | "jpeg" | "gif" | "webp" | "svg" | "bmp" | "ico" | "avif" => Kind::Image,
            "mp3" | "ogg" | "oga" | "flac" | "wav" | "m4a" | "opus" => Kind::Audio,
            "mp4" | "webm" | "mkv" | "mov" | "avi" | "ogv" => Kind::Video,
            "zip" | "tar" | "gz" | "tgz" | "xz" | "bz2" | "zst" | "7z" | "rar" | "deb" => {
                Kind::Archive
            }
            "rs" | "c" | "h" | "cpp" | "py" | "js" | "mjs" | "ts" | "go" | "java" | "sh" | "rb"
            | "html" | "css" | "json" | "toml" | "yaml" | "yml" | "xml" => Kind::Code,
            "txt" | "md" | "log" | "csv" | "ini" | "conf" => Kind::Text,
            "pdf" | "doc" | "docx" | "odt" | "xls" | "xlsx" | "ods" | "ppt" | "pptx" => {
                Kind::Document
            }
            _ => Kind::Other,
        }
    }

    /// A short badge rather than an emoji or icon font: it shows the same
    /// on every system, fonts or not.
    fn mark(self) -> &'static str {
        match self {
            Kind::Dir => "dir",
            Kind::Image => "img",
            Kind::Audio => "aud",
            Kind::Video => "vid",
            Kind::Archive => "arc",
            Kind::Code => "src",
            Kind::Text => "txt",
            Kind::Document => "doc",
            Kind::Other => "file",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Dir => "directory",
            Kind::Image => "image",
            Kind::Audio => "audio",
            Kind::Video => "video",
            Kind::Archive => "archive",
            Kind::Code => "code",
            Kind::Text => "text",
            Kind::Document => "document",
            Kind::Other => "file",
        }
    }

    fn class(self) -> &'static str {
        self.label()
    }
}

/// Bytes as people read them: 999 B, 1.0 KiB, 12.3 MiB.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    if size < 10.0 {
        format!("{size:.1} {}", UNITS[unit])
    } else {
        format!("{size:.0} {}", UNITS[unit])
    }
}

pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's style: a readable table on a phone (the date column goes
/// below 36em), system fonts and colours, and a dark scheme.
const STYLE: &str = "\
:root{--fg:#1d1f23;--bg:#fbfbfc;--muted:#6b7079;--line:#e3e5e8;--link:#1f5fbf;--hover:#eef2f8}\
@media (prefers-color-scheme:dark){:root{--fg:#e4e6ea;--bg:#16181c;--muted:#9aa0a8;--line:#2b2f35;--link:#7fb0ff;--hover:#20242b}}\
body{font:15px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:60em;padding:1em}\
h1{font-size:1.25em;font-weight:600;word-break:break-all}h1 a{color:inherit;text-decoration:none}h1 a:hover{text-decoration:underline}\
table{width:100%;border-collapse:collapse}th,td{padding:.4em .5em;border-bottom:1px solid var(--line);text-align:left}\
th a{color:var(--muted);text-decoration:none;font-weight:600}tbody tr:hover{background:var(--hover)}\
td.name{word-break:break-all}td.name a{color:var(--link);text-decoration:none}td.name a:hover{text-decoration:underline}\
.kind{display:inline-block;min-width:2.6em;margin-right:.6em;padding:0 .3em;border-radius:4px;font:600 .7em/1.7 ui-monospace,monospace;text-align:center;text-transform:uppercase;vertical-align:.15em;color:var(--muted);background:var(--hover);border:1px solid var(--line)}\
tr.directory .kind{color:#fff;background:#3b73c4;border-color:#3b73c4}tr.image .kind{color:#8a3ab9}tr.archive .kind{color:#b86e00}tr.code .kind{color:#1f8a5b}tr.audio .kind,tr.video .kind{color:#c2185b}.size,.modified{white-space:nowrap;color:var(--muted)}th.size,td.size{text-align:right}\
.summary{color:var(--muted);font-size:.9em}.upload{margin:0 0 1em;padding:.6em;border:1px dashed var(--line);border-radius:6px}\
@media (max-width:36em){th.modified,td.modified{display:none}body{padding:.5em}}";

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, dir: bool, len: u64, secs: u64) -> Entry {
        Entry {
            name: name.into(),
            dir,
            len,
            modified: Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)),
        }
    }

    fn sorted(query: &str) -> Vec<String> {
        let sort = Sort::from_query(Some(query));
        let mut entries = vec![
            entry("b.txt", false, 10, 3),
            entry("zdir", true, 0, 1),
            entry("a.png", false, 2000, 2),
            entry("adir", true, 0, 4),
        ];
        entries.sort_by(|a, b| sort.order(a, b));
        entries.into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn directories_come_first_in_every_order() {
        assert_eq!(sorted(""), ["adir", "zdir", "a.png", "b.txt"]);
        assert_eq!(sorted("order=desc"), ["zdir", "adir", "b.txt", "a.png"]);
        assert_eq!(sorted("sort=size"), ["adir", "zdir", "b.txt", "a.png"]);
        assert_eq!(
            sorted("sort=size&order=desc"),
            ["zdir", "adir", "a.png", "b.txt"]
        );
        assert_eq!(
            sorted("sort=modified&order=desc"),
            ["adir", "zdir", "b.txt", "a.png"]
        );
        assert_eq!(sorted("sort=bogus&order=sideways"), sorted(""));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(20 * 1024 * 1024), "20 MiB");
        assert_eq!(human_size(u64::MAX), "16 EiB");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let l = Listing {
            entries: vec![entry("<b>x</b>.txt", false, 1, 0)],
            truncated: false,
        };
        let page = page(l, "/d%20ir/", Sort::from_query(None), false);
        assert!(page.contains("&lt;b&gt;x&lt;/b&gt;.txt"));
        assert!(!page.contains("<b>x"));
        assert!(page.contains("<a href=\"/d%20ir/\">d ir</a>"));
    }
}
