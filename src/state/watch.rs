//! Watching the status: a background evaluator that publishes every change
//! of the overall or a component's status, for Server-Sent Events at
//! `/status/watch`, the gRPC health bridge, and [`StatusWatch`] in code.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Selection, Shared};
use crate::auth::Caller;
use crate::report::Status;
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
}

/// The evaluator of one layer: started by the first subscriber, stopped
/// when the last one goes.
pub(crate) struct Watcher {
    tx: watch::Sender<Option<StatusChange>>,
    running: AtomicBool,
}

impl Default for Watcher {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(None),
            running: AtomicBool::new(false),
        }
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
/// evaluator (every `watch_interval`) when it is not running. Needs a tokio
/// runtime: outside one, the receiver waits for an evaluator that a
/// subscription inside one starts.
pub(crate) fn subscribe(shared: &Arc<Shared>) -> watch::Receiver<Option<StatusChange>> {
    let watcher = &shared.watcher;
    let rx = watcher.tx.subscribe();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        if !watcher.running.swap(true, Ordering::SeqCst) {
            let running = Running {
                watcher: Arc::clone(watcher),
                armed: true,
            };
            let every = shared.config.watch_interval;
            ticker::spawn(&rt, every, Arc::downgrade(shared), evaluator(running));
        }
    }
    rx
}

/// One evaluation per tick while anyone subscribes; the evaluator stops
/// (and `running` is cleared, by the guard it owns) when nobody does.
fn evaluator(
    mut running: Running,
) -> impl FnMut(Arc<Shared>) -> BoxFuture<'static, ControlFlow<()>> + Send + 'static {
    move |shared| {
        let go_on = if running.watcher.tx.receiver_count() == 0 {
            running.stop();
            // A subscriber that came between the count and the stop saw
            // `running` still set and started nothing: go on for it.
            let watcher = &running.watcher;
            let rearm =
                watcher.tx.receiver_count() > 0 && !watcher.running.swap(true, Ordering::SeqCst);
            running.armed = rearm;
            rearm
        } else {
            true
        };
        let watcher = Arc::clone(&running.watcher);
        Box::pin(async move {
            if !go_on {
                return ControlFlow::Break(());
            }
            let report = super::collect(&shared, &Selection::all(), &Caller::full()).await;
            let change = StatusChange {
                status: report.status,
                components: report
                    .components
                    .iter()
                    .map(|(name, c)| (name.clone(), c.status))
                    .collect(),
                draining: report.draining,
            };
            watcher.tx.send_if_modified(|current| {
                if current.as_ref() == Some(&change) {
                    false
                } else {
                    *current = Some(change);
                    true
                }
            });
            ControlFlow::Continue(())
        })
    }
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
}

impl StatusWatch {
    pub(crate) fn new(mut rx: watch::Receiver<Option<StatusChange>>) -> Self {
        // The current status, once known, is the first answer.
        rx.mark_changed();
        Self { rx }
    }

    /// The next status that differs from the last one returned (the first
    /// call returns the current status as soon as it is known); `None` once
    /// the layer is gone.
    pub async fn changed(&mut self) -> Option<StatusChange> {
        loop {
            self.rx.changed().await.ok()?;
            if let Some(change) = self.rx.borrow_and_update().clone() {
                return Some(change);
            }
        }
    }
}
