//! What the history serves: plain data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{Status, Timestamp};

/// The history as `/status/history` serves it: one entry per minute,
/// oldest first, and uptime over the last hour and the last day.
///
/// ```
/// use tower_status::history::HistoryView;
/// use tower_status::Status;
///
/// let json = r#"{"window_minutes":2,
///   "minutes":[{"start":"2026-12-04T10:00:00.000Z"},
///              {"start":"2026-12-04T10:01:00.000Z","status":"down","components":{"db":"down"},
///               "requests":120,"errors":7,"p50_ms":3.1,"p99_ms":250.0}],
///   "uptime_1h":{"window_minutes":60,"overall":{"ratio":0.5,"up_minutes":1,"down_minutes":1}},
///   "uptime_24h":{"window_minutes":1440,"overall":{"ratio":0.5,"up_minutes":1,"down_minutes":1}}}"#;
/// let view: HistoryView = serde_json::from_str(json).unwrap();
/// assert_eq!(view.minutes[0].status, None); // no data
/// assert_eq!(view.minutes[1].components["db"], Status::Down);
/// assert_eq!(view.uptime_24h.overall.ratio, Some(0.5));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct HistoryView {
    /// How many minutes the series covers (at most 1440).
    pub window_minutes: u32,
    /// Every minute of the window, oldest first; the last one is the
    /// current minute, still going on.
    pub minutes: Vec<Minute>,
    /// Uptime over the last 60 minutes.
    pub uptime_1h: Uptime,
    /// Uptime over the last 1440 minutes.
    pub uptime_24h: Uptime,
    /// Component observations not recorded because the history already
    /// tracked 64 components (a name is tracked again once one of them has
    /// had no data for a day).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub components_dropped: u64,
}

/// One minute of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Minute {
    /// When the minute started.
    pub start: Timestamp,
    /// The worst overall status seen in the minute; absent when nothing
    /// was observed (no data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Each component's worst status in the minute (components not seen
    /// in it are left out).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, Status>,
    /// Requests of the wrapped service that finished in the minute.
    #[serde(default)]
    pub requests: u64,
    /// Those that failed.
    #[serde(default)]
    pub errors: u64,
    /// Median response time of the minute's requests, in milliseconds;
    /// absent without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile response time, in milliseconds; absent without
    /// requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

/// Uptime over a window, overall and for each component seen in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct Uptime {
    /// Length of the window in minutes, the current minute included.
    pub window_minutes: u32,
    /// The overall status.
    pub overall: UptimeFigure,
    /// Each component with data in the window, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, UptimeFigure>,
}

/// The minutes of a window by what they were, and the share that was up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct UptimeFigure {
    /// `up_minutes / (up_minutes + down_minutes)`, 0 to 1; absent when
    /// both are zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1))]
    pub ratio: Option<f64>,
    /// Minutes whose worst status was `ok` or `degraded`.
    #[serde(default)]
    pub up_minutes: u32,
    /// Minutes whose worst status was `down`.
    #[serde(default)]
    pub down_minutes: u32,
    /// Minutes whose worst status was `maintenance` (not counted).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub maintenance_minutes: u32,
    /// Minutes with no data (not counted).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub no_data_minutes: u32,
}

impl UptimeFigure {
    /// Counts one minute: its worst status, or `None` without data.
    pub(crate) fn count(&mut self, status: Option<Status>) {
        match status {
            None => self.no_data_minutes += 1,
            Some(Status::Ok | Status::Degraded) => self.up_minutes += 1,
            Some(Status::Down) => self.down_minutes += 1,
            Some(Status::Maintenance) => self.maintenance_minutes += 1,
        }
        let counted = self.up_minutes + self.down_minutes;
        self.ratio = (counted > 0).then(|| f64::from(self.up_minutes) / f64::from(counted));
    }
}

fn is_zero<T: Default + PartialEq>(n: &T) -> bool {
    *n == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_figure_counts_degraded_as_up_and_leaves_maintenance_out() {
        let mut f = UptimeFigure::default();
        assert_eq!(f.ratio, None);
        f.count(None);
        f.count(Some(Status::Maintenance));
        assert_eq!(f.ratio, None);
        f.count(Some(Status::Ok));
        f.count(Some(Status::Degraded));
        f.count(Some(Status::Down));
        f.count(Some(Status::Ok));
        assert_eq!(f.ratio, Some(0.75));
        assert_eq!(
            (
                f.up_minutes,
                f.down_minutes,
                f.maintenance_minutes,
                f.no_data_minutes
            ),
            (3, 1, 1, 1)
        );
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ratio":0.75,"up_minutes":3,"down_minutes":1,
                                "maintenance_minutes":1,"no_data_minutes":1})
        );
    }
}
