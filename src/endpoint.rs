//! The status endpoint: which requests are ours, and the responses to them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::auth::{Caller, Endpoint, Refusal};
use crate::body::StatusBody;
use crate::format::{Format, FormatContext, Rendered, StatusError};
use crate::future::StatusFuture;
use crate::layer::Shared;
use crate::report::{self, CallerSummary, Component, Notice, Selection, Status, Timestamp};
use crate::watch::SseBody;

/// What a request on the status path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The full report.
    Report,
    /// Liveness: the process answers; no dependency checks.
    Live,
    /// Readiness: critical checks, draining, startup, maintenance.
    Ready,
    /// One component by name.
    Component(String),
    /// Server-Sent Events of status changes.
    Watch,
    /// Prometheus metrics, when enabled.
    Metrics,
    /// The OpenAPI document, when enabled.
    OpenApi,
    /// Anything else below the status path.
    Unknown,
}

/// Matches a request path against the status path. The status path itself,
/// with or without one trailing slash, is the report; everything below it
/// is the endpoint's own (`live`, `ready`, a component name, else 404),
/// except below a status path of `/`, where only `/` itself is ours. The
/// query string is not part of `path`.
#[inline]
pub(crate) fn route(path: &str, base: &str) -> Option<Route> {
    let rest = path.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(Route::Report);
    }
    if base == "/" {
        return None;
    }
    let rest = rest.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    Some(match rest {
        "" => Route::Report,
        "live" => Route::Live,
        "ready" => Route::Ready,
        "watch" => Route::Watch,
        "metrics" => Route::Metrics,
        "openapi.json" => Route::OpenApi,
        name if !name.contains('/') => {
            match percent_encoding::percent_decode_str(name).decode_utf8() {
                Ok(name) => Route::Component(name.into_owned()),
                Err(_) => Route::Unknown,
            }
        }
        _ => Route::Unknown,
    })
}

/// Options from the query string.
#[derive(Debug, Default)]
struct Query {
    verbose: bool,
    exclude: Vec<String>,
    /// Every pair, for formats.
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            q.pairs.push((key.to_string(), value.to_string()));
            match &*key {
                "verbose" => q.verbose = !matches!(&*value, "0" | "false"),
                "exclude" => q.exclude.extend(
                    value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
        q
    }
}

/// Answers a request on the status path.
pub(crate) fn respond(shared: Arc<Shared>, route: Route, parts: Parts) -> StatusFuture {
    shared.recorder.count_status_request();
    let started = std::time::Instant::now();
    Box::pin(async move {
        let head = parts.method == Method::HEAD;
        if parts.method != Method::GET && !head {
            return finish(&shared, method_not_allowed(), false);
        }
        // Optional resources that are off are just component names.
        let route = match route {
            Route::Metrics if !shared.config.serve_metrics => Route::Component("metrics".into()),
            Route::OpenApi if !shared.config.serve_openapi => {
                Route::Component("openapi.json".into())
            }
            // The document holds no health data: open like the probes' schema is.
            Route::OpenApi => {
                let doc = crate::openapi::document(&shared.config);
                return finish(&shared, json(StatusCode::OK, &doc), head);
            }
            route => route,
        };
        let group = match route {
            Route::Live | Route::Ready => Endpoint::Probes,
            _ => Endpoint::Report,
        };
        // Decided before any check runs: a refused request costs no work.
        let access = &shared.config.access;
        let caller = match access.authorize(group, &parts.headers).await {
            Ok(caller) => caller,
            Err(refusal) => return finish(&shared, refused(refusal, access.bearer()), head),
        };
        shared.recorder.ensure_ticker();
        let query = Query::parse(parts.uri.query());
        let res = match route {
            Route::Report => report(&shared, query, caller, &parts.headers, started).await,
            Route::Live => probe(&shared, Status::Ok, None, None),
            Route::Ready => ready(&shared, query, caller.details).await,
            Route::Watch => return watch(&shared, &caller, head),
            // Component names and metrics are details.
            Route::Component(_) | Route::Metrics if !caller.details => refused(
                if caller.identity.is_none() && access.details_need_key() {
                    Refusal::Unauthenticated("details need an API key")
                } else if caller.identity.is_some() {
                    Refusal::Forbidden("this API key may not see details")
                } else {
                    // No key could unlock them: asking again with one would not help.
                    Refusal::Forbidden("details are not shown")
                },
                access.bearer(),
            ),
            Route::Component(name) => component(&shared, &name).await,
            Route::Metrics => metrics(&shared, query, caller, &parts.headers).await,
            Route::OpenApi | Route::Unknown => not_found("no such status resource"),
        };
        finish(&shared, res, head)
    })
}

fn finish(shared: &Shared, res: Response<Full<Bytes>>, head: bool) -> Response<StatusBody> {
    let res = match (
        &shared.config.error_format,
        res.extensions().get::<StatusError>(),
    ) {
        (Some(shape), Some(err)) => reshape(res.headers(), shape.0.render(err)),
        _ => res,
    };
    if head { without_body(res) } else { res }.map(StatusBody::from)
}

/// An error rendered by the user's error format, keeping the endpoint's
/// own headers (`Allow`, `WWW-Authenticate`, `Retry-After`).
fn reshape(original: &http::HeaderMap, r: Rendered) -> Response<Full<Bytes>> {
    let mut res = rendered(r);
    for name in [ALLOW, WWW_AUTHENTICATE, RETRY_AFTER] {
        if let Some(v) = original.get(&name) {
            res.headers_mut().entry(name).or_insert(v.clone());
        }
    }
    res
}

/// `/status/watch`: Server-Sent Events of status changes.
fn watch(shared: &Arc<Shared>, caller: &Caller, head: bool) -> Response<StatusBody> {
    let body = if head {
        StatusBody::Full(Full::default())
    } else {
        let rx = crate::watch::subscribe(shared);
        StatusBody::Events(SseBody::new(
            rx,
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

/// `/status/metrics`: the report in Prometheus text format.
async fn metrics(
    shared: &Shared,
    query: Query,
    caller: Caller,
    headers: &http::HeaderMap,
) -> Response<Full<Bytes>> {
    let report = report::collect(shared, &Selection::all(), &caller).await;
    let ctx = FormatContext {
        caller: &caller,
        query: &query.pairs,
        headers,
        code: StatusCode::OK,
        started: std::time::Instant::now(),
    };
    rendered(crate::format::PrometheusFormat.render(&report, &ctx))
}

async fn report(
    shared: &Shared,
    query: Query,
    caller: Caller,
    headers: &http::HeaderMap,
    started: std::time::Instant,
) -> Response<Full<Bytes>> {
    // Chosen before any check runs: a bad request costs no work.
    let Ok(format) = shared.config.formats.choose(&query.pairs, headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            "unknown_format",
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
    };
    if shared.config.formats.is_builtin_json(&format) {
        // The default JSON is written straight from the collected parts,
        // each cached component's JSON spliced in: no typed report.
        let parts = report::collect_parts(shared, &selection, &caller).await;
        let code = shared.config.code(parts.status);
        let r = if caller.details {
            let summary = caller_summary(&caller);
            let body = parts.to_json(summary.as_ref());
            #[cfg(any(test, all(debug_assertions, feature = "_verify-json")))]
            parts.assert_json(summary.as_ref(), &body);
            Rendered::new(code, "application/json", body)
        } else {
            crate::format::json::minimal(code, parts.status, parts.timestamp)
        };
        let mut res = rendered(r);
        retry_after(&mut res, parts.notice.as_ref());
        return res;
    }
    let mut report = report::collect(shared, &selection, &caller).await;
    let code = shared.config.code(report.status);
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
    retry_after(&mut res, notice.as_ref());
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

/// A format's output as a response, with `Cache-Control: no-store` always.
fn rendered(r: Rendered) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(r.body));
    *res.status_mut() = r.status;
    *res.headers_mut() = r.headers;
    res.headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

fn refused(refusal: Refusal, bearer: bool) -> Response<Full<Bytes>> {
    match refusal {
        Refusal::Unauthenticated(why) => {
            let mut res = error(StatusCode::UNAUTHORIZED, "unauthorized", why);
            if bearer {
                res.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"status\""),
                );
            }
            res
        }
        Refusal::Forbidden(why) => error(StatusCode::FORBIDDEN, "forbidden", why),
        Refusal::Unavailable(why) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable", why)
        }
    }
}

async fn ready(shared: &Shared, query: Query, details: bool) -> Response<Full<Bytes>> {
    let selection = Selection {
        // A custom aggregation rule decides over every component.
        only_critical: shared.config.aggregation.is_none(),
        exclude: if details { query.exclude } else { Vec::new() },
    };
    let report = report::collect(shared, &selection, &Caller::full()).await;
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
    res
}

/// The body of `live` and `ready`.
#[derive(Serialize)]
struct Probe<'a> {
    status: Status,
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<BTreeMap<String, Component>>,
}

fn probe(
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

async fn component(shared: &Shared, name: &str) -> Response<Full<Bytes>> {
    #[derive(Serialize)]
    struct Named<'a> {
        name: &'a str,
        #[serde(flatten)]
        component: &'a Component,
    }
    // The same precedence as the report: traffic rules, then pushed values, then checks.
    let traffic = if name == report::TRAFFIC_COMPONENT {
        report::traffic_only(shared)
    } else {
        None
    };
    let found = match traffic.or_else(|| shared.lifecycle.pushed_one(name)) {
        Some(c) => Some(c),
        None => match shared.config.checks.get(name) {
            Some(entry) => shared
                .config
                .checks
                .gather(std::iter::once(entry), std::time::Instant::now())
                .await
                .0
                .pop()
                .map(|(_, stored)| stored.component.clone()),
            None => None,
        },
    };
    match found {
        Some(c) => {
            let code = if c.status == Status::Down {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            json(
                code,
                &Named {
                    name,
                    component: &c,
                },
            )
        }
        None => not_found("no component of that name"),
    }
}

fn not_found(message: &str) -> Response<Full<Bytes>> {
    error(StatusCode::NOT_FOUND, "not_found", message)
}

/// `Retry-After` in whole seconds until the end of maintenance, when known.
fn retry_after(res: &mut Response<Full<Bytes>>, notice: Option<&Notice>) {
    let Some(until) = notice.and_then(|n| n.estimated_completion) else {
        return;
    };
    if res.status() != StatusCode::SERVICE_UNAVAILABLE {
        return;
    }
    let secs = until
        .0
        .duration_since(SystemTime::now())
        .map_or(1, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .max(1);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
}

/// The body of every error the endpoint returns: `{"error": .., "code": ..}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut res = json(
        status,
        &ErrorBody {
            error: message,
            code,
        },
    );
    // Carried to `finish`, where an error format may shape it.
    res.extensions_mut().insert(StatusError {
        status,
        code: code.to_owned(),
        message: message.to_owned(),
    });
    res
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "only GET and HEAD are allowed on the status endpoint",
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    res
}

/// A JSON response with the endpoint's standard headers.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            *res.status_mut() = status;
            let headers = res.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        // Only a value with non-string map keys fails to serialize; say so rather than panic.
        Err(_) => {
            let mut res = Response::new(Full::new(Bytes::from_static(
                br#"{"error":"the status report could not be serialized","code":"internal_error"}"#,
            )));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

/// The same response with its `Content-Length` kept and its body removed, for `HEAD`.
fn without_body(res: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let len = http_body::Body::size_hint(res.body()).exact().unwrap_or(0);
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    Response::from_parts(parts, Full::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    /// `GET uri` on `layer` (through its service), with an API key: status and body.
    fn get(layer: &crate::StatusLayer, uri: &str, key: Option<&str>) -> (StatusCode, Bytes) {
        use http_body_util::BodyExt;
        use tower::{Layer, ServiceExt};
        let svc = layer.layer(tower::service_fn(
            |_req: http::Request<Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"hi",
                ))))
            },
        ));
        let mut req = http::Request::get(uri).body(Full::default()).unwrap();
        if let Some(key) = key {
            req.headers_mut()
                .insert("x-api-key", HeaderValue::from_str(key).unwrap());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let res = svc.oneshot(req).await.unwrap();
            let status = res.status();
            (status, res.into_body().collect().await.unwrap().to_bytes())
        })
    }

    /// The default JSON written from stored members (checked against the
    /// typed report's serialization by `Collected::assert_json` in tests)
    /// with every optional part of the report present.
    #[test]
    fn spliced_json_is_the_typed_reports() {
        use crate::auth::{ApiKeys, Identity};
        use crate::check::{CheckResult, Freshness, HealthCheck, TrafficRule};
        use crate::handle::ComponentOptions;

        let layer = crate::StatusLayer::new()
            .version("1.2.3")
            .check("z-last", || async { true })
            .check("a \"quoted\" \u{e9}\n", || async {
                CheckResult::degraded("slow \"disk\"")
                    .with_details(serde_json::json!({"retries": 3, "x": [1.5, null]}))
                    .with_observed(12.25, "ms")
            })
            .health_check(
                HealthCheck::new("pushed-over", || async { false })
                    .component_type("datastore")
                    .critical(false)
                    .freshness(Freshness::OnDemand {
                        ttl: Duration::from_secs(3600),
                    }),
            )
            .traffic_rule(TrafficRule::error_rate_above(0.5, Status::Degraded))
            .section("jobs", || async { serde_json::json!({"total": 100}) })
            .api_keys(
                ApiKeys::new().key(
                    "k",
                    Identity::new("ops")
                        .attribute("tier", "gold")
                        .attribute("limit", 10),
                ),
            );
        let handle = layer.handle();
        for uri in ["/status", "/status?exclude=z-last"] {
            let (status, body) = get(&layer, uri, Some("k"));
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        }
        handle.set_component("pushed-over", CheckResult::ok());
        handle.set_component_with(
            "m-pushed",
            CheckResult::down("gone"),
            ComponentOptions::new().critical(false),
        );
        handle.start_draining();
        handle.set_maintenance(
            crate::report::Notice::new("upgrade")
                .estimated_completion(std::time::SystemTime::now() + Duration::from_secs(60)),
        );
        let (status, body) = get(&layer, "/status", Some("k"));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let text = String::from_utf8_lossy(&body);
        for part in [
            "\"notice\"",
            "\"draining\":true",
            "\"caller\"",
            "\"sections\"",
            "\"m-pushed\"",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        // A key is required: without one, refused before any report.
        let (status, _) = get(&layer, "/status", None);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Allowed without a key but not shown details: the minimal body, as
        // `JsonFormat` renders it.
        let layer = layer.require_key(crate::auth::Endpoint::Report, false);
        let (status, body) = get(&layer, "/status", None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["status", "timestamp"], "{v}");
        assert_eq!(v["status"], "maintenance", "{v}");

        // All checks cached, nothing else: the joined board, then parts
        // again once something is pushed.
        let ttl = Freshness::OnDemand {
            ttl: Duration::from_secs(3600),
        };
        let layer = crate::StatusLayer::new()
            .health_check(HealthCheck::new("b", || async { false }).freshness(ttl))
            .health_check(
                HealthCheck::new("a", || async { CheckResult::degraded("x") }).freshness(ttl),
            );
        // Every answer below is also compared byte for byte with the typed
        // report's serialization by `Collected::assert_json`, which runs in
        // every test build; these asserts check what the answers hold.
        let members = |body: &Bytes| -> serde_json::Value {
            serde_json::from_slice::<serde_json::Value>(body).unwrap()["components"].clone()
        };
        let components = |body: &Bytes| -> Vec<String> {
            members(body).as_object().unwrap().keys().cloned().collect()
        };
        let first = get(&layer, "/status", None);
        let second = get(&layer, "/status", None);
        assert_eq!(first.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(second.0, first.0);
        // The second from the cached board: the same stored results.
        assert_eq!(members(&second.1), members(&first.1));
        assert_eq!(components(&first.1), ["a", "b"]);
        layer.handle().set_component("a0", CheckResult::ok());
        let (_, body) = get(&layer, "/status", None);
        assert_eq!(components(&body), ["a", "a0", "b"]);

        // A custom aggregation rule sees the typed components.
        let layer = crate::StatusLayer::new()
            .check("b", || async { false })
            .check("a", || async { true })
            .aggregation(|components| {
                assert_eq!(components.keys().collect::<Vec<_>>(), ["a", "b"]);
                Status::Ok
            });
        for _ in 0..2 {
            let (status, body) = get(&layer, "/status", None);
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        }
        // Nothing at all beside the head: no `components` member.
        let (_, body) = get(&crate::StatusLayer::new(), "/status", None);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "ok", "{v}");
        assert!(v.get("components").is_none(), "{v}");
    }

    #[test]
    fn matches_the_path_with_or_without_slash() {
        assert_eq!(route("/status", "/status"), Some(Route::Report));
        assert_eq!(route("/status/", "/status"), Some(Route::Report));
        assert_eq!(route("/status//", "/status"), Some(Route::Report));
        assert_eq!(route("/status/live", "/status"), Some(Route::Live));
        assert_eq!(route("/status/ready/", "/status"), Some(Route::Ready));
        assert_eq!(
            route("/status/db", "/status"),
            Some(Route::Component("db".into()))
        );
        assert_eq!(
            route("/status/a%20b", "/status"),
            Some(Route::Component("a b".into()))
        );
        assert_eq!(route("/status/a/b", "/status"), Some(Route::Unknown));
        assert_eq!(route("/statusx", "/status"), None);
        assert_eq!(route("/", "/status"), None);
        assert_eq!(route("/", "/"), Some(Route::Report));
        assert_eq!(route("/x", "/"), None);
    }
}
