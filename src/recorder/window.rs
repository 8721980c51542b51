//! The recent window: snapshots of the cumulative counters, taken by readers
//! (and by a background ticker when a tokio runtime is present), so the
//! difference between now and about [`WINDOW`] ago describes current traffic
//! without any work on the request path.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Snapshot;

/// Length of the recent window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Spacing of the stored snapshots: the window is between 60 and 65 s long
/// while something reads it at least this often.
pub(crate) const TICK: Duration = Duration::from_secs(5);

/// Ring of timed snapshots; never longer than `WINDOW / TICK + 2`.
pub(crate) struct Window {
    ring: Mutex<VecDeque<(Instant, Snapshot)>>,
}

impl Window {
    pub(crate) fn new() -> Self {
        let mut ring = VecDeque::with_capacity((WINDOW.as_secs() / TICK.as_secs()) as usize + 2);
        ring.push_back((Instant::now(), Snapshot::zero()));
        Self {
            ring: Mutex::new(ring),
        }
    }

    /// [`advance_with`](Self::advance_with), returning a copy of the baseline.
    #[cfg(test)]
    pub(crate) fn advance(&self, at: Instant, now: &Snapshot) -> (Duration, Snapshot) {
        self.advance_with(at, now, |age, base| (age, base.clone()))
    }

    /// Stores `now` if the newest snapshot is a tick old, and lends `f` the
    /// baseline to subtract (the newest at least `WINDOW` old, else the
    /// oldest) with its age, the ring locked: no copy.
    pub(crate) fn advance_with<R>(
        &self,
        at: Instant,
        now: &Snapshot,
        f: impl FnOnce(Duration, &Snapshot) -> R,
    ) -> R {
        // A poisoned lock only means a reader panicked mid-update: the ring is still valid.
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let base = ring
            .iter()
            .rposition(|(t, _)| at.saturating_duration_since(*t) >= WINDOW)
            .unwrap_or(0);
        ring.drain(..base);
        let newest = ring.back().map(|(t, _)| *t);
        if newest.is_none_or(|t| at.saturating_duration_since(t) >= TICK) {
            ring.push_back((at, now.clone()));
        }
        match ring.front() {
            Some((t, snap)) => f(at.saturating_duration_since(*t), snap),
            // Never empty: draining keeps the baseline, and a push follows an empty ring.
            None => f(Duration::ZERO, &Snapshot::zero()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_baseline_moves_and_stays_bounded() {
        let w = Window::new();
        let t0 = Instant::now();
        let mut snap = Snapshot::zero();
        for s in 0..600u64 {
            snap.started = s;
            let (age, base) = w.advance(t0 + Duration::from_secs(s), &snap);
            if s >= 65 {
                assert!(age >= WINDOW && age <= WINDOW + TICK, "{s}: {age:?}");
                assert_eq!(snap.started - base.started, age.as_secs());
            }
            assert!(w.ring.lock().unwrap().len() <= 14);
        }
    }
}
