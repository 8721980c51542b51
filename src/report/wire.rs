//! The report as JSON: the one serializer of the report, used by
//! [`Report`]'s `Serialize` and by the endpoint's default JSON, which
//! writes each stored component's pre-rendered JSON instead of a typed copy.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::Traffic;
use super::{
    CallerSummary, Component, Latency, Memory, Notice, Part, Report, RootCause, Status, Timestamp,
};

/// The members of `/status`, in order, borrowed from wherever they are.
/// The OpenAPI document's report schema is derived from this struct too.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "FullReport")]
pub(crate) struct Wire<'a> {
    /// Overall status.
    pub(crate) status: Status,
    /// The failing components that are not blocked by another one, when
    /// the layer has dependencies between components: where to look first.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub(crate) root_causes: &'a [RootCause],
    /// Name of the service, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) service: Option<&'a str>,
    /// Version of the service, when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<&'a str>,
    /// Deployment environment (`production`, `development`, ...).
    pub(crate) environment: &'a str,
    /// When the report was made.
    pub(crate) timestamp: Timestamp,
    /// Whole seconds since the first status layer of the process was built.
    pub(crate) uptime_seconds: u64,
    /// Memory of the process, where the platform reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) memory: Option<Memory>,
    /// Traffic of the wrapped service.
    pub(crate) requests: &'a Traffic,
    /// Latency of the wrapped service over the recent window.
    pub(crate) response_time_ms: &'a Latency,
    /// Requests answered by the status endpoint itself (not in `requests`).
    pub(crate) status_requests: u64,
    /// Health of each component, by name.
    #[serde(skip_serializing_if = "ComponentsWire::is_empty")]
    #[schemars(with = "BTreeMap<String, Component>")]
    pub(crate) components: ComponentsWire<'a>,
    /// The maintenance notice in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) notice: Option<&'a Notice>,
    /// The service is draining before shutdown (readiness fails).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) draining: bool,
    /// Who asked, when the request carried a valid API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) caller: Option<&'a CallerSummary>,
    /// Custom sections, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) sections: &'a BTreeMap<String, serde_json::Value>,
}

/// The `components` member, by name: typed, collected parts, or every
/// check's result already joined into one object.
pub(crate) enum ComponentsWire<'a> {
    Typed(&'a BTreeMap<String, Component>),
    /// Sorted by name, each name once.
    Parts(&'a [(Cow<'a, str>, Part)]),
    /// A whole JSON object, `{}` when empty.
    Joined(&'a RawValue),
}

impl ComponentsWire<'_> {
    fn is_empty(&self) -> bool {
        match self {
            ComponentsWire::Typed(map) => map.is_empty(),
            ComponentsWire::Parts(parts) => parts.is_empty(),
            ComponentsWire::Joined(raw) => raw.get() == "{}",
        }
    }
}

impl Serialize for ComponentsWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ComponentsWire::Typed(map) => map.serialize(s),
            ComponentsWire::Joined(raw) => raw.serialize(s),
            ComponentsWire::Parts(parts) => {
                let mut map = s.serialize_map(Some(parts.len()))?;
                for (name, part) in *parts {
                    map.serialize_entry(name.as_ref(), part)?;
                }
                map.end()
            }
        }
    }
}

impl<'a> Wire<'a> {
    fn of(report: &'a Report) -> Self {
        Wire {
            status: report.status,
            root_causes: &report.root_causes,
            service: report.service.as_deref(),
            version: report.version.as_deref(),
            environment: &report.environment,
            timestamp: report.timestamp,
            uptime_seconds: report.uptime_seconds,
            memory: report.memory,
            requests: &report.requests,
            response_time_ms: &report.response_time_ms,
            status_requests: report.status_requests,
            components: ComponentsWire::Typed(&report.components),
            notice: report.notice.as_ref(),
            draining: report.draining,
            caller: report.caller.as_ref(),
            sections: &report.sections,
        }
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire::of(self).serialize(s)
    }
}

/// Every stored result joined into one `components` object, for boards.
pub(crate) fn join<'a>(parts: impl Iterator<Item = (&'a str, &'a RawValue)>) -> Box<RawValue> {
    let map: BTreeMap<&str, &RawValue> = parts.collect();
    // A map of strings to valid JSON always serializes.
    serde_json::value::to_raw_value(&map).unwrap_or_else(|_| {
        RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_what_it_writes() {
        let json = serde_json::json!({
            "status": "degraded", "service": "s", "version": "1",
            "environment": "e", "timestamp": "2026-11-23T10:30:00.000Z",
            "uptime_seconds": 5,
            "memory": { "rss_bytes": 10, "virtual_bytes": 20 },
            "requests": { "total": 3, "in_flight": 0, "errors": 1, "aborted": 0,
                "by_class": { "2xx": 2 }, "window_seconds": 5.0, "window_total": 3,
                "rate_per_second": 0.6, "error_rate": 0.333 },
            "response_time_ms": { "count": 3, "mean": 1.0, "p50": 1.0, "p90": 1.0,
                "p99": 1.0, "max": 1.0 },
            "status_requests": 1,
            "components": { "db": { "status": "degraded", "critical": false,
                "duration_ms": 1.5, "last_checked": "2026-11-23T10:30:00.000Z",
                "error": "slow" } },
            "notice": { "message": "m" },
            "draining": true,
            "caller": { "name": "ops", "tier": "gold" },
            "sections": { "jobs": 3 }
        });
        let report: Report = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(serde_json::to_value(&report).unwrap(), json);
        // Optional members left out are left out again.
        let minimal = serde_json::json!({
            "status": "ok", "environment": "e", "timestamp": "2026-11-23T10:30:00.000Z",
            "uptime_seconds": 5,
            "requests": report.requests, "response_time_ms": report.response_time_ms,
            "status_requests": 1
        });
        let report: Report = serde_json::from_value(minimal.clone()).unwrap();
        assert_eq!(serde_json::to_value(&report).unwrap(), minimal);
    }
}
