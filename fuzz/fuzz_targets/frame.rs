//! Each codec takes any bytes without panicking or reserving more than it
//! was sent, and what the lines and length codecs encode they decode back.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use sockit::frame::{Framing, TolerantLines};
use tokio_util::codec::{Decoder, Encoder};

const MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::Raw, Framing::Lines, Framing::Len] {
        let mut codec = framing.codec(MAX);
        let mut buf = BytesMut::from(data);
        while let Ok(Some(frame)) = codec.decode_eof(&mut buf) {
            assert!(frame.len() <= MAX);
        }
        assert!(
            buf.capacity() <= data.len().max(64) * 2 + 64,
            "{framing:?} reserved too much"
        );
    }
    let mut tolerant = TolerantLines::new(MAX);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = tolerant.decode_eof(&mut buf) {}
    // Round trips: split the input into frames the codecs can carry.
    for framing in [Framing::Lines, Framing::Len] {
        let frames: Vec<Bytes> = data
            .split(|&b| b == b'\n')
            .map(|f| Bytes::copy_from_slice(&f[..f.len().min(MAX)]))
            .filter(|f| framing != Framing::Lines || !f.ends_with(b"\r"))
            .collect();
        let mut codec = framing.codec(MAX);
        let mut wire = BytesMut::new();
        for f in &frames {
            codec.encode(f.clone(), &mut wire).unwrap();
        }
        let mut back = Vec::new();
        while let Some(f) = codec.decode_eof(&mut wire).unwrap() {
            back.push(f);
        }
        assert_eq!(back, frames, "{framing:?}");
    }
});
