//! Small helpers for sharing state between tasks.

use std::sync::{Mutex, MutexGuard};

/// Locks `m` even if a panicking holder poisoned it. Every critical section
/// here is a few map or queue operations that leave the data usable, so
/// carrying on beats taking the whole server down with one connection.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
