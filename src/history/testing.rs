//! Helpers for the history's tests: an injected clock, a fake recorder, a
//! random number generator.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::recorder::{histogram, Snapshot};

/// Minute 0 of the tests: 2026-01-01T00:00Z, in minutes since the epoch.
pub(crate) const EPOCH_MINUTE: u64 = 29_453_760;

/// The time `secs` seconds into simulated minute `minute`.
pub(crate) fn at(minute: u64, secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs((EPOCH_MINUTE + minute) * 60 + secs)
}

/// The ring's stamp of simulated minute `minute`.
pub(crate) fn stamp(minute: u64) -> u32 {
    (EPOCH_MINUTE + minute) as u32
}

/// Cumulative counters as the recorder keeps them, fed by hand.
#[derive(Clone)]
pub(crate) struct FakeRecorder(pub(crate) Snapshot);

impl FakeRecorder {
    pub(crate) fn new() -> Self {
        Self(Snapshot::zero())
    }

    /// `n` requests that took `ms` each: 2xx, or 5xx (an error).
    pub(crate) fn requests(&mut self, n: u64, ms: f64, error: bool) -> &mut Self {
        self.record(n, ms, if error { 4 } else { 1 }, error)
    }

    /// `n` requests dropped after `ms`: aborted, not errors.
    pub(crate) fn aborted(&mut self, n: u64, ms: f64) -> &mut Self {
        self.record(n, ms, 7, false)
    }

    fn record(&mut self, n: u64, ms: f64, outcome: usize, error: bool) -> &mut Self {
        let ns = (ms * 1e6) as u64;
        let s = &mut self.0;
        s.started += n;
        s.outcomes[outcome] += n;
        s.errors += if error { n } else { 0 };
        s.sum_ns += ns * n;
        if n > 0 {
            s.max_ns = s.max_ns.max(ns);
        }
        s.buckets[histogram::index(ns)] += n;
        self
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.0
    }
}

/// A small deterministic generator (xorshift64).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
