//! [`StatusHandle`]: what application code changes at run time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::check::CheckResult;
use crate::report::{Component, Notice, Timestamp};

/// State the handle and the endpoint share.
#[derive(Default)]
pub(crate) struct Lifecycle {
    draining: AtomicBool,
    maintenance: Mutex<Option<Notice>>,
    pushed: Mutex<BTreeMap<String, Component>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while these locks are held; stay usable if something did.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Lifecycle {
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn maintenance(&self) -> Option<Notice> {
        lock(&self.maintenance).clone()
    }

    pub(crate) fn pushed(&self) -> BTreeMap<String, Component> {
        lock(&self.pushed).clone()
    }

    pub(crate) fn pushed_one(&self, name: &str) -> Option<Component> {
        lock(&self.pushed).get(name).cloned()
    }
}

/// Options of a pushed component.
#[derive(Clone, Debug, Default)]
pub struct ComponentOptions {
    component_type: Option<String>,
    noncritical: bool,
}

impl ComponentOptions {
    /// Critical, no type.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Kind of component, for counts by type.
    #[must_use]
    pub fn component_type(mut self, kind: impl Into<String>) -> Self {
        self.component_type = Some(kind.into());
        self
    }

    /// Whether a failure takes the service down (`true`, the default) or only degrades it.
    #[must_use]
    pub fn critical(mut self, critical: bool) -> Self {
        self.noncritical = !critical;
        self
    }
}

/// Changes the status at run time: pushed components, draining, maintenance.
///
/// Cloneable and cheap; every clone acts on the same layer.
///
/// ```
/// use tower_status::{StatusLayer, check::CheckResult, report::Notice};
///
/// let layer = StatusLayer::new();
/// let handle = layer.handle();
///
/// // From a connection-event callback, say:
/// handle.set_component("broker", CheckResult::down("connection lost"));
/// handle.set_component("broker", CheckResult::ok());
///
/// handle.set_maintenance(Notice::new("database upgrade"));
/// handle.clear_maintenance();
///
/// handle.start_draining();
/// assert!(handle.is_draining());
/// ```
#[derive(Clone)]
pub struct StatusHandle {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) counter: Option<Arc<crate::auth::CallerCounter>>,
}

impl std::fmt::Debug for StatusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusHandle")
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl StatusHandle {
    /// Sets a critical component's health directly, without a check.
    pub fn set_component(&self, name: impl Into<String>, result: CheckResult) {
        self.set_component_with(name, result, ComponentOptions::new());
    }

    /// Sets a component's health with options.
    pub fn set_component_with(
        &self,
        name: impl Into<String>,
        result: CheckResult,
        options: ComponentOptions,
    ) {
        let component = Component::from_result(
            result,
            options.component_type,
            !options.noncritical,
            Duration::ZERO,
            Timestamp::now(),
        );
        lock(&self.lifecycle.pushed).insert(name.into(), component);
    }

    /// Removes a pushed component.
    pub fn remove_component(&self, name: &str) {
        lock(&self.lifecycle.pushed).remove(name);
    }

    /// Makes readiness fail (503) while liveness stays 200, so orchestrators
    /// stop sending traffic before shutdown.
    pub fn start_draining(&self) {
        self.lifecycle.draining.store(true, Ordering::Relaxed);
    }

    /// Ends draining.
    pub fn stop_draining(&self) {
        self.lifecycle.draining.store(false, Ordering::Relaxed);
    }

    /// Whether the service is draining.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.lifecycle.draining()
    }

    /// Puts the service in maintenance: the report shows the notice and
    /// its status is `maintenance`.
    pub fn set_maintenance(&self, notice: Notice) {
        *lock(&self.lifecycle.maintenance) = Some(notice);
    }

    /// Ends maintenance.
    pub fn clear_maintenance(&self) {
        *lock(&self.lifecycle.maintenance) = None;
    }

    /// Requests counted for the caller `name` in the current window, and
    /// when the window ends, when the layer counts requests per key
    /// ([`count_requests_per_key`](crate::StatusLayer::count_requests_per_key),
    /// set before taking the handle); for enforcing a limit in the application.
    #[must_use]
    pub fn requests_of(&self, name: &str) -> Option<(u64, std::time::SystemTime)> {
        self.counter.as_ref().map(|c| c.get(name))
    }

    /// The maintenance notice in force.
    #[must_use]
    pub fn maintenance(&self) -> Option<Notice> {
        self.lifecycle.maintenance()
    }

    /// Waits for SIGTERM or ctrl-c, starts draining, then waits `grace` so
    /// orchestrators see readiness fail before the server stops. Made for
    /// `axum::serve(..).with_graceful_shutdown(handle.drain_on_signal(grace))`.
    #[cfg(feature = "signal")]
    pub async fn drain_on_signal(self, grace: Duration) {
        wait_for_signal().await;
        self.start_draining();
        tokio::time::sleep(grace).await;
    }
}

#[cfg(feature = "signal")]
async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
