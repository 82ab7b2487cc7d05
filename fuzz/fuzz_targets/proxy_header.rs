//! Any bytes at the start of a connection either give a PROXY header or an
//! error, never reading past the header's own bound; what parses encodes
//! and reads back to the same connection in both versions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockit::proxy_header::{Version, encode, read};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let Ok(addrs) = block_on(read(&mut rest)) else {
        return;
    };
    let used = data.len() - rest.len();
    assert!(used <= 16 + 4096, "read {used} bytes of header");
    for version in [Version::V1, Version::V2] {
        let wire = encode(version, addrs);
        let once = block_on(read(&mut &wire[..])).expect("an encoded header reads back");
        let twice = block_on(read(&mut &encode(version, once)[..])).expect("and again");
        assert_eq!(once, twice, "{version:?}");
    }
});
