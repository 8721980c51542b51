//! [`StatusLayer`]: the configuration of the status endpoint, built into a
//! [`StatusHandle`] on first use.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::Semaphore;
use tower_layer::Layer;

use crate::auth::{ApiKeys, CallerCounter, Endpoint, Visibility};
use crate::check::{HealthCheck, TrafficRule};
use crate::format::{ErrorFormat, Format, Registered};
use crate::handle::StatusHandle;
use crate::notify::Delivery;
use crate::report::{Component, Status};
use crate::service::StatusService;
use crate::state::{Aggregation, Config, Hook, PushedSettings, Shared};

/// Environment variable read for the default environment name.
pub const ENVIRONMENT_VAR: &str = "APP_ENV";

/// The configuration of the status endpoint, and a [`Layer`] that answers
/// the status path itself and records every other request it passes to the
/// wrapped service.
///
/// Every builder call consumes the layer and returns a new configuration.
/// The first time a configuration is used (by [`Layer::layer`] or
/// [`build`](Self::build)) its state is built: one recorder, one set of
/// check runners, one watcher. Clones of a configuration share that state:
/// axum's `Router::layer` clones the layer for every route, and the report
/// covers them all. A clone changed by a builder call is a new
/// configuration with a state of its own.
///
/// To push components, drain, subscribe to changes or bridge to gRPC
/// health, [`build`](Self::build) the layer into a [`StatusHandle`] and
/// serve that: every consumer then reads the one state that is served.
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
///
/// The sections below are the reference of what the endpoint serves; the
/// [crate documentation](crate) has the same, with whole servers.
///
/// # The endpoint
///
/// Below the status path (`/status` unless set with
/// [`StatusLayer::path`](crate::StatusLayer::path)); a path matches with or
/// without a trailing slash, whatever its query string. Every resource
/// answers `GET` and `HEAD` (the same headers with `Content-Length`, no
/// body); any other method gets `405` with `Allow: GET, HEAD`. "Details"
/// are component names, errors and figures: everyone sees them when no API
/// keys are set, and with keys only callers whose key has the details
/// permission (see [`auth`](crate::auth)).
///
/// | path | answers | access |
/// | --- | --- | --- |
/// | `/status` | the [`Report`](crate::Report) as `application/json`; `application/health+json` (IETF) for `Accept: application/health+json` or `?format=ietf`; any registered format; the HTML status page for a browser (`text/html` preferred over every served format). Callers without details get only `status` and `timestamp`. | a key when keys are set |
/// | `/status/live` | liveness: `{"status":"ok","timestamp":..}`, no check runs | open |
/// | `/status/ready` | readiness: critical checks, draining, startup gating ([`ready_after_startup_checks`](crate::StatusLayer::ready_after_startup_checks)), maintenance; with details a `reason` | open |
/// | `/status/{component}` | one component (a check, run if its cached result is stale; a pushed component; `traffic`) | details |
/// | `/status/watch` | `text/event-stream`: the current status, then every change (components and transitions with details only) | a key when keys are set |
/// | `/status/metrics` | Prometheus text (`text/plain; version=0.0.4`), with [`serve_metrics(true)`](crate::StatusLayer::serve_metrics) | details |
/// | `/status/transitions` | the transition log, flap counts, notifier deliveries ([`StatusHandle::transitions`](crate::StatusHandle::transitions)) | details |
/// | `/status/history` | the last 24 hours minute by minute, uptime, objectives ([`StatusHandle::history`](crate::StatusHandle::history)) | details |
/// | `/status/badge.svg` | an SVG badge of the overall status | a key when keys are set |
/// | `/status/badge/uptime.svg` | an SVG badge of the 24-hour uptime | a key when keys are set |
/// | `/status/openapi.json` | the OpenAPI 3.1 document of all of these, with [`serve_openapi(true)`](crate::StatusLayer::serve_openapi) | open |
///
/// Any other path below the status path gets `404`. A resource that is off
/// (metrics, OpenAPI) is taken as a component name. With a status path of
/// `/`, only the report is the endpoint's. "A key when keys are set" and
/// "open" are the defaults; [`StatusLayer::require_key`](crate::StatusLayer::require_key)
/// changes them.
///
/// ## Query parameters
///
/// | parameter | on | effect |
/// | --- | --- | --- |
/// | `format=NAME` | `/status` | the format registered as `NAME` (`json` and `ietf` are built in; [`StatusLayer::format`](crate::StatusLayer::format) adds others); an unknown name gets `400`. Without it, `Accept` chooses. |
/// | `exclude=a,b` | `/status`, `/status/ready` | leaves those components out (neither run nor counted); repeated or comma-separated; only for callers with details |
/// | `verbose` | `/status/ready` | adds the components to the answer (callers with details only); any value but `0` or `false` turns it on |
///
/// Every pair of the query reaches custom formats
/// ([`FormatContext`](crate::format::FormatContext)).
///
/// ## Status codes
///
/// | code | when |
/// | --- | --- |
/// | `200` | the report, `/status/ready` and a component while `ok` or `degraded`; `/status/live`; every other resource |
/// | `503` | the report and `/status/ready` while `down` or in `maintenance` (readiness also while draining or starting); a component that is `down`; an API key lookup that failed or timed out |
/// | `429` | `degraded`, on a probe whose [`ConsumerSignals`](crate::format::ConsumerSignals) say `degraded_as_429` (Consul's warning) |
/// | `400` | `?format=` names no served format |
/// | `401` | a key is required and missing, or a key is sent that is unknown or malformed (on the report even when it is open to callers without a key: only open probes ignore such keys), or details need a key |
/// | `403` | the key may not see the status, or not details; details are never shown ([`Visibility::Never`](crate::auth::Visibility::Never)) |
/// | `404` | no component of that name, or an unknown path below the status path |
/// | `405` | a method other than `GET` or `HEAD` |
///
/// [`StatusLayer::http_status`](crate::StatusLayer::http_status) changes the
/// code of each overall status (defaults: `ok` and `degraded` 200, `down` and
/// `maintenance` 503) for the report and the probes. Error bodies are
/// `{"error": "...", "code": "..."}` (`unknown_format`, `unauthorized`,
/// `forbidden`, `auth_unavailable`, `not_found`, `method_not_allowed`);
/// [`StatusLayer::error_format`](crate::StatusLayer::error_format) reshapes
/// them.
///
/// ## Headers
///
/// - `Cache-Control: no-store` on every answer, but the badges:
///   `max-age=60, s-maxage=60` (status) and `max-age=300, s-maxage=300`
///   (uptime), for badge proxies. A custom format may set its own.
/// - `Retry-After: SECONDS` on a `503` of the report or `/status/ready` during
///   maintenance whose [`Notice`](crate::report::Notice) has an
///   `estimated_completion`.
/// - `WWW-Authenticate: Bearer realm="status"` on a `401` when keys are
///   accepted as `Authorization: Bearer`.
/// - `Allow: GET, HEAD` on a `405`.
/// - `Vary: Accept` on the HTML page, which also has a strict
///   `Content-Security-Policy`, `X-Content-Type-Options: nosniff` and
///   `Referrer-Policy: no-referrer` (the badges have a CSP and `nosniff` too).
/// - Consumer signals, off by default, per probe (report, live, ready,
///   component) with [`StatusLayer::consumer_signals`](crate::StatusLayer::consumer_signals):
///   `x-envoy-degraded: true` on `degraded` answers (Envoy),
///   `x-load-balancing-endpoint-weight: 0..=1000` (Google Cloud's weighted
///   load balancing; 0 when down, in maintenance or draining), and the `429`
///   above.
/// - Requests: the API key in `X-Api-Key` (another header with
///   [`ApiKeys::header`](crate::auth::ApiKeys::header)) or
///   `Authorization: Bearer KEY`; `Accept` for the format.
///
/// ## Prometheus
///
/// [`serve_metrics(true)`](crate::StatusLayer::serve_metrics) serves
/// `/status/metrics`. It is made of details: with API keys set, the scraper
/// needs a key with the details permission (sent as a Bearer token, the
/// `authorization` setting of a Prometheus scrape config), and a wrong key
/// gets `401`.
///
/// # Testing your app
///
/// Drive the app with [`tower::ServiceExt::oneshot`](https://docs.rs/tower/latest/tower/trait.ServiceExt.html#method.oneshot)
/// and read what the layer recorded with
/// [`StatusHandle::report`](crate::StatusHandle::report). Two things to know:
///
/// - **Read the response body to its end.** A request is counted when its
///   response body finishes. A response dropped unread counts as `aborted`,
///   not `2xx` (and its time until the drop goes into the latency). Collect
///   the body with `http_body_util::BodyExt::collect`.
/// - **Check results are cached.** An on-demand check's result is served for
///   1 s by default, so a dependency stopped in a test shows as down only
///   after that. Give the check
///   [`Freshness::OnDemand { ttl: Duration::ZERO }`](crate::check::Freshness::OnDemand)
///   with [`HealthCheck::freshness`](crate::check::HealthCheck::freshness) to
///   run it on every report. A background check shows a change after its
///   next run, and [`failure_threshold(n)`](crate::check::HealthCheck::failure_threshold)
///   after `n` failed runs.
///
/// ```
/// use std::time::Duration;
///
/// use axum::{body::Body, http::Request, routing::get, Router};
/// use http_body_util::BodyExt; // for `collect`
/// use tower::ServiceExt; // for `oneshot`
/// use tower_status::check::{Freshness, HealthCheck};
/// use tower_status::{Status, StatusLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let status = StatusLayer::new()
///     .check(
///         HealthCheck::new("db", || async { true })
///             // no cache: every report runs the check
///             .freshness(Freshness::OnDemand { ttl: Duration::ZERO }),
///     )
///     .build();
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(status.clone());
///
/// let response = app
///     .oneshot(Request::get("/").body(Body::empty()).unwrap())
///     .await
///     .unwrap();
/// // Read the body to its end: only then is the request counted as 2xx.
/// let body = response.into_body().collect().await.unwrap().to_bytes();
/// assert_eq!(body, "hello");
///
/// let report = status.report().await;
/// assert_eq!(report.status, Status::Ok);
/// assert_eq!(report.requests.by_class.get("2xx"), Some(&1));
/// assert_eq!(report.requests.aborted, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct StatusLayer {
    config: Arc<Config>,
    /// The state built from exactly this configuration, shared by every
    /// clone that has not changed it since: made on first use.
    built: Arc<OnceLock<StatusHandle>>,
}

impl std::fmt::Debug for StatusLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLayer")
            .field("config", &self.config)
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
            config: Arc::new(Config::new(environment)),
            built: Arc::default(),
        }
    }

    /// A new configuration: a builder call never changes a layer that is
    /// already built (or a clone of it), it makes another.
    fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self.built = Arc::default();
        self
    }

    /// Finishes the configuration: the [`StatusHandle`] that serves it
    /// (it is a [`Layer`] too), pushes components, drains, subscribes to
    /// changes, builds reports in code and feeds the gRPC bridge, all from
    /// this one configuration. Clones of this layer that were not changed
    /// since build the same state: the same handle.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use tower_status::{check::HealthCheck, StatusLayer};
    ///
    /// let status = StatusLayer::new()
    ///     .check(HealthCheck::new("db", || async { true }))
    ///     .build();
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "hello" }))
    ///     .layer(status.clone());
    /// status.start_draining();
    /// # let _ = app;
    /// ```
    ///
    /// A builder call after `build` does not compile, so nothing can watch
    /// a configuration other than the one served:
    ///
    /// ```compile_fail,E0599
    /// use tower_status::{check::HealthCheck, StatusLayer};
    ///
    /// let status = StatusLayer::new().build();
    /// let status = status.check(HealthCheck::new("db", || async { true }));
    /// ```
    #[must_use]
    pub fn build(self) -> StatusHandle {
        self.built
            .get_or_init(|| StatusHandle::new(Shared::new(&self.config)))
            .clone()
    }

    /// Serves the report at `path` instead of `/status`.
    ///
    /// The path is normalized: a missing leading `/` is added, trailing
    /// `/` are dropped. Requests match it with or without a trailing
    /// slash, whatever their query string.
    ///
    /// # Panics
    ///
    /// When the path is empty (use `"/"` for the root), has a query or a
    /// fragment, or is not a valid URI path.
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

    /// Registers a check with its settings ([`HealthCheck::new`] gives the
    /// defaults: critical, 2 s timeout, result cached 1 s). A check of the
    /// same name is replaced.
    ///
    /// ```
    /// use tower_status::{check::HealthCheck, StatusLayer};
    ///
    /// let layer = StatusLayer::new()
    ///     .check(HealthCheck::new("db", || async { true }))
    ///     .check(HealthCheck::new("search", || async { true }).critical(false));
    /// # let _ = layer;
    /// ```
    ///
    /// [`HealthCheck::pushed`] declares a component whose health the
    /// application pushes instead.
    #[must_use]
    pub fn check(self, check: HealthCheck) -> Self {
        self.config(|c| {
            if check.pushed {
                c.pushed.insert(
                    check.name,
                    PushedSettings {
                        component_type: check.component_type,
                        critical: check.critical,
                        depends_on: check.depends_on,
                    },
                );
            } else {
                c.pushed.remove(&check.name);
                c.checks.add(check);
            }
        })
    }

    /// Runs at most `n` checks at once; by default all run together.
    ///
    /// # Panics
    ///
    /// When `n` is 0 (no check could ever run).
    #[must_use]
    pub fn max_concurrent_checks(self, n: usize) -> Self {
        assert!(
            n > 0,
            "StatusLayer::max_concurrent_checks: must be at least 1 (no check could run)"
        );
        self.config(|c| {
            c.checks.limit = Some(Arc::new(Semaphore::new(n)));
            c.checks.limit_permits = n;
        })
    }

    /// Answers within `deadline`: checks not finished by then are reported
    /// as timed out (they go on and fill the cache for later requests).
    /// Any length is valid (`Duration::MAX` never cuts a check short).
    ///
    /// # Panics
    ///
    /// When `deadline` is zero (every check not cached would time out).
    #[must_use]
    pub fn report_deadline(self, deadline: Duration) -> Self {
        assert!(
            !deadline.is_zero(),
            "StatusLayer::report_deadline: must be greater than zero"
        );
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
    ///
    /// # Panics
    ///
    /// When `window` is shorter than a second (windows are whole seconds).
    #[must_use]
    pub fn count_requests_per_key(self, window: Duration) -> Self {
        assert!(
            window >= Duration::from_secs(1),
            "StatusLayer::count_requests_per_key: the window must be at least one second, got {window:?}"
        );
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

    /// Whether the built-in named formats (`json`, `ietf`) are served
    /// (default `true`). With `false`, `?format=` and `Accept` reach only
    /// the default and the formats the application registers, in whatever
    /// order the calls come: for a contract that must be the only shape
    /// served.
    #[must_use]
    pub fn serve_builtin_formats(self, serve: bool) -> Self {
        self.config(|c| c.builtin_formats = serve)
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
    ///
    /// # Panics
    ///
    /// When `media_type` is not a media type (`type/subtype`), since no
    /// `Accept` header could ever select it.
    #[must_use]
    pub fn format(
        self,
        name: impl Into<String>,
        media_type: Option<&str>,
        format: impl Format,
    ) -> Self {
        let name = name.into();
        if let Some(media_type) = media_type {
            assert!(
                crate::format::Formats::is_media_type(media_type),
                "StatusLayer::format: {media_type:?} for format `{name}` is not a media type (type/subtype)"
            );
        }
        let registered = Registered {
            media_type: media_type.map(str::to_owned),
            format: Arc::new(format),
            builtin: false,
        };
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
        let check = HealthCheck::new(name, crate::state::section::as_check(section));
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
        let section = crate::state::section::caller_section(section);
        self.config(|c| {
            c.caller_sections.0.retain(|(n, _)| *n != name);
            c.caller_sections.0.push((name, section));
        })
    }

    /// Serves the report in Prometheus text format at `PATH/metrics`
    /// (off by default; it needs the details permission like components,
    /// or a scraper's key with
    /// [`Permissions::METRICS`](crate::auth::Permissions::METRICS), which
    /// opens the metrics and nothing else).
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

    /// How often the status is evaluated for watchers (`/status/watch`,
    /// [`StatusHandle::subscribe`], the gRPC bridge); default 1 s.
    ///
    /// # Panics
    ///
    /// When `every` is shorter than 10 ms (a busy loop of reports).
    #[must_use]
    pub fn watch_interval(self, every: Duration) -> Self {
        assert!(
            every >= Duration::from_millis(10),
            "StatusLayer::watch_interval: must be at least 10 ms, got {every:?}"
        );
        self.config(|c| c.watch_interval = every)
    }

    /// How long `/status/watch` may stay quiet before it sends a keep-alive
    /// comment; default 15 s.
    ///
    /// # Panics
    ///
    /// When `every` is shorter than 10 ms.
    #[must_use]
    pub fn watch_keepalive(self, every: Duration) -> Self {
        assert!(
            every >= Duration::from_millis(10),
            "StatusLayer::watch_keepalive: must be at least 10 ms, got {every:?}"
        );
        self.config(|c| c.watch_keepalive = every)
    }

    /// Announces every change of the status to `delivery`'s notifier (see
    /// [`notify`](crate::notify)); call it once per notifier. Each gets its
    /// own queue, delivered from a task: nothing waits for it.
    ///
    /// ```
    /// # #[cfg(feature = "webhook")] {
    /// use tower_status::notify::{Delivery, WebhookNotifier};
    /// use tower_status::StatusLayer;
    ///
    /// let webhook = WebhookNotifier::new("http://127.0.0.1:9000/hooks/status").unwrap();
    /// let layer = StatusLayer::new().notify(Delivery::to("webhook", webhook));
    /// # let _ = layer; }
    /// ```
    ///
    /// # Panics
    ///
    /// When a notifier of the same name is already registered.
    #[must_use]
    pub fn notify(self, delivery: Delivery) -> Self {
        assert!(
            !self
                .config
                .deliveries
                .iter()
                .any(|d| d.name == delivery.name),
            "StatusLayer::notify: a notifier named `{}` is already registered",
            delivery.name
        );
        self.config(|c| c.deliveries.push(delivery))
    }

    /// Keeps the history (`/status/history`, the page's uptime bars) in
    /// `path` across restarts: read when the layer is built, written
    /// atomically about once a minute and by
    /// [`StatusHandle::save_history`] (call it on graceful shutdown). A
    /// missing file starts an empty history; a file that is corrupt,
    /// truncated, not a history or from a newer version is reported once
    /// (a `tracing` warning naming it and why), moved aside to
    /// `PATH.corrupt-<unix time>`, and the history starts empty.
    #[must_use]
    pub fn history_file(self, path: impl Into<std::path::PathBuf>) -> Self {
        let path = path.into();
        self.config(|c| c.history_file = Some(path))
    }

    /// A service level objective on the wrapped service's own traffic
    /// ([`Objective::availability`](crate::history::Objective::availability)
    /// or [`Objective::latency`](crate::history::Objective::latency)): its
    /// error budget left over the last day and its burn rates over 5 min,
    /// 30 min, 1 h and 6 h are in `/status/history`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_status::history::Objective;
    /// use tower_status::StatusLayer;
    ///
    /// let layer = StatusLayer::new()
    ///     .objective(Objective::availability(0.999))
    ///     .objective(Objective::latency(Duration::from_millis(300), 0.99));
    /// # let _ = layer;
    /// ```
    ///
    /// # Panics
    ///
    /// When an objective of the same name is already set, or a second
    /// latency objective has another threshold (one threshold is counted
    /// per minute).
    #[must_use]
    pub fn objective(self, objective: crate::history::Objective) -> Self {
        assert!(
            !self
                .config
                .objectives
                .iter()
                .any(|o| o.name() == objective.name()),
            "StatusLayer::objective: an objective named `{}` is already set",
            objective.name()
        );
        if let Some(threshold) = objective.latency_threshold() {
            let other = self
                .config
                .objectives
                .iter()
                .filter_map(|o| o.latency_threshold())
                .find(|t| *t != threshold);
            assert!(
                other.is_none(),
                "StatusLayer::objective: latency objectives must share one threshold ({other:?} and {threshold:?})"
            );
        }
        self.config(|c| c.objectives.push(objective))
    }

    /// How many transitions the log keeps (`/status/transitions`, the
    /// newest last); default 256. Older ones are dropped first.
    ///
    /// # Panics
    ///
    /// When `capacity` is zero.
    #[must_use]
    pub fn transition_log_capacity(self, capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "StatusLayer::transition_log_capacity: must be at least 1"
        );
        self.config(|c| c.transition_capacity = capacity)
    }

    /// The normalized status path.
    #[must_use]
    pub fn status_path(&self) -> &str {
        &self.config.path
    }

    /// Adds `signals` to the answers of each of `probes` (replacing what
    /// an earlier call set for them): `429` for `degraded` (Consul's
    /// warning), `x-envoy-degraded` on `degraded` answers (Envoy), and a
    /// load-balancing weight from the recorded traffic (Google Cloud's
    /// `x-load-balancing-endpoint-weight`). Without it, no probe has any.
    /// See [`ConsumerSignals`](crate::format::ConsumerSignals).
    ///
    /// ```
    /// use tower_status::format::{ConsumerSignals, Probe};
    /// use tower_status::StatusLayer;
    ///
    /// let layer = StatusLayer::new().consumer_signals(
    ///     [Probe::Report, Probe::Ready],
    ///     ConsumerSignals::new().degraded_as_429(true).load_balancing_weight(true),
    /// );
    /// # let _ = layer;
    /// ```
    #[must_use]
    pub fn consumer_signals(
        self,
        probes: impl IntoIterator<Item = crate::format::Probe>,
        signals: crate::format::ConsumerSignals,
    ) -> Self {
        self.config(|c| {
            for probe in probes {
                c.consumer_signals.set(probe, signals);
            }
        })
    }
}

/// Built on first use, once for this configuration and its unchanged
/// clones (axum clones a layer for every route): they all count into one
/// recorder and serve one state.
impl<S> Layer<S> for StatusLayer {
    type Service = StatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let handle = self
            .built
            .get_or_init(|| StatusHandle::new(Shared::new(&self.config)));
        handle.layer(inner)
    }
}

/// The status path, normalized: a leading `/` added, trailing ones dropped.
///
/// # Panics
///
/// When the path is empty or not a valid URI path (a query, a fragment,
/// spaces), naming the setting.
fn normalize_path(raw: &str) -> String {
    let setting = "StatusLayer::path";
    assert!(
        !raw.trim().is_empty(),
        "{setting}: the status path is empty; use \"/\" to serve the report at the root"
    );
    assert!(
        !raw.contains(['?', '#']),
        "{setting}: {raw:?} has a query or fragment; give the path alone"
    );
    let with_slash = if raw.starts_with('/') {
        raw.to_owned()
    } else {
        format!("/{raw}")
    };
    assert!(
        with_slash.parse::<http::uri::PathAndQuery>().is_ok() && !with_slash.contains(' '),
        "{setting}: {raw:?} is not a valid URI path"
    );
    let trimmed = with_slash.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize_path("/status"), "/status");
        assert_eq!(normalize_path("status/"), "/status");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a/b//"), "/a/b");
    }

    #[test]
    fn bad_paths_fail_loudly_naming_the_setting() {
        for bad in ["", "  ", "/v1/status?x=1", "/a#b", "/a b"] {
            let err = std::panic::catch_unwind(|| normalize_path(bad)).unwrap_err();
            let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(text.contains("StatusLayer::path"), "{bad:?}: {text}");
        }
    }

    #[test]
    fn clones_share_a_state_until_changed() {
        let a = StatusLayer::new();
        let same = a.clone();
        let b = a.clone().path("/other");
        let (ha, hsame, hb) = (a.build(), same.build(), b.build());
        assert!(ha.same_state(&hsame));
        assert!(!ha.same_state(&hb));
        assert_eq!(ha.status_path(), "/status");
        assert_eq!(hb.status_path(), "/other");
    }
}
