//! Message framing over a byte stream: `raw` (whatever one read returns),
//! `lines` (newline-delimited, trailing CR stripped) or `len` (4-byte
//! big-endian length prefix), each capped at a maximum frame size.

use bytes::{Bytes, BytesMut};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{
    AnyDelimiterCodec, AnyDelimiterCodecError, Decoder, Encoder, LengthDelimitedCodec,
};

/// Default cap on one frame (`--max-frame`).
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

/// How a byte stream is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// No framing: a message is whatever one read returns (TCP may merge or
    /// split what the peer sent: the "sticky packet" problem).
    #[default]
    Raw,
    /// One message per line; LF or CRLF ends it.
    Lines,
    /// A 4-byte big-endian length, then that many bytes.
    Len,
}

impl Framing {
    /// A codec for this framing that refuses frames over `max` bytes.
    pub fn codec(self, max: usize) -> FrameCodec {
        match self {
            Framing::Raw => FrameCodec::Raw { max },
            Framing::Lines => FrameCodec::Lines(AnyDelimiterCodec::new_with_max_length(
                b"\n".to_vec(),
                b"\n".to_vec(),
                max,
            )),
            Framing::Len => FrameCodec::Len(
                LengthDelimitedCodec::builder()
                    .big_endian()
                    .length_field_length(4)
                    .max_frame_length(max)
                    .new_codec(),
            ),
        }
    }
}

/// Encoder and decoder for one [`Framing`]; frames are `Bytes` both ways.
#[derive(Debug)]
pub enum FrameCodec {
    /// Pass-through, at most `max` bytes per decoded chunk.
    Raw {
        /// Largest chunk handed out at once.
        max: usize,
    },
    /// Newline-delimited.
    Lines(AnyDelimiterCodec),
    /// Length-prefixed.
    Len(LengthDelimitedCodec),
}

/// A frame was larger than `--max-frame` allows.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer sent a frame over the cap.
    #[error("frame longer than {max} bytes")]
    TooLong {
        /// The cap in force.
        max: usize,
    },
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<FrameError> for std::io::Error {
    fn from(err: FrameError) -> Self {
        match err {
            FrameError::Io(e) => e,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

impl FrameCodec {
    fn max(&self) -> usize {
        match self {
            FrameCodec::Raw { max } => *max,
            FrameCodec::Lines(c) => c.max_length(),
            FrameCodec::Len(c) => c.max_frame_length(),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let max = self.max();
        match self {
            FrameCodec::Raw { max } => {
                if src.is_empty() {
                    Ok(None)
                } else {
                    let n = src.len().min(*max);
                    Ok(Some(src.split_to(n).freeze()))
                }
            }
            FrameCodec::Lines(c) => c
                .decode(src)
                .map(|line| line.map(strip_cr))
                .map_err(|e| lines_error(e, max)),
            // The inner codec reserves the whole announced length as soon as
            // it sees a header, so a peer could pin `max` bytes per
            // connection with 4 bytes. Hand it only complete frames; the
            // buffer then grows only as data really arrives.
            FrameCodec::Len(_)
                if src.len() >= 4 && {
                    let n = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
                    n <= max && src.len() < 4 + n
                } =>
            {
                Ok(None)
            }
            FrameCodec::Len(c) => c.decode(src).map(|f| f.map(BytesMut::freeze)).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    FrameError::TooLong { max }
                } else {
                    e.into()
                }
            }),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self {
            // A last line without its newline is still a line. The inner
            // codec must see the EOF itself: it keeps a scan index that a
            // hand-made split would leave stale.
            FrameCodec::Lines(c) => {
                let max = c.max_length();
                c.decode_eof(src)
                    .map(|line| line.map(strip_cr))
                    .map_err(|e| lines_error(e, max))
            }
            _ => match self.decode(src)? {
                Some(frame) => Ok(Some(frame)),
                None if src.is_empty() => Ok(None),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame",
                )
                .into()),
            },
        }
    }
}

fn lines_error(err: AnyDelimiterCodecError, max: usize) -> FrameError {
    match err {
        AnyDelimiterCodecError::MaxChunkLengthExceeded => FrameError::TooLong { max },
        AnyDelimiterCodecError::Io(e) => e.into(),
    }
}

fn strip_cr(line: Bytes) -> Bytes {
    match line.last() {
        Some(b'\r') => line.slice(..line.len() - 1),
        _ => line,
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        match self {
            FrameCodec::Raw { .. } => {
                dst.extend_from_slice(&item);
                Ok(())
            }
            FrameCodec::Lines(_) => {
                dst.reserve(item.len() + 1);
                dst.extend_from_slice(&item);
                dst.extend_from_slice(b"\n");
                Ok(())
            }
            FrameCodec::Len(c) => c.encode(item, dst).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidInput {
                    FrameError::TooLong {
                        max: c.max_frame_length(),
                    }
                } else {
                    e.into()
                }
            }),
        }
    }
}

/// One line from [`TolerantLines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line, without its LF or CRLF.
    Text(Bytes),
    /// A line longer than the cap; its bytes were skipped.
    TooLong,
}

/// Newline framing that reports an over-long line as an item rather than an
/// error: `Framed` ends the stream after any decode error, but a line
/// protocol should answer "too long" and carry on with the next line.
#[derive(Debug)]
pub struct TolerantLines {
    inner: AnyDelimiterCodec,
}

impl TolerantLines {
    /// Lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        TolerantLines {
            inner: AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), max),
        }
    }
}

impl Decoder for TolerantLines {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> std::io::Result<Option<Line>> {
        tolerate(self.inner.decode(src))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> std::io::Result<Option<Line>> {
        tolerate(self.inner.decode_eof(src))
    }
}

fn tolerate(res: Result<Option<Bytes>, AnyDelimiterCodecError>) -> std::io::Result<Option<Line>> {
    match res {
        Ok(line) => Ok(line.map(|l| Line::Text(strip_cr(l)))),
        // The inner codec now skips to the next newline by itself.
        Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => Ok(Some(Line::TooLong)),
        Err(AnyDelimiterCodecError::Io(e)) => Err(e),
    }
}

impl Encoder<Bytes> for TolerantLines {
    type Error = std::io::Error;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> std::io::Result<()> {
        dst.reserve(item.len() + 1);
        dst.extend_from_slice(&item);
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, max: usize, input: &[u8]) -> Result<Vec<Bytes>, FrameError> {
        let mut codec = framing.codec(max);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = codec.decode_eof(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn lines_strip_crlf_and_keep_a_last_partial_line() {
        let got = decode_all(Framing::Lines, 64, b"a\r\nbb\n\nlast").unwrap();
        assert_eq!(got, vec!["a", "bb", "", "last"]);
    }

    #[test]
    fn tolerant_lines_carry_on_after_an_overlong_line() {
        let mut codec = TolerantLines::new(4);
        let mut buf = BytesMut::from(&b"ok\nmuch too long\nyes\r\n"[..]);
        let mut got = Vec::new();
        while let Some(l) = codec.decode_eof(&mut buf).unwrap() {
            got.push(l);
        }
        let text = |s: &'static [u8]| Line::Text(Bytes::from_static(s));
        assert_eq!(got, [text(b"ok"), Line::TooLong, text(b"yes")]);
    }

    #[test]
    fn len_frames_round_trip() {
        let mut codec = Framing::Len.codec(64);
        let mut buf = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"hello"), &mut buf)
            .unwrap();
        codec.encode(Bytes::new(), &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 5]);
        assert_eq!(
            decode_all(Framing::Len, 64, &buf).unwrap(),
            vec!["hello", ""]
        );
    }

    #[test]
    fn oversized_frames_are_errors() {
        assert!(matches!(
            decode_all(Framing::Lines, 4, b"toolong\n"),
            Err(FrameError::TooLong { max: 4 })
        ));
        assert!(matches!(
            decode_all(Framing::Len, 4, &[0, 0, 0, 9, 1]),
            Err(FrameError::TooLong { max: 4 })
        ));
    }

    #[test]
    fn a_len_header_alone_reserves_nothing() {
        let mut codec = Framing::Len.codec(1 << 20);
        let mut buf = BytesMut::from(&[0u8, 0x10, 0, 0][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() < 4096, "capacity {}", buf.capacity());
    }

    #[test]
    fn truncated_len_frame_is_an_error() {
        assert!(decode_all(Framing::Len, 64, &[0, 0, 0, 9, 1]).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// What the lines and length codecs encode, they decode back, in
        /// order, however the bytes are split on the way.
        #[test]
        fn frames_round_trip_across_any_split(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
            cut in any::<prop::sample::Index>(),
        ) {
            for framing in [Framing::Lines, Framing::Len] {
                let frames: Vec<Bytes> = frames
                    .iter()
                    .map(|f| match framing {
                        // A line cannot hold its own delimiter or end in CR.
                        Framing::Lines => f.iter().copied().filter(|&b| b != b'\n' && b != b'\r').collect(),
                        _ => f.clone(),
                    })
                    .map(Bytes::from)
                    .collect();
                let mut codec = framing.codec(1024);
                let mut wire = BytesMut::new();
                for f in &frames {
                    codec.encode(f.clone(), &mut wire).unwrap();
                }
                let at = if wire.is_empty() { 0 } else { cut.index(wire.len()) };
                let mut first = BytesMut::from(&wire[..at]);
                let mut back = Vec::new();
                while let Some(f) = codec.decode(&mut first).unwrap() {
                    back.push(f);
                }
                first.extend_from_slice(&wire[at..]);
                while let Some(f) = codec.decode_eof(&mut first).unwrap() {
                    back.push(f);
                }
                prop_assert_eq!(back, frames);
            }
        }
    }
}
