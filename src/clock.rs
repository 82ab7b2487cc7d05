//! The request clock: the CPU's time-stamp counter through quanta, a
//! third of the OS clock's cost. The request path reads it raw, and only
//! what a log line or a metric shows is turned into time.

use std::sync::OnceLock;
use std::time::Duration;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw reading, for [`between`] and [`instant`].
pub fn tick() -> u64 {
    clock().raw()
}

/// Time from `start` to `end`, two raw readings.
pub fn between(start: u64, end: u64) -> Duration {
    Duration::from_nanos(clock().delta_as_nanos(start, end))
}

/// The reading `tick` as an instant.
pub fn instant(tick: u64) -> quanta::Instant {
    clock().scaled(tick)
}

/// Makes the clock calibrate itself, for about a millisecond, now rather
/// than in the first request.
pub fn warm_up() {
    clock();
}
