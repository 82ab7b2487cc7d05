//! How errors reach the user: one line, lower case, each cause after a colon,
//! and the exit code that goes with it.

use std::io;

/// Exit code for runtime failures.
pub const EXIT_FAILURE: u8 = 1;

/// Exit code for usage errors, the same as clap's.
pub const EXIT_USAGE: u8 = 2;

/// A command line that parsed but makes no sense (`--udp` with `unix:`…).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for a failed run: 2 for usage errors (a config file that
/// does not parse counts, as it stands in for flags), 1 for the rest.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let bad_config = err
        .downcast_ref::<crate::serve::ConfigError>()
        .is_some_and(|e| matches!(e, crate::serve::ConfigError::Invalid { .. }));
    if bad_config || err.downcast_ref::<UsageError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// One line for a clap parse error: the validator's own message when there is
/// one (`invalid port 'abc' in 'localhost:abc'`), else clap's first line.
pub fn usage_line(err: &clap::Error) -> String {
    use std::error::Error as _;
    if let Some(source) = err.source() {
        return source.to_string();
    }
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see --help)")
}

/// Renders an error chain as `context: cause: cause`, with the OS's
/// "Connection refused (os error 111)" shortened to "connection refused".
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = match cause.downcast_ref::<io::Error>() {
            Some(io_err) => describe_io(io_err),
            None => cause.to_string(),
        };
        if parts.last().is_none_or(|prev| !prev.ends_with(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

fn describe_io(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether the failure was stdout going away (`sockit … | head`), which is
/// a normal way for a pipeline to end.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<crate::stdio::StdoutClosed>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn io_errors_read_as_one_lower_case_line() {
        let err = Err::<(), _>(io::Error::from_raw_os_error(111))
            .context("connect to 127.0.0.1:9")
            .unwrap_err();
        assert_eq!(render(&err), "connect to 127.0.0.1:9: connection refused");
    }
}
