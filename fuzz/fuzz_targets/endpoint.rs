//! Any text either parses or is refused, and what parses prints as text
//! that parses back to the same endpoint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockit::endpoint::Endpoint;

fuzz_target!(|text: &str| {
    if let Ok(ep) = text.parse::<Endpoint>() {
        let shown = ep.to_string();
        let again: Endpoint = shown.parse().expect("a shown endpoint parses");
        assert_eq!(again, ep, "{text:?} shown as {shown:?}");
        assert_eq!(again.to_string(), shown);
    }
});
