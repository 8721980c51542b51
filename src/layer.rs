//! [`StatusLayer`]: configuration, and the state every service it builds shares.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::StatusCode;
use tokio::sync::Semaphore;
use tower_layer::Layer;

use crate::auth::{Access, ApiKeys, CallerCounter, Endpoint, Visibility};
use crate::check::{Check, Checks, HealthCheck, TrafficRule};
use crate::format::{ErrorFormat, Format, Formats, Registered};
use crate::handle::{Lifecycle, StatusHandle};
use crate::recorder::Recorder;
use crate::report::{Component, Status};
use crate::section::CallerSection;
use crate::service::StatusService;
use crate::watch::{StatusWatch, Watcher};

/// Environment variable read for the default environment name.
pub const ENVIRONMENT_VAR: &str = "APP_ENV";

/// When the first layer of the process was created: the origin of `uptime`.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Settings fixed when the layer is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) path: String,
    pub(crate) service: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) environment: String,
    pub(crate) checks: Checks,
    pub(crate) traffic_rules: Vec<TrafficRule>,
    /// HTTP status per overall status, indexed by `Status as usize`.
    pub(crate) codes: [StatusCode; 4],
    /// Readiness fails until every critical check has passed once.
    pub(crate) startup_gate: bool,
    pub(crate) access: Access,
    pub(crate) formats: Formats,
    /// Sections computed under the checks' rules.
    pub(crate) sections: Checks,
    pub(crate) caller_sections: CallerSections,
    /// How often watchers' status is evaluated.
    pub(crate) watch_interval: Duration,
    /// Quiet time after which `/status/watch` sends a keep-alive comment.
    pub(crate) watch_keepalive: Duration,
    pub(crate) serve_metrics: bool,
    pub(crate) serve_openapi: bool,
    pub(crate) error_format: Option<Hook<dyn ErrorFormat>>,
    /// Decides the overall status from the components, when not the default rule.
    pub(crate) aggregation: Option<Hook<Aggregation>>,
}

/// User code held by the configuration; shown as `..` in `Debug`.
pub(crate) struct Hook<T: ?Sized>(pub(crate) Arc<T>);

impl<T: ?Sized> Clone for Hook<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::fmt::Debug for Hook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// A custom rule for the overall status.
pub(crate) type Aggregation = dyn Fn(&BTreeMap<String, Component>) -> Status + Send + Sync;

/// Sections that need the caller, by name.
#[derive(Clone, Default)]
pub(crate) struct CallerSections(pub(crate) Vec<(String, CallerSection)>);

impl std::ops::Deref for CallerSections {
    type Target = [(String, CallerSection)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for CallerSections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Config {
    pub(crate) fn code(&self, status: Status) -> StatusCode {
        self.codes[status as usize]
    }
}

/// State shared by every [`StatusService`] a layer builds.
///
/// The recorder is its own `Arc`, so a builder call on a cloned layer
/// changes that layer's settings without splitting the counts.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) started: Instant,
}

/// A [`Layer`] that answers the status path itself and records every other
/// request it passes to the wrapped service.
///
/// All services built from one layer (and its clones) count into one
/// recorder: axum's `Router::layer` builds a service per route, and the
/// report covers them all.
///
/// ```
/// use tower_status::StatusLayer;
///
/// let layer = StatusLayer::new()
///     .path("/health/status")
///     .service_name("billing")
///     .version(tower_status::app_version!())
///     .environment("production");
/// assert_eq!(layer.status_path(), "/health/status");
/// ```
#[derive(Clone)]
pub struct StatusLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StatusLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLayer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Default for StatusLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusLayer {
    /// A layer serving `GET /status`, with the environment taken from
    /// `APP_ENV` (else `development`).
    #[must_use]
    pub fn new() -> Self {
        let environment = std::env::var(ENVIRONMENT_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "development".to_owned());
        Self {
            shared: Arc::new(Shared {
                config: Config {
                    path: "/status".to_owned(),
                    service: None,
                    version: None,
                    environment,
                    checks: Checks::default(),
                    traffic_rules: Vec::new(),
                    codes: [
                        StatusCode::OK,
                        StatusCode::OK,
                        StatusCode::SERVICE_UNAVAILABLE,
                        StatusCode::SERVICE_UNAVAILABLE,
                    ],
                    startup_gate: false,
                    access: Access::default(),
                    formats: Formats::default(),
                    sections: Checks::default(),
                    caller_sections: CallerSections::default(),
                    watch_interval: Duration::from_secs(1),
                    watch_keepalive: Duration::from_secs(15),
                    serve_metrics: false,
                    serve_openapi: false,
                    error_format: None,
                    aggregation: None,
                },
                recorder: Arc::new(Recorder::new()),
                lifecycle: Arc::new(Lifecycle::default()),
                watcher: Arc::new(Watcher::default()),
                started: *PROCESS_START.get_or_init(Instant::now),
            }),
        }
    }

    fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut Arc::make_mut(&mut self.shared).config);
        self
    }

    /// Serves the report at `path` instead of `/status`.
    ///
    /// The path is normalized: a missing leading `/` is added, a trailing
    /// `/` and anything from `?` or `#` on are dropped. Requests match it
    /// with or without a trailing slash, whatever their query string.
    #[must_use]
    pub fn path(self, path: impl AsRef<str>) -> Self {
        let path = normalize_path(path.as_ref());
        self.config(|c| c.path = path)
    }

    /// Names the service in the report (`service`).
    #[must_use]
    pub fn service_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.config(|c| c.service = Some(name))
    }

    /// Sets the version in the report; [`app_version!`](crate::app_version)
    /// gives the application's own `Cargo.toml` version.
    #[must_use]
    pub fn version(self, version: impl Into<String>) -> Self {
        let version = version.into();
        self.config(|c| c.version = Some(version))
    }

    /// Sets the environment name, overriding `APP_ENV`.
    #[must_use]
    pub fn environment(self, environment: impl Into<String>) -> Self {
        let environment = environment.into();
        self.config(|c| c.environment = environment)
    }

    /// Registers a critical check with default settings (2 s timeout,
    /// result cached 1 s). A check of the same name is replaced.
    #[must_use]
    pub fn check(self, name: impl Into<String>, check: impl Check) -> Self {
        self.health_check(HealthCheck::new(name, check))
    }

    /// Registers a check with its settings. A check of the same name is replaced.
    #[must_use]
    pub fn health_check(self, check: HealthCheck) -> Self {
        self.config(|c| c.checks.add(check))
    }

    /// Runs at most `n` checks at once (at least 1); by default all run together.
    #[must_use]
    pub fn max_concurrent_checks(self, n: usize) -> Self {
        self.config(|c| c.checks.limit = Some(Arc::new(Semaphore::new(n.max(1)))))
    }

    /// Answers within `deadline`: checks not finished by then are reported
    /// as timed out (they go on and fill the cache for later requests).
    #[must_use]
    pub fn report_deadline(self, deadline: Duration) -> Self {
        self.config(|c| c.checks.deadline = Some(deadline))
    }

    /// Adds a rule on the recorded traffic; with any rule set, the report
    /// has a critical `traffic` component.
    #[must_use]
    pub fn traffic_rule(self, rule: TrafficRule) -> Self {
        self.config(|c| c.traffic_rules.push(rule))
    }

    /// The HTTP status answered for an overall status (defaults: ok and
    /// degraded 200, down and maintenance 503).
    #[must_use]
    pub fn http_status(self, status: Status, code: StatusCode) -> Self {
        self.config(|c| c.codes[status as usize] = code)
    }

    /// Keeps readiness failing until every critical check has passed once.
    #[must_use]
    pub fn ready_after_startup_checks(self, gate: bool) -> Self {
        self.config(|c| c.startup_gate = gate)
    }

    /// Requires API keys: the report then needs a key (probes stay open)
    /// and only keys with the details permission see details, unless
    /// [`require_key`](Self::require_key) and
    /// [`show_details`](Self::show_details) say otherwise.
    #[must_use]
    pub fn api_keys(self, keys: ApiKeys) -> Self {
        self.config(|c| c.access.keys = Some(keys))
    }

    /// Whether requests to `endpoint` must carry a valid key.
    #[must_use]
    pub fn require_key(self, endpoint: Endpoint, required: bool) -> Self {
        self.config(|c| c.access.set_required(endpoint, required))
    }

    /// Who sees details: component names, errors, versions, traffic.
    /// Anyone else gets only the overall status and timestamp.
    #[must_use]
    pub fn show_details(self, visibility: Visibility) -> Self {
        self.config(|c| c.access.details = Some(visibility))
    }

    /// Counts requests per caller in fixed windows of `window` (an hour,
    /// say): every status request with a valid key, and every passed-through
    /// request carrying one of the keys given in code. The count and the
    /// window's end are in the report's `caller` section. At most
    /// [`MAX_TRACKED_CALLERS`](crate::auth::MAX_TRACKED_CALLERS) callers are tracked.
    #[must_use]
    pub fn count_requests_per_key(self, window: Duration) -> Self {
        self.config(|c| {
            c.access.counter = Some(Arc::new(CallerCounter::new(window)));
            c.access.count_passthrough = true;
        })
    }

    /// Renders the report with `format` unless the request asks for
    /// another (the built-in JSON stays available as `?format=json`).
    #[must_use]
    pub fn default_format(self, format: impl Format) -> Self {
        let format: Arc<dyn Format> = Arc::new(format);
        self.config(|c| c.formats.default = format)
    }

    /// Shapes the endpoint's error bodies (400, 401, 403, 404, 405, 503
    /// from a failed key lookup); by default `{"error", "code"}`.
    #[must_use]
    pub fn error_format(self, format: impl ErrorFormat) -> Self {
        let format: Arc<dyn ErrorFormat> = Arc::new(format);
        self.config(|c| c.error_format = Some(Hook(format)))
    }

    /// Removes the built-in named formats (`json`, `ietf`), so `?format=`
    /// and `Accept` reach only the default and formats registered after
    /// this call: for a contract that must be the only shape served.
    #[must_use]
    pub fn without_builtin_formats(self) -> Self {
        self.config(|c| {
            c.formats.by_name.remove(crate::format::DEFAULT);
            c.formats.by_name.remove("ietf");
        })
    }

    /// Replaces the rule that turns components into the overall status
    /// (by default the worst critical component wins and a failing
    /// non-critical one only degrades; see [`report::aggregate`](crate::report::aggregate)).
    /// Maintenance still wins over the rule. Readiness (which then covers
    /// every component, not only critical ones), watchers and the gRPC
    /// bridge follow it too.
    ///
    /// ```
    /// use tower_status::{report::aggregate, Status, StatusLayer};
    ///
    /// // Down only when every component is down.
    /// let layer = StatusLayer::new().aggregation(|components| {
    ///     if !components.is_empty() && components.values().all(|c| c.status == Status::Down) {
    ///         Status::Down
    ///     } else {
    ///         aggregate(components.values())
    ///     }
    /// });
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn aggregation(
        self,
        rule: impl Fn(&BTreeMap<String, Component>) -> Status + Send + Sync + 'static,
    ) -> Self {
        let rule: Arc<Aggregation> = Arc::new(rule);
        self.config(|c| c.aggregation = Some(Hook(rule)))
    }

    /// Registers `format` under `name` (for `?format=NAME`) and, when
    /// given, the media type that selects it through `Accept`. The
    /// built-in names are `json` and `ietf` (`application/health+json`).
    #[must_use]
    pub fn format(
        self,
        name: impl Into<String>,
        media_type: Option<&str>,
        format: impl Format,
    ) -> Self {
        let registered = Registered {
            media_type: media_type.map(str::to_owned),
            format: Arc::new(format),
        };
        let name = name.into();
        self.config(|c| {
            c.formats.by_name.insert(name, registered);
        })
    }

    /// Adds a custom section: the closure's value (anything `Serialize`)
    /// under `sections.NAME`, computed concurrently with the checks under
    /// the same rules (2 s timeout, cached 1 s, single flight).
    #[must_use]
    pub fn section<F, Fut, V>(self, name: impl Into<String>, section: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = V> + Send + 'static,
        V: serde::Serialize,
    {
        let check = HealthCheck::new(name, crate::section::as_check(section));
        self.config(|c| c.sections.add(check))
    }

    /// Adds a section computed for each request from the caller (its
    /// identity, its request count), under the checks' 2 s timeout.
    #[must_use]
    pub fn caller_section<F, Fut, V>(self, name: impl Into<String>, section: F) -> Self
    where
        F: Fn(crate::auth::Caller) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = V> + Send + 'static,
        V: serde::Serialize,
    {
        let name = name.into();
        let section = crate::section::caller_section(section);
        self.config(|c| {
            c.caller_sections.0.retain(|(n, _)| *n != name);
            c.caller_sections.0.push((name, section));
        })
    }

    /// Serves the report in Prometheus text format at `PATH/metrics`
    /// (off by default; it needs the details permission like components).
    #[must_use]
    pub fn serve_metrics(self, serve: bool) -> Self {
        self.config(|c| c.serve_metrics = serve)
    }

    /// Serves the OpenAPI document of the status endpoints at
    /// `PATH/openapi.json` (off by default; open to everyone, as it holds
    /// no health data).
    #[must_use]
    pub fn serve_openapi(self, serve: bool) -> Self {
        self.config(|c| c.serve_openapi = serve)
    }

    /// The OpenAPI 3.1 document of the status endpoints as configured
    /// (paths, report and error schemas, security schemes when keys are
    /// required), to merge into an API's own document.
    #[must_use]
    pub fn openapi(&self) -> serde_json::Value {
        crate::openapi::document(&self.shared.config)
    }

    /// How often the status is evaluated for watchers (`/status/watch`,
    /// [`subscribe`](Self::subscribe), the gRPC bridge); default 1 s.
    #[must_use]
    pub fn watch_interval(self, every: Duration) -> Self {
        self.config(|c| c.watch_interval = every)
    }

    /// How long `/status/watch` may stay quiet before it sends a keep-alive
    /// comment; default 15 s.
    #[must_use]
    pub fn watch_keepalive(self, every: Duration) -> Self {
        self.config(|c| c.watch_keepalive = every.max(Duration::from_millis(10)))
    }

    /// Subscribes to changes of the overall and component statuses,
    /// evaluated every [`watch_interval`](Self::watch_interval) by a task
    /// that runs while anyone subscribes. Needs a tokio runtime.
    #[must_use]
    pub fn subscribe(&self) -> StatusWatch {
        StatusWatch::new(crate::watch::subscribe(&self.shared))
    }

    /// A handle to push component health, drain and set maintenance.
    #[must_use]
    pub fn handle(&self) -> StatusHandle {
        StatusHandle {
            lifecycle: Arc::clone(&self.shared.lifecycle),
            counter: self.shared.config.access.counter.clone(),
        }
    }

    #[cfg(feature = "grpc")]
    pub(crate) fn config_ref(&self) -> &Config {
        &self.shared.config
    }

    /// The normalized status path.
    #[must_use]
    pub fn status_path(&self) -> &str {
        &self.shared.config.path
    }

    /// Bytes of memory the traffic recorder occupies: fixed when the layer
    /// is created, whatever the traffic.
    #[must_use]
    pub fn recorder_size_bytes(&self) -> usize {
        self.shared.recorder.size_bytes()
    }

    /// Builds the current report, as `GET` on the status path would
    /// (running checks whose cached results are stale).
    pub async fn report(&self) -> crate::Report {
        crate::report::collect(
            &self.shared,
            &crate::report::Selection::all(),
            &crate::auth::Caller::full(),
        )
        .await
    }
}

impl<S> Layer<S> for StatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StatusService::new(inner, Arc::clone(&self.shared))
    }
}

fn normalize_path(raw: &str) -> String {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let trimmed = raw[..end].trim().trim_end_matches('/');
    if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else if trimmed.is_empty() && raw.starts_with('/') {
        "/".to_owned()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize_path("/status"), "/status");
        assert_eq!(normalize_path("status/"), "/status");
        assert_eq!(normalize_path("/v1/status?x=1"), "/v1/status");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path(" /a/b// "), "/a/b");
    }

    #[test]
    fn clones_share_the_recorder() {
        let a = StatusLayer::new();
        let b = a.clone().path("/other");
        assert!(Arc::ptr_eq(&a.shared.recorder, &b.shared.recorder));
        assert_eq!(a.status_path(), "/status");
        assert_eq!(b.status_path(), "/other");
    }
}
