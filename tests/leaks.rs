//! Leaks: what an anonymous caller (and a key without the details
//! permission) can learn, and whether an API key ever comes back.
//!
//! One layer is configured with distinctive secrets everywhere a detail can
//! hide: component names (checks, a pushed component, the `traffic` rule),
//! error texts, check details, the service name, version and environment,
//! sections, the caller's identity and attributes, a maintenance notice,
//! plus real pass-through traffic. It uses `api_keys(..)` with
//! `require_key(Endpoint::Report, false)` and
//! `show_details(Visibility::WhenAuthorized)`, so an anonymous caller gets
//! the report, but only its overall status.
//!
//! Every path and format the layer serves is asked, with `GET` and `HEAD`
//! (and other methods for `405`): the report as JSON, `?format=json`,
//! `?format=ietf`, `Accept: application/health+json`, a registered custom
//! format (by name and media type), `?verbose`, `?exclude=`, `live`,
//! `ready`, components, `metrics`, `watch` (first event, over a real axum
//! server), `openapi.json`, `404`, `400` for an unknown format. Bodies are
//! checked against whitelists of keys, and bodies and headers against every
//! secret. Each test also runs a positive control: a caller with the
//! details permission does see the secrets, so their absence elsewhere
//! means something.
//!
//! API keys (`sk-LEAK-CHECK-42` and variants) are sent valid and invalid,
//! in `X-Api-Key` and `Authorization: Bearer`, on every request; no body or
//! header of any answer may contain them, nor the `Debug` output of the
//! layer, its services, its handle or `ApiKeys`.

mod common;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{bounded, http1_client, send, serve_hello};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tower::{service_fn, Layer};
use tower_status::auth::{ApiKeys, Caller, Endpoint, Identity, Permissions, Visibility};
use tower_status::check::{CheckResult, HealthCheck, TrafficRule};
use tower_status::format::{FormatContext, Rendered};
use tower_status::report::Notice;
use tower_status::{Report, Status, StatusLayer};

// ---------------------------------------------------------------------------
// The secrets
// ---------------------------------------------------------------------------

/// The valid key with every permission.
const KEY: &str = "sk-LEAK-CHECK-42";
/// A valid key that may see the status but not the details.
const STATUS_KEY: &str = "sk-LEAK-CHECK-42-status-only";
/// A scraper's key: the metrics and nothing else.
const SCRAPE_KEY: &str = "sk-LEAK-CHECK-42-scrape";
/// In every key sent, valid or not: no answer may contain it.
const KEY_MARK: &str = "LEAK-CHECK";

const SERVICE: &str = "zz-secret-service";
const VERSION: &str = "9.8.7-secret";
const ENVIRONMENT: &str = "secret-env";
const DB: &str = "zz-secret-db";
const DB_ERROR: &str = "secret-error-text";

/// Everything an anonymous caller must not see (besides the key).
const SECRETS: &[&str] = &[
    DB,
    DB_ERROR,
    "zz-secret-cache",
    "secret-degraded-text",
    "secret-detail-value",
    "zz-secret-type",
    "zz-secret-pushed",
    "secret-pushed-text",
    "zz-secret-section",
    "secret-section-value",
    "zz-secret-caller-section",
    "zz-secret-ops",
    "zz-secret-lb",
    "zz-secret-scraper",
    "secret-attr",
    "secret-maintenance-note",
    SERVICE,
    VERSION,
    ENVIRONMENT,
];

/// Keys of traffic figures and other details: never in an anonymous body.
const DETAIL_KEYS: &[&str] = &[
    "requests",
    "by_class",
    "response_time",
    "response_time_ms",
    "rate_per_second",
    "error_rate",
    "in_flight",
    "window_total",
    "window_seconds",
    "status_requests",
    "uptime_seconds",
    "memory",
    "rss_bytes",
    "components",
    "sections",
    "caller",
    "notice",
    "service",
    "version",
    "environment",
    "reason",
    "checks",
    "releaseId",
    "serviceId",
    "description",
    "notes",
    "output",
];

/// Media type of the custom format.
const CUSTOM_MEDIA: &str = "application/vnd.leak+json";

/// A custom format that shows every field it is handed: whatever reaches a
/// format shows up here.
fn tell_all(report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    Rendered::json(
        ctx.status_code(),
        &json!({
            "state": report.status,
            "svc": report.service,
            "ver": report.version,
            "env": report.environment,
            "names": report.components.keys().collect::<Vec<_>>(),
            "errors": report
                .components
                .values()
                .filter_map(|c| c.error.clone())
                .collect::<Vec<_>>(),
            "total": report.requests.total,
            "classes": report.requests.by_class.len(),
            "served": report.status_requests,
            "up": report.uptime_seconds,
            "latency_count": report.response_time_ms.count,
            "histogram_count": report.histogram.count,
            "mem": report.memory.is_some(),
            "note": report.notice.as_ref().map(|n| n.message.clone()),
            "draining": report.draining,
            "extra": report.sections,
            "who": report.caller.as_ref().map(|c| c.name.clone()),
        }),
    )
}

/// What [`tell_all`] renders for a report with no details at all.
fn told_nothing() -> Value {
    json!({
        "svc": null,
        "ver": null,
        "env": "",
        "names": [],
        "errors": [],
        "total": 0,
        "classes": 0,
        "served": 0,
        "up": 0,
        "latency_count": 0,
        "histogram_count": 0,
        "mem": false,
        "note": null,
        "draining": false,
        "extra": {},
        "who": null,
    })
}

/// The layer under test: secrets everywhere, the report open to anonymous
/// callers (status only), details for [`KEY`].
fn layer() -> StatusLayer {
    StatusLayer::new()
        .service_name(SERVICE)
        .version(VERSION)
        .environment(ENVIRONMENT)
        .check(HealthCheck::new(DB, || async { Err::<(), _>(DB_ERROR) }))
        .check(
            HealthCheck::new("zz-secret-cache", || async {
                CheckResult::degraded("secret-degraded-text")
                    .with_details(json!({ "secret-detail-key": "secret-detail-value" }))
                    .with_observed(12, "ms")
            })
            .critical(false)
            .component_type("zz-secret-type"),
        )
        .traffic_rule(TrafficRule::error_rate_above(0.01, Status::Degraded))
        .section("zz-secret-section", || async {
            json!({ "secret-section-key": "secret-section-value" })
        })
        .caller_section("zz-secret-caller-section", |caller: Caller| async move {
            json!({ "who": caller.identity().map(|i| i.name.clone()) })
        })
        .format("custom", Some(CUSTOM_MEDIA), tell_all)
        .api_keys(
            ApiKeys::new()
                .key(
                    KEY,
                    Identity::new("zz-secret-ops").attribute("tier", "secret-attr"),
                )
                .key(
                    STATUS_KEY,
                    Identity::new("zz-secret-lb").permissions(Permissions::STATUS),
                )
                .key(
                    SCRAPE_KEY,
                    Identity::new("zz-secret-scraper").permissions(Permissions::METRICS),
                ),
        )
        .require_key(Endpoint::Report, false)
        .show_details(Visibility::WhenAuthorized)
        .count_requests_per_key(Duration::from_secs(3600))
        .serve_metrics(true)
        .serve_openapi(true)
        .watch_interval(Duration::from_millis(20))
}

/// The inner service: marks its answers, fails on `/fail`.
fn inner(
    req: Request<Full<Bytes>>,
) -> impl std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> {
    let fail = req.uri().path() == "/fail";
    async move {
        let mut res = Response::new(Full::new(Bytes::from_static(b"inner")));
        res.headers_mut()
            .insert("x-inner", HeaderValue::from_static("1"));
        if fail {
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
        Ok(res)
    }
}

/// What the tests call: the layer over [`inner`], as a cloneable service.
trait StatusService:
    tower::Service<
        Request<Full<Bytes>>,
        Response = Response<tower_status::body::ResponseBody<Full<Bytes>>>,
        Error = Infallible,
    > + Clone
{
}

impl<S> StatusService for S where
    S: tower::Service<
            Request<Full<Bytes>>,
            Response = Response<tower_status::body::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        > + Clone
{
}

/// The layered service, with a pushed component and some real traffic
/// (2xx and 5xx) already recorded.
async fn service() -> impl StatusService {
    let layer = layer().check(HealthCheck::pushed("zz-secret-pushed").critical(false));
    layer
        .clone()
        .build()
        .set_component("zz-secret-pushed", CheckResult::down("secret-pushed-text"));
    let svc = layer.layer(service_fn(inner));
    for path in ["/", "/fail", "/users/7", "/fail"] {
        let (parts, _) = send(svc.clone(), common::get(path)).await;
        assert!(
            parts.headers.contains_key("x-inner"),
            "{path} passes through"
        );
    }
    svc
}

// ---------------------------------------------------------------------------
// Requests and checks
// ---------------------------------------------------------------------------

/// A request: method, path and query, raw header values.
fn request(method: &Method, uri: &str, headers: &[(&str, &[u8])]) -> Request<Full<Bytes>> {
    let mut req = common::request(method.clone(), uri);
    for (name, value) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    req
}

/// An answer as the tests read it.
#[derive(Debug)]
struct Answer {
    what: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", self.what, self.text()))
    }

    /// The body's top-level keys.
    fn keys(&self) -> BTreeSet<String> {
        match self.json() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("{}: not an object: {other}", self.what),
        }
    }

    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends `method uri` with `headers` through `svc` (oneshot) and reads all.
async fn ask<S: StatusService>(
    svc: &S,
    method: &Method,
    uri: &str,
    headers: &[(&str, &[u8])],
) -> Answer {
    let req = request(method, uri, headers);
    let (parts, body) = send(svc.clone(), req).await;
    Answer {
        what: format!("{method} {uri} {:?}", shown(headers)),
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET uri` with the valid key, which may see every detail.
async fn ask_with_key<S: StatusService>(svc: &S, uri: &str) -> Answer {
    ask(svc, &Method::GET, uri, &[("x-api-key", KEY.as_bytes())]).await
}

/// Header names of a request, for messages (never the values: keys).
fn shown(headers: &[(&str, &[u8])]) -> Vec<String> {
    headers
        .iter()
        .map(|(n, v)| format!("{n}({}B)", v.len()))
        .collect()
}

/// Every JSON object key in `value`, at any depth.
fn all_keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                all_keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

/// No key, anywhere in the answer: body, header names, header values.
fn assert_no_key(a: &Answer) {
    assert!(
        !a.text().contains(KEY_MARK),
        "{}: the API key is in the body: {:?}",
        a.what,
        a.text().replace(KEY_MARK, "<KEY>")
    );
    for (name, value) in &a.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        assert!(
            !name.as_str().contains(&KEY_MARK.to_ascii_lowercase()) && !value.contains(KEY_MARK),
            "{}: the API key is in header {name}",
            a.what
        );
    }
}

/// Nothing a caller without details may learn: no secret in the body or a
/// header, no detail key in a JSON body, no key.
fn assert_nothing_leaks(a: &Answer) {
    assert_no_key(a);
    let text = a.text();
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{}: {secret:?} in the body: {text}",
            a.what
        );
        for (name, value) in &a.headers {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(secret),
                "{}: {secret:?} in header {name}",
                a.what
            );
        }
    }
    for detail in DETAIL_KEYS {
        assert!(
            !text.contains(&format!("\"{detail}\"")),
            "{}: {detail:?} in the body: {text}",
            a.what
        );
    }
    if !a.body.is_empty() && a.content_type().contains("json") {
        let mut keys = BTreeSet::new();
        all_keys(&a.json(), &mut keys);
        for detail in DETAIL_KEYS {
            assert!(!keys.contains(*detail), "{}: key {detail:?}", a.what);
        }
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// An error body: exactly `error` and `code`, with the given code.
fn assert_error(a: &Answer, status: StatusCode, code: &str) {
    assert_eq!(a.status, status, "{}: {}", a.what, a.text());
    assert_eq!(a.keys(), set(&["error", "code"]), "{}", a.what);
    assert_eq!(a.json()["code"], code, "{}", a.what);
    assert_nothing_leaks(a);
}

/// Anonymous `GET uri` answers the error `status` with `code`, and `HEAD uri`
/// the same status with nothing leaking; returns both answers.
async fn assert_refused<S: StatusService>(
    svc: &S,
    uri: &str,
    status: StatusCode,
    code: &str,
) -> (Answer, Answer) {
    let a = ask(svc, &Method::GET, uri, &[]).await;
    assert_error(&a, status, code);
    let h = ask(svc, &Method::HEAD, uri, &[]).await;
    assert_eq!(h.status, status, "{}", h.what);
    assert_nothing_leaks(&h);
    (a, h)
}

/// The report endpoints in every format, for a caller without details:
/// `(query, accept header, what the body must be)`.
enum Shape {
    /// `{status, timestamp}` (the built-in JSON).
    Minimal,
    /// `{status}` with an IETF word, as `application/health+json`.
    Ietf,
    /// [`tell_all`]'s body, with nothing told.
    Custom,
}

const REPORT_FORMS: &[(&str, Option<&str>, Shape)] = &[
    ("/status", None, Shape::Minimal),
    ("/status/", None, Shape::Minimal),
    ("/status?format=json", None, Shape::Minimal),
    ("/status?verbose", None, Shape::Minimal),
    (
        "/status?verbose=1&exclude=no-such-component",
        None,
        Shape::Minimal,
    ),
    ("/status", Some("application/json"), Shape::Minimal),
    ("/status?format=ietf", None, Shape::Ietf),
    ("/status?format=ietf&verbose", None, Shape::Ietf),
    ("/status", Some("application/health+json"), Shape::Ietf),
    (
        "/status",
        Some("application/xml, application/health+json;q=0.9"),
        Shape::Ietf,
    ),
    ("/status?format=custom", None, Shape::Custom),
    ("/status?format=custom&verbose", None, Shape::Custom),
    ("/status", Some(CUSTOM_MEDIA), Shape::Custom),
];

/// Checks a report answer given to a caller without details.
fn assert_status_only(a: &Answer, shape: &Shape, expected: Status) {
    assert_nothing_leaks(a);
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}: the overall status is down",
        a.what
    );
    assert_eq!(
        a.headers.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "{}",
        a.what
    );
    let body = a.json();
    match shape {
        Shape::Minimal => {
            assert_eq!(a.content_type(), "application/json", "{}", a.what);
            assert_eq!(a.keys(), set(&["status", "timestamp"]), "{}", a.what);
            assert_eq!(body["status"], expected.as_str(), "{}", a.what);
        }
        Shape::Ietf => {
            assert_eq!(a.content_type(), "application/health+json", "{}", a.what);
            assert_eq!(a.keys(), set(&["status"]), "{}", a.what);
            assert_eq!(
                body["status"],
                tower_status::format::ietf_word(expected),
                "{}",
                a.what
            );
        }
        Shape::Custom => {
            let mut told = body.clone();
            let state = told
                .as_object_mut()
                .and_then(|m| m.remove("state"))
                .expect("state");
            assert_eq!(state, expected.as_str(), "{}", a.what);
            assert_eq!(told, told_nothing(), "{}", a.what);
        }
    }
}

// ---------------------------------------------------------------------------
// Anonymous callers
// ---------------------------------------------------------------------------

#[tokio::test]
async fn anonymous_report_in_every_format_shows_only_the_status() {
    let svc = service().await;
    for (uri, accept, shape) in REPORT_FORMS {
        let headers: Vec<(&str, &[u8])> = accept.iter().map(|a| ("accept", a.as_bytes())).collect();
        let a = ask(&svc, &Method::GET, uri, &headers).await;
        assert_status_only(&a, shape, Status::Down);

        // HEAD: the same headers, no body, nothing in the headers either.
        let h = ask(&svc, &Method::HEAD, uri, &headers).await;
        assert_eq!(h.status, a.status, "{}", h.what);
        assert!(h.body.is_empty(), "{}: HEAD has a body", h.what);
        assert_eq!(h.content_type(), a.content_type(), "{}", h.what);
        assert_nothing_leaks(&h);
    }
}

#[tokio::test]
async fn anonymous_probes_show_only_the_status() {
    let svc = service().await;
    for uri in [
        "/status/live",
        "/status/live/",
        "/status/live?verbose",
        "/status/ready",
        "/status/ready/",
        "/status/ready?verbose",
        "/status/ready?verbose=1&format=ietf",
        "/status/ready?exclude=zz-secret-db&verbose",
    ] {
        let a = ask(&svc, &Method::GET, uri, &[]).await;
        assert_nothing_leaks(&a);
        assert_eq!(a.keys(), set(&["status", "timestamp"]), "{}", a.what);
        let h = ask(&svc, &Method::HEAD, uri, &[]).await;
        assert!(h.body.is_empty(), "{}", h.what);
        assert_eq!(h.status, a.status, "{}", h.what);
        assert_nothing_leaks(&h);
    }
    // Readiness fails (a critical check is down) without saying why.
    let ready = ask(&svc, &Method::GET, "/status/ready?verbose", &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "down");
}

/// `?exclude=NAME` changes the overall status only when a component of
/// that name exists and is failing: for a caller who may not see component
/// names, it is an oracle that confirms guessed names (and that they fail).
/// Without details, the answer must not depend on the names excluded (the
/// layer ignores `?exclude=` for such callers since f6db004; this test
/// found the oracle).
#[tokio::test]
async fn anonymous_exclude_is_no_oracle_for_component_names() {
    let svc = service().await;
    let mut oracles = Vec::new();
    for (base, guess, miss) in [
        (
            "/status",
            "/status?exclude=zz-secret-db",
            "/status?exclude=no-such-component",
        ),
        (
            "/status/ready",
            "/status/ready?exclude=zz-secret-db",
            "/status/ready?exclude=no-such-component",
        ),
    ] {
        let plain = ask(&svc, &Method::GET, base, &[]).await;
        let hit = ask(&svc, &Method::GET, guess, &[]).await;
        let missed = ask(&svc, &Method::GET, miss, &[]).await;
        assert_eq!(plain.status, missed.status, "{}", missed.what);
        let seen = |a: &Answer| (a.status, a.json()["status"].clone());
        if seen(&hit) != seen(&missed) {
            oracles.push(format!(
                "{guess} answers {:?} but {miss} answers {:?}",
                seen(&hit),
                seen(&missed)
            ));
        }
    }
    assert!(oracles.is_empty(), "{oracles:#?}");
}

#[tokio::test]
async fn anonymous_components_metrics_and_errors_show_nothing() {
    let svc = service().await;
    // Components and metrics need details: 401, the same for a component
    // that exists and one that does not (existence is a detail too).
    let unknown = ask(&svc, &Method::GET, "/status/no-such-component", &[]).await;
    assert_error(&unknown, StatusCode::UNAUTHORIZED, "unauthorized");
    for uri in [
        "/status/zz-secret-db",
        "/status/zz-secret-db/",
        "/status/zz-secret-cache",
        "/status/zz-secret-pushed",
        "/status/traffic",
        "/status/zz%2Dsecret%2Ddb",
        "/status/zz-secret-db?verbose",
        "/status/metrics",
        "/status/metrics?format=ietf",
    ] {
        let (a, h) = assert_refused(&svc, uri, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_eq!(
            a.body, unknown.body,
            "{}: differs from an unknown name",
            a.what
        );
        assert_eq!(
            a.headers.get("www-authenticate"),
            unknown.headers.get("www-authenticate"),
            "{}",
            a.what
        );
        assert!(h.body.is_empty(), "{}", h.what);
    }
    // 404 below the status path.
    for uri in ["/status/a/b", "/status/zz-secret-db/x", "/status/live/x"] {
        assert_refused(&svc, uri, StatusCode::NOT_FOUND, "not_found").await;
    }
    // 400 for unknown formats: the name asked for is not echoed either.
    for uri in [
        "/status?format=nope",
        "/status?format=zz-secret-db",
        "/status?format=sk-LEAK-CHECK-42",
        "/status?format=",
    ] {
        assert_refused(&svc, uri, StatusCode::BAD_REQUEST, "unknown_format").await;
    }
    // 405 for any other method, everywhere below the path.
    for (method, uri) in [
        (Method::POST, "/status"),
        (Method::PUT, "/status?format=ietf"),
        (Method::DELETE, "/status/zz-secret-db"),
        (Method::PATCH, "/status/metrics"),
        (Method::OPTIONS, "/status/watch"),
        (Method::POST, "/status/openapi.json"),
        (Method::TRACE, "/status/ready?verbose"),
    ] {
        let a = ask(&svc, &method, uri, &[]).await;
        assert_error(&a, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(a.headers.get("allow").unwrap(), "GET, HEAD", "{}", a.what);
    }
    // HEAD of the event stream: headers only.
    let h = ask(&svc, &Method::HEAD, "/status/watch", &[]).await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.content_type(), "text/event-stream");
    assert!(h.body.is_empty());
    assert_nothing_leaks(&h);
}

#[tokio::test]
async fn maintenance_notice_and_draining_stay_private() {
    let layer = layer();
    let handle = layer.clone().build();
    handle.set_maintenance(
        Notice::new("secret-maintenance-note")
            .estimated_completion(SystemTime::now() + Duration::from_secs(120)),
    );
    handle.start_draining();
    let svc = layer.layer(service_fn(inner));
    for (uri, accept, shape) in REPORT_FORMS {
        let headers: Vec<(&str, &[u8])> = accept.iter().map(|a| ("accept", a.as_bytes())).collect();
        let a = ask(&svc, &Method::GET, uri, &headers).await;
        assert_status_only(&a, shape, Status::Maintenance);
        // Documented: Retry-After goes to every caller; it is no detail.
        let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(
            (1..=120).contains(&retry),
            "{}: Retry-After {retry}",
            a.what
        );
    }
    for uri in ["/status/ready", "/status/ready?verbose", "/status/live"] {
        let a = ask(&svc, &Method::GET, uri, &[]).await;
        assert_nothing_leaks(&a);
        assert_eq!(a.keys(), set(&["status", "timestamp"]), "{}", a.what);
        assert!(!a.text().contains("draining"), "{}", a.what);
    }
    // Positive control: a caller with details sees the notice.
    let full = ask_with_key(&svc, "/status").await;
    assert!(
        full.text().contains("secret-maintenance-note"),
        "{}",
        full.text()
    );
    assert_no_key(&full);
}

// ---------------------------------------------------------------------------
// A key without the details permission
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_key_without_details_sees_what_anonymous_callers_see() {
    let svc = service().await;
    let bearer = format!("Bearer {STATUS_KEY}");
    for cred in [
        ("x-api-key", STATUS_KEY.as_bytes()),
        ("authorization", bearer.as_bytes()),
    ] {
        for (uri, accept, shape) in REPORT_FORMS {
            let mut headers = vec![cred];
            headers.extend(accept.iter().map(|a| ("accept", a.as_bytes())));
            let a = ask(&svc, &Method::GET, uri, &headers).await;
            assert_status_only(&a, shape, Status::Down);
        }
        for uri in ["/status/live?verbose", "/status/ready?verbose"] {
            let a = ask(&svc, &Method::GET, uri, &[cred]).await;
            assert_nothing_leaks(&a);
            assert_eq!(a.keys(), set(&["status", "timestamp"]), "{}", a.what);
        }
        for uri in ["/status/zz-secret-db", "/status/metrics", "/status/nope"] {
            let a = ask(&svc, &Method::GET, uri, &[cred]).await;
            assert_error(&a, StatusCode::FORBIDDEN, "forbidden");
        }
    }
}

#[tokio::test]
async fn a_scraper_key_sees_the_metrics_and_nothing_else() {
    let svc = service().await;
    let bearer = format!("Bearer {SCRAPE_KEY}");
    for cred in [
        ("x-api-key", SCRAPE_KEY.as_bytes()),
        ("authorization", bearer.as_bytes()),
    ] {
        for (uri, accept, _) in REPORT_FORMS {
            let mut headers = vec![cred];
            headers.extend(accept.iter().map(|a| ("accept", a.as_bytes())));
            let a = ask(&svc, &Method::GET, uri, &headers).await;
            assert_error(&a, StatusCode::FORBIDDEN, "forbidden");
        }
        for uri in ["/status/live?verbose", "/status/ready?verbose"] {
            let a = ask(&svc, &Method::GET, uri, &[cred]).await;
            assert_nothing_leaks(&a);
            assert_eq!(a.keys(), set(&["status", "timestamp"]), "{}", a.what);
        }
        for uri in [
            "/status/zz-secret-db",
            "/status/transitions",
            "/status/nope",
        ] {
            let a = ask(&svc, &Method::GET, uri, &[cred]).await;
            assert_error(&a, StatusCode::FORBIDDEN, "forbidden");
        }
        // The metrics: every detail they hold, and still no key.
        let a = ask(&svc, &Method::GET, "/status/metrics", &[cred]).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert!(a.text().contains(DB), "{}", a.text());
        assert_no_key(&a);
    }
}

// ---------------------------------------------------------------------------
// The event stream, over a real server
// ---------------------------------------------------------------------------

/// Serves an axum app behind [`layer`] on a loopback port.
async fn serve() -> SocketAddr {
    serve_hello(&layer()).await
}

/// `GET /status/watch` with `headers` over a real HTTP/1.1 connection:
/// the answer with its body up to the first event (or the whole body,
/// when it is not a stream).
async fn first_event(addr: SocketAddr, headers: &[(&str, &[u8])]) -> Answer {
    let client = http1_client();
    let req = request(
        &Method::GET,
        &format!("http://{addr}/status/watch"),
        headers,
    );
    let res = bounded("watch request", client.request(req))
        .await
        .expect("watch request");
    let (parts, mut body) = res.into_parts();
    let mut buf = Vec::new();
    bounded("first event", async {
        // Bounded by the step timeout: a stream sends an event within it.
        while !buf.windows(2).any(|w| w == b"\n\n") {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => panic!("watch body failed: {e}"),
                None => break,
            }
        }
    })
    .await;
    Answer {
        what: format!("GET /status/watch {:?}", shown(headers)),
        status: parts.status,
        headers: parts.headers,
        body: Bytes::from(buf),
    }
}

/// The JSON of the first `event: status`.
fn event_data(a: &Answer) -> Value {
    let text = a.text();
    let event = text
        .split("\n\n")
        .find(|e| e.starts_with("event: status"))
        .unwrap_or_else(|| panic!("{}: no status event in {text:?}", a.what));
    let data = event
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("{}: no data in {event:?}", a.what));
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{}: data not JSON ({e})", a.what))
}

#[tokio::test]
async fn watch_first_event_shows_anonymous_callers_only_the_status() {
    let addr = serve().await;
    let bearer = format!("Bearer {STATUS_KEY}");
    for headers in [
        vec![],
        vec![("x-api-key", STATUS_KEY.as_bytes())],
        vec![("authorization", bearer.as_bytes())],
    ] {
        let a = first_event(addr, &headers).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.what);
        assert_eq!(a.content_type(), "text/event-stream", "{}", a.what);
        assert_nothing_leaks(&a);
        assert_eq!(event_data(&a), json!({ "status": "down" }), "{}", a.what);
    }
    // Positive control: the caller with details sees the components.
    let full = first_event(addr, &[("x-api-key", KEY.as_bytes())]).await;
    assert_no_key(&full);
    let data = event_data(&full);
    assert_eq!(data["components"][DB], "down", "{data}");
    // A wrong key is refused, and not echoed.
    let wrong = first_event(addr, &[("x-api-key", b"sk-LEAK-CHECK-42-wrong")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_nothing_leaks(&wrong);
}

// ---------------------------------------------------------------------------
// The OpenAPI document
// ---------------------------------------------------------------------------

/// The document is public by design (`serve_openapi`: "open to everyone,
/// as it holds no health data") and documented to carry the configured
/// service name and version in `info`: those are expected there. It must
/// not carry keys, errors, the environment or the notice.
#[tokio::test]
async fn openapi_document_is_public_and_holds_no_keys_or_health_data() {
    let layer = layer();
    layer
        .clone()
        .build()
        .set_maintenance(Notice::new("secret-maintenance-note"));
    let svc = layer.clone().layer(service_fn(inner));
    let bearer = format!("Bearer {KEY}");
    for headers in [
        vec![],
        vec![("x-api-key", KEY.as_bytes())],
        vec![("authorization", bearer.as_bytes())],
        vec![("x-api-key", &b"sk-LEAK-CHECK-42-wrong"[..])],
    ] {
        let a = ask(&svc, &Method::GET, "/status/openapi.json", &headers).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.what);
        assert_no_key(&a);
        let doc = a.json();
        assert_eq!(doc["info"]["title"], format!("{SERVICE} status"));
        assert_eq!(doc["info"]["version"], VERSION);
        let text = a.text();
        for secret in [
            DB_ERROR,
            "secret-degraded-text",
            "secret-detail-value",
            "secret-pushed-text",
            "secret-section-value",
            "secret-attr",
            "secret-maintenance-note",
            ENVIRONMENT,
        ] {
            assert!(
                !text.contains(secret),
                "{}: {secret:?} in the document",
                a.what
            );
        }
        // The service name and version appear nowhere but in `info`.
        let mut rest = doc.clone();
        rest["info"]["title"] = Value::Null;
        rest["info"]["version"] = Value::Null;
        let rest = rest.to_string();
        assert!(!rest.contains(SERVICE) && !rest.contains(VERSION), "{rest}");
        let h = ask(&svc, &Method::HEAD, "/status/openapi.json", &headers).await;
        assert!(h.body.is_empty());
        assert_no_key(&h);
    }
    // The in-process document says the same and names no key either.
    assert!(!layer
        .clone()
        .build()
        .openapi()
        .to_string()
        .contains(KEY_MARK));
}

/// Component and section names are details ("component names, errors,
/// versions, traffic"): an anonymous caller gets 401 for
/// `/status/zz-secret-db`, so the public document must not list them
/// either (it did, as `{component}` examples and `sections` properties,
/// until f6db004; this test found it).
#[tokio::test]
async fn openapi_document_names_no_components_or_sections() {
    let svc = layer().layer(service_fn(inner));
    let a = ask(&svc, &Method::GET, "/status/openapi.json", &[]).await;
    assert_eq!(a.status, StatusCode::OK);
    let text = a.text();
    for name in [
        DB,
        "zz-secret-cache",
        "zz-secret-section",
        "zz-secret-caller-section",
    ] {
        assert!(
            !text.contains(name),
            "{name:?} in the public document: {}",
            text.match_indices(name)
                .map(|(i, _)| &text[i.saturating_sub(80)..(i + 80).min(text.len())])
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}

// ---------------------------------------------------------------------------
// Keys never come back
// ---------------------------------------------------------------------------

/// Every resource, with the methods the test sends to each.
const RESOURCES: &[&str] = &[
    "/status",
    "/status/",
    "/status?format=ietf",
    "/status?format=custom",
    "/status?format=nope",
    "/status?verbose",
    "/status?api_key=sk-LEAK-CHECK-42",
    "/status/live",
    "/status/ready?verbose",
    "/status/zz-secret-db",
    "/status/no-such-component",
    "/status/sk-LEAK-CHECK-42",
    "/status/metrics",
    "/status/openapi.json",
    "/status/a/b",
    "/",
    "/fail",
];

#[tokio::test]
async fn api_keys_never_appear_in_any_answer() {
    let svc = service().await;
    let valid_bearer = format!("Bearer {KEY}");
    let status_bearer = format!("bearer   {STATUS_KEY}  ");
    let invalid = format!("{KEY}-invalid");
    let invalid_bearer = format!("Bearer {KEY}x");
    let basic = format!("Basic {KEY}");
    let padded = format!("  {KEY}  ");
    let token_only = format!("Token {KEY}");
    let scrape_bearer = format!("Bearer {SCRAPE_KEY}");
    let variants: Vec<Vec<(&str, &[u8])>> = vec![
        vec![("x-api-key", KEY.as_bytes())],
        vec![("authorization", valid_bearer.as_bytes())],
        vec![("x-api-key", STATUS_KEY.as_bytes())],
        vec![("authorization", status_bearer.as_bytes())],
        vec![("x-api-key", SCRAPE_KEY.as_bytes())],
        vec![("authorization", scrape_bearer.as_bytes())],
        vec![("x-api-key", padded.as_bytes())],
        vec![("x-api-key", invalid.as_bytes())],
        vec![("authorization", invalid_bearer.as_bytes())],
        vec![("authorization", basic.as_bytes())],
        vec![("authorization", token_only.as_bytes())],
        vec![
            ("x-api-key", KEY.as_bytes()),
            ("x-api-key", invalid.as_bytes()),
        ],
        vec![
            ("authorization", valid_bearer.as_bytes()),
            ("authorization", invalid_bearer.as_bytes()),
        ],
        vec![
            ("x-api-key", invalid.as_bytes()),
            ("authorization", valid_bearer.as_bytes()),
        ],
        vec![
            ("x-api-key", KEY.as_bytes()),
            ("accept", b"application/health+json"),
        ],
        vec![
            ("authorization", valid_bearer.as_bytes()),
            ("accept", CUSTOM_MEDIA.as_bytes()),
        ],
    ];
    let mut answers = 0;
    let mut codes = BTreeSet::new();
    for headers in &variants {
        for uri in RESOURCES {
            for method in [Method::GET, Method::HEAD, Method::POST] {
                let a = ask(&svc, &method, uri, headers).await;
                assert_no_key(&a);
                answers += 1;
                codes.insert(a.status.as_u16());
            }
        }
    }
    assert_eq!(answers, variants.len() * RESOURCES.len() * 3);
    // The answers cover success and every refusal.
    for code in [200, 400, 401, 403, 404, 405, 503] {
        assert!(codes.contains(&code), "no {code} among {codes:?}");
    }

    // Positive control: the valid key sees every detail, in every format.
    let full = ask_with_key(&svc, "/status").await;
    let report = full.json();
    assert_eq!(report["service"], SERVICE);
    assert_eq!(report["environment"], ENVIRONMENT);
    assert_eq!(report["components"][DB]["error"], DB_ERROR);
    assert_eq!(report["caller"]["name"], "zz-secret-ops");
    assert!(report["requests"]["total"].as_u64().unwrap() >= 4);
    let custom = ask(
        &svc,
        &Method::GET,
        "/status?format=custom",
        &[("authorization", valid_bearer.as_bytes())],
    )
    .await;
    assert_ne!(custom.json()["names"], json!([]), "{}", custom.text());
    let ietf = ask_with_key(&svc, "/status?format=ietf").await;
    assert!(ietf.text().contains(DB_ERROR), "{}", ietf.text());
    let metrics = ask_with_key(&svc, "/status/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.text().contains(DB), "{}", metrics.text());
    assert_no_key(&metrics);
}

#[tokio::test]
async fn keys_from_a_lookup_never_appear_either() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new(DB, || async { Err::<(), _>(DB_ERROR) }))
        .api_keys(ApiKeys::new().lookup(|key: String| async move {
            (key == KEY).then(|| Identity::new("zz-secret-ops"))
        }))
        .require_key(Endpoint::Report, false)
        .show_details(Visibility::WhenAuthorized);
    let svc = layer.clone().layer(service_fn(inner));
    let wrong = format!("{KEY}-wrong");
    for headers in [
        vec![("x-api-key", KEY.as_bytes())],
        vec![("x-api-key", wrong.as_bytes())],
    ] {
        for uri in ["/status", "/status/zz-secret-db", "/status/ready?verbose"] {
            let a = ask(&svc, &Method::GET, uri, &headers).await;
            assert_no_key(&a);
        }
    }
    // The lookup's cache holds both keys now; Debug still shows neither.
    for shown in [format!("{layer:?}"), format!("{svc:?}")] {
        assert!(!shown.contains(KEY_MARK), "{shown}");
    }
}

// ---------------------------------------------------------------------------
// Debug output
// ---------------------------------------------------------------------------

#[test]
fn debug_output_names_no_key() {
    const VAR: &str = "TOWER_STATUS_LEAKS_TEST_KEYS";
    // Set once, by this test only, before any thread of it reads it.
    std::env::set_var(VAR, "sk-LEAK-CHECK-42-env-a, sk-LEAK-CHECK-42-env-b");
    let keys = ApiKeys::new()
        .key(KEY, Identity::new("ops"))
        .key(
            STATUS_KEY,
            Identity::new("lb").permissions(Permissions::STATUS),
        )
        .keys_from_env(VAR, Identity::new("env"))
        .header(HeaderName::from_static("x-leak-key"));
    let shown = format!("{keys:?} {keys:#?}");
    assert!(!shown.contains(KEY_MARK), "{shown}");
    assert!(
        shown.contains("keys: 4"),
        "the four keys are counted: {shown}"
    );

    let layer = layer().api_keys(keys.clone());
    let svc = layer.clone().layer(service_fn(inner));
    for shown in [
        format!("{layer:?}"),
        format!("{layer:#?}"),
        format!("{svc:?}"),
        format!("{:?}", layer.clone().build()),
    ] {
        assert!(!shown.contains(KEY_MARK), "{shown}");
    }
    // The layer's Debug is real output, not empty.
    assert!(format!("{layer:?}").contains("StatusLayer"));
}
