//! Requests per caller in fixed windows: a fixed-size, lock-free table.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Callers tracked at most; requests of further callers are not counted.
pub const MAX_TRACKED_CALLERS: usize = 1024;

/// One caller's slot: the hash of its name, and its count packed with the
/// window it belongs to (`window << 32 | count`), so a count and its window
/// change together and a new window never loses a concurrent increment.
struct Slot {
    name: AtomicU64,
    packed: AtomicU64,
}

/// Requests per caller name in the current window.
pub(crate) struct CallerCounter {
    slots: Box<[Slot]>,
    window: Duration,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for CallerCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerCounter")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl CallerCounter {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            slots: (0..MAX_TRACKED_CALLERS)
                .map(|_| Slot {
                    name: AtomicU64::new(0),
                    packed: AtomicU64::new(0),
                })
                .collect(),
            window: window.max(Duration::from_secs(1)),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn hash(&self, name: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(name.as_bytes());
        // 0 marks a free slot.
        h.finish().max(1)
    }

    /// Index of the current window and when it ends.
    pub(crate) fn current_window(&self, now: SystemTime) -> (u64, SystemTime) {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let len = self.window.as_secs();
        let index = secs / len;
        (index, UNIX_EPOCH + Duration::from_secs((index + 1) * len))
    }

    fn slot(&self, name: &str, insert: bool) -> Option<&Slot> {
        let h = self.hash(name);
        let n = self.slots.len();
        for i in 0..n {
            let slot = &self.slots[(h as usize).wrapping_add(i) % n];
            let current = slot.name.load(Relaxed);
            if current == h {
                return Some(slot);
            }
            if current == 0 {
                if !insert {
                    return None;
                }
                match slot.name.compare_exchange(0, h, Relaxed, Relaxed) {
                    Ok(_) => return Some(slot),
                    Err(other) if other == h => return Some(slot),
                    Err(_) => continue,
                }
            }
        }
        None
    }

    /// Counts one request of `name`; returns its count in the current
    /// window, or `None` when the table is full.
    pub(crate) fn count(&self, name: &str) -> Option<u64> {
        let (window, _) = self.current_window(SystemTime::now());
        let slot = self.slot(name, true)?;
        let mut packed = slot.packed.load(Relaxed);
        loop {
            let next = if packed >> 32 == window & 0xffff_ffff {
                packed + 1
            } else {
                ((window & 0xffff_ffff) << 32) | 1
            };
            match slot
                .packed
                .compare_exchange_weak(packed, next, Relaxed, Relaxed)
            {
                Ok(_) => return Some(next & 0xffff_ffff),
                Err(actual) => packed = actual,
            }
        }
    }

    /// Requests of `name` in the current window, and when the window ends.
    pub(crate) fn get(&self, name: &str) -> (u64, SystemTime) {
        let (window, ends) = self.current_window(SystemTime::now());
        let count = self
            .slot(name, false)
            .map(|s| s.packed.load(Relaxed))
            .filter(|p| p >> 32 == window & 0xffff_ffff)
            .map_or(0, |p| p & 0xffff_ffff);
        (count, ends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_name_and_bounds_the_table() {
        let c = CallerCounter::new(Duration::from_secs(3600));
        assert_eq!(c.count("a"), Some(1));
        assert_eq!(c.count("a"), Some(2));
        assert_eq!(c.count("b"), Some(1));
        assert_eq!(c.get("a").0, 2);
        assert_eq!(c.get("zzz").0, 0);
        for i in 0..MAX_TRACKED_CALLERS * 2 {
            let _ = c.count(&format!("k{i}"));
        }
        // Full: a new name is not counted, known ones still are.
        assert_eq!(c.count("never-seen-before"), None);
        assert_eq!(c.count("a"), Some(3));
    }

    #[test]
    fn counts_exactly_under_contention() {
        let c = std::sync::Arc::new(CallerCounter::new(Duration::from_secs(3600)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.count("k");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get("k").0, 40_000);
    }

    #[test]
    fn window_ends_on_its_boundary() {
        let c = CallerCounter::new(Duration::from_secs(3600));
        let (_, ends) = c.current_window(UNIX_EPOCH + Duration::from_secs(7200 + 5));
        assert_eq!(ends, UNIX_EPOCH + Duration::from_secs(10800));
    }
}
