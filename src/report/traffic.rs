//! Traffic and latency sections of the report, computed from recorder snapshots.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Requests the wrapped service handled.
///
/// Counts (`total`, `errors`, `aborted`, `by_class`) are since start;
/// `window_*`, `rate_per_second` and `error_rate` describe the recent window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Traffic {
    /// Requests finished since start: every response, service error and abort.
    pub total: u64,
    /// Requests started and not yet finished.
    pub in_flight: u64,
    /// Requests that failed: inner service error, 5xx, response body error,
    /// or non-zero `grpc-status`.
    pub errors: u64,
    /// Requests whose future or response body was dropped before the end
    /// (usually a client that went away); not errors.
    pub aborted: u64,
    /// Responses per status class (`"2xx"`, ...); classes never seen are left out.
    pub by_class: BTreeMap<String, u64>,
    /// Length of the recent window in seconds (about 60 once the service has run that long).
    pub window_seconds: f64,
    /// Requests finished within the window.
    pub window_total: u64,
    /// `window_total / window_seconds`.
    pub rate_per_second: f64,
    /// Share of the window's requests that were errors, 0 to 1.
    #[schemars(range(min = 0, max = 1))]
    pub error_rate: f64,
}

/// Response times over the recent window, in milliseconds, measured from the
/// call of the service until the response body ended. Percentiles are read
/// from a log-linear histogram and are within about 3% of the exact value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Latency {
    /// Requests in the window.
    pub count: u64,
    /// Arithmetic mean (exact).
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest request (never below the true value, at most 6% above it).
    pub max: f64,
}

/// Upper bounds of [`LatencyHistogram`] buckets, in seconds.
pub const HISTOGRAM_BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Response times since start as cumulative buckets, for Prometheus-style
/// histograms. A bucket counts requests whose time fell in a recorder
/// bucket lying wholly at or below its bound, so counts near a bound may
/// belong to the next one (within the recorder's ~6% bucket width).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencyHistogram {
    /// `(upper bound in seconds, requests at or below it)`, for each of
    /// [`HISTOGRAM_BOUNDS`]; the `+Inf` bucket is `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all response times, in seconds.
    pub sum_seconds: f64,
    /// Requests recorded.
    pub count: u64,
}
