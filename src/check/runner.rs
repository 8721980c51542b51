//! Running checks: timeouts, panics, caching, single flight, background polling.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::future::{join_all, FutureExt, Shared};
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::{runtime, BoxFuture, CheckResult, Freshness, HealthCheck};
use crate::guarded::{self, Failure};
use crate::report::{Component, LastRun, Status, Stored, Timestamp};
use crate::ticker;

type Flight = Shared<BoxFuture<'static, Arc<Stored>>>;

/// A registered check and its last result.
pub(crate) struct Entry {
    pub(crate) spec: HealthCheck,
    state: Mutex<State>,
    /// Passed at least once: for startup gating.
    ever_ok: AtomicBool,
    /// Bumped, with the state locked, whenever a stored result or a
    /// poller goes: shared by the entries of a [`Checks`] to validate its
    /// [`Board`].
    generation: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    /// The last result and when it was made.
    last: Option<(Instant, Arc<Stored>)>,
    /// The run in progress, shared by everyone waiting for it.
    flight: Option<Flight>,
    poller: bool,
    /// Runs in a row that passed, or failed, like the last one.
    streak: Streak,
    /// The status reported after damping (`None` before the first run).
    shown: Option<Status>,
}

/// Runs in a row with the same outcome.
#[derive(Clone, Copy, Debug, Default)]
struct Streak {
    failing: bool,
    count: u32,
    /// When the first run of the streak ended.
    since: Option<Instant>,
}

/// Every registered check, with the settings that apply to all of them.
#[derive(Clone, Default)]
pub(crate) struct Checks {
    pub(crate) entries: Vec<Arc<Entry>>,
    /// At most this many checks run at once.
    pub(crate) limit: Option<Arc<Semaphore>>,
    /// The permits of `limit` when it was made: a fresh copy gets its own.
    pub(crate) limit_permits: usize,
    /// Checks not finished this long after a request arrived are reported as timed out.
    pub(crate) deadline: Option<Duration>,
    /// Bumped by every entry when its stored result changes.
    generation: Arc<AtomicU64>,
    /// The last board of every entry's result; replaced when an entry is added.
    board: Arc<Mutex<Option<Arc<Board>>>>,
}

/// Every check's stored result at once, with their JSON joined: what a
/// report with all checks selected takes with one lock instead of one per
/// check. Valid while no entry's result changes (same generation) and every
/// on-demand result is fresh, so it holds exactly what each entry would
/// serve one by one.
#[derive(Debug)]
pub(crate) struct Board {
    generation: u64,
    /// When the first on-demand result stops being fresh (`None`: never).
    fresh_until: Option<Instant>,
    /// Index in [`Checks::entries`] and stored result of each check, by name.
    pub(crate) items: Vec<(usize, Arc<Stored>)>,
    /// `{"a":{..},"b":{..}}`: the results of `items` as one JSON object.
    pub(crate) joined: Box<RawValue>,
    /// The worst impact among them.
    pub(crate) impact: Status,
}

impl std::fmt::Debug for Checks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks")
            .field(
                "entries",
                &self.entries.iter().map(|e| &e.spec).collect::<Vec<_>>(),
            )
            .field("limit", &self.limit.as_ref().map(|s| s.available_permits()))
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Checks {
    /// The same checks and settings with no results, runs or pollers yet:
    /// for a newly built layer, which shares nothing with other layers.
    pub(crate) fn fresh(&self) -> Self {
        let mut fresh = Checks {
            limit: self
                .limit
                .as_ref()
                .map(|_| Arc::new(Semaphore::new(self.limit_permits))),
            limit_permits: self.limit_permits,
            deadline: self.deadline,
            ..Checks::default()
        };
        for entry in &self.entries {
            fresh.add(entry.spec.clone());
        }
        fresh
    }

    /// Adds a check, replacing one registered under the same name.
    pub(crate) fn add(&mut self, spec: HealthCheck) {
        self.entries.retain(|e| e.spec.name != spec.name);
        self.entries.push(Arc::new(Entry {
            spec,
            state: Mutex::new(State::default()),
            ever_ok: AtomicBool::new(false),
            generation: Arc::clone(&self.generation),
        }));
        // Other clones of these checks keep theirs: it matches their entries.
        self.board = Arc::default();
    }

    /// Every entry's result served from cache at `now`, when each entry
    /// would serve its cached result (fresh, or polled in the background
    /// by a running poller) without starting anything; `None` otherwise.
    pub(crate) fn board(&self, now: Instant) -> Option<Arc<Board>> {
        // Read before the entries: a result stored meanwhile invalidates what is built.
        let generation = self.generation.load(Ordering::Acquire);
        let mut slot = self.board.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(board) = &*slot {
            if board.generation == generation && board.fresh_until.is_none_or(|t| now < t) {
                return Some(Arc::clone(board));
            }
        }
        let mut fresh_until: Option<Instant> = None;
        let mut items = Vec::with_capacity(self.entries.len());
        for (i, entry) in self.entries.iter().enumerate() {
            let state = entry.lock();
            let (at, stored) = state.last.as_ref()?;
            match entry.spec.freshness {
                // Served as long as its poller runs (else `ready` starts one).
                Freshness::Background { .. } if !state.poller => return None,
                Freshness::Background { .. } => {}
                Freshness::OnDemand { ttl } => {
                    // Fresh while `now - at < ttl`, as `ready` decides.
                    if now.saturating_duration_since(*at) >= ttl {
                        return None;
                    }
                    if let Some(until) = at.checked_add(ttl) {
                        fresh_until = Some(fresh_until.map_or(until, |t| t.min(until)));
                    }
                }
            }
            items.push((i, Arc::clone(stored)));
        }
        let entries = &self.entries;
        items.sort_by(|a, b| entries[a.0].spec.name.cmp(&entries[b.0].spec.name));
        let joined = crate::report::join(
            items
                .iter()
                .map(|(i, stored)| (entries[*i].spec.name.as_str(), &*stored.json)),
        );
        let impact = crate::report::aggregate(items.iter().map(|(_, s)| &s.component));
        let board = Arc::new(Board {
            generation,
            fresh_until,
            items,
            joined,
            impact,
        });
        *slot = Some(Arc::clone(&board));
        Some(board)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Arc<Entry>> {
        self.entries.iter().find(|e| e.spec.name == name)
    }

    /// Every critical check has passed at least once.
    pub(crate) fn started(&self) -> bool {
        self.entries
            .iter()
            .filter(|e| e.spec.critical)
            .all(|e| e.ever_ok.load(Ordering::Relaxed))
    }

    /// The last results of the selected checks, however old, without
    /// running any: what has been seen so far. Checks that never ran are
    /// left out.
    pub(crate) fn peek<'a>(
        &'a self,
        selected: impl Iterator<Item = &'a Arc<Entry>>,
    ) -> Vec<(&'a str, Arc<Stored>)> {
        selected
            .filter_map(|entry| Some((entry.spec.name.as_str(), entry.peek(&self.limit)?)))
            .collect()
    }

    /// Results of the selected checks, run concurrently within the deadline,
    /// with the names they are registered under; cached results are served
    /// when fresh at `now`. Also says whether any run was waited for.
    pub(crate) async fn gather<'a>(
        &'a self,
        selected: impl Iterator<Item = &'a Arc<Entry>>,
        now: Instant,
    ) -> (Vec<(&'a str, Arc<Stored>)>, bool) {
        // Fresh cached results are taken at once; only runs are awaited.
        let mut done = Vec::with_capacity(selected.size_hint().0);
        let mut waiting = Vec::new();
        for entry in selected {
            match entry.ready(now, &self.limit) {
                Ok(stored) => done.push((entry.spec.name.as_str(), stored)),
                Err(flight) => waiting.push((entry, flight)),
            }
        }
        if waiting.is_empty() {
            return (done, false);
        }
        // A deadline past the clock's end is none.
        let deadline = self
            .deadline
            .and_then(|d| tokio::time::Instant::now().checked_add(d));
        let runs = waiting.into_iter().map(|(entry, flight)| async move {
            let component = match deadline {
                None => flight.await,
                // Timers need tokio: off a runtime, the wait is a task on the fallback.
                Some(at) => {
                    match runtime::in_tokio(
                        async move { tokio::time::timeout_at(at, flight).await },
                    )
                    .await
                    {
                        Some(Ok(c)) => c,
                        Some(Err(_)) => entry.component(
                            CheckResult::down(format!(
                                "timed out after {} ms (report deadline)",
                                self.deadline.unwrap_or_default().as_millis()
                            )),
                            Duration::ZERO,
                            Timestamp::now(),
                        ),
                        None => entry.unavailable(),
                    }
                }
            };
            (entry.spec.name.as_str(), component)
        });
        done.extend(join_all(runs).await);
        (done, true)
    }
}

impl Entry {
    /// The last result, however old, without starting a run (a background
    /// check's poller is started if it is not running).
    fn peek(self: &Arc<Self>, limit: &Option<Arc<Semaphore>>) -> Option<Arc<Stored>> {
        let mut state = self.lock();
        if let Freshness::Background { every } = self.spec.freshness {
            self.ensure_poller(&mut state, every, limit.clone());
        }
        state.last.as_ref().map(|(_, stored)| Arc::clone(stored))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held, but stay usable if one did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached result when it may be served at `now`, else the run to
    /// wait for (shared with every concurrent caller).
    fn ready(
        self: &Arc<Self>,
        now: Instant,
        limit: &Option<Arc<Semaphore>>,
    ) -> Result<Arc<Stored>, Flight> {
        let mut state = self.lock();
        if let Freshness::Background { every } = self.spec.freshness {
            self.ensure_poller(&mut state, every, limit.clone());
        }
        match (self.spec.freshness, &state.last) {
            (Freshness::Background { .. }, Some((_, c))) => return Ok(Arc::clone(c)),
            (Freshness::Background { .. }, None) => {}
            (Freshness::OnDemand { ttl }, Some((at, c))) => {
                let age = now.saturating_duration_since(*at);
                if age < ttl {
                    return Ok(Arc::clone(c));
                }
                // A bound past `Duration::MAX` is none: stale results are always served.
                if ttl
                    .checked_add(self.spec.serve_stale)
                    .is_none_or(|bound| age < bound)
                {
                    let c = Arc::clone(c);
                    // The run is its own task: it goes on without this request.
                    let _refresh = self.start_flight(&mut state, limit.clone());
                    return Ok(c);
                }
            }
            (Freshness::OnDemand { .. }, None) => {}
        }
        Err(self.start_flight(&mut state, limit.clone()))
    }

    /// Joins the run in progress or starts one. A run is its own task (on
    /// the fallback runtime when the caller is on none), so it finishes
    /// (and fills the cache) even if every request waiting for it goes away.
    fn start_flight(self: &Arc<Self>, state: &mut State, limit: Option<Arc<Semaphore>>) -> Flight {
        if let Some(flight) = &state.flight {
            return flight.clone();
        }
        let entry = Arc::clone(self);
        let run = async move {
            // Cancelled with its runtime, the run must not stay "in flight" forever.
            let reset = Reset::new(&entry, |state| state.flight = None);
            let (result, took, at) = entry.run(limit).await;
            reset.disarm();
            let mut state = entry.lock();
            let now = Instant::now();
            let component = entry.settle(&mut state, result, took, at, now);
            state.last = Some((now, Arc::clone(&component)));
            state.flight = None;
            entry.generation.fetch_add(1, Ordering::Release);
            component
        };
        // Off a runtime the run goes to the fallback: a check may need tokio
        // for its own I/O and timers, and its timeout does.
        let Some(rt) = runtime::handle() else {
            // Not kept as the flight: a later request tries again.
            let component = self.unavailable();
            let ready: BoxFuture<'static, Arc<Stored>> = Box::pin(async move { component });
            return ready.shared();
        };
        let task = rt.spawn(run);
        let entry = Arc::clone(self);
        let fut: BoxFuture<'static, Arc<Stored>> = Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                // The run itself catches panics; this is cancellation at shutdown.
                entry.component(
                    CheckResult::down(format!("check task failed: {e}")),
                    Duration::ZERO,
                    Timestamp::now(),
                )
            })
        });
        let flight = fut.shared();
        state.flight = Some(flight.clone());
        flight
    }

    /// Polls the check every `every` from a task of its own (on the
    /// fallback runtime when the caller is on none), unless one runs.
    fn ensure_poller(
        self: &Arc<Self>,
        state: &mut State,
        every: Duration,
        limit: Option<Arc<Semaphore>>,
    ) {
        if state.poller {
            return;
        }
        let Some(rt) = runtime::handle() else {
            return;
        };
        state.poller = true;
        // Dropped with the task (and its runtime): a later request on
        // another runtime starts a new poller.
        let reset = Reset::new(self, |state| state.poller = false);
        let owner = Arc::downgrade(self);
        let (jitter, initial_delay) = (self.spec.jitter, self.spec.initial_delay);
        rt.spawn(async move {
            let _until_the_task_ends = reset;
            let first = initial_delay.saturating_add(random_up_to(jitter));
            if !first.is_zero() {
                tokio::time::sleep(first.min(ticker::MAX_PERIOD)).await;
            }
            // Stops when the layer that registered the check is gone.
            while let Some(entry) = owner.upgrade() {
                let started = tokio::time::Instant::now();
                let flight = {
                    let mut state = entry.lock();
                    entry.start_flight(&mut state, limit.clone())
                };
                // Not kept alive while the run goes on.
                drop(entry);
                flight.await;
                let period = every
                    .saturating_add(random_up_to(jitter))
                    .clamp(ticker::MIN_PERIOD, ticker::MAX_PERIOD);
                let now = tokio::time::Instant::now();
                // A run longer than its interval is followed by a whole
                // interval of rest, not by runs queued up behind it.
                let next = match started.checked_add(period) {
                    Some(next) if next > now => next,
                    _ => now + period,
                };
                tokio::time::sleep_until(next).await;
            }
        });
    }

    /// The component to report for a run's `result`, after damping: the
    /// run counts into its streak, and the reported status changes only
    /// once the streak reaches its threshold.
    fn settle(
        &self,
        state: &mut State,
        result: CheckResult,
        took: Duration,
        at: Timestamp,
        now: Instant,
    ) -> Arc<Stored> {
        let failing = result.status != Status::Ok;
        let streak = &mut state.streak;
        if streak.count > 0 && streak.failing == failing {
            streak.count = streak.count.saturating_add(1);
        } else {
            *streak = Streak {
                failing,
                count: 1,
                since: Some(now),
            };
        }
        let streak = *streak;
        let damping = self.spec.damping;
        let shown = match state.shown {
            // Nothing was reported yet: the first run shows as it is.
            None => result.status,
            Some(Status::Ok) => {
                let long_enough = damping.max_time_in_error.is_none_or(|least| {
                    streak
                        .since
                        .is_some_and(|since| now.saturating_duration_since(since) >= least)
                });
                if failing && streak.count >= damping.failure_threshold && long_enough {
                    result.status
                } else {
                    Status::Ok
                }
            }
            Some(before) if !failing && streak.count < damping.success_threshold => before,
            Some(_) => result.status,
        };
        let overran = match self.spec.freshness {
            Freshness::Background { every } => took > every,
            Freshness::OnDemand { .. } => false,
        };
        if overran {
            tracing::warn!(
                check = %self.spec.name,
                took_ms = took.as_millis() as u64,
                interval_ms = match self.spec.freshness {
                    Freshness::Background { every } => every.as_millis() as u64,
                    Freshness::OnDemand { .. } => 0,
                },
                "health check ran longer than its interval"
            );
        }
        let last_run = (!damping.is_none() || overran).then(|| LastRun {
            status: result.status,
            error: result.error.clone().map(crate::report::truncate_error),
            consecutive: streak.count,
            overran_interval: overran,
        });
        // Shown as it was before: the failure (or the recovery) is not reported yet.
        let mut result = result;
        if shown != result.status {
            let before = state.last.as_ref().map(|(_, s)| &s.component);
            result.status = shown;
            result.error = match shown {
                Status::Ok => None,
                _ => before.and_then(|c| c.error.clone()),
            };
        }
        state.shown = Some(shown);
        let mut component = Component::from_result(
            result,
            self.spec.component_type.clone(),
            self.spec.critical,
            took,
            at,
        );
        component.last_run = last_run;
        Stored::new(component)
    }

    /// One run: waits for a slot, then the check under its timeout with panics caught.
    async fn run(&self, limit: Option<Arc<Semaphore>>) -> (CheckResult, Duration, Timestamp) {
        let _permit = match limit {
            Some(sem) => sem.acquire_owned().await.ok(),
            None => None,
        };
        let at = Timestamp::now();
        let started = Instant::now();
        let check = Arc::clone(&self.spec.check);
        // The call itself happens inside the guarded future, so a check that
        // panics before returning its future is caught too.
        let result = match guarded::run(async move { check.check().await }, self.spec.timeout).await
        {
            Ok(result) => result,
            Err(Failure::Panicked(message)) => {
                CheckResult::down(format!("check panicked: {message}"))
            }
            Err(timed_out @ Failure::TimedOut(_)) => CheckResult::down(timed_out.to_string()),
        };
        let took = started.elapsed();
        // Slow, though in time: worth a look before it times out.
        if took > self.spec.timeout / 2 && took < self.spec.timeout {
            tracing::warn!(
                check = %self.spec.name,
                took_ms = took.as_millis() as u64,
                timeout_ms = self.spec.timeout.as_millis() as u64,
                "health check used more than half of its timeout"
            );
        }
        // Degraded is working: it counts as having passed for startup gating.
        if result.status <= Status::Degraded {
            self.ever_ok.store(true, Ordering::Relaxed);
        }
        (result, took, at)
    }

    /// The component of a result, with its report member rendered once.
    pub(crate) fn component(
        &self,
        result: CheckResult,
        took: Duration,
        at: Timestamp,
    ) -> Arc<Stored> {
        let component = Component::from_result(
            result,
            self.spec.component_type.clone(),
            self.spec.critical,
            took,
            at,
        );
        Stored::new(component)
    }

    /// The component of a check that could not run: no tokio runtime was
    /// there and none could be started.
    fn unavailable(&self) -> Arc<Stored> {
        self.component(
            CheckResult::down(runtime::UNAVAILABLE),
            Duration::ZERO,
            Timestamp::now(),
        )
    }
}

/// A random duration from zero to `max`.
fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Undoes a state change when dropped before being disarmed.
struct Reset {
    entry: std::sync::Weak<Entry>,
    undo: Option<fn(&mut State)>,
}

impl Reset {
    fn new(entry: &Arc<Entry>, undo: fn(&mut State)) -> Self {
        Self {
            entry: Arc::downgrade(entry),
            undo: Some(undo),
        }
    }

    fn disarm(mut self) {
        self.undo = None;
    }
}

impl Drop for Reset {
    fn drop(&mut self) {
        if let (Some(undo), Some(entry)) = (self.undo.take(), self.entry.upgrade()) {
            let mut state = entry.lock();
            undo(&mut state);
            // A poller gone: boards that counted on it are stale.
            entry.generation.fetch_add(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusLayer;

    /// A check that needs tokio's timers.
    fn sleepy(name: &str) -> HealthCheck {
        HealthCheck::new(name, || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            true
        })
    }

    fn checks(specs: impl IntoIterator<Item = HealthCheck>) -> Checks {
        let mut checks = Checks::default();
        for spec in specs {
            checks.add(spec);
        }
        checks
    }

    /// Each check's status and error, by name.
    fn outcome(results: &[(&str, Arc<Stored>)]) -> Vec<(String, Status, Option<String>)> {
        let mut out: Vec<_> = results
            .iter()
            .map(|(name, s)| {
                let c = &s.component;
                ((*name).to_owned(), c.status, c.error.clone())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn gather_off_a_runtime_runs_checks_on_the_fallback() {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let mut checks = checks([
            sleepy("on-demand"),
            sleepy("background").freshness(Freshness::Background {
                every: Duration::from_millis(10),
            }),
        ]);
        // The deadline's timer needs tokio too.
        checks.deadline = Some(Duration::from_secs(5));
        let (results, waited) =
            futures_executor::block_on(checks.gather(checks.entries.iter(), Instant::now()));
        assert!(waited);
        assert_eq!(
            outcome(&results),
            [
                ("background".to_owned(), Status::Ok, None),
                ("on-demand".to_owned(), Status::Ok, None)
            ]
        );
        // The background check is polled there too.
        let polled = Arc::clone(&checks.entries[1]);
        let first = polled.lock().last.as_ref().map(|(at, _)| *at).unwrap();
        for _ in 0..500 {
            if polled
                .lock()
                .last
                .as_ref()
                .is_some_and(|(at, _)| *at > first)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("the background check was not polled again");
    }

    #[test]
    fn report_off_a_runtime_is_served() {
        let layer = StatusLayer::new()
            .check(sleepy("db"))
            .check(sleepy("queue").freshness(Freshness::Background {
                every: Duration::from_secs(60),
            }))
            .report_deadline(Duration::from_secs(5))
            .section("jobs", || async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                3
            })
            .caller_section("account", |_caller| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                "me"
            })
            .build();
        let report = futures_executor::block_on(layer.report());
        assert_eq!(report.status, Status::Ok, "{report:?}");
        assert_eq!(report.components["db"].status, Status::Ok);
        assert_eq!(report.components["queue"].status, Status::Ok);
        assert_eq!(report.sections["jobs"], 3);
        assert_eq!(report.sections["account"], "me");
    }

    #[tokio::test]
    async fn any_report_deadline_is_valid() {
        let mut checks = checks([sleepy("db")]);
        checks.deadline = Some(Duration::MAX);
        let (results, _) = checks.gather(checks.entries.iter(), Instant::now()).await;
        assert_eq!(outcome(&results), [("db".to_owned(), Status::Ok, None)]);

        let layer = StatusLayer::new()
            .check(sleepy("db"))
            .report_deadline(Duration::MAX)
            .build();
        for _ in 0..2 {
            assert_eq!(layer.report().await.status, Status::Ok);
        }
    }

    #[tokio::test]
    async fn any_timeout_and_stale_bound_are_valid() {
        let checks = checks([sleepy("db")
            .timeout(Duration::MAX)
            .freshness(Freshness::OnDemand {
                ttl: Duration::from_millis(1),
            })
            .serve_stale(Duration::MAX)]);
        let (results, waited) = checks.gather(checks.entries.iter(), Instant::now()).await;
        assert!(waited);
        assert_eq!(outcome(&results), [("db".to_owned(), Status::Ok, None)]);
        // Expired, and within a bound too long to reach: served stale at once.
        let later = Instant::now() + Duration::from_secs(3600);
        let (results, waited) = checks.gather(checks.entries.iter(), later).await;
        assert!(!waited);
        assert_eq!(outcome(&results), [("db".to_owned(), Status::Ok, None)]);
    }

    #[tokio::test]
    async fn any_background_interval_is_valid() {
        let checks = checks([sleepy("db").freshness(Freshness::Background {
            every: Duration::MAX,
        })]);
        for _ in 0..3 {
            let (results, _) = checks.gather(checks.entries.iter(), Instant::now()).await;
            assert_eq!(outcome(&results), [("db".to_owned(), Status::Ok, None)]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // One poller, still there: scheduling its next run did not overflow.
        assert!(checks.entries[0].lock().poller);
    }

    #[tokio::test]
    async fn failures_keep_their_messages() {
        let checks = checks([
            HealthCheck::new("boom", || async {
                panic!("the check exploded");
                #[allow(unreachable_code)]
                true
            }),
            HealthCheck::new("hang", std::future::pending::<bool>)
                .timeout(Duration::from_millis(20)),
        ]);
        let (results, _) = checks.gather(checks.entries.iter(), Instant::now()).await;
        assert_eq!(
            outcome(&results),
            [
                (
                    "boom".to_owned(),
                    Status::Down,
                    Some("check panicked: the check exploded".to_owned())
                ),
                (
                    "hang".to_owned(),
                    Status::Down,
                    Some("timed out after 20 ms".to_owned())
                ),
            ]
        );
    }
}
