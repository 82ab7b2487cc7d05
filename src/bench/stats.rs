//! Latency recording and the report every load generator prints.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies are kept in microseconds from 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

/// Records one latency sample, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, 60_000_000);
    h.saturating_record(us);
}

/// Median, 99th percentile and worst latency in milliseconds (zeros for an
/// empty histogram).
pub fn latency_ms(hist: &Histogram<u64>) -> (f64, f64, f64) {
    if hist.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    (
        ms(hist.value_at_quantile(0.5)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.max()),
    )
}

/// What one load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The target, as an endpoint string.
    pub target: String,
    /// Concurrent connections (or in-flight requests).
    pub connections: usize,
    /// Bytes per message.
    pub size: usize,
    /// Wall time measured, in seconds.
    pub seconds: f64,
    /// Completed round trips.
    pub round_trips: u64,
    /// Round trips per second.
    pub rate: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Worst latency, milliseconds.
    pub max_ms: f64,
    /// Connections that failed or broke, and replies that did not match.
    pub errors: u64,
    /// Requests that got no reply in time (UDP).
    pub lost: u64,
}

impl Report {
    /// Builds a report from the merged histogram.
    pub fn new(
        target: String,
        connections: usize,
        size: usize,
        elapsed: Duration,
        hist: &Histogram<u64>,
        errors: u64,
    ) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let (p50_ms, p99_ms, max_ms) = latency_ms(hist);
        Report {
            target,
            connections,
            size,
            seconds: secs,
            round_trips: hist.len(),
            rate: hist.len() as f64 / secs,
            p50_ms,
            p99_ms,
            max_ms,
            errors,
            lost: 0,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        format!(
            "target       {}\n\
             in flight    {}\n\
             message      {} B\n\
             duration     {:.2} s\n\
             round trips  {} ({:.0}/s)\n\
             latency      p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms\n\
             errors       {}\n\
             lost         {}\n",
            self.target,
            self.connections,
            self.size,
            self.seconds,
            self.round_trips,
            self.rate,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.lost
        )
    }
}
