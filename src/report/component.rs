//! Components and notices in the report.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
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

/// A component as a check stores it: the typed value, and its member of the
/// report's `components` object (`"name":{...}`) rendered once, so that
/// each report splices the bytes instead of cloning and serializing again.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) component: Component,
    /// `"name":{...}`, byte for byte as a `BTreeMap<String, Component>`
    /// entry serializes.
    pub(crate) member: Box<[u8]>,
}

impl Stored {
    pub(crate) fn new(name: &str, component: Component) -> Arc<Self> {
        let mut member = Vec::with_capacity(name.len() + 128);
        write_member(&mut member, name, &component);
        Arc::new(Self {
            component,
            member: member.into_boxed_slice(),
        })
    }
}

/// Appends `"name":{component}` to `out`, as a map entry serializes.
pub(crate) fn write_member(out: &mut Vec<u8>, name: &str, component: &Component) {
    // Neither a string nor a component can fail to serialize (a `Value`
    // has string keys only); writing to a `Vec` cannot fail either.
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, component);
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
