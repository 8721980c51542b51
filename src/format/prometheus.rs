//! Prometheus text exposition (version 0.0.4), for `/status/metrics`.

use std::fmt::Write;

use super::{Format, FormatContext, Rendered};
use crate::report::{Report, Status};

/// Media type of the Prometheus text format.
pub const MEDIA_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Components exported at most, so label cardinality stays bounded.
pub const MAX_COMPONENTS: usize = 100;

/// The report as Prometheus metrics: overall and per-component health
/// gauges, requests by class, errors, aborted and in-flight requests, a
/// latency histogram since start, uptime and build info. Every series is
/// prefixed `tower_status_`; labels are bounded (status classes, at most
/// [`MAX_COMPONENTS`] component names). Always answered 200, whatever the
/// health: a scrape that fails is a different signal from a service that is down.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrometheusFormat;

fn health(status: Status) -> f64 {
    match status {
        Status::Ok => 1.0,
        Status::Degraded => 0.5,
        Status::Down | Status::Maintenance => 0.0,
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// `tower_status_build_info`: the service's identity as labels, value 1
/// (join it to other series with `on(instance) group_left(version)`). A
/// service or version that is not configured is left out rather than
/// written empty; the environment always has a value.
fn build_info(out: &mut String, service: Option<&str>, version: Option<&str>, environment: &str) {
    header(out, "build_info", "gauge", "Service identity; always 1.");
    out.push_str("tower_status_build_info{");
    for (name, value) in [("service", service), ("version", version)] {
        if let Some(value) = value {
            let _ = write!(out, "{name}=\"{}\",", label(value));
        }
    }
    let _ = writeln!(out, "environment=\"{}\"}} 1", label(environment));
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP tower_status_{name} {help}");
    let _ = writeln!(out, "# TYPE tower_status_{name} {kind}");
}

impl Format for PrometheusFormat {
    fn render(&self, report: &Report, _ctx: &FormatContext<'_>) -> Rendered {
        let mut out = String::with_capacity(4096);
        header(
            &mut out,
            "up",
            "gauge",
            "Overall health: 1 ok, 0.5 degraded, 0 down or in maintenance.",
        );
        let _ = writeln!(out, "tower_status_up {}", health(report.status));

        header(
            &mut out,
            "status",
            "gauge",
            "Overall status as a state set: 1 for the current status.",
        );
        for s in [
            Status::Ok,
            Status::Degraded,
            Status::Down,
            Status::Maintenance,
        ] {
            let _ = writeln!(
                out,
                "tower_status_status{{status=\"{s}\"}} {}",
                u8::from(report.status == s)
            );
        }

        header(
            &mut out,
            "component_up",
            "gauge",
            "Component health: 1 ok, 0.5 degraded, 0 down.",
        );
        for (name, c) in report.components.iter().take(MAX_COMPONENTS) {
            let _ = writeln!(
                out,
                "tower_status_component_up{{component=\"{}\",critical=\"{}\"}} {}",
                label(name),
                c.critical,
                health(c.status)
            );
        }

        let r = &report.requests;
        header(
            &mut out,
            "requests_total",
            "counter",
            "Requests finished with a response, by status class.",
        );
        for (class, n) in &r.by_class {
            let _ = writeln!(
                out,
                "tower_status_requests_total{{class=\"{}\"}} {n}",
                label(class)
            );
        }
        header(
            &mut out,
            "request_errors_total",
            "counter",
            "Requests that failed: service error, 5xx, body error or non-zero grpc-status.",
        );
        let _ = writeln!(out, "tower_status_request_errors_total {}", r.errors);
        header(
            &mut out,
            "requests_aborted_total",
            "counter",
            "Requests dropped before they finished.",
        );
        let _ = writeln!(out, "tower_status_requests_aborted_total {}", r.aborted);
        header(
            &mut out,
            "requests_in_flight",
            "gauge",
            "Requests started and not yet finished.",
        );
        let _ = writeln!(out, "tower_status_requests_in_flight {}", r.in_flight);

        let h = &report.histogram;
        header(
            &mut out,
            "request_duration_seconds",
            "histogram",
            "Time from call until the response body ended.",
        );
        for (le, n) in &h.buckets {
            let _ = writeln!(
                out,
                "tower_status_request_duration_seconds_bucket{{le=\"{le}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "tower_status_request_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "tower_status_request_duration_seconds_sum {}",
            h.sum_seconds
        );
        let _ = writeln!(
            out,
            "tower_status_request_duration_seconds_count {}",
            h.count
        );

        header(
            &mut out,
            "uptime_seconds",
            "gauge",
            "Seconds since the first status layer of the process was created.",
        );
        let _ = writeln!(out, "tower_status_uptime_seconds {}", report.uptime_seconds);
        if let Some(m) = report.memory {
            header(
                &mut out,
                "resident_memory_bytes",
                "gauge",
                "Resident set size of the process.",
            );
            let _ = writeln!(out, "tower_status_resident_memory_bytes {}", m.rss_bytes);
        }

        build_info(
            &mut out,
            report.service.as_deref(),
            report.version.as_deref(),
            &report.environment,
        );
        Rendered::new(http::StatusCode::OK, MEDIA_TYPE, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn build_info_has_help_type_and_the_configured_labels() {
        let mut out = String::new();
        build_info(&mut out, Some("billing"), Some("1.2.3"), "production");
        assert_eq!(
            out,
            "# HELP tower_status_build_info Service identity; always 1.\n\
             # TYPE tower_status_build_info gauge\n\
             tower_status_build_info{service=\"billing\",version=\"1.2.3\",environment=\"production\"} 1\n"
        );
        // Not configured: left out, not an empty label.
        let mut out = String::new();
        build_info(&mut out, None, None, "development");
        assert!(
            out.ends_with("\ntower_status_build_info{environment=\"development\"} 1\n"),
            "{out}"
        );
        let mut out = String::new();
        build_info(&mut out, None, Some("2.0"), "dev");
        assert!(
            out.ends_with("\ntower_status_build_info{version=\"2.0\",environment=\"dev\"} 1\n"),
            "{out}"
        );
        // Label values escaped: backslash, double quote, newline.
        let mut out = String::new();
        build_info(&mut out, Some("a\"b"), Some("1\\2"), "x\ny");
        assert!(
            out.ends_with(
                "tower_status_build_info{service=\"a\\\"b\",version=\"1\\\\2\",environment=\"x\\ny\"} 1\n"
            ),
            "{out}"
        );
    }
}
