//! The traffic recorder: what the layer writes on every passed-through request.
//!
//! The hot path is a TSC read and one counter add when the request starts,
//! then a TSC read and a few counter adds when it ends. Counters live in
//! per-thread shards that only their own thread writes, with plain loads and
//! stores (see [`shards`]); a request's guard points at them without any
//! reference counting.
//!
//! Readers sum the shards into a [`Snapshot`]. The recent window is the
//! difference between the current snapshot and one taken about
//! [`WINDOW`](window::WINDOW) ago (see [`window`]), so the hot path never
//! rotates buckets.

mod figures;
pub(crate) mod histogram;
mod shards;
mod window;

use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed},
};
use std::sync::Arc;

use http::StatusCode;

pub(crate) use figures::{cumulative_histogram, latency_between, traffic};
use shards::OUTCOMES;
pub(crate) use shards::{reap_all, Block, Keep, Lease};
pub(crate) use window::Window;

/// How often the layers' states are checked for services left.
pub(crate) const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Outcome slots 0..6 are the response classes (1xx .. 5xx, other).
const SERVICE_ERROR: u8 = 6;
const ABORTED: u8 = 7;

/// Outcome slot of a response status: 1xx..5xx, anything else "other".
#[inline]
fn class_of(status: StatusCode) -> u8 {
    match status.as_u16() / 100 {
        class @ 1..=5 => class as u8 - 1,
        _ => 5,
    }
}

/// Sums of every shard at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) started: u64,
    pub(crate) outcomes: [u64; OUTCOMES],
    pub(crate) errors: u64,
    pub(crate) sum_ns: u64,
    pub(crate) max_ns: u64,
    pub(crate) buckets: Vec<u64>,
}

impl Snapshot {
    pub(crate) fn zero() -> Self {
        Self {
            started: 0,
            outcomes: [0; OUTCOMES],
            errors: 0,
            sum_ns: 0,
            max_ns: 0,
            buckets: vec![0; histogram::BUCKETS],
        }
    }

    /// Requests that have finished, in any way.
    pub(crate) fn finished(&self) -> u64 {
        self.outcomes.iter().sum()
    }

    /// Requests dropped before they finished.
    pub(crate) fn aborted(&self) -> u64 {
        self.outcomes[usize::from(ABORTED)]
    }

    /// Requests whose inner future failed without a response.
    #[cfg(test)]
    pub(crate) fn service_errors(&self) -> u64 {
        self.outcomes[usize::from(SERVICE_ERROR)]
    }

    /// Count of responses per class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub(crate) fn classes(&self) -> &[u64] {
        &self.outcomes[..6]
    }

    /// Counters accumulated since `earlier`, without the buckets (left
    /// empty; the report reads their differences in place). The maximum is
    /// kept as is.
    pub(crate) fn counts_since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            started: self.started.saturating_sub(earlier.started),
            outcomes: std::array::from_fn(|i| self.outcomes[i].saturating_sub(earlier.outcomes[i])),
            errors: self.errors.saturating_sub(earlier.errors),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
            max_ns: self.max_ns,
            buckets: Vec::new(),
        }
    }

    /// Counters and buckets accumulated since `earlier`: what the report's
    /// in-place figures are compared with in tests.
    #[cfg(test)]
    pub(crate) fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            ..self.counts_since(earlier)
        }
    }
}

/// The fixed-size counters shared by every service a layer builds.
pub(crate) struct Recorder {
    block: &'static Block,
    /// Requests answered by the status endpoint itself (cold path).
    status_requests: AtomicU64,
    pub(crate) window: Window,
    ticker: AtomicBool,
    /// Process memory for reports, read at most once a second.
    pub(crate) memory: crate::report::MemoryCache,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            block: shards::acquire(),
            status_requests: AtomicU64::new(0),
            window: Window::new(),
            ticker: AtomicBool::new(false),
            memory: crate::report::MemoryCache::default(),
        }
    }

    /// Size of the recorder's counters in bytes: fixed at creation.
    #[cfg(test)]
    pub(crate) fn size_bytes(&self) -> usize {
        self.block.size_bytes() + std::mem::size_of::<Self>()
    }

    /// Starts timing a passed-through request.
    #[cfg(test)]
    pub(crate) fn start(&self) -> RequestGuard {
        RequestGuard::start(self.block)
    }

    /// Starts, once, a task that snapshots the window every tick, so the
    /// window stays about a minute long however rarely the status is read.
    /// Needs a tokio runtime with timers; without one, readers' own
    /// snapshots are all there is.
    pub(crate) fn ensure_ticker(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.ticker.swap(true, Relaxed) {
            return;
        }
        // Ends with the last layer that owns the recorder.
        crate::ticker::spawn(&runtime, window::TICK, Arc::downgrade(self), |recorder| {
            let snapshot = recorder.snapshot();
            // Only the ring moves: the baseline is not needed here.
            recorder
                .window
                .advance_with(std::time::Instant::now(), &snapshot, |_, _| ());
            std::future::ready(std::ops::ControlFlow::Continue(()))
        });
    }

    /// A lease for a new service, keeping `keep` (the layer's state) alive
    /// while any service holds one; [`reap_all`] lets it go after.
    pub(crate) fn lease(&self, keep: &Keep) -> Lease {
        self.block.lease(keep)
    }

    pub(crate) fn count_status_request(&self) {
        self.status_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn status_requests(&self) -> u64 {
        self.status_requests.load(Relaxed)
    }

    /// Sums every shard.
    ///
    /// A shard's outcomes are read first, with `Acquire`: every request
    /// counted there has its bucket and maximum visible, so buckets above
    /// the maximum's can be skipped, and a shard that finished nothing has
    /// nothing else to read.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::zero();
        for shard in self.block.shards() {
            let mut finished = 0;
            for (acc, c) in snap.outcomes.iter_mut().zip(&shard.outcomes) {
                let n = c.load(Acquire);
                *acc += n;
                finished += n;
            }
            if finished == 0 {
                continue;
            }
            snap.errors += shard.errors.load(Relaxed);
            snap.sum_ns += shard.sum_ns.load(Relaxed);
            let max = shard.max_ns.load(Relaxed);
            snap.max_ns = snap.max_ns.max(max);
            let used = histogram::index(max) + 1;
            for (acc, c) in snap.buckets[..used].iter_mut().zip(&shard.buckets) {
                *acc += c.load(Relaxed);
            }
        }
        // Starts are read after finishes, so in-flight never goes negative.
        snap.started = self.block.shards().map(|s| s.started.load(Relaxed)).sum();
        snap
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        shards::release(self.block);
    }
}

/// Times one passed-through request and records it exactly once: when it is
/// finished explicitly, or as aborted when dropped before that.
pub(crate) struct RequestGuard {
    block: &'static Block,
    /// Raw clock reading at the start.
    start: u64,
    /// Outcome slot: the response class once its head arrived.
    outcome: u8,
    /// The request is gRPC: a non-zero `grpc-status` is an error.
    pub(crate) grpc: bool,
    /// An error was seen (5xx, grpc-status) before the request finished.
    pub(crate) error: bool,
    /// The request is `HEAD`: its response has no body on the wire.
    pub(crate) head: bool,
    /// Everything announced was sent, or the body said it has ended:
    /// servers may drop the body without polling its end, so dropping it
    /// now finishes the request. Atomic because `Body::is_end_stream` sets
    /// it through `&self` (a plain store: one writer at a time).
    complete: AtomicBool,
}

impl RequestGuard {
    /// Starts timing a passed-through request recorded into `block`.
    #[inline]
    pub(crate) fn start(block: &'static Block) -> Self {
        block.writer().start();
        RequestGuard {
            block,
            start: block.clock.raw(),
            outcome: SERVICE_ERROR,
            grpc: false,
            error: false,
            head: false,
            complete: AtomicBool::new(false),
        }
    }

    /// Notes the response head; a 5xx or non-zero `grpc-status` is an error.
    #[inline(always)]
    pub(crate) fn response_head(&mut self, status: StatusCode, headers: &http::HeaderMap) {
        self.outcome = class_of(status);
        if status.is_server_error() || (self.grpc && grpc_failed(headers)) {
            self.error = true;
        }
    }

    /// Notes trailers; a non-zero `grpc-status` there is an error.
    pub(crate) fn trailers(&mut self, trailers: &http::HeaderMap) {
        if self.grpc && grpc_failed(trailers) {
            self.error = true;
        }
    }

    /// Everything was sent: dropping the guard from now on finishes the
    /// request instead of aborting it.
    #[inline]
    pub(crate) fn mark_complete(&self) {
        self.complete.store(true, Relaxed);
    }

    /// Records the request as finished normally (or with an error); without
    /// a response head it is a service error.
    #[inline]
    pub(crate) fn finish(self, error: bool) {
        self.record_finished(error);
        // Recorded: nothing is left for `Drop` to do.
        std::mem::forget(self);
    }

    /// Finishes the guard in `slot`, if any, leaving `None`: every end of
    /// a passed-through request but a drop goes through here. Out of line
    /// and cold: it runs once per request, and keeping it out of the
    /// future's `poll` and the body's `poll_frame` keeps theirs small
    /// (the guard is not moved to be passed by value); the recording is
    /// inlined into it.
    #[cold]
    #[inline(never)]
    pub(crate) fn finish_in(slot: &mut Option<Self>, error: bool) {
        if let Some(g) = slot.take() {
            g.finish(error);
        }
    }

    #[inline]
    fn record_finished(&self, error: bool) {
        let error = error || self.error || self.outcome == SERVICE_ERROR;
        self.record(self.outcome, error);
    }

    #[inline(always)]
    fn record(&self, outcome: u8, error: bool) {
        let block = self.block;
        let ns = block.clock.delta_as_nanos(self.start, block.clock.raw());
        block.writer().finish(usize::from(outcome), error, ns);
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        // Only reached when nobody called `finish`.
        if *self.complete.get_mut() {
            self.record_finished(false);
        } else {
            self.record(ABORTED, false);
        }
    }
}

/// `grpc-status`, as a constant: looking it up by `&str` would parse and
/// validate the name on every call.
static GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

/// Out of line: the head is noted inline in the future's `poll` for every
/// request, and only gRPC ones look further.
#[inline(never)]
fn grpc_failed(headers: &http::HeaderMap) -> bool {
    let status = match headers.len() {
        // Most gRPC response heads carry no headers of their own.
        0 => None,
        // Trailers are `grpc-status` and perhaps `grpc-message`: a scan
        // of a few names is cheaper than hashing one.
        1..=4 => headers
            .iter()
            .find_map(|(name, value)| (*name == GRPC_STATUS).then_some(value)),
        _ => headers.get(&GRPC_STATUS),
    };
    status.is_some_and(|v| v.as_bytes() != b"0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_request_once() {
        let rec = Recorder::new();
        let mut ok = rec.start();
        ok.response_head(StatusCode::OK, &http::HeaderMap::new());
        ok.finish(false);
        let mut err = rec.start();
        err.response_head(StatusCode::INTERNAL_SERVER_ERROR, &http::HeaderMap::new());
        err.finish(false);
        drop(rec.start());
        rec.start().finish(false);
        let pending = rec.start();

        let s = rec.snapshot();
        assert_eq!(s.started, 5);
        assert_eq!(s.finished(), 4);
        assert_eq!(s.classes()[1], 1);
        assert_eq!(s.classes()[4], 1);
        assert_eq!(s.aborted(), 1);
        assert_eq!(s.service_errors(), 1);
        assert_eq!(s.errors, 2);
        assert_eq!(s.buckets.iter().sum::<u64>(), 4);
        drop(pending);
        assert_eq!(rec.snapshot().aborted(), 2);
    }

    #[test]
    fn a_complete_guard_dropped_is_finished_not_aborted() {
        let rec = Recorder::new();
        let mut g = rec.start();
        g.response_head(StatusCode::OK, &http::HeaderMap::new());
        g.mark_complete();
        drop(g);
        let mut g = rec.start();
        g.response_head(StatusCode::BAD_GATEWAY, &http::HeaderMap::new());
        g.mark_complete();
        drop(g);
        let s = rec.snapshot();
        assert_eq!((s.finished(), s.aborted(), s.errors), (2, 0, 1));
        assert_eq!((s.classes()[1], s.classes()[4]), (1, 1));
    }

    #[test]
    fn grpc_status_in_headers_or_trailers_is_an_error() {
        let rec = Recorder::new();
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", "14".parse().unwrap());
        let mut g = rec.start();
        g.grpc = true;
        g.response_head(StatusCode::OK, &h);
        g.finish(false);
        let mut g = rec.start();
        g.grpc = true;
        g.response_head(StatusCode::OK, &http::HeaderMap::new());
        g.trailers(&h);
        g.finish(false);
        let mut ok = http::HeaderMap::new();
        ok.insert("grpc-status", "0".parse().unwrap());
        let mut g = rec.start();
        g.grpc = true;
        g.response_head(StatusCode::OK, &http::HeaderMap::new());
        g.trailers(&ok);
        g.finish(false);
        let s = rec.snapshot();
        assert_eq!(s.errors, 2);
        assert_eq!(s.classes()[1], 3);
    }

    #[test]
    fn counts_since_is_what_happened_in_between() {
        let rec = Recorder::new();
        let mut g = rec.start();
        g.response_head(StatusCode::OK, &http::HeaderMap::new());
        g.finish(false);
        drop(rec.start());
        let before = rec.snapshot();
        for _ in 0..3 {
            let mut g = rec.start();
            g.response_head(StatusCode::SERVICE_UNAVAILABLE, &http::HeaderMap::new());
            g.finish(false);
        }
        rec.start().finish(false);
        let pending = rec.start();
        let after = rec.snapshot();

        let d = after.counts_since(&before);
        assert_eq!(d.started, 5);
        assert_eq!(d.finished(), 4);
        assert_eq!(d.classes(), &[0, 0, 0, 0, 3, 0][..]);
        assert_eq!((d.aborted(), d.service_errors()), (0, 1));
        assert_eq!(d.errors, 4);
        assert_eq!(d.sum_ns, after.sum_ns - before.sum_ns);
        assert_eq!(d.max_ns, after.max_ns);
        assert!(d.buckets.is_empty());
        assert_eq!(after.since(&before).buckets.iter().sum::<u64>(), 4);
        // Never below zero, whatever the order.
        let back = before.counts_since(&after);
        assert_eq!(
            (back.started, back.finished(), back.errors, back.sum_ns),
            (0, 0, 0, 0)
        );
        drop(pending);
    }

    #[test]
    fn exact_across_threads_slots_and_spill() {
        // More threads at once than there can be slots, so some record
        // through the spill shard; a third of the requests are finished on
        // another thread than the one that started them.
        const THREADS: u32 = shards::MAX_SLOTS as u32 + 8;
        let rec = Arc::new(Recorder::new());
        let all_started = Arc::new(std::sync::Barrier::new(THREADS as usize));
        let (tx, rx) = std::sync::mpsc::channel::<RequestGuard>();
        let finisher = std::thread::spawn(move || {
            for mut g in rx {
                g.response_head(StatusCode::OK, &http::HeaderMap::new());
                g.finish(false);
            }
        });
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let rec = Arc::clone(&rec);
                let all_started = Arc::clone(&all_started);
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..3_000u32 {
                        let mut g = rec.start();
                        if i == 0 {
                            // Every thread has taken its slot, or found none.
                            all_started.wait();
                        }
                        match (i + t) % 3 {
                            0 => tx.send(g).unwrap(),
                            1 => {
                                g.response_head(StatusCode::BAD_GATEWAY, &http::HeaderMap::new());
                                g.finish(false);
                            }
                            _ => drop(g),
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        for w in workers {
            w.join().unwrap();
        }
        finisher.join().unwrap();
        let s = rec.snapshot();
        let third = u64::from(THREADS) * 1_000;
        assert_eq!(s.started, 3 * third);
        assert_eq!(s.finished(), 3 * third);
        assert_eq!(s.classes()[1], third);
        assert_eq!(s.classes()[4], third);
        assert_eq!(s.aborted(), third);
        assert_eq!(s.errors, third);
        assert_eq!(s.buckets.iter().sum::<u64>(), 3 * third);
        assert!(rec.block.spill().started.load(Relaxed) > 0);
    }

    #[test]
    fn counters_outlive_their_recorder_until_requests_end() {
        // A request still running when its layer is dropped is recorded into
        // counters nobody else reuses; a new recorder always starts at zero.
        for _ in 0..50 {
            let rec = Recorder::new();
            rec.start().finish(false);
            let pending = rec.start();
            drop(rec);
            let next = Recorder::new();
            assert_eq!(next.snapshot(), Snapshot::zero());
            next.start().finish(false);
            drop(pending);
            assert_eq!(next.snapshot().finished(), 1);
            assert_eq!(next.snapshot().aborted(), 0);
        }
    }

    #[test]
    fn size_is_fixed() {
        let rec = Recorder::new();
        let before = rec.size_bytes();
        for _ in 0..10_000 {
            rec.start().finish(false);
        }
        assert_eq!(rec.size_bytes(), before);
    }
}
