//! A [tower] layer that gives any HTTP service (axum, tonic, plain hyper) a
//! production-grade status endpoint, and records the live traffic of the
//! service it wraps on every request at a cost of a few tens of nanoseconds.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_status::StatusLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(StatusLayer::new().service_name("my-api").version(tower_status::app_version!()));
//! ```
//!
//! `GET /status` (and `HEAD`) is answered by the layer itself, without
//! calling the wrapped service; any other method there gets `405` with
//! `Allow: GET, HEAD`. Every other request passes through untouched and is
//! recorded: counts by status class, errors, aborts, in-flight requests and
//! a latency histogram, since start and over the last minute. See
//! [`Report`] for every field.
//!
//! To push component health, drain, subscribe to changes or bridge to
//! gRPC health, [`build`](StatusLayer::build) the layer into a
//! [`StatusHandle`] and serve that: every consumer then reads the one
//! configuration that is served.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower_status::{check::HealthCheck, StatusLayer};
//!
//! let status = StatusLayer::new()
//!     .check(HealthCheck::new("db", || async { true }))
//!     .build();
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(status.clone());
//! status.start_draining(); // on shutdown, say
//! # let _ = app;
//! ```
//!
//! # A whole server
//!
//! With `axum` and `tokio` (features `macros`, `rt-multi-thread`, `net`) in
//! the application's dependencies:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tower_status::check::{HealthCheck, TcpCheck};
//! use tower_status::StatusLayer;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let status = StatusLayer::new()
//!         .service_name(tower_status::app_name!())
//!         .version(tower_status::app_version!())
//!         // `down` (HTTP 503) until something listens on port 5432
//!         .check(HealthCheck::new("db", TcpCheck::new("127.0.0.1:5432")))
//!         .build();
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .layer(status.clone()); // after the routes: every route is counted
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! With tonic, and the `grpc` feature's bridge to `tonic-health` (0.14), so
//! `grpc.health.v1.Health` answers what `/status` answers:
//!
//! ```no_run
//! # #[cfg(feature = "grpc")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tonic::transport::Server;
//! use tower_status::{grpc::HealthBridge, StatusLayer};
//!
//! let (reporter, health_service) = tonic_health::server::health_reporter();
//! let status = StatusLayer::new().service_name("greeter").build();
//! HealthBridge::new(reporter).spawn(&status);
//! Server::builder()
//!     .accept_http1(true) // so curl and load balancers can GET /status over HTTP/1.1
//!     .layer(status)
//!     .add_service(health_service)
//!     .serve("127.0.0.1:3000".parse()?)
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The endpoint
//!
//! Below the status path (`/status` unless set with
//! [`StatusLayer::path`]); a path matches with or
//! without a trailing slash, whatever its query string. Every resource
//! answers `GET` and `HEAD` (the same headers with `Content-Length`, no
//! body); any other method gets `405` with `Allow: GET, HEAD`. "Details"
//! are component names, errors and figures: everyone sees them when no API
//! keys are set, and with keys only callers whose key has the details
//! permission (see [`auth`]).
//!
//! | path | answers | access |
//! | --- | --- | --- |
//! | `/status` | the [`Report`] as `application/json`; `application/health+json` (IETF) for `Accept: application/health+json` or `?format=ietf`; any registered format; the HTML status page for a browser (`text/html` preferred over every served format). Callers without details get only `status` and `timestamp`. | a key when keys are set |
//! | `/status/live` | liveness: `{"status":"ok","timestamp":..}`, no check runs | open |
//! | `/status/ready` | readiness: critical checks, draining, startup gating ([`ready_after_startup_checks`](crate::StatusLayer::ready_after_startup_checks)), maintenance; with details a `reason` | open |
//! | `/status/{component}` | one component (a check, run if its cached result is stale; a pushed component; `traffic`) | details |
//! | `/status/watch` | `text/event-stream`: the current status, then every change (components and transitions with details only) | a key when keys are set |
//! | `/status/metrics` | Prometheus text (`text/plain; version=0.0.4`), with [`serve_metrics(true)`](crate::StatusLayer::serve_metrics) | details |
//! | `/status/transitions` | the transition log, flap counts, notifier deliveries ([`StatusHandle::transitions`]) | details |
//! | `/status/history` | the last 24 hours minute by minute, uptime, objectives ([`StatusHandle::history`]) | details |
//! | `/status/badge.svg` | an SVG badge of the overall status | a key when keys are set |
//! | `/status/badge/uptime.svg` | an SVG badge of the 24-hour uptime | a key when keys are set |
//! | `/status/openapi.json` | the OpenAPI 3.1 document of all of these, with [`serve_openapi(true)`](crate::StatusLayer::serve_openapi) | open |
//!
//! Any other path below the status path gets `404`. A resource that is off
//! (metrics, OpenAPI) is taken as a component name. With a status path of
//! `/`, only the report is the endpoint's. "A key when keys are set" and
//! "open" are the defaults; [`StatusLayer::require_key`]
//! changes them.
//!
//! ## Query parameters
//!
//! | parameter | on | effect |
//! | --- | --- | --- |
//! | `format=NAME` | `/status` | the format registered as `NAME` (`json` and `ietf` are built in; [`StatusLayer::format`] adds others); an unknown name gets `400`. Without it, `Accept` chooses. |
//! | `exclude=a,b` | `/status`, `/status/ready` | leaves those components out (neither run nor counted); repeated or comma-separated; only for callers with details |
//! | `verbose` | `/status/ready` | adds the components to the answer (callers with details only); any value but `0` or `false` turns it on |
//!
//! Every pair of the query reaches custom formats
//! ([`FormatContext`](crate::format::FormatContext)).
//!
//! ## Status codes
//!
//! | code | when |
//! | --- | --- |
//! | `200` | the report, `/status/ready` and a component while `ok` or `degraded`; `/status/live`; every other resource |
//! | `503` | the report and `/status/ready` while `down` or in `maintenance` (readiness also while draining or starting); a component that is `down`; an API key lookup that failed or timed out |
//! | `429` | `degraded`, on a probe whose [`ConsumerSignals`](crate::format::ConsumerSignals) say `degraded_as_429` (Consul's warning) |
//! | `400` | `?format=` names no served format |
//! | `401` | a key is required and missing, or a key is sent that is unknown or malformed (on the report even when it is open to callers without a key: only open probes ignore such keys), or details need a key |
//! | `403` | the key may not see the status, or not details; details are never shown ([`Visibility::Never`](crate::auth::Visibility::Never)) |
//! | `404` | no component of that name, or an unknown path below the status path |
//! | `405` | a method other than `GET` or `HEAD` |
//!
//! [`StatusLayer::http_status`] changes the
//! code of each overall status (defaults: `ok` and `degraded` 200, `down` and
//! `maintenance` 503) for the report and the probes. Error bodies are
//! `{"error": "...", "code": "..."}` (`unknown_format`, `unauthorized`,
//! `forbidden`, `auth_unavailable`, `not_found`, `method_not_allowed`);
//! [`StatusLayer::error_format`] reshapes
//! them.
//!
//! ## Headers
//!
//! - `Cache-Control: no-store` on every answer, but the badges:
//!   `max-age=60, s-maxage=60` (status) and `max-age=300, s-maxage=300`
//!   (uptime), for badge proxies. A custom format may set its own.
//! - `Retry-After: SECONDS` on a `503` of the report or `/status/ready` during
//!   maintenance whose [`Notice`](crate::report::Notice) has an
//!   `estimated_completion`.
//! - `WWW-Authenticate: Bearer realm="status"` on a `401` when keys are
//!   accepted as `Authorization: Bearer`.
//! - `Allow: GET, HEAD` on a `405`.
//! - `Vary: Accept` on the HTML page, which also has a strict
//!   `Content-Security-Policy`, `X-Content-Type-Options: nosniff` and
//!   `Referrer-Policy: no-referrer` (the badges have a CSP and `nosniff` too).
//! - Consumer signals, off by default, per probe (report, live, ready,
//!   component) with [`StatusLayer::consumer_signals`]:
//!   `x-envoy-degraded: true` on `degraded` answers (Envoy),
//!   `x-load-balancing-endpoint-weight: 0..=1000` (Google Cloud's weighted
//!   load balancing; 0 when down, in maintenance or draining), and the `429`
//!   above.
//! - Requests: the API key in `X-Api-Key` (another header with
//!   [`ApiKeys::header`](crate::auth::ApiKeys::header)) or
//!   `Authorization: Bearer KEY`; `Accept` for the format.
//!
//! ## Prometheus
//!
//! [`serve_metrics(true)`](crate::StatusLayer::serve_metrics) serves
//! `/status/metrics`. It is made of details: with API keys set, the scraper
//! needs a key with the details permission (sent as a Bearer token, the
//! `authorization` setting of a Prometheus scrape config), and a wrong key
//! gets `401`.
//!
//! # Testing your app
//!
//! Drive the app with [`tower::ServiceExt::oneshot`](https://docs.rs/tower/latest/tower/trait.ServiceExt.html#method.oneshot)
//! and read what the layer recorded with
//! [`StatusHandle::report`]. Two things to know:
//!
//! - **Read the response body to its end.** A request is counted when its
//!   response body finishes. A response dropped unread counts as `aborted`,
//!   not `2xx` (and its time until the drop goes into the latency). Collect
//!   the body with `http_body_util::BodyExt::collect`.
//! - **Check results are cached.** An on-demand check's result is served for
//!   1 s by default, so a dependency stopped in a test shows as down only
//!   after that. Give the check
//!   [`Freshness::OnDemand { ttl: Duration::ZERO }`](crate::check::Freshness::OnDemand)
//!   with [`HealthCheck::freshness`](crate::check::HealthCheck::freshness) to
//!   run it on every report. A background check shows a change after its
//!   next run, and [`failure_threshold(n)`](crate::check::HealthCheck::failure_threshold)
//!   after `n` failed runs.
//!
//! ```
//! use std::time::Duration;
//!
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use http_body_util::BodyExt; // for `collect`
//! use tower::ServiceExt; // for `oneshot`
//! use tower_status::check::{Freshness, HealthCheck};
//! use tower_status::{Status, StatusLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let status = StatusLayer::new()
//!     .check(
//!         HealthCheck::new("db", || async { true })
//!             // no cache: every report runs the check
//!             .freshness(Freshness::OnDemand { ttl: Duration::ZERO }),
//!     )
//!     .build();
//! let app = Router::new()
//!     .route("/", get(|| async { "hello" }))
//!     .layer(status.clone());
//!
//! let response = app
//!     .oneshot(Request::get("/").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! // Read the body to its end: only then is the request counted as 2xx.
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(body, "hello");
//!
//! let report = status.report().await;
//! assert_eq!(report.status, Status::Ok);
//! assert_eq!(report.requests.by_class.get("2xx"), Some(&1));
//! assert_eq!(report.requests.aborted, 0);
//! # }
//! ```
//!
//! # Features
//!
//! None is on by default.
//!
//! | feature | brings |
//! | --- | --- |
//! | `http-check` | `check::HttpCheck`: GET another service's status URL |
//! | `webhook` | `notify::WebhookNotifier`: POST status changes as JSON |
//! | `signal` | `StatusHandle::drain_on_signal`: drain on SIGTERM or ctrl-c |
//! | `grpc` | `grpc::HealthBridge`: keeps tonic-health's reporter in step |
//! | `nats` | `check::NatsCheck`: a NATS server, its JetStream streams and KV buckets |
//! | `host-check` | `check::{DiskCheck, MemoryCheck, RuntimeCheck}`: free disk space, memory against the container's limit, the tokio runtime's queue |
//! | `dns-check` | `check::DnsCheck`: resolve a name |
//!
//! # Modules
//!
//! - [`report`]: the report and its parts ([`Report`], [`Status`],
//!   components, check results, transitions), plain data with `serde`.
//! - [`check`]: health checks ([`check::HealthCheck`], [`check::TcpCheck`],
//!   [`check::Freshness`], traffic rules).
//! - [`auth`]: API keys, identities and permissions, who sees details.
//! - [`format`](mod@format): formats of the report, consumer signals.
//! - [`notify`]: notifiers of status changes.
//! - [`history`]: the last day minute by minute, service level objectives.
//! - `grpc` (feature `grpc`): the bridge to tonic-health.
//! - [`body`] and [`future`]: the response body and future of
//!   [`StatusService`], the service the layer wraps yours in.
//!
//! # For contributors: how the crate is built
//!
//! In layers, each using only those below it: plain data ([`report`]); the
//! engines (the traffic recorder, [`check`], [`auth`], [`format`](mod@format),
//! [`notify`], [`history`]); the state of a built layer and the collection
//! of a report from it; the endpoint (one route table, a handler per
//! resource, the OpenAPI document derived from the same table); the
//! middleware ([`StatusLayer`], [`StatusHandle`], [`StatusService`]). The
//! layers below the public modules are private. `CONTRIBUTING.md` in the
//! repository describes them.
//!
//! [tower]: https://docs.rs/tower

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

// The crate in layers, each module using only those above it here.
//
// 1. Plain data: the report types, check results, status.
pub mod report;

// 2. Small shared tools: guarded futures, interval tasks.
mod guarded;
mod ticker;

// 3. The engines: traffic recording, checks, access control, formats,
//    notifications, history.
mod recorder;

pub mod check;

pub mod auth;

pub mod format;

pub mod notify;

pub mod history;

// 4. The state of a built layer (configuration, lifecycle, watcher) and
//    collecting a report from it.
mod state;

// 5. The endpoint: route table, handlers, responses, OpenAPI.
mod endpoint;

// 6. The middleware on top: service, future, body, layer and handle.
pub mod body;

pub mod future;

mod service;

mod handle;

mod layer;

#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;

pub use handle::{CallerRequests, StatusHandle};
pub use layer::{StatusLayer, ENVIRONMENT_VAR};
pub use report::{Report, Status};
pub use service::StatusService;
pub use state::{HistoryReport, StatusChange, StatusWatch, TransitionLog};

/// The calling crate's version from its `Cargo.toml`, for
/// [`StatusLayer::version`].
///
/// ```
/// let layer = tower_status::StatusLayer::new().version(tower_status::app_version!());
/// # let _ = layer;
/// ```
#[macro_export]
macro_rules! app_version {
    () => {
        env!("CARGO_PKG_VERSION")
    };
}

/// The calling crate's name from its `Cargo.toml`, for
/// [`StatusLayer::service_name`].
///
/// ```
/// let layer = tower_status::StatusLayer::new().service_name(tower_status::app_name!());
/// # let _ = layer;
/// ```
#[macro_export]
macro_rules! app_name {
    () => {
        env!("CARGO_PKG_NAME")
    };
}
