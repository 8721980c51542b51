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
//! # How the crate is built
//!
//! In layers, each using only those below it:
//!
//! 1. plain data: [`report`] (the report, components, check results,
//!    status), which every format renders;
//! 2. the engines: the lock-free traffic recorder, [`check`] (running
//!    checks: timeouts, caching, single flight, polling), [`auth`] (API
//!    keys, who sees details), [`format`](mod@format) (turning a report into a
//!    response), [`notify`] (delivering status changes), [`history`] (the
//!    last day minute by minute, its file, service level objectives);
//! 3. the state of a built layer (its configuration, the lifecycle a
//!    [`StatusHandle`] changes, the watcher behind [`StatusWatch`]) and the
//!    collection of a report from it;
//! 4. the endpoint: one route table, a handler per resource, the shared
//!    responses, and the OpenAPI document derived from the same table;
//! 5. the middleware, as tower-http lays one out: [`StatusLayer`] and
//!    [`StatusHandle`], [`StatusService`],
//!    [`ResponseFuture`](future::ResponseFuture) and
//!    [`ResponseBody`](body::ResponseBody), which carry a request's timer
//!    until its response body ends.
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
