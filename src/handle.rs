//! [`StatusHandle`]: a built status layer, and what application code does
//! with it at run time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tower_layer::Layer;

use crate::report::{CheckResult, Component, Notice, Report, Timestamp};
use crate::service::StatusService;
use crate::state::{
    collect, subscribe, HistoryReport, Selection, Shared, StatusWatch, TransitionLog,
};

/// A caller's requests in the current counting window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallerRequests {
    /// Requests counted in the window.
    pub count: u64,
    /// When the window ends.
    pub window_ends: SystemTime,
}

/// A built [`StatusLayer`](crate::StatusLayer): serve it (it is a
/// [`Layer`]), and from the same value push component health, drain, set
/// maintenance, subscribe to changes and build reports in code.
///
/// Cloneable and cheap; every clone is the same layer, with one
/// configuration, one recorder and one watcher, so whatever reads it (the
/// endpoint, [`subscribe`](Self::subscribe), the gRPC bridge,
/// [`report`](Self::report)) gives the same answer.
///
/// ```
/// use tower_status::{check::CheckResult, report::Notice, StatusLayer};
///
/// let status = StatusLayer::new().build();
/// // Serve it: `Router::new().layer(status.clone())`.
///
/// // From a connection-event callback, say:
/// status.set_component("broker", CheckResult::down("connection lost"));
/// status.set_component("broker", CheckResult::ok());
///
/// status.set_maintenance(Notice::new("database upgrade"));
/// status.clear_maintenance();
///
/// status.start_draining();
/// assert!(status.is_draining());
/// ```
#[derive(Clone)]
pub struct StatusHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StatusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusHandle")
            .field("path", &self.shared.config.path)
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for StatusHandle {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusService::new(inner, &self.shared)
    }
}

impl StatusHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        // Transitions are seen from the start when built on a runtime.
        crate::state::start(&shared);
        Self { shared }
    }

    #[cfg(feature = "grpc")]
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Whether both handles are the same built layer.
    #[cfg(test)]
    pub(crate) fn same_state(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The normalized status path.
    #[must_use]
    pub fn status_path(&self) -> &str {
        &self.shared.config.path
    }

    /// Subscribes to changes of the overall and component statuses,
    /// evaluated every [`watch_interval`](crate::StatusLayer::watch_interval)
    /// by a task that runs while anyone subscribes. Outside a tokio runtime
    /// nothing evaluates: the watch waits until a subscription made inside
    /// one starts the evaluator.
    #[must_use]
    pub fn subscribe(&self) -> StatusWatch {
        StatusWatch::new(subscribe(&self.shared))
    }

    /// Builds the current report, as `GET` on the status path would for a
    /// caller with every detail (running checks whose cached results are
    /// stale).
    pub async fn report(&self) -> Report {
        collect(
            &self.shared,
            &Selection::all(),
            &crate::auth::Caller::full(),
        )
        .await
    }

    /// The transition log: the latest changes of the overall and each
    /// component's status, flap counts over the last hour, and how the
    /// notifiers' deliveries went, as `/status/transitions` serves it.
    /// Changes are seen by an evaluator that runs every
    /// [`watch_interval`](crate::StatusLayer::watch_interval) from when
    /// the layer is built (or first used) on a tokio runtime.
    #[must_use]
    pub fn transitions(&self) -> TransitionLog {
        self.shared.verdicts.log()
    }

    /// The last day, minute by minute, with uptime and the objectives'
    /// figures, as `/status/history` serves it.
    #[must_use]
    pub fn history(&self) -> HistoryReport {
        self.shared.past.report()
    }

    /// Writes the history to its file now, if
    /// [`history_file`](crate::StatusLayer::history_file) is set (blocking
    /// I/O: call it on graceful shutdown, off the async threads or in
    /// `tokio::task::spawn_blocking`).
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn save_history(&self) -> std::io::Result<()> {
        self.shared.past.save()
    }

    /// The OpenAPI 3.1 document of the status endpoints as configured
    /// (paths, report and error schemas, security schemes when keys are
    /// required), to merge into an API's own document.
    #[must_use]
    pub fn openapi(&self) -> serde_json::Value {
        crate::endpoint::openapi::document(&self.shared.config)
    }

    /// Sets a component's health directly, without a check. Its settings
    /// (type, criticality) are those declared with
    /// [`HealthCheck::pushed`](crate::check::HealthCheck::pushed); a name
    /// not declared is critical, with no type.
    pub fn set_component(&self, name: impl Into<String>, result: CheckResult) {
        let name = name.into();
        let settings = self
            .shared
            .config
            .pushed
            .get(&name)
            .cloned()
            .unwrap_or_default();
        let component = Component::from_result(
            result,
            settings.component_type,
            settings.critical,
            Duration::ZERO,
            Timestamp::now(),
        );
        self.shared.lifecycle.push(name, component);
        self.shared.watcher.wake();
    }

    /// Removes a pushed component.
    pub fn remove_component(&self, name: &str) {
        self.shared.lifecycle.remove(name);
        self.shared.watcher.wake();
    }

    /// Makes readiness fail (503) while liveness stays 200, so orchestrators
    /// stop sending traffic before shutdown.
    pub fn start_draining(&self) {
        self.shared.lifecycle.set_draining(true);
        self.shared.watcher.wake();
    }

    /// Ends draining.
    pub fn stop_draining(&self) {
        self.shared.lifecycle.set_draining(false);
        self.shared.watcher.wake();
    }

    /// Whether the service is draining.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.shared.lifecycle.draining()
    }

    /// Puts the service in maintenance: the report shows the notice and
    /// its status is `maintenance`.
    pub fn set_maintenance(&self, notice: Notice) {
        self.shared.lifecycle.set_maintenance(Some(notice));
        self.shared.watcher.wake();
    }

    /// Ends maintenance.
    pub fn clear_maintenance(&self) {
        self.shared.lifecycle.set_maintenance(None);
        self.shared.watcher.wake();
    }

    /// The maintenance notice in force.
    #[must_use]
    pub fn maintenance(&self) -> Option<Notice> {
        self.shared.lifecycle.maintenance()
    }

    /// Requests counted for the caller `name` in the current window, when
    /// the layer counts requests per key
    /// ([`count_requests_per_key`](crate::StatusLayer::count_requests_per_key));
    /// for enforcing a limit in the application. A caller never seen has a
    /// count of 0.
    #[must_use]
    pub fn requests_of(&self, name: &str) -> Option<CallerRequests> {
        let counter = self.shared.config.access.counter.as_ref()?;
        let (count, window_ends) = counter.get(name);
        Some(CallerRequests { count, window_ends })
    }

    /// Waits for SIGTERM or ctrl-c, starts draining, then waits `grace` so
    /// orchestrators see readiness fail before the server stops, and
    /// writes the history to its file when one is set. Made for
    /// `axum::serve(..).with_graceful_shutdown(status.drain_on_signal(grace))`.
    #[cfg(feature = "signal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "signal")))]
    pub async fn drain_on_signal(self, grace: Duration) {
        wait_for_signal().await;
        self.start_draining();
        tokio::time::sleep(grace).await;
        // The day so far, for the next start (when a history file is set).
        let status = self.clone();
        match tokio::task::spawn_blocking(move || status.save_history()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("could not save the status history: {e}"),
            Err(e) => tracing::warn!("could not save the status history: {e}"),
        }
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
