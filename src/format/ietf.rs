//! `application/health+json`, as draft-inadarei-api-health-check describes it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::{Format, FormatContext, Rendered};
use crate::report::{Report, Status, Timestamp};

/// Media type of the IETF health check response format.
pub const MEDIA_TYPE: &str = "application/health+json";

/// The IETF health check response format: `status` pass/warn/fail,
/// `version` (the major version), `releaseId`, `serviceId`, `description`,
/// `notes`, `output`, and `checks` keyed `component:measurement`.
///
/// Components become `NAME:status` (or `NAME:responseTime` when the check
/// observed milliseconds); the service's own figures are `uptime`,
/// `requests:rate`, `requests:errorRate`, `responseTime:p99` and
/// `memory:rss`. Callers without the details permission get only `status`.
/// Selected by `Accept: application/health+json` or `?format=ietf`.
#[derive(Clone, Copy, Debug, Default)]
pub struct IetfFormat;

/// The IETF word for a status.
#[must_use]
pub fn word(status: Status) -> &'static str {
    match status {
        Status::Ok => "pass",
        Status::Degraded => "warn",
        Status::Down | Status::Maintenance => "fail",
    }
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Health<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    checks: BTreeMap<String, Vec<CheckItem<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckItem<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    component_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    component_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    observed_unit: Option<&'a str>,
    status: &'static str,
    time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a str>,
}

impl CheckItem<'_> {
    fn figure(value: impl Into<Value>, unit: &'static str, time: Timestamp) -> Self {
        CheckItem {
            component_id: None,
            component_type: Some("system"),
            observed_value: Some(value.into()),
            observed_unit: Some(unit),
            status: "pass",
            time,
            output: None,
        }
    }
}

impl Format for IetfFormat {
    fn render(&self, report: &Report, ctx: &FormatContext<'_>) -> Rendered {
        let status = word(report.status);
        if !ctx.details() {
            let minimal = Health {
                status,
                ..Health::default()
            };
            return Rendered::json_as(ctx.status_code(), MEDIA_TYPE, &minimal);
        }
        let mut checks: BTreeMap<String, Vec<CheckItem<'_>>> = BTreeMap::new();
        for (name, c) in &report.components {
            let measurement = if c.observed_unit.as_deref() == Some("ms") {
                "responseTime"
            } else {
                "status"
            };
            checks.insert(
                format!("{name}:{measurement}"),
                vec![CheckItem {
                    component_id: Some(name),
                    component_type: c.component_type.as_deref(),
                    observed_value: c.observed_value.clone(),
                    observed_unit: c.observed_unit.as_deref(),
                    status: word(c.status),
                    time: c.last_checked,
                    output: c.error.as_deref(),
                }],
            );
        }
        let t = report.timestamp;
        checks.insert(
            "uptime".into(),
            vec![CheckItem::figure(report.uptime_seconds, "s", t)],
        );
        checks.insert(
            "requests:rate".into(),
            vec![CheckItem::figure(
                report.requests.rate_per_second,
                "requests/s",
                t,
            )],
        );
        checks.insert(
            "requests:errorRate".into(),
            vec![CheckItem::figure(report.requests.error_rate, "ratio", t)],
        );
        checks.insert(
            "responseTime:p99".into(),
            vec![CheckItem::figure(report.response_time_ms.p99, "ms", t)],
        );
        if let Some(m) = report.memory {
            checks.insert(
                "memory:rss".into(),
                vec![CheckItem::figure(m.rss_bytes, "bytes", t)],
            );
        }

        let mut notes = Vec::new();
        if let Some(notice) = &report.notice {
            notes.push(match notice.estimated_completion {
                Some(at) => format!("maintenance: {} (until {at})", notice.message),
                None => format!("maintenance: {}", notice.message),
            });
        }
        if report.draining {
            notes.push("draining: shutting down".to_owned());
        }
        let failing: Vec<String> = report
            .components
            .iter()
            .filter_map(|(name, c)| c.error.as_ref().map(|e| format!("{name}: {e}")))
            .collect();
        let version = report.version.as_deref();
        let health = Health {
            status,
            version: version.map(|v| v.split('.').next().unwrap_or(v)),
            release_id: version,
            notes,
            output: (!failing.is_empty()).then(|| failing.join("; ")),
            service_id: report.service.as_deref(),
            description: Some(match &report.service {
                Some(s) => format!("health of {s} ({})", report.environment),
                None => format!("health of the service ({})", report.environment),
            }),
            checks,
        };
        Rendered::json_as(ctx.status_code(), MEDIA_TYPE, &health)
    }
}
