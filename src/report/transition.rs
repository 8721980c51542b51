//! Transitions of the status, and the notifications that announce them.

use serde::{Deserialize, Serialize};

use super::{Status, Timestamp};

/// One change of the overall status or of a component's.
///
/// ```
/// use tower_status::report::Transition;
/// use tower_status::Status;
///
/// let json = r#"{"component":"db","from":"ok","to":"down","at":"2026-12-04T10:00:00.000Z",
///                "error":"connection refused","previous_lasted_ms":3600000}"#;
/// let t: Transition = serde_json::from_str(json).unwrap();
/// assert_eq!((t.from, t.to), (Some(Status::Ok), Status::Down));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Transition {
    /// The component that changed; absent for the overall status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The status before; absent when there was none (first seen).
    #[serde(default)]
    pub from: Option<Status>,
    /// The status after.
    pub to: Status,
    /// When the change was seen.
    pub at: Timestamp,
    /// Why, when the new status is not `ok`: the component's error, or for
    /// the overall status the first root cause's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the previous status lasted, in milliseconds (absent when
    /// there was none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_lasted_ms: Option<u64>,
    /// Components this one depends on that were failing: it is blocked by
    /// them rather than failing on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked_by: Vec<String>,
}

/// A failing component that is not blocked by another one: where to look
/// first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct RootCause {
    /// The component's name.
    pub component: String,
    /// Its status.
    pub status: Status,
    /// Its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a [`Notifier`](crate::notify::Notifier) is handed when the status
/// changes: one per change, naming the root causes once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Notification {
    /// Numbered from 1 for each layer, in the order the changes happened:
    /// receivers can order and deduplicate by it.
    pub sequence: u64,
    /// The service's name, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The service's version, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The deployment environment.
    pub environment: String,
    /// The overall status after the change.
    pub status: Status,
    /// The change of the overall status, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    /// The failing components not blocked by another one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_causes: Vec<RootCause>,
    /// The components that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Transition>,
}
