//! When a request arrived, for its log line and its metric: the raw clock
//! at the last read that brought bytes. Reading the clock per read, not per
//! request, makes sixteen pipelined requests cost one reading, as nginx's
//! once-per-event clock does. A pipelined request's time then counts its
//! wait behind the ones before it, as nginx's `$request_time` does, from
//! the read of its bytes. [`super::linger::Linger`] takes the reading, as
//! it watches every read already.

use std::sync::atomic::{AtomicU64, Ordering};

/// The reading, shared between the stream that takes it and the requests
/// that look at it.
#[derive(Default)]
pub struct Arrived(AtomicU64);

impl Arrived {
    /// The raw clock ([`crate::clock::tick`]) at the last read with bytes.
    pub fn tick(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn note(&self) {
        self.0.store(crate::clock::tick(), Ordering::Relaxed);
    }
}
