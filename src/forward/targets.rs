//! Where a relay sends its clients: the target list, the balancing policy,
//! and a back-off that skips targets which just refused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::endpoint::Endpoint;

/// First pause after a target fails; doubled on each further failure.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How a connection picks among several targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each new connection goes to the next target in turn.
    #[default]
    RoundRobin,
    /// Always the first target that works, in the order given.
    Failover,
}

struct Target {
    endpoint: Endpoint,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    dead_until: Option<Instant>,
    backoff: Option<Duration>,
}

/// The targets of one relay and what is known of their health.
pub struct Targets {
    list: Vec<Target>,
    balance: Balance,
    next: AtomicUsize,
}

impl Targets {
    /// Targets in the order given on the command line.
    pub fn new(endpoints: Vec<Endpoint>, balance: Balance) -> Self {
        Targets {
            list: endpoints
                .into_iter()
                .map(|endpoint| Target {
                    endpoint,
                    health: Mutex::default(),
                })
                .collect(),
            balance,
            next: AtomicUsize::new(0),
        }
    }

    /// Target indices to try for one new connection, best first: the
    /// policy's order with targets in back-off moved to the end, so they
    /// are tried only when nothing else works.
    pub fn order(&self) -> Vec<usize> {
        let n = self.list.len();
        let start = match self.balance {
            Balance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n.max(1),
            Balance::Failover => 0,
        };
        let now = Instant::now();
        let (live, resting): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|k| (start + k) % n)
            .partition(|&i| !self.list[i].resting(now));
        live.into_iter().chain(resting).collect()
    }

    /// The endpoint of target `i`.
    pub fn endpoint(&self, i: usize) -> &Endpoint {
        &self.list[i].endpoint
    }

    /// Target `i` worked: forget its failures.
    pub fn succeeded(&self, i: usize) {
        *self.list[i].lock() = Health::default();
    }

    /// Target `i` failed: skip it for a while, longer each time in a row.
    /// Returns the pause.
    pub fn failed(&self, i: usize) -> Duration {
        let mut h = self.list[i].lock();
        let now = Instant::now();
        // Connections that fail during one outage count once: only a failure
        // after the pause ended makes the next pause longer.
        if let Some(until) = h.dead_until.filter(|&t| t > now) {
            return until - now;
        }
        let pause = h
            .backoff
            .map_or(BACKOFF_START, |b| (b * 2).min(BACKOFF_MAX));
        h.backoff = Some(pause);
        h.dead_until = Some(now + pause);
        pause
    }
}

impl Target {
    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        crate::sync::lock(&self.health)
    }

    fn resting(&self, now: Instant) -> bool {
        self.lock().dead_until.is_some_and(|t| t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(balance: Balance) -> Targets {
        let eps = (1..=3)
            .map(|p| Endpoint::tcp(([127, 0, 0, 1], p).into()))
            .collect();
        Targets::new(eps, balance)
    }

    #[test]
    fn round_robin_rotates_and_skips_resting_targets() {
        let t = targets(Balance::RoundRobin);
        assert_eq!(t.order(), [0, 1, 2]);
        assert_eq!(t.order(), [1, 2, 0]);
        t.failed(2);
        assert_eq!(t.order(), [0, 1, 2], "the resting target goes last");
        t.succeeded(2);
        assert_eq!(t.order(), [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn failover_prefers_the_first_until_it_fails_and_backs_off_longer() {
        let t = targets(Balance::Failover);
        assert_eq!(t.order(), [0, 1, 2]);
        assert_eq!(t.failed(0), BACKOFF_START);
        assert_eq!(t.failed(0), BACKOFF_START, "one outage, one pause");
        assert_eq!(t.order(), [1, 2, 0]);
        tokio::time::advance(BACKOFF_START).await;
        assert_eq!(t.order(), [0, 1, 2], "back after its pause");
        assert_eq!(t.failed(0), BACKOFF_START * 2);
    }
}
