//! Where the counters live, and who may write them.
//!
//! A thread that records claims one of a fixed number of process-wide
//! *slots* for its lifetime. Every recorder has one [`Shard`] per slot, and
//! the thread owning slot `i` is the only writer of shard `i` in every
//! recorder, so it adds with a plain load and store: no locked instruction,
//! no cache line shared with another core. Threads without a slot (more
//! threads than slots) add with `fetch_add` to one shared *spill* shard.
//! A request may finish on another thread than the one it started on: each
//! half is written by the thread that does it, so the sums stay exact.
//!
//! A recorder's counters are a [`Block`] with a `'static` lifetime, so a
//! request's guard can point at it without reference counting. Blocks are
//! never freed but recycled: a dropped recorder's block is zeroed and reused
//! by the next recorder once every request it started has been recorded.
//! Memory is bounded by the most recorders alive (or still finishing
//! requests) at once, never by traffic.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::histogram;

/// Outcome slots: six response classes, service errors, aborted.
pub(crate) const OUTCOMES: usize = 8;
/// The most slots a process uses: beyond this, threads share the spill shard.
pub(crate) const MAX_SLOTS: usize = 64;
/// A thread's slot before it first records.
const UNCLAIMED: usize = usize::MAX - 1;
/// A thread that records through the spill shard.
const NO_SLOT: usize = usize::MAX;

/// One writer's counters. Aligned so two shards never share a cache line.
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) started: AtomicU64,
    pub(crate) outcomes: [AtomicU64; OUTCOMES],
    pub(crate) errors: AtomicU64,
    pub(crate) sum_ns: AtomicU64,
    pub(crate) max_ns: AtomicU64,
    pub(crate) buckets: [AtomicU64; histogram::BUCKETS],
}

impl Shard {
    fn new() -> Self {
        Self {
            started: AtomicU64::new(0),
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        [&self.started, &self.errors, &self.sum_ns, &self.max_ns]
            .into_iter()
            .chain(&self.outcomes)
            .chain(&self.buckets)
    }
}

/// A shard and how to add to it.
#[derive(Clone, Copy)]
pub(crate) struct Writer<'a> {
    shard: &'a Shard,
    /// This thread owns the shard: no other thread writes it.
    owner: bool,
}

impl Writer<'_> {
    #[inline]
    fn add(self, counter: &AtomicU64, n: u64, order: Ordering) {
        if self.owner {
            counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), order);
        } else {
            counter.fetch_add(n, order);
        }
    }

    #[inline]
    pub(crate) fn start(self) {
        self.add(&self.shard.started, 1, Ordering::Relaxed);
    }

    /// Records a finished request. The outcome is written last, with
    /// `Release`, so whoever sees every request finished (see
    /// [`Block::quiescent`]) also sees everything else it wrote.
    #[inline]
    pub(crate) fn finish(self, outcome: usize, error: bool, ns: u64) {
        let s = self.shard;
        self.add(&s.buckets[histogram::index(ns)], 1, Ordering::Relaxed);
        self.add(&s.sum_ns, ns, Ordering::Relaxed);
        // A plain load first: a write is only needed for a new maximum.
        if ns > s.max_ns.load(Ordering::Relaxed) {
            if self.owner {
                s.max_ns.store(ns, Ordering::Relaxed);
            } else {
                s.max_ns.fetch_max(ns, Ordering::Relaxed);
            }
        }
        if error {
            self.add(&s.errors, 1, Ordering::Relaxed);
        }
        self.add(&s.outcomes[outcome], 1, Ordering::Release);
    }
}

/// The counters of one recorder, with the clock that times its requests.
pub(crate) struct Block {
    pub(crate) clock: quanta::Clock,
    shards: Box<[Shard]>,
    spill: Shard,
}

impl Block {
    fn new() -> Self {
        Self {
            clock: quanta::Clock::new(),
            shards: (0..slot_count()).map(|_| Shard::new()).collect(),
            spill: Shard::new(),
        }
    }

    /// The shard the current thread writes.
    #[inline]
    pub(crate) fn writer(&self) -> Writer<'_> {
        match self.shards.get(thread_slot()) {
            Some(shard) => Writer { shard, owner: true },
            None => Writer {
                shard: &self.spill,
                owner: false,
            },
        }
    }

    /// Every shard, the spill shard included, for readers.
    pub(crate) fn shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().chain(std::iter::once(&self.spill))
    }

    /// The shard of threads without a slot.
    #[cfg(test)]
    pub(crate) fn spill(&self) -> &Shard {
        &self.spill
    }

    #[cfg(test)]
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.shards.len() * std::mem::size_of::<Shard>()
    }

    /// Every request started has been recorded as finished, and no new one
    /// can start (the recorder is gone): nobody will write this block again.
    fn quiescent(&self) -> bool {
        let finished: u64 = self
            .shards()
            .flat_map(|s| &s.outcomes)
            .map(|c| c.load(Ordering::Acquire))
            .sum();
        let started: u64 = self
            .shards()
            .map(|s| s.started.load(Ordering::Acquire))
            .sum();
        finished == started
    }

    fn reset(&self) {
        for counter in self.shards().flat_map(Shard::counters) {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

/// Blocks of dropped recorders: zeroed ones ready for reuse, and those
/// still waiting for their last requests to finish.
struct Pool {
    free: Vec<&'static Block>,
    draining: Vec<&'static Block>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    draining: Vec::new(),
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool's lists stay valid even if a holder panicked.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A zeroed block for a new recorder.
pub(crate) fn acquire() -> &'static Block {
    let mut pool = pool();
    let mut i = 0;
    while i < pool.draining.len() {
        if pool.draining[i].quiescent() {
            let block = pool.draining.swap_remove(i);
            block.reset();
            pool.free.push(block);
        } else {
            i += 1;
        }
    }
    if let Some(block) = pool.free.pop() {
        return block;
    }
    drop(pool);
    Box::leak(Box::new(Block::new()))
}

/// Gives back the block of a dropped recorder.
pub(crate) fn release(block: &'static Block) {
    let mut pool = pool();
    if block.quiescent() {
        block.reset();
        pool.free.push(block);
    } else {
        pool.draining.push(block);
    }
}

/// Number of slots (and of owned shards per recorder) in this process.
fn slot_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Runtimes run a few threads besides one worker per core.
        (2 * cores).clamp(4, MAX_SLOTS)
    })
}

static CLAIMED: [AtomicBool; MAX_SLOTS] = [const { AtomicBool::new(false) }; MAX_SLOTS];

thread_local! {
    /// This thread's slot; read on every request, so a plain `Cell`.
    static SLOT: Cell<usize> = const { Cell::new(UNCLAIMED) };
    /// Gives the slot back when the thread ends.
    static RELEASE: SlotRelease = const { SlotRelease(Cell::new(NO_SLOT)) };
}

struct SlotRelease(Cell<usize>);

impl Drop for SlotRelease {
    fn drop(&mut self) {
        let slot = self.0.get();
        if slot < MAX_SLOTS {
            // Anything this thread still records goes to the spill shard.
            SLOT.with(|s| s.set(NO_SLOT));
            // `Release`: the next owner sees every count this thread wrote.
            CLAIMED[slot].store(false, Ordering::Release);
        }
    }
}

#[inline]
fn thread_slot() -> usize {
    let slot = SLOT.with(Cell::get);
    if slot == UNCLAIMED {
        claim()
    } else {
        slot
    }
}

#[cold]
fn claim() -> usize {
    let found = (0..slot_count()).find(|&i| {
        CLAIMED[i]
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    });
    let slot = match found {
        // Registering the release fails only while the thread is ending.
        Some(i) if RELEASE.try_with(|r| r.0.set(i)).is_ok() => i,
        Some(i) => {
            CLAIMED[i].store(false, Ordering::Release);
            NO_SLOT
        }
        None => NO_SLOT,
    };
    SLOT.with(|s| s.set(slot));
    slot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_release_their_slots() {
        // Many more short-lived threads than slots: each finds a free one,
        // or the spill shard, and gives its slot back when it ends.
        for _ in 0..4 {
            let threads: Vec<_> = (0..2 * MAX_SLOTS)
                .map(|_| std::thread::spawn(thread_slot))
                .collect();
            let slots: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            // A slot or the spill shard, never left unclaimed. (Whether any
            // got a slot depends on other tests' threads holding them.)
            assert!(slots.iter().all(|&s| s < slot_count() || s == NO_SLOT));
        }
        let claimed_now = || CLAIMED.iter().filter(|c| c.load(Ordering::Acquire)).count();
        // Other tests' threads may hold a few slots; never all of them for long.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while claimed_now() >= slot_count() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(claimed_now() < slot_count());
    }
}
