//! Any bytes as a SOCKS5 client's greeting, credentials and request: each
//! reader takes a bounded message or fails, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockit::socks::proto;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut r = data;
        if proto::read_greeting(&mut r).await.is_ok()
            && proto::read_credentials(&mut r).await.is_ok()
            && let Ok((_, target)) = proto::read_request(&mut r).await
        {
            // A name or address that came in goes out again as a reply's.
            assert!(!target.to_string().is_empty());
        }
        assert!(data.len() - r.len() <= 2 + 255 + 3 + 255 + 255 + 5 + 255 + 2 + 10);
    });
});
