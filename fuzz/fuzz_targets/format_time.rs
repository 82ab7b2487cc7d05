//! Any request renders or becomes an `error: ` reply, within the length cap.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|request: &[u8]| {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 14, 3, 7).unwrap();
    let reply = sockit::time::render(request, &at);
    assert!(!reply.is_empty() || request.is_empty() || reply.is_empty());
    if request.len() > sockit::time::MAX_REQUEST {
        assert_eq!(reply, "error: request too long");
    }
});
