//! The report: a typed value that every format renders.
//!
//! [`Report`] is what `GET /status` describes: overall [`Status`], identity
//! of the service, uptime, [`Memory`], the wrapped service's [`Traffic`] and
//! [`Latency`]. It is plain data with `serde` support; the default JSON body
//! is its serialization.

mod component;
mod memory;
mod result;
mod traffic;
mod transition;
mod wire;

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use component::{aggregate, Component, LastRun, Notice};
pub(crate) use component::{Part, Stored};
pub use memory::Memory;
pub(crate) use memory::MemoryCache;
pub(crate) use result::truncate_error;
pub use result::{CheckResult, MAX_ERROR_LEN};
pub use traffic::{Latency, LatencyHistogram, Traffic, HISTOGRAM_BOUNDS};
pub use transition::{Notification, RootCause, Transition};
pub(crate) use wire::{join, ComponentsWire, Wire};

/// Overall health, from best to worst (`maintenance` is set by the operator).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything works.
    #[default]
    Ok,
    /// Working, but something non-critical is failing.
    Degraded,
    /// Not able to serve: something critical is failing.
    Down,
    /// Deliberately out of service for maintenance.
    Maintenance,
}

impl Status {
    /// The lowercase word used in the default report.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Down => "down",
            Status::Maintenance => "maintenance",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A moment in time, serialized as RFC 3339 UTC with milliseconds
/// (`2026-11-23T10:30:00.000Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time.
    #[must_use]
    pub fn now() -> Self {
        Self(SystemTime::now())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text)
            .map(Timestamp)
            .map_err(serde::de::Error::custom)
    }
}

/// The status report of one service, as `GET /status` returns it.
///
/// ```
/// use tower_status::report::{Report, Status};
///
/// let json = r#"{"status":"ok","environment":"production",
///   "timestamp":"2026-11-23T10:30:00.000Z","uptime_seconds":5,
///   "requests":{"total":3,"in_flight":0,"errors":1,"aborted":0,"by_class":{"2xx":2,"5xx":1},
///     "window_seconds":5.0,"window_total":3,"rate_per_second":0.6,"error_rate":0.333},
///   "response_time_ms":{"count":3,"mean":1.0,"p50":1.0,"p90":1.0,"p99":1.0,"max":1.0},
///   "status_requests":1}"#;
/// let report: Report = serde_json::from_str(json).unwrap();
/// assert_eq!(report.status, Status::Ok);
/// assert_eq!(report.requests.total, 3);
/// ```
///
/// It serializes exactly as `GET /status` answers (members left out when
/// empty); deserializing is tolerant of those missing members.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// Overall status.
    pub status: Status,
    /// The failing components that are not blocked by another one, when
    /// the layer has dependencies between components.
    #[serde(default)]
    pub root_causes: Vec<RootCause>,
    /// Name of the service, when configured.
    #[serde(default)]
    pub service: Option<String>,
    /// Version of the service, when configured.
    #[serde(default)]
    pub version: Option<String>,
    /// Deployment environment (`production`, `development`, ...).
    pub environment: String,
    /// When the report was made.
    pub timestamp: Timestamp,
    /// Whole seconds since the first status layer of the process was built.
    pub uptime_seconds: u64,
    /// Memory of the process, where the platform reports it.
    #[serde(default)]
    pub memory: Option<Memory>,
    /// Traffic of the wrapped service.
    pub requests: Traffic,
    /// Latency of the wrapped service over the recent window.
    pub response_time_ms: Latency,
    /// Requests answered by the status endpoint itself (not in `requests`).
    pub status_requests: u64,
    /// Health of each component, by name.
    #[serde(default)]
    pub components: BTreeMap<String, Component>,
    /// The maintenance notice in force.
    #[serde(default)]
    pub notice: Option<Notice>,
    /// The service is draining before shutdown (readiness fails).
    #[serde(default)]
    pub draining: bool,
    /// Who asked, when the request carried a valid API key.
    #[serde(default)]
    pub caller: Option<CallerSummary>,
    /// Custom sections, by name (see [`StatusLayer::section`](crate::StatusLayer::section)).
    #[serde(default)]
    pub sections: BTreeMap<String, serde_json::Value>,
    /// Response times since start in cumulative buckets (for metrics
    /// formats; not in the default JSON).
    #[serde(skip)]
    pub histogram: LatencyHistogram,
}

impl Report {
    /// The report with every detail removed: only `status` and
    /// `timestamp` keep their values, as anonymous callers see it.
    #[must_use]
    pub fn redacted(self) -> Self {
        Report {
            status: self.status,
            root_causes: Vec::new(),
            service: None,
            version: None,
            environment: String::new(),
            timestamp: self.timestamp,
            uptime_seconds: 0,
            memory: None,
            requests: Traffic::default(),
            response_time_ms: Latency::default(),
            status_requests: 0,
            components: BTreeMap::new(),
            notice: None,
            draining: false,
            caller: None,
            sections: BTreeMap::new(),
            histogram: LatencyHistogram::default(),
        }
    }
}

/// The caller's own view: its identity and, when counted, its requests in
/// the current window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Caller")]
#[non_exhaustive]
pub struct CallerSummary {
    /// Name of the caller.
    pub name: String,
    /// The identity's attributes (tier, limits, ...).
    #[serde(flatten)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Requests with this caller's key in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_in_window: Option<u64>,
    /// When the current window ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ends: Option<Timestamp>,
}

/// Name of the component that traffic rules produce.
pub const TRAFFIC_COMPONENT: &str = "traffic";
