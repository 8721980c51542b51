//! One handler per resource: each builds its answer from the collected
//! report under the caller's access.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::events::{SseBody, StatusBody};
use super::responses::{error, json, not_found, rendered, retry_after, vary_accept, ErrorCode};
use super::routes::Query;
use super::signals;
use crate::auth::{Caller, Refusal};
use crate::format::{Format, FormatContext, Probe as Answer, Rendered};
use crate::report::{CallerSummary, Component, Status, Timestamp, TRAFFIC_COMPONENT};
use crate::state::{
    collect, collect_parts, failing_dependencies, subscribe, traffic_only, Selection, Shared,
};

/// The full report, in the format the request asks for.
pub(crate) async fn report(
    shared: &Shared,
    query: Query,
    caller: Caller,
    headers: &HeaderMap,
    started: Instant,
) -> Response<Full<Bytes>> {
    // A browser gets the page, unless a format is named.
    if shared.config.formats.prefers_page(&query.pairs, headers) {
        return super::page::page(shared, caller).await;
    }
    // Chosen before any check runs: a bad request costs no work.
    let Ok(format) = shared.config.formats.choose(&query.pairs, headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::UnknownFormat,
            "no format of that name; leave out ?format= for the default",
        );
    };
    let selection = Selection {
        only_critical: false,
        // Only for callers who see components: for anyone else it would confirm guessed names.
        exclude: if caller.details {
            query.exclude
        } else {
            Vec::new()
        },
        ..Selection::default()
    };
    if shared.config.formats.is_builtin_json(&format) {
        // The default JSON is written straight from the collected parts,
        // each cached component's rendered JSON reused: no typed report.
        let parts = collect_parts(shared, &selection, &caller).await;
        let code = signals::code(&shared.config, Answer::Report, parts.status);
        let r = if caller.details {
            let summary = caller_summary(&caller);
            let body = parts.to_json(summary.as_ref());
            Rendered::new(code, "application/json", body)
        } else {
            crate::format::json::minimal(code, parts.status, parts.timestamp)
        };
        let mut res = rendered(r);
        vary_accept(&mut res);
        retry_after(&mut res, parts.notice.as_ref());
        signals::apply(shared, Answer::Report, parts.status, &mut res);
        return res;
    }
    let mut report = collect(shared, &selection, &caller).await;
    let status = report.status;
    let code = signals::code(&shared.config, Answer::Report, status);
    // Kept before redaction: Retry-After is for every caller.
    let notice = report.notice.clone();
    if caller.details {
        report.caller = caller_summary(&caller);
    } else {
        // Only the overall status reaches the format: no names, errors, versions or traffic.
        report = report.redacted();
    }
    let ctx = FormatContext {
        caller: &caller,
        query: &query.pairs,
        headers,
        code,
        started,
    };
    let mut res = rendered(format.render(&report, &ctx));
    vary_accept(&mut res);
    retry_after(&mut res, notice.as_ref());
    signals::apply(shared, Answer::Report, status, &mut res);
    res
}

/// The caller's own section of the report, when it carried a valid key.
fn caller_summary(caller: &Caller) -> Option<CallerSummary> {
    caller.identity.as_ref().map(|identity| CallerSummary {
        name: identity.name.clone(),
        attributes: identity
            .attributes
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "name" | "requests_in_window" | "window_ends"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        requests_in_window: caller.requests_in_window,
        window_ends: caller.window_ends,
    })
}

/// `/status/ready`: critical checks, draining, startup, maintenance.
pub(crate) async fn ready(shared: &Shared, query: Query, details: bool) -> Response<Full<Bytes>> {
    let selection = Selection {
        // A custom aggregation rule decides over every component.
        only_critical: shared.config.aggregation.is_none(),
        exclude: if details { query.exclude } else { Vec::new() },
        ..Selection::default()
    };
    let report = collect(shared, &selection, &Caller::full()).await;
    let (status, reason) = if report.status == Status::Maintenance {
        (Status::Maintenance, Some("maintenance"))
    } else if report.draining {
        (Status::Down, Some("draining"))
    } else if shared.config.startup_gate && !shared.config.checks.started() {
        (
            Status::Down,
            Some("starting: critical checks have not all passed yet"),
        )
    } else {
        (report.status, None)
    };
    // Reasons and components are details.
    let components = (query.verbose && details).then_some(report.components);
    let mut res = probe(shared, status, reason.filter(|_| details), components);
    retry_after(&mut res, report.notice.as_ref());
    signals::apply(shared, Answer::Ready, status, &mut res);
    res
}

/// `/status/live`: the process answers; no check runs.
pub(crate) fn live(shared: &Shared) -> Response<Full<Bytes>> {
    let mut res = probe(shared, Status::Ok, None, None);
    signals::apply(shared, Answer::Live, Status::Ok, &mut res);
    res
}

/// The body of `live` and `ready`.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct Probe<'a> {
    status: Status,
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<BTreeMap<String, Component>>,
}

/// A probe's answer (`/status/live` is always this with `ok`).
pub(crate) fn probe(
    shared: &Shared,
    status: Status,
    reason: Option<&str>,
    components: Option<BTreeMap<String, Component>>,
) -> Response<Full<Bytes>> {
    let body = Probe {
        status,
        timestamp: Timestamp::now(),
        reason,
        components,
    };
    json(shared.config.code(status), &body)
}

/// `/status/{component}`: one component, run if its cached result is stale.
pub(crate) async fn component(shared: &Shared, name: &str) -> Response<Full<Bytes>> {
    #[derive(Serialize)]
    struct Named<'a> {
        name: &'a str,
        #[serde(flatten)]
        component: &'a Component,
    }
    // The same precedence as the report: traffic rules, then pushed values, then checks.
    let traffic = if name == TRAFFIC_COMPONENT {
        traffic_only(shared)
    } else {
        None
    };
    let found = match traffic.or_else(|| shared.lifecycle.pushed_one(name)) {
        Some(c) => Some(c),
        None => match shared.config.checks.get(name) {
            Some(entry) => shared
                .config
                .checks
                .gather(std::iter::once(entry), Instant::now())
                .await
                .0
                .pop()
                .map(|(_, stored)| stored.component.clone()),
            None => None,
        },
    };
    match found {
        Some(mut c) => {
            if c.status != Status::Ok {
                c.blocked_by = failing_dependencies(shared, name);
            }
            let code = if c.status == Status::Down {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            let mut res = json(
                code,
                &Named {
                    name,
                    component: &c,
                },
            );
            signals::apply(shared, Answer::Component, c.status, &mut res);
            res
        }
        None => not_found("no component of that name"),
    }
}

/// `/status/metrics`: the report in Prometheus text format.
pub(crate) async fn metrics(
    shared: &Shared,
    query: Query,
    caller: Caller,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let report = collect(shared, &Selection::all(), &caller).await;
    let ctx = FormatContext {
        caller: &caller,
        query: &query.pairs,
        headers,
        code: StatusCode::OK,
        started: Instant::now(),
    };
    rendered(crate::format::PrometheusFormat.render(&report, &ctx))
}

/// `/status/watch`: Server-Sent Events of status changes.
pub(crate) fn watch(shared: &Arc<Shared>, caller: &Caller, head: bool) -> Response<StatusBody> {
    let body = if head {
        StatusBody::Full(Full::default())
    } else {
        StatusBody::Events(SseBody::new(
            subscribe(shared),
            caller.details,
            shared.config.watch_keepalive,
        ))
    };
    let mut res = Response::new(body);
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Why a caller without details may not see a component or the metrics.
pub(crate) fn details_refusal(caller: &Caller, details_need_key: bool) -> Refusal {
    if caller.identity.is_none() && details_need_key {
        Refusal::Unauthenticated("details need an API key")
    } else if caller.identity.is_some() {
        Refusal::Forbidden("this API key may not see details")
    } else {
        // No key could unlock them: asking again with one would not help.
        Refusal::Forbidden("details are not shown")
    }
}

/// `/status/badge.svg`: the overall status as a README badge.
pub(crate) async fn status_badge(shared: &Shared) -> Response<Full<Bytes>> {
    let selection = Selection {
        status_only: true,
        ..Selection::default()
    };
    let report = collect(shared, &selection, &Caller::full()).await;
    let svg = crate::format::badge::status_badge(report.status);
    rendered(crate::format::badge::badge_response(svg, 60))
}

/// `/status/badge/uptime.svg`: the uptime over the last day as a badge.
pub(crate) fn uptime_badge(shared: &Shared) -> Response<Full<Bytes>> {
    let percent = shared.past.uptime_24h().map(|share| share * 100.0);
    let svg = crate::format::badge::uptime_badge(percent);
    rendered(crate::format::badge::badge_response(svg, 300))
}
