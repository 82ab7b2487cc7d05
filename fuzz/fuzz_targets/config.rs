//! Any text as a config file: a suite of services or one usage error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockit::config::Doc;

fuzz_target!(|text: &str| {
    let Ok(doc) = Doc::parse(text, "fuzz.toml") else {
        return;
    };
    if let Err(err) = sockit::serve::services(&doc, None, None) {
        assert!(
            err.to_string().starts_with("config fuzz.toml line "),
            "{err}"
        );
        assert_eq!(err.to_string().lines().count(), 1);
    }
});
