//! Watching the status: a background evaluator that publishes every change
//! of the overall or a component's status, for Server-Sent Events at
//! `/status/watch`, the gRPC health bridge, and [`StatusWatch`] in code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio::time::MissedTickBehavior;

use super::{Selection, Shared};
use crate::auth::Caller;
use crate::report::{Status, Transition};
use crate::ticker;

/// The overall status and each component's, as watchers see them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct StatusChange {
    /// Overall status.
    pub status: Status,
    /// Each component's own status (left out for callers without details).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, Status>,
    /// The service is draining ([`StatusHandle::start_draining`](crate::StatusHandle::start_draining)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// The transitions that made this change (left out for callers
    /// without details, but for the overall one): the complete log is at
    /// [`StatusHandle::transitions`](crate::StatusHandle::transitions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<Transition>,
}

impl StatusChange {
    /// The same statuses, whatever the transitions.
    pub(crate) fn same_status(&self, other: &StatusChange) -> bool {
        self.status == other.status
            && self.components == other.components
            && self.draining == other.draining
    }
}

/// The evaluator of one layer: started when the layer is built (or first
/// used) on a tokio runtime, it runs until the layer is gone.
pub(crate) struct Watcher {
    tx: watch::Sender<Option<StatusChange>>,
    running: AtomicBool,
    /// Asks for an evaluation now: a new subscriber, a pushed component,
    /// draining or maintenance changed.
    wake: Notify,
}

impl Default for Watcher {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(None),
            running: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }
}

impl Watcher {
    /// Evaluates at once rather than at the next tick.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Clears `running` and the last value if the evaluator is cancelled (its
/// runtime shut down, or the layer gone); a normal stop does the same.
struct Running {
    watcher: Arc<Watcher>,
    /// This evaluator owns `running`.
    armed: bool,
}

impl Running {
    /// Stops: a later subscriber must not be handed a stale status, and
    /// must find nothing running so it starts a new evaluator.
    fn stop(&mut self) {
        if self.armed {
            self.armed = false;
            self.watcher.tx.send_replace(None);
            self.watcher.running.store(false, Ordering::SeqCst);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Subscribes to the status of the layer behind `shared`, starting the
/// evaluator when it is not running (and evaluating at once when it is).
/// Needs a tokio runtime: outside one, the receiver waits for an
/// evaluator started inside one.
pub(crate) fn subscribe(shared: &Arc<Shared>) -> watch::Receiver<Option<StatusChange>> {
    let rx = shared.watcher.tx.subscribe();
    start(shared);
    shared.watcher.wake();
    rx
}

/// Starts the evaluator of the layer behind `shared` on the current tokio
/// runtime, unless it runs (or there is no runtime): it then evaluates
/// every `watch_interval`, and when woken, for as long as the layer lives.
pub(crate) fn start(shared: &Arc<Shared>) {
    let watcher = &shared.watcher;
    if watcher.running.load(Ordering::Relaxed) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if watcher.running.swap(true, Ordering::SeqCst) {
        return;
    }
    let running = Running {
        watcher: Arc::clone(watcher),
        armed: true,
    };
    let period = shared
        .config
        .watch_interval
        .clamp(ticker::MIN_PERIOD, ticker::MAX_PERIOD);
    let owner = Arc::downgrade(shared);
    rt.spawn(async move {
        let watcher = &running.watcher;
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            {
                let tick = std::pin::pin!(interval.tick());
                let woken = std::pin::pin!(watcher.wake.notified());
                futures_util::future::select(tick, woken).await;
            }
            // Ends with the layer: no strong reference is kept in between.
            let Some(shared) = owner.upgrade() else { break };
            evaluate(&shared, watcher).await;
        }
    });
}

/// One evaluation. With subscribers, checks whose results are not fresh
/// run (as for a report), and every change is published; with none, no
/// check is run for it: the results the checks' own schedules and the
/// status requests produce are observed, for the transition log and the
/// notifiers, and nothing is published (a later subscriber must not be
/// handed a status nobody checked).
async fn evaluate(shared: &Shared, watcher: &Watcher) {
    let subscribed = watcher.tx.receiver_count() > 0;
    let report = super::collect(shared, &Selection::verdict(subscribed), &Caller::full()).await;
    // Until every check has a first result the overall status is not known yet.
    let complete = shared
        .config
        .checks
        .entries
        .iter()
        .all(|e| report.components.contains_key(&e.spec.name));
    let transitions = shared.verdicts.observe(&report, complete);
    shared.past.observe(&report, complete, &shared.recorder);
    if let Some((path, bytes)) = shared.past.due() {
        super::save_in_background(path, bytes);
    }
    if !subscribed {
        watcher
            .tx
            .send_if_modified(|current| current.take().is_some());
        return;
    }
    let change = StatusChange {
        status: report.status,
        components: report
            .components
            .iter()
            .map(|(name, c)| (name.clone(), c.status))
            .collect(),
        draining: report.draining,
        transitions,
    };
    watcher.tx.send_if_modified(|current| {
        if current.as_ref().is_some_and(|c| c.same_status(&change)) {
            false
        } else {
            *current = Some(change);
            true
        }
    });
}

/// A subscription to status changes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_status::{check::HealthCheck, Status, StatusLayer};
///
/// let status = StatusLayer::new().check(HealthCheck::new("db", || async { true })).build();
/// let mut watch = status.subscribe();
/// let first = watch.changed().await.unwrap();
/// assert_eq!(first.status, Status::Ok);
/// # });
/// ```
#[derive(Debug)]
pub struct StatusWatch {
    rx: watch::Receiver<Option<StatusChange>>,
    /// Nothing returned yet.
    first: bool,
}

impl StatusWatch {
    pub(crate) fn new(mut rx: watch::Receiver<Option<StatusChange>>) -> Self {
        // The current status, once known, is the first answer.
        rx.mark_changed();
        Self { rx, first: true }
    }

    /// The next status that differs from the last one returned (the first
    /// call returns the current status as soon as it is known); `None` once
    /// the layer is gone.
    pub async fn changed(&mut self) -> Option<StatusChange> {
        loop {
            self.rx.changed().await.ok()?;
            if let Some(mut change) = self.rx.borrow_and_update().clone() {
                if std::mem::take(&mut self.first) {
                    // The changes that led to the current status came before this watch.
                    change.transitions.clear();
                }
                return Some(change);
            }
        }
    }
}
