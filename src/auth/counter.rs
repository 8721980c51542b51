//! Requests per caller in fixed windows: a fixed-size, lock-free table.
//!
//! Each caller holds a slot (found by the hash of its name, with linear
//! probing). A slot's count is packed with the window it belongs to
//! (`window << 32 | count`), so a count and its window change together and
//! a new window never loses a concurrent increment.
//!
//! # A full table
//!
//! Once [`MAX_TRACKED_CALLERS`] names have been seen, a new name takes over
//! the slot of a caller whose window has ended, least recently seen first.
//! A caller whose window is still running is never evicted, so its count
//! stays exact. When every slot holds a caller of the current window, the
//! new caller is untracked until a window ends: [`CallerCounter::count`]
//! returns `None`, the request is still served, and the report's `caller`
//! section has no `requests_in_window` and no `window_ends`.
//!
//! # Taking over a slot without a lock
//!
//! A slot is taken over in three steps: its packed word is swapped (CAS)
//! from the stale value just read to [`FROZEN`], its name is replaced, and
//! the new caller's first count is stored (release). Counting validates the
//! name after reading the packed word (acquire) and increments with a CAS,
//! so an increment meant for the old caller either lands before the freeze
//! (in the old caller's slot) or fails and looks again: it never lands in
//! the new caller's count. Packed values only grow (a freeze ends with a
//! later window), so a CAS cannot be fooled by a value coming back.
//!
//! Nobody waits for a frozen slot: it is skipped. So when the first
//! requests of a brand-new caller race each other in a full table, the
//! caller may end up with two slots for that window; its count is the sum
//! of its slots, which keeps it exact. The spare slot is reclaimed once the
//! window ends.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{
    AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Callers tracked at once.
///
/// When the table is full, a new caller takes the slot of a caller whose
/// counting window has ended (the one seen least recently first). A caller
/// whose window is still running is never evicted; when every tracked
/// caller is in the current window, a new caller is untracked until a
/// window ends: its requests are served as usual, but its report's `caller`
/// section has no `requests_in_window` and no `window_ends`, and
/// [`StatusHandle::requests_of`](crate::StatusHandle::requests_of) reports
/// 0 requests for it.
pub const MAX_TRACKED_CALLERS: usize = 1024;

/// The packed word of a slot being handed to another caller. Never a
/// count: windows are capped below `u32::MAX`.
const FROZEN: u64 = u64::MAX;

/// The highest window index stored (so that no packed count is [`FROZEN`]).
const MAX_WINDOW: u64 = 0xffff_fffe;

/// One caller's slot.
struct Slot {
    /// Hash of the caller's name; 0 while the slot was never used.
    name: AtomicU64,
    /// `window << 32 | count`, or [`FROZEN`] while the slot changes hands.
    packed: AtomicU64,
    /// When the caller was last counted, in milliseconds since the Unix epoch.
    last_seen: AtomicU64,
}

fn pack(window: u64, count: u64) -> u64 {
    (window << 32) | count
}

fn window_of(packed: u64) -> u64 {
    packed >> 32
}

fn count_of(packed: u64) -> u64 {
    packed & 0xffff_ffff
}

fn millis(now: SystemTime) -> u64 {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Requests per caller name in the current window.
///
/// At most [`MAX_TRACKED_CALLERS`] callers are tracked at once; see there
/// for what a new caller sees when the table is full.
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
    /// The length of a counting window.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn new(window: Duration) -> Self {
        Self {
            slots: (0..MAX_TRACKED_CALLERS)
                .map(|_| Slot {
                    name: AtomicU64::new(0),
                    packed: AtomicU64::new(0),
                    last_seen: AtomicU64::new(0),
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

    /// The probe order of a name's hash: every slot once, from its home slot.
    fn probe(&self, hash: u64) -> impl Iterator<Item = (usize, &Slot)> {
        let n = self.slots.len();
        // Below `n`, so the cast is lossless.
        let home = (hash % n as u64) as usize;
        (0..n).map(move |i| {
            let index = (home + i) % n;
            (index, &self.slots[index])
        })
    }

    /// Counts one request in `slot` if it (still) belongs to `hash`; `None`
    /// when it changed hands or is changing hands.
    fn increment(slot: &Slot, hash: u64, window: u64, now_ms: u64) -> Option<u64> {
        let mut packed = slot.packed.load(Acquire);
        loop {
            // The name is checked after the packed word: a count stored by
            // a new owner is only seen together with the new owner's name.
            if packed == FROZEN || slot.name.load(Acquire) != hash {
                return None;
            }
            let next = if window_of(packed) >= window {
                // A count of this window (or, for a clock read a moment
                // earlier than another thread's, of the next one).
                if count_of(packed) == 0xffff_ffff {
                    slot.last_seen.fetch_max(now_ms, Relaxed);
                    return Some(count_of(packed));
                }
                packed + 1
            } else {
                pack(window, 1)
            };
            match slot
                .packed
                .compare_exchange_weak(packed, next, AcqRel, Acquire)
            {
                Ok(_) => {
                    slot.last_seen.fetch_max(now_ms, Relaxed);
                    return Some(count_of(next));
                }
                Err(actual) => packed = actual,
            }
        }
    }

    /// Requests of `hash` in `window` held by its slots other than `skip`.
    fn sum(&self, hash: u64, window: u64, skip: Option<usize>) -> u64 {
        let mut total = 0u64;
        for (index, slot) in self.probe(hash) {
            let name = slot.name.load(Acquire);
            if name == 0 {
                // Slots are only ever taken over once the table is full,
                // so a name is never found past a free slot.
                break;
            }
            if name != hash || Some(index) == skip {
                continue;
            }
            let packed = slot.packed.load(Acquire);
            if packed != FROZEN && slot.name.load(Acquire) == hash && window_of(packed) >= window {
                total += count_of(packed);
            }
        }
        total
    }

    /// Counts one request of `name`; returns its count in the current
    /// window, or `None` when the caller is untracked (the table is full of
    /// callers whose window is still running).
    pub(crate) fn count(&self, name: &str) -> Option<u64> {
        self.count_at(name, SystemTime::now())
    }

    /// [`count`](Self::count) with the clock read as `now`.
    pub(crate) fn count_at(&self, name: &str, now: SystemTime) -> Option<u64> {
        let hash = self.hash(name);
        let (window, _) = self.current_window(now);
        let window = window.min(MAX_WINDOW);
        let now_ms = millis(now);
        'search: loop {
            // The stale slot seen least recently: (index, packed, last seen).
            let mut victim: Option<(usize, u64, u64)> = None;
            for (index, slot) in self.probe(hash) {
                let mut name = slot.name.load(Acquire);
                if name == 0 {
                    match slot.name.compare_exchange(0, hash, AcqRel, Acquire) {
                        Ok(_) => name = hash,
                        Err(other) => name = other,
                    }
                }
                if name == hash {
                    if let Some(count) = Self::increment(slot, hash, window, now_ms) {
                        return Some(count + self.sum(hash, window, Some(index)));
                    }
                    // Changing hands: not this caller's any more.
                    continue;
                }
                let packed = slot.packed.load(Acquire);
                if packed == FROZEN || window_of(packed) >= window {
                    continue;
                }
                let seen = slot.last_seen.load(Relaxed);
                if victim.is_none_or(|(_, _, least)| seen < least) {
                    victim = Some((index, packed, seen));
                }
            }
            // The table is full and this caller is not in it.
            let (index, stale, _) = victim?;
            let slot = &self.slots[index];
            if slot
                .packed
                .compare_exchange(stale, FROZEN, AcqRel, Acquire)
                .is_err()
            {
                // Counted meanwhile, or taken by another new caller: look again.
                continue 'search;
            }
            slot.name.store(hash, Release);
            slot.last_seen.store(now_ms, Relaxed);
            slot.packed.store(pack(window, 1), Release);
            return Some(1 + self.sum(hash, window, Some(index)));
        }
    }

    /// Requests of `name` in the current window, and when the window ends.
    pub(crate) fn get(&self, name: &str) -> (u64, SystemTime) {
        self.get_at(name, SystemTime::now())
    }

    /// [`get`](Self::get) with the clock read as `now`.
    pub(crate) fn get_at(&self, name: &str, now: SystemTime) -> (u64, SystemTime) {
        let (window, ends) = self.current_window(now);
        (
            self.sum(self.hash(name), window.min(MAX_WINDOW), None),
            ends,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const HOUR: Duration = Duration::from_secs(3600);

    /// The start of an hour long after the epoch.
    fn hour_start() -> SystemTime {
        UNIX_EPOCH + HOUR * 480_000
    }

    #[test]
    fn counts_per_name_and_bounds_the_table() {
        let c = CallerCounter::new(HOUR);
        let t = hour_start();
        assert_eq!(c.count_at("a", t), Some(1));
        assert_eq!(c.count_at("a", t), Some(2));
        assert_eq!(c.count_at("b", t), Some(1));
        assert_eq!(c.get_at("a", t).0, 2);
        assert_eq!(c.get_at("zzz", t).0, 0);
        for i in 0..MAX_TRACKED_CALLERS * 2 {
            let _ = c.count_at(&format!("k{i}"), t);
        }
        // Full of callers of this window: a new name is not counted, known ones still are.
        assert_eq!(c.count_at("never-seen-before", t), None);
        assert_eq!(c.get_at("never-seen-before", t).0, 0);
        assert_eq!(c.count_at("a", t), Some(3));
        // The real clock drives `count` and `get`.
        let c = CallerCounter::new(HOUR);
        assert_eq!(c.count("now"), Some(1));
        assert!(c.get("now").0 >= 1);
    }

    #[test]
    fn a_full_table_evicts_ended_windows_least_recently_seen_first() {
        let c = CallerCounter::new(HOUR);
        let t0 = hour_start();
        let sec = Duration::from_secs(1);
        // One window: 1024 callers, seen one second apart; "old0" is seen
        // again last of all.
        for i in 0..MAX_TRACKED_CALLERS {
            let t = t0 + sec * u32::try_from(i).unwrap();
            assert_eq!(c.count_at(&format!("old{i}"), t), Some(1), "old{i}");
        }
        assert_eq!(c.count_at("old0", t0 + sec * 2000), Some(2));
        assert_eq!(c.count_at("late", t0 + sec * 3000), None);

        // The next window: every new caller is counted, taking the slot of
        // the caller seen least recently.
        let t1 = t0 + HOUR;
        let tracked = |name: &str| c.get_at(name, t0).0 > 0;
        for j in 0..MAX_TRACKED_CALLERS {
            let t = t1 + Duration::from_millis(u64::try_from(j).unwrap());
            assert_eq!(c.count_at(&format!("new{j}"), t), Some(1), "new{j}");
            if j + 1 < MAX_TRACKED_CALLERS {
                // old1..=old{j+1} are gone; the rest, and old0, remain.
                assert!(!tracked(&format!("old{}", j + 1)), "old{} evicted", j + 1);
                if j + 2 < MAX_TRACKED_CALLERS {
                    assert!(tracked(&format!("old{}", j + 2)), "old{} kept", j + 2);
                }
                assert!(tracked("old0"), "old0 was seen last");
            }
        }
        assert!(!tracked("old0"));
        for j in 0..MAX_TRACKED_CALLERS {
            assert_eq!(c.get_at(&format!("new{j}"), t1).0, 1, "new{j}");
        }
        // Full again, of callers of this window.
        assert_eq!(c.count_at("one-more", t1 + sec), None);
        assert_eq!(c.count_at("new7", t1 + sec), Some(2));
    }

    #[test]
    fn callers_of_the_current_window_are_never_evicted() {
        let c = CallerCounter::new(HOUR);
        let t0 = hour_start();
        for i in 0..MAX_TRACKED_CALLERS {
            c.count_at(&format!("old{i}"), t0);
        }
        // In the next window the even ones come back first.
        let t1 = t0 + HOUR;
        for i in (0..MAX_TRACKED_CALLERS).step_by(2) {
            assert_eq!(c.count_at(&format!("old{i}"), t1), Some(1));
        }
        let counted = (0..MAX_TRACKED_CALLERS)
            .filter(|j| c.count_at(&format!("new{j}"), t1).is_some())
            .count();
        assert_eq!(counted, MAX_TRACKED_CALLERS / 2);
        for i in (0..MAX_TRACKED_CALLERS).step_by(2) {
            assert_eq!(c.count_at(&format!("old{i}"), t1), Some(2), "old{i}");
        }
    }

    #[test]
    fn counts_exactly_under_contention() {
        let c = Arc::new(CallerCounter::new(HOUR));
        let t = hour_start();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.count_at("k", t);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get_at("k", t).0, 40_000);
        assert_eq!(c.count_at("k", t), Some(40_001));
    }

    #[test]
    fn counts_exactly_while_slots_change_hands() {
        // A table full of callers whose window ended; new callers take
        // slots over while "hot" (new as well) is counted from every thread.
        let c = Arc::new(CallerCounter::new(HOUR));
        let t0 = hour_start();
        for i in 0..MAX_TRACKED_CALLERS {
            c.count_at(&format!("old{i}"), t0);
        }
        let t1 = t0 + HOUR;
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let c = c.clone();
                std::thread::spawn(move || {
                    let mut untracked = 0;
                    for i in 0..2_000 {
                        assert!(c.count_at("hot", t1).is_some());
                        if i % 8 == 0 && c.count_at(&format!("t{thread}-{i}"), t1).is_none() {
                            untracked += 1;
                        }
                    }
                    untracked
                })
            })
            .collect();
        let untracked: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(c.get_at("hot", t1).0, 8_000);
        // 4 × 250 new names and "hot" (in up to 4 slots, if its first
        // requests raced) fit in 1024 slots.
        assert_eq!(untracked, 0);
        for thread in 0..4 {
            for i in (0..2_000).step_by(8) {
                assert_eq!(c.get_at(&format!("t{thread}-{i}"), t1).0, 1);
            }
        }
    }

    #[test]
    fn window_ends_on_its_boundary() {
        let c = CallerCounter::new(HOUR);
        let (_, ends) = c.current_window(UNIX_EPOCH + Duration::from_secs(7200 + 5));
        assert_eq!(ends, UNIX_EPOCH + Duration::from_secs(10800));
    }
}
