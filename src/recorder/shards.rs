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
//!
//! Services hold a [`Lease`] on their block instead of a reference-counted
//! pointer to the layer's state: the block keeps the state alive while any
//! lease lives, and cloning or dropping a lease writes the calling thread's
//! own shard, like a request does. [`reap_all`] lets the state go once the
//! leases are all gone.

use std::any::Any;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

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
    /// Leases (services) made and ended by this shard's writer.
    leases_made: AtomicU64,
    leases_ended: AtomicU64,
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
            leases_made: AtomicU64::new(0),
            leases_ended: AtomicU64::new(0),
        }
    }

    fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        [
            &self.started,
            &self.errors,
            &self.sum_ns,
            &self.max_ns,
            &self.leases_made,
            &self.leases_ended,
        ]
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

    #[inline]
    fn lease_made(self) {
        // Release: a reaper that sees a lease end sees the leases made
        // before it (see `Block::reap`).
        self.add(&self.shard.leases_made, 1, Ordering::Release);
    }

    #[inline]
    fn lease_ended(self) {
        self.add(&self.shard.leases_ended, 1, Ordering::Release);
    }
}

/// What a block's leases keep alive: the layer state they serve.
pub(crate) type Keep = Arc<dyn Any + Send + Sync>;

/// The counters of one recorder, with the clock that times its requests.
pub(crate) struct Block {
    pub(crate) clock: quanta::Clock,
    shards: Box<[Shard]>,
    spill: Shard,
    /// Held for the block's leases while any is alive; taken by
    /// [`reap`](Self::reap). Read-locked by a service that reads the state
    /// (its status path, opt-in caller counting), write-locked to install
    /// or take it.
    keep: RwLock<Option<Keep>>,
}

impl Block {
    fn new() -> Self {
        Self {
            keep: RwLock::new(None),
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

    // An `Option` is valid whatever a panicking holder did.
    fn keep_write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Keep>> {
        self.keep.write().unwrap_or_else(|e| e.into_inner())
    }

    fn keep_read(&self) -> std::sync::RwLockReadGuard<'_, Option<Keep>> {
        self.keep.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A first lease on this block, keeping `keep` alive (unless the
    /// block already keeps a value for live leases) until the last lease is
    /// gone and [`reap`](Self::reap) finds it so.
    pub(crate) fn lease(&'static self, keep: &Keep) -> Lease {
        let mut held = self.keep_write();
        // Counted under the lock, so a reaper (which takes it too) either
        // sees this lease or runs before it and leaves `keep` for us.
        self.writer().lease_made();
        if held.is_none() {
            *held = Some(Arc::clone(keep));
        }
        Lease { block: self }
    }

    /// Leases alive now; exact when none is made or ended meanwhile.
    fn leases(&self) -> u64 {
        // Ends first: every lease whose end is seen was made before it, and
        // its making is then seen too (release/acquire through the end's
        // store), so a live lease can never be read as gone. Makes read
        // later can only be larger.
        let ended: u64 = self
            .shards()
            .map(|s| s.leases_ended.load(Ordering::Acquire))
            .sum();
        let made: u64 = self
            .shards()
            .map(|s| s.leases_made.load(Ordering::Acquire))
            .sum();
        made.wrapping_sub(ended)
    }

    /// Takes what the leases kept alive once no lease is left, for the
    /// caller to drop (outside any lock: dropping it may release this block).
    pub(crate) fn reap(&self) -> Option<Keep> {
        let mut held = self.keep_write();
        if held.is_some() && self.leases() == 0 {
            held.take()
        } else {
            None
        }
    }
}

/// A counted reference to a [`Block`] and what it keeps alive, held by
/// every service a layer makes. Cloning and dropping one write a counter
/// of the calling thread's own shard: no shared atomic, so threads cloning
/// services per request never contend (an `Arc` would bounce its count
/// between their cores).
pub(crate) struct Lease {
    block: &'static Block,
}

impl Lease {
    /// The counters requests are recorded into.
    #[inline]
    pub(crate) fn block(&self) -> &'static Block {
        self.block
    }

    /// What the block keeps alive for its leases (a read lock and a
    /// reference count: for the status path).
    pub(crate) fn keep(&self) -> Option<Keep> {
        self.block.keep_read().clone()
    }

    /// Runs `f` on what the block keeps alive, under a read lock.
    pub(crate) fn with_keep<R>(&self, f: impl FnOnce(&(dyn Any + Send + Sync)) -> R) -> Option<R> {
        self.block.keep_read().as_deref().map(f)
    }
}

impl Clone for Lease {
    #[inline]
    fn clone(&self) -> Self {
        self.block.writer().lease_made();
        Lease { block: self.block }
    }
}

impl Drop for Lease {
    #[inline]
    fn drop(&mut self) {
        self.block.writer().lease_ended();
    }
}

/// Blocks of dropped recorders: zeroed ones ready for reuse, and those
/// still waiting for their last requests to finish.
struct Pool {
    free: Vec<&'static Block>,
    draining: Vec<&'static Block>,
    /// Blocks of live recorders, whose leases may all be gone.
    in_use: Vec<&'static Block>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    draining: Vec::new(),
    in_use: Vec::new(),
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool's lists stay valid even if a holder panicked.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A zeroed block for a new recorder.
pub(crate) fn acquire() -> &'static Block {
    let reaped = reap_all();
    // Dropped outside the pool's lock: their recorders give blocks back.
    drop(reaped);
    let mut pool = pool();
    let block = take_free(&mut pool).unwrap_or_else(|| Box::leak(Box::new(Block::new())));
    pool.in_use.push(block);
    block
}

/// Takes what every block in use keeps for leases that are all gone: a
/// layer whose services were all dropped outside a runtime (no reaper task)
/// is freed when the next one is built.
pub(crate) fn reap_all() -> Vec<Keep> {
    let pool = pool();
    pool.in_use.iter().filter_map(|b| b.reap()).collect()
}

fn take_free(pool: &mut Pool) -> Option<&'static Block> {
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
    pool.free.pop()
}

/// Gives back the block of a dropped recorder.
pub(crate) fn release(block: &'static Block) {
    // Leases keep the recorder (and so the block) alive.
    debug_assert_eq!(block.leases(), 0, "a block released under a lease");
    let mut pool = pool();
    if let Some(i) = pool.in_use.iter().position(|b| std::ptr::eq(*b, block)) {
        pool.in_use.swap_remove(i);
    }
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

    fn fresh_block() -> &'static Block {
        Box::leak(Box::new(Block::new()))
    }

    #[test]
    fn the_kept_value_goes_with_the_last_lease() {
        let block = fresh_block();
        let keep: Keep = Arc::new(7_u32);
        let first = block.lease(&keep);
        let kept = |lease: &Lease| *lease.keep().unwrap().downcast::<u32>().unwrap();
        assert_eq!(kept(&first), 7);
        let clones: Vec<Lease> = (0..3).map(|_| first.clone()).collect();
        assert_eq!(block.leases(), 4);
        assert!(block.reap().is_none(), "leases are alive");
        drop(clones);
        assert!(block.reap().is_none(), "one lease is alive");
        // Another lease while one is alive keeps the value it found.
        let second = block.lease(&(Arc::new(8_u32) as Keep));
        assert_eq!(kept(&second), 7);
        drop((first, second));
        let reaped = block.reap().expect("no lease left");
        assert_eq!(reaped.downcast::<u32>().unwrap(), Arc::new(7));
        assert!(block.reap().is_none(), "taken once");
        // A lease after reaping installs its value again.
        let again = block.lease(&(Arc::new(9_u32) as Keep));
        assert_eq!(kept(&again), 9);
        drop(again);
        assert!(block.reap().is_some());
    }

    #[test]
    fn leases_cloned_and_dropped_across_threads_are_never_reaped_early() {
        // Threads (more than slots, so some use the spill shard) clone the
        // root lease and drop the clones on other threads, while a reaper
        // keeps checking: as long as the root lives nothing is taken.
        let block = fresh_block();
        let root = block.lease(&(Arc::new(()) as Keep));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let reaper = s.spawn(|| {
                let mut checks = 0_u64;
                while !stop.load(Ordering::Acquire) {
                    assert!(block.reap().is_none(), "reaped while a lease lived");
                    checks += 1;
                }
                checks
            });
            let (tx, rx) = std::sync::mpsc::channel::<Lease>();
            let dropper = s.spawn(move || rx.into_iter().count());
            let makers: Vec<_> = (0..MAX_SLOTS + 4)
                .map(|_| {
                    let tx = tx.clone();
                    let root = &root;
                    s.spawn(move || {
                        for i in 0..2_000 {
                            let lease = root.clone();
                            if i % 2 == 0 {
                                tx.send(lease).unwrap();
                            } else {
                                drop(lease.clone());
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            for m in makers {
                m.join().unwrap();
            }
            assert_eq!(dropper.join().unwrap(), (MAX_SLOTS + 4) * 1_000);
            stop.store(true, Ordering::Release);
            assert!(reaper.join().unwrap() > 0);
        });
        assert_eq!(block.leases(), 1);
        drop(root);
        assert_eq!(block.leases(), 0);
        assert!(block.reap().is_some());
    }

    #[test]
    fn building_a_layer_reaps_those_whose_leases_are_gone() {
        let block = acquire();
        let keep: Keep = Arc::new(1_u8);
        let lease = block.lease(&keep);
        drop(lease);
        // No reaper task needed: the next acquire takes it (or another
        // test's acquire, or the process's reaper, got there first).
        let next = acquire();
        assert!(block.reap().is_none(), "taken by an acquire");
        // Whoever took it drops it outside the pool's lock, soon after.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&keep) > 1 && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(Arc::strong_count(&keep), 1, "the block let its value go");
        release(next);
        release(block);
    }

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
