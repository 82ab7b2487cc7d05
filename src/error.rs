//! How errors reach the user: one line, lower case, each cause after a colon,
//! and the exit code that goes with it.

use std::fmt;
use std::io;

use crate::options::OptionError;

/// Exit code for runtime failures.
pub const EXIT_FAILURE: u8 = 1;

/// Exit code for usage errors, the same as clap's.
pub const EXIT_USAGE: u8 = 2;

/// A command line that parsed but makes no sense (`--udp` with `unix:`…).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for a failed run: 2 for usage errors (a bad option value
/// or config file, which stands in for flags), 1 for the rest.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() || err.downcast_ref::<OptionError>().is_some() {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

/// `text` with its control characters escaped (`\n`, `\u{7}`): a value
/// quoted in an error may hold a line break, and an error is one line.
pub fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// One line for a clap parse error, naming the flag or argument it is
/// about: `--rate: …`, `missing TARGET`, `--bogus: unknown option`.
pub fn usage_line(err: &clap::Error) -> String {
    one_line(&usage_text(err))
}

fn usage_text(err: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use std::error::Error as _;
    let context = |kind| err.get(kind);
    let strings = |kind| match context(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    // "--rate <LINES_PER_SEC>" names the flag as "--rate", "<TARGET>..." as
    // "TARGET".
    let arg = strings(ContextKind::InvalidArg)
        .first()
        .map(|a| arg_name(a))
        .unwrap_or_default();
    match err.kind() {
        ErrorKind::ValueValidation => match err.source() {
            Some(source) => format!("{arg}: {source}"),
            None => first_line(err),
        },
        ErrorKind::InvalidValue => {
            let value = strings(ContextKind::InvalidValue).join(" ");
            let valid = strings(ContextKind::ValidValue).join(", ");
            if value.is_empty() {
                format!("{arg}: needs a value (see --help)")
            } else if valid.is_empty() {
                format!("{arg}: invalid value '{value}'")
            } else {
                format!("{arg}: invalid value '{value}' (expected one of: {valid})")
            }
        }
        ErrorKind::UnknownArgument if !arg.starts_with('-') => {
            format!("unexpected argument '{arg}' (see --help)")
        }
        ErrorKind::UnknownArgument => {
            let hint = strings(ContextKind::SuggestedArg);
            match hint.first() {
                Some(s) => format!(
                    "{arg}: unknown option (unexpected argument '{arg}'; did you mean '{s}'?)"
                ),
                None => format!("{arg}: unknown option (unexpected argument '{arg}'; see --help)"),
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let missing: Vec<String> = strings(ContextKind::InvalidArg)
                .iter()
                .map(|a| arg_name(a))
                .collect();
            format!("missing {} (see --help)", missing.join(", "))
        }
        ErrorKind::ArgumentConflict => {
            let other = strings(ContextKind::PriorArg).join(", ");
            format!(
                "{arg} cannot be used with {} (see --help)",
                arg_name(&other)
            )
        }
        _ => first_line(err),
    }
}

fn arg_name(shown: &str) -> String {
    let name = shown.split_whitespace().next().unwrap_or(shown);
    name.trim_start_matches('<')
        .trim_end_matches("...")
        .trim_end_matches('>')
        .to_string()
}

fn first_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    format!("{first} (see --help)")
}

/// Renders an error chain as `context: cause: cause`, with the OS's
/// "Connection refused (os error 111)" shortened to "connection refused",
/// and an option's key shown as `flag` names it for the user.
pub fn render(err: &anyhow::Error, flag: impl Fn(&str) -> String) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = if let Some(io_err) = cause.downcast_ref::<io::Error>() {
            describe_io(io_err)
        } else if let Some(opt) = cause.downcast_ref::<OptionError>() {
            format!("{}: {}", flag(opt.key), opt.problem)
        } else {
            cause.to_string()
        };
        if parts.last().is_none_or(|prev| !prev.ends_with(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// `err` as `WHAT: why`, keeping its kind.
pub(crate) fn context(err: io::Error, what: impl fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {}", describe_io(&err)))
}

pub(crate) fn describe_io(err: &io::Error) -> String {
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
        assert_eq!(
            render(&err, str::to_string),
            "connect to 127.0.0.1:9: connection refused"
        );
    }
}
