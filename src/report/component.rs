//! Components and notices in the report.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::result::truncate_error;
use super::{CheckResult, Status, Timestamp};

/// Health of one component: a check's last run, or a value pushed through
/// [`StatusHandle`](crate::StatusHandle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Component {
    /// `ok`, `degraded` or `down`.
    pub status: Status,
    /// Kind of component, when configured (`"datastore"`, ...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    /// Whether a failure takes the service down rather than degrading it.
    pub critical: bool,
    /// Why it is not healthy (at most 1024 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = super::MAX_ERROR_LEN))]
    pub error: Option<String>,
    /// How long the last run took, in milliseconds.
    pub duration_ms: f64,
    /// When the last run started (or the value was pushed).
    pub last_checked: Timestamp,
    /// Details the check reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// A measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<Value>,
    /// Unit of the measured value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<String>,
    /// The last run as it came, when the check damps its status
    /// (thresholds or a time in error) or ran longer than its interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Components this one depends on that are failing too: it is blocked
    /// by them, not failing on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
}

/// A check's last run before damping: what it returned, and how many runs
/// in a row passed (or failed) like it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct LastRun {
    /// The run's own status.
    pub status: Status,
    /// The run's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Runs in a row that passed (status `ok`) or failed (any other), this
    /// one included.
    pub consecutive: u32,
    /// The run took longer than the check's interval: the next one was
    /// not queued up behind it but started one interval after it ended.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overran_interval: bool,
}

impl Component {
    pub(crate) fn from_result(
        result: CheckResult,
        component_type: Option<String>,
        critical: bool,
        took: Duration,
        at: Timestamp,
    ) -> Self {
        Self {
            status: result.status,
            component_type,
            critical,
            error: result.error.map(truncate_error),
            duration_ms: (took.as_secs_f64() * 1_000_000.0).round() / 1000.0,
            last_checked: at,
            details: result.details,
            observed_value: result.observed_value,
            observed_unit: result.observed_unit,
            last_run: None,
            blocked_by: Vec::new(),
        }
    }

    /// What this component contributes to the overall status: its own
    /// status if critical, at worst `degraded` if not.
    #[must_use]
    pub fn impact(&self) -> Status {
        match (self.status, self.critical) {
            (Status::Ok, _) => Status::Ok,
            (status, true) => status,
            (_, false) => Status::Degraded,
        }
    }
}

/// A component as a check stores it: the typed value, and its JSON
/// rendered once, so each report writes the stored bytes instead of
/// cloning and serializing the component again.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) component: Component,
    /// `serde_json::to_string(&component)`.
    pub(crate) json: Box<RawValue>,
}

impl Stored {
    pub(crate) fn new(component: Component) -> Arc<Self> {
        // A component always serializes: a `Value` has string keys only,
        // and non-finite numbers are written as null.
        let json = serde_json::value::to_raw_value(&component)
            .unwrap_or_else(|_| RawValue::NULL.to_owned());
        Arc::new(Self { component, json })
    }
}

/// A component of a collected report: a check's stored result (shared,
/// rendered once), or one made for this report (pushed, traffic).
#[derive(Clone, Debug)]
pub(crate) enum Part {
    Stored(Arc<Stored>),
    /// Boxed: a stored result is a pointer, and most parts are stored.
    Owned(Box<Component>),
}

impl Part {
    pub(crate) fn component(&self) -> &Component {
        match self {
            Part::Stored(s) => &s.component,
            Part::Owned(c) => c,
        }
    }

    pub(crate) fn into_component(self) -> Component {
        match self {
            Part::Stored(s) => {
                Arc::try_unwrap(s).map_or_else(|s| s.component.clone(), |s| s.component)
            }
            Part::Owned(c) => *c,
        }
    }
}

impl Serialize for Part {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Part::Stored(stored) => stored.json.serialize(s),
            Part::Owned(c) => c.serialize(s),
        }
    }
}

/// The worst impact among `components`; `ok` when there are none.
pub fn aggregate<'a>(components: impl IntoIterator<Item = &'a Component>) -> Status {
    components
        .into_iter()
        .map(Component::impact)
        .max()
        .unwrap_or(Status::Ok)
}

/// An operator's maintenance notice.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_status::report::Notice;
///
/// let notice = Notice::new("Scheduled maintenance in progress")
///     .estimated_completion(SystemTime::now() + Duration::from_secs(3600));
/// assert!(notice.estimated_completion.is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Notice {
    /// What is going on.
    pub message: String,
    /// When it should be over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_completion: Option<Timestamp>,
}

impl Notice {
    /// A notice with no completion time.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            estimated_completion: None,
        }
    }

    /// Sets when the maintenance should be over.
    #[must_use]
    pub fn estimated_completion(mut self, at: std::time::SystemTime) -> Self {
        self.estimated_completion = Some(Timestamp(at));
        self
    }
}
