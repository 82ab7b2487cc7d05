//! Lines as the server sends them. A line is made once and shared by every
//! client it goes to; each form a client may need (text or WebSocket
//! frames, with or without tags) is rendered the first time some client
//! needs it and then shared too, so a fan-out to ten thousand WebSocket
//! clients frames the message once.
//!
//! Tags are the protocol's one extension for programs, the web page among
//! them: a client that says `/tags on` gets every line as
//! `@kind=msg;id=…;room=lobby;from=alice;t=… hello`, in the manner of
//! IRCv3 message tags. Values are names, numbers and ids, which never hold
//! `;`, a space or a line break, so they need no escaping.

use std::fmt::Write;
use std::sync::{Arc, OnceLock};

/// One or more lines, or raw bytes, and the forms they were rendered in.
#[derive(Debug)]
pub struct Entry {
    content: Content,
    forms: [OnceLock<Box<[u8]>>; 4],
}

#[derive(Debug)]
enum Content {
    Lines(Vec<Line>),
    /// Already on-the-wire bytes, the same for every form: WebSocket
    /// control frames.
    Raw(Box<[u8]>),
}

/// One server line.
#[derive(Debug, Clone)]
pub struct Line {
    /// As a person reads it: `[12:00:01] <alice> hello`, `* bob joined #dev`.
    text: String,
    /// For tagged clients: `kind=msg;id=…`.
    tags: String,
    /// Where what follows the tags starts in `text`: for a message, the
    /// text as typed; for anything else, all of it.
    body: usize,
}

impl Line {
    /// A line of `kind` with more tags (`key=value;…`, possibly empty),
    /// read as `text` by everyone.
    pub fn new(kind: &str, tags: &str, text: impl Into<String>) -> Line {
        let mut all = format!("kind={kind}");
        if !tags.is_empty() {
            all.push(';');
            all.push_str(tags);
        }
        Line {
            text: text.into(),
            tags: all,
            body: 0,
        }
    }

    /// A reply for this client alone: `* …`.
    pub fn info(text: impl Into<String>) -> Line {
        Line::new("info", "", text)
    }

    /// Something refused: `! …`.
    pub fn error(text: impl Into<String>) -> Line {
        Line::new("error", "", text)
    }

    /// A message as typed (`said`) after the prefix people see.
    pub fn message(kind: &str, tags: &str, prefix: &str, said: &str) -> Line {
        let mut line = Line::new(kind, tags, format!("{prefix}{said}"));
        line.body = prefix.len();
        line
    }
}

/// Which rendering a client takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Form {
    /// One WebSocket text frame per line rather than `\n`-ended text.
    pub websocket: bool,
    /// Every line with its tags.
    pub tagged: bool,
}

impl Form {
    fn index(self) -> usize {
        usize::from(self.websocket) * 2 + usize::from(self.tagged)
    }
}

/// What an [`Entry`] is shared as.
pub type Outgoing = Arc<Entry>;

impl Entry {
    /// A batch sent in one write: a burst of messages.
    pub fn lines(lines: Vec<Line>) -> Outgoing {
        Arc::new(Entry {
            content: Content::Lines(lines),
            forms: Default::default(),
        })
    }

    /// A notice, a reply, one message of history.
    pub fn line(line: Line) -> Outgoing {
        Entry::lines(vec![line])
    }

    /// Bytes that go out as they are, whatever the form.
    pub fn raw(bytes: impl Into<Box<[u8]>>) -> Outgoing {
        Arc::new(Entry {
            content: Content::Raw(bytes.into()),
            forms: Default::default(),
        })
    }

    /// The entry in `form`, rendered now if no one needed it before.
    pub fn bytes(&self, form: Form) -> &[u8] {
        match &self.content {
            Content::Raw(bytes) => bytes,
            Content::Lines(lines) => self.forms[form.index()].get_or_init(|| render(lines, form)),
        }
    }

    /// Whether this is a WebSocket close frame, after which nothing may
    /// be sent.
    pub fn is_close(&self) -> bool {
        matches!(&self.content, Content::Raw(b) if b.first() == Some(&(0x80 | OP_CLOSE)))
    }
}

fn render(lines: &[Line], form: Form) -> Box<[u8]> {
    let mut out = Vec::new();
    let mut text = String::new();
    for line in lines {
        text.clear();
        if form.tagged {
            let _ = write!(text, "@{} {}", line.tags, &line.text[line.body..]);
        } else {
            text.push_str(&line.text);
        }
        if form.websocket {
            frame(&mut out, OP_TEXT, text.as_bytes());
        } else {
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
        }
    }
    out.into_boxed_slice()
}

/// WebSocket opcodes (RFC 6455 section 5.2) the server sends.
pub const OP_TEXT: u8 = 0x1;
/// See [`OP_TEXT`].
pub const OP_CLOSE: u8 = 0x8;
/// See [`OP_TEXT`].
pub const OP_PING: u8 = 0x9;

/// Appends one final, unmasked WebSocket frame (RFC 6455 section 5.2):
/// what a server sends, the same bytes for every client. Reading frames
/// is left to tokio-websockets; writing them here is what lets one framing
/// serve a whole fan-out.
pub fn frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A close frame with `code` and a reason (cut to fit a control frame).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    let mut out = Vec::with_capacity(payload.len() + 2);
    frame(&mut out, OP_CLOSE, &payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: Form = Form {
        websocket: false,
        tagged: false,
    };
    const TAGGED: Form = Form {
        websocket: false,
        tagged: true,
    };

    #[test]
    fn every_form_of_a_message() {
        let line = Line::message("msg", "id=x-1;from=al", "[12:00:00] <al> ", "hi there");
        let entry = Entry::lines(vec![line.clone(), Line::info("* done")]);
        assert_eq!(entry.bytes(TEXT), b"[12:00:00] <al> hi there\n* done\n");
        assert_eq!(
            entry.bytes(TAGGED),
            b"@kind=msg;id=x-1;from=al hi there\n@kind=info * done\n"
        );
        let ws = entry.bytes(Form {
            websocket: true,
            tagged: false,
        });
        assert_eq!(&ws[..2], [0x81, 24]);
        assert_eq!(&ws[2..26], b"[12:00:00] <al> hi there");
        assert_eq!(&ws[26..], b"\x81\x06* done");
    }

    #[test]
    fn frame_lengths_take_the_short_forms_first() {
        for (len, header) in [(125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            frame(&mut out, OP_TEXT, &vec![b'a'; len]);
            assert_eq!(out.len(), len + header, "payload of {len}");
        }
        let close = close_frame(1000, &"é".repeat(100));
        assert!(close.len() <= 2 + 125 && std::str::from_utf8(&close[4..]).is_ok());
    }
}
