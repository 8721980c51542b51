//! The traffic recorder: what the layer writes on every passed-through request.
//!
//! The hot path is a clock read when the request starts, one relaxed atomic
//! add, then a clock read and a few relaxed atomic adds when it ends. Counters
//! live in cache-padded shards, one per thread (round-robin when there are
//! more threads than shards), so cores never fight over a cache line. A
//! request keeps an `Arc` of its own shard, whose count is touched only by
//! that thread, never the layer's shared `Arc`.
//!
//! Readers sum the shards into a [`Snapshot`]. The recent window is the
//! difference between the current snapshot and one taken about
//! [`WINDOW`] ago (see [`window`]), so the hot path never rotates buckets.

pub(crate) mod histogram;
mod window;

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

pub(crate) use window::Window;

/// How a request ended. The first five are the response status classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A response was produced; the index is its class (0 = 1xx .. 4 = 5xx, 5 = other).
    Class(usize),
    /// The inner service's future returned an error: no response at all.
    ServiceError,
    /// The future or the body was dropped before the request finished.
    Aborted,
}

/// Slots of [`Shard::outcomes`]: six classes, service errors, aborted.
pub(crate) const OUTCOMES: usize = 8;
const SERVICE_ERROR: usize = 6;
const ABORTED: usize = 7;

impl Outcome {
    fn slot(self) -> usize {
        match self {
            Outcome::Class(c) => c,
            Outcome::ServiceError => SERVICE_ERROR,
            Outcome::Aborted => ABORTED,
        }
    }

    /// Class slot of a response status (1xx..5xx, anything else "other").
    #[inline]
    pub(crate) fn of(status: StatusCode) -> Self {
        let class = (status.as_u16() / 100) as usize;
        Outcome::Class(if (1..=5).contains(&class) {
            class - 1
        } else {
            5
        })
    }
}

/// One thread's counters. Aligned so two shards never share a cache line.
#[repr(align(128))]
pub(crate) struct Shard {
    started: AtomicU64,
    outcomes: [AtomicU64; OUTCOMES],
    errors: AtomicU64,
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    buckets: [AtomicU64; histogram::BUCKETS],
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

    #[inline]
    fn record(&self, outcome: Outcome, error: bool, ns: u64) {
        self.outcomes[outcome.slot()].fetch_add(1, Relaxed);
        self.buckets[histogram::index(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
        // A plain load first: the read-modify-write is only needed for a new maximum.
        if ns > self.max_ns.load(Relaxed) {
            self.max_ns.fetch_max(ns, Relaxed);
        }
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
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
        self.outcomes[ABORTED]
    }

    /// Requests whose inner future failed without a response.
    #[cfg(test)]
    pub(crate) fn service_errors(&self) -> u64 {
        self.outcomes[SERVICE_ERROR]
    }

    /// Count of responses per class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
    pub(crate) fn classes(&self) -> &[u64] {
        &self.outcomes[..6]
    }

    /// Counters accumulated since `earlier` (the maximum is kept as is).
    pub(crate) fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            started: self.started.saturating_sub(earlier.started),
            outcomes: std::array::from_fn(|i| self.outcomes[i].saturating_sub(earlier.outcomes[i])),
            errors: self.errors.saturating_sub(earlier.errors),
            sum_ns: self.sum_ns.saturating_sub(earlier.sum_ns),
            max_ns: self.max_ns,
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }
}

/// The fixed-size set of shards shared by every service a layer builds.
pub(crate) struct Recorder {
    shards: Box<[Arc<Shard>]>,
    /// Requests answered by the status endpoint itself (cold path).
    status_requests: AtomicU64,
    pub(crate) window: Window,
    ticker: AtomicBool,
    /// Process memory for reports, read at most once a second.
    pub(crate) memory: crate::report::MemoryCache,
}

static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard number, assigned round-robin on first use.
    static THREAD_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn thread_slot() -> usize {
    THREAD_SLOT.with(|slot| {
        let mut s = slot.get();
        if s == usize::MAX {
            s = NEXT_THREAD.fetch_add(1, Relaxed);
            slot.set(s);
        }
        s
    })
}

impl Recorder {
    pub(crate) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = cores.clamp(1, 64).next_power_of_two();
        Self {
            shards: (0..shards).map(|_| Arc::new(Shard::new())).collect(),
            status_requests: AtomicU64::new(0),
            window: Window::new(),
            ticker: AtomicBool::new(false),
            memory: crate::report::MemoryCache::default(),
        }
    }

    /// Size of the recorder's counters in bytes: fixed at creation.
    pub(crate) fn size_bytes(&self) -> usize {
        self.shards.len() * std::mem::size_of::<Shard>() + std::mem::size_of::<Self>()
    }

    /// Starts timing a passed-through request.
    #[inline]
    pub(crate) fn start(&self) -> RequestGuard {
        let shard = &self.shards[thread_slot() & (self.shards.len() - 1)];
        shard.started.fetch_add(1, Relaxed);
        RequestGuard {
            shard: Some(Arc::clone(shard)),
            start: quanta::Instant::now(),
            grpc: false,
            error: false,
            class: None,
        }
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
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut interval = tokio::time::interval(window::TICK);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                // Ends with the last layer that owns the recorder.
                let Some(recorder) = weak.upgrade() else {
                    break;
                };
                let snapshot = recorder.snapshot();
                recorder
                    .window
                    .advance(std::time::Instant::now(), &snapshot);
            }
        });
    }

    pub(crate) fn count_status_request(&self) {
        self.status_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn status_requests(&self) -> u64 {
        self.status_requests.load(Relaxed)
    }

    /// Sums every shard.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::zero();
        for shard in self.shards.iter() {
            // Finished counts are read before starts so in-flight never goes negative.
            for (acc, c) in snap.outcomes.iter_mut().zip(&shard.outcomes) {
                *acc += c.load(Relaxed);
            }
            snap.errors += shard.errors.load(Relaxed);
            snap.sum_ns += shard.sum_ns.load(Relaxed);
            snap.max_ns = snap.max_ns.max(shard.max_ns.load(Relaxed));
            for (acc, c) in snap.buckets.iter_mut().zip(&shard.buckets) {
                *acc += c.load(Relaxed);
            }
        }
        snap.started = self.shards.iter().map(|s| s.started.load(Relaxed)).sum();
        snap
    }
}

/// Times one passed-through request and records it exactly once: when it is
/// finished explicitly, or as aborted when dropped before that.
pub(crate) struct RequestGuard {
    shard: Option<Arc<Shard>>,
    start: quanta::Instant,
    /// The request is gRPC: a non-zero `grpc-status` is an error.
    pub(crate) grpc: bool,
    /// An error was seen (5xx, grpc-status) before the request finished.
    pub(crate) error: bool,
    /// Class of the response, once its head arrived.
    pub(crate) class: Option<Outcome>,
}

impl RequestGuard {
    /// Notes the response head; a 5xx or non-zero `grpc-status` is an error.
    #[inline]
    pub(crate) fn response_head(&mut self, status: StatusCode, headers: &http::HeaderMap) {
        self.class = Some(Outcome::of(status));
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

    /// Records the request as finished normally (or with an error).
    #[inline]
    pub(crate) fn finish(mut self, error: bool) {
        let outcome = self.class.unwrap_or(Outcome::ServiceError);
        let error = error || self.error || outcome == Outcome::ServiceError;
        self.record(outcome, error);
    }

    #[inline]
    fn record(&mut self, outcome: Outcome, error: bool) {
        if let Some(shard) = self.shard.take() {
            let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            shard.record(outcome, error, ns);
        }
    }

    /// Time since the request started.
    #[allow(dead_code)]
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        // Only reached with the shard still present when nobody called `finish`.
        self.record(Outcome::Aborted, false);
    }
}

fn grpc_failed(headers: &http::HeaderMap) -> bool {
    headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() != b"0")
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
    fn size_is_fixed() {
        let rec = Recorder::new();
        let before = rec.size_bytes();
        for _ in 0..10_000 {
            rec.start().finish(false);
        }
        assert_eq!(rec.size_bytes(), before);
    }
}
