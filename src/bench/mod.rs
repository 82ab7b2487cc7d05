//! Load generators that measure sockit's services (and anyone else's).

pub mod echo;
pub mod fanout;
pub mod load;
pub mod stats;
pub mod udp;

use std::time::Duration;

use crate::options::OptionError;

/// Most concurrent loops a run may have, so a typo cannot exhaust memory.
const MAX_LOOPS: usize = 100_000;

/// Longest a run may last, so a deadline cannot overflow.
const MAX_TIME: Duration = Duration::from_secs(86_400);

/// Checks a run's size: 1 to [`MAX_LOOPS`] loops (under `key`) and at most
/// a day for each of the named durations.
fn bounded(
    key: &'static str,
    loops: usize,
    durations: &[(&'static str, Duration)],
) -> Result<(), OptionError> {
    if loops == 0 || loops > MAX_LOOPS {
        return Err(OptionError::new(
            key,
            format!("must be 1 to {MAX_LOOPS}, not {loops}"),
        ));
    }
    match durations.iter().find(|(_, d)| *d > MAX_TIME) {
        Some((key, _)) => Err(OptionError::new(key, "must be at most one day")),
        None => Ok(()),
    }
}

/// Prints a report as one JSON object or as a table.
pub fn print<R: serde::Serialize>(report: &R, table: impl FnOnce(&R) -> String, json: bool) {
    if json {
        match serde_json::to_string(report) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("sockit: report: {err}"),
        }
    } else {
        print!("{}", table(report));
    }
}
