//! Report formats: the default JSON through the `Format` trait, custom
//! defaults and named formats, `?format=` and `Accept` negotiation, the IETF
//! `application/health+json` format, and custom report sections.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::service::{call_layer, Got};
use common::{bounded, counter, flag, flag_check, hello_service, send};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};
use tower::Layer;
use tower_status::auth::{ApiKeys, Caller, Endpoint, Identity, Permissions, Visibility};
use tower_status::check::{CheckResult, Freshness, HealthCheck};
use tower_status::format::{FormatContext, Rendered};
use tower_status::report::Notice;
use tower_status::{Report, Status, StatusLayer};

/// The key of the identity `ops`, which may see everything.
const OPS_KEY: &str = "ops-key-0123456789";
/// The key of the identity `lb`, which may see the status only.
const LB_KEY: &str = "lb-key-0123456789";

fn req(method: Method, uri: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(Full::default()).expect("valid request")
}

async fn get(layer: &StatusLayer, uri: &str, headers: &[(&str, &str)]) -> Got {
    call_layer(layer, req(Method::GET, uri, headers)).await
}

fn keys() -> ApiKeys {
    ApiKeys::new()
        .key(OPS_KEY, Identity::new("ops").attribute("tier", "gold"))
        .key(LB_KEY, Identity::new("lb").permissions(Permissions::STATUS))
}

/// Keys configured, the report open to anonymous callers, details only
/// for keys allowed to see them.
fn with_open_keys(layer: StatusLayer) -> StatusLayer {
    layer
        .api_keys(keys())
        .require_key(Endpoint::Report, false)
        .show_details(Visibility::WhenAuthorized)
}

fn assert_json_headers(res: &Got, content_type: &str) {
    assert_eq!(res.header(CONTENT_TYPE), content_type);
    assert_eq!(res.header(CACHE_CONTROL), "no-store");
}

fn assert_error(res: &Got, status: StatusCode, code: &str) {
    assert_eq!(res.status, status, "{}", res.utf8());
    assert_json_headers(res, "application/json");
    let body = res.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
}

/// Milliseconds since the epoch, the resolution of report timestamps.
fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis()
}

fn rfc3339(value: &Value) -> SystemTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    humantime_parse(text)
}

/// Parses an RFC 3339 time by deserializing it as the crate's `Timestamp`.
fn humantime_parse(text: &str) -> SystemTime {
    let ts: tower_status::report::Timestamp = serde_json::from_value(json!(text))
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {text}"));
    assert!(
        text.ends_with('Z') && text.contains('T'),
        "not RFC 3339 UTC: {text}"
    );
    ts.0
}

// ---------------------------------------------------------------------------
// Default JSON
// ---------------------------------------------------------------------------

#[tokio::test]
async fn default_json_is_the_typed_report() {
    let layer = StatusLayer::new()
        .service_name("billing")
        .version("2.3.4")
        .environment("test")
        .check(
            HealthCheck::new("db", || async {
                CheckResult::ok()
                    .with_observed(12.5, "ms")
                    .with_details(json!({"pool": 4}))
            })
            .component_type("datastore"),
        )
        .check(
            HealthCheck::new("search", || async { CheckResult::degraded("reindexing") })
                .critical(false),
        );
    // Some traffic so the numbers are not all zero.
    let svc = layer.layer(hello_service());
    for _ in 0..3 {
        let (parts, _) = send(svc.clone(), common::get("/hello")).await;
        assert_eq!(parts.status, StatusCode::OK);
    }

    let before = SystemTime::now();
    let res = get(&layer, "/status", &[]).await;
    // Made right after, within the checks' 1 s cache: the same component results.
    let in_process = bounded("layer.report()", layer.clone().build().report()).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_json_headers(&res, "application/json");

    let served: Report = serde_json::from_slice(&res.body).expect("body is a Report");
    assert_eq!(served.status, Status::Degraded);
    assert_eq!(served.status, in_process.status);
    assert_eq!(served.service, in_process.service);
    assert_eq!(served.version, in_process.version);
    assert_eq!(served.environment, in_process.environment);
    assert_eq!(served.requests.total, 3);
    assert_eq!(served.requests.by_class.get("2xx"), Some(&3));
    assert_eq!(served.requests, {
        // Counts are since start and equal; the window figures move with time.
        let mut r = in_process.requests.clone();
        r.window_seconds = served.requests.window_seconds;
        r.rate_per_second = served.requests.rate_per_second;
        r
    });
    assert!(millis(served.timestamp.0) + 1 >= millis(before));
    assert!(served.timestamp <= in_process.timestamp);

    let names = |r: &Report| r.components.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&served), ["db", "search"]);
    assert_eq!(names(&served), names(&in_process));
    for (name, s) in &served.components {
        let p = &in_process.components[name];
        assert_eq!(s.status, p.status, "{name}");
        assert_eq!(s.critical, p.critical, "{name}");
        assert_eq!(s.component_type, p.component_type, "{name}");
        assert_eq!(s.error, p.error, "{name}");
        assert_eq!(s.details, p.details, "{name}");
        assert_eq!(s.observed_value, p.observed_value, "{name}");
        assert_eq!(s.observed_unit, p.observed_unit, "{name}");
        assert_eq!(s.duration_ms, p.duration_ms, "{name}: the same cached run");
        // The wire carries milliseconds.
        assert_eq!(
            millis(s.last_checked.0),
            millis(p.last_checked.0),
            "{name}: the same cached run"
        );
    }
    let db = &served.components["db"];
    assert_eq!(db.component_type.as_deref(), Some("datastore"));
    assert_eq!(db.details, Some(json!({"pool": 4})));
    assert_eq!(db.observed_value, Some(json!(12.5)));
    assert_eq!(db.observed_unit.as_deref(), Some("ms"));
    let search = &served.components["search"];
    assert_eq!(search.status, Status::Degraded);
    assert!(!search.critical);
    assert_eq!(search.error.as_deref(), Some("reindexing"));

    // The body is exactly what `Rendered::json` makes of the report's serialization.
    let body = res.json();
    let again = serde_json::to_value(&served).expect("serializable");
    assert_eq!(body, again, "the body is the report's own serialization");

    // HEAD: the same headers, no body.
    let head = call_layer(&layer, req(Method::HEAD, "/status", &[])).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_json_headers(&head, "application/json");
    assert!(head.body.is_empty());
    // The length of the report as GET has it (the figures may have moved by a digit).
    let len: usize = head.header(CONTENT_LENGTH).parse().expect("a length");
    assert!(
        len.abs_diff(res.body.len()) < 32,
        "HEAD {len}, GET {}",
        res.body.len()
    );
}

#[test]
fn rendered_constructors() {
    let r = Rendered::json(StatusCode::ACCEPTED, &json!({"a": 1}));
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.headers[CONTENT_TYPE], "application/json");
    assert_eq!(r.headers[CACHE_CONTROL], "no-store");
    assert_eq!(&r.body[..], br#"{"a":1}"#);

    let r = Rendered::json_as(StatusCode::OK, "application/health+json", &json!([]));
    assert_eq!(r.headers[CONTENT_TYPE], "application/health+json");

    let r = Rendered::new(StatusCode::OK, "text/csv", "a,b\n")
        .header(http::header::ETAG, http::HeaderValue::from_static("\"1\""));
    assert_eq!(r.headers[CONTENT_TYPE], "text/csv");
    assert_eq!(r.headers[http::header::ETAG], "\"1\"");

    // Non-string map keys cannot be JSON: a 500 JSON error, not a panic.
    let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    let r = Rendered::json(StatusCode::OK, &bad);
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.headers[CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_slice(&r.body).expect("JSON error");
    assert_eq!(body["code"], "internal_error");
}

#[tokio::test]
async fn cache_control_is_added_when_a_format_leaves_it_out() {
    let layer = StatusLayer::new().default_format(|_: &Report, ctx: &FormatContext<'_>| {
        let mut r = Rendered::new(ctx.status_code(), "text/plain", "up");
        r.headers.remove(CACHE_CONTROL);
        r
    });
    let res = get(&layer, "/status", &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.utf8(), "up");
    assert_json_headers(&res, "text/plain");
}

// ---------------------------------------------------------------------------
// Custom default format
// ---------------------------------------------------------------------------

/// A contract of another shape: healthy/unhealthy, plus what the format saw.
fn seed_like(report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    let word = if report.status == Status::Down {
        "unhealthy"
    } else {
        "healthy"
    };
    Rendered::json(
        ctx.status_code(),
        &json!({
            "status": word,
            "service": report.service,
            "lang": ctx.query_value("lang"),
            "caller": ctx.caller.identity().map(|i| i.name.clone()),
            "details": ctx.details(),
            "components": report.components.len(),
            "user_agent": ctx.headers.get("user-agent").and_then(|v| v.to_str().ok()),
        }),
    )
}

#[tokio::test]
async fn custom_default_format() {
    let (db, runs) = (flag(), counter());
    let layer = with_open_keys(
        StatusLayer::new()
            .service_name("billing")
            .check(flag_check("db", &db, &runs))
            .default_format(seed_like),
    );
    let ops = [("x-api-key", OPS_KEY)];

    let res = get(&layer, "/status?lang=de", &ops).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_json_headers(&res, "application/json");
    assert_eq!(
        res.json(),
        json!({"status": "healthy", "service": "billing", "lang": "de", "caller": "ops",
               "details": true, "components": 1, "user_agent": null})
    );

    // The first value of a repeated parameter; none when absent.
    let res = get(
        &layer,
        "/status?lang=fr&lang=en",
        &[
            ("authorization", format!("Bearer {OPS_KEY}").as_str()),
            ("user-agent", "probe/1"),
        ],
    )
    .await;
    let body = res.json();
    assert_eq!(body["lang"], "fr");
    assert_eq!(body["caller"], "ops");
    assert_eq!(body["user_agent"], "probe/1");
    assert_eq!(
        get(&layer, "/status", &ops).await.json()["lang"],
        Value::Null
    );

    // A critical check fails: ctx.status_code() is the configured 503.
    db.store(false, Ordering::SeqCst);
    let res = get(&layer, "/status", &ops).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json()["status"], "unhealthy");

    // Anonymous: the format gets the redacted report and no identity.
    let res = get(&layer, "/status?lang=de", &[]).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        res.json(),
        json!({"status": "unhealthy", "service": null, "lang": "de", "caller": null,
               "details": false, "components": 0, "user_agent": null})
    );
    // A status-only key: its identity, no details.
    let res = get(&layer, "/status", &[("x-api-key", LB_KEY)]).await;
    let body = res.json();
    assert_eq!(body["caller"], "lb");
    assert_eq!(body["details"], false);
    assert_eq!(body["service"], Value::Null);

    db.store(true, Ordering::SeqCst);
    let res = get(&layer, "/status", &ops).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["status"], "healthy");
}

#[tokio::test]
async fn custom_status_codes_reach_the_format() {
    let db = flag();
    let layer = StatusLayer::new()
        .check(flag_check("db", &db, &counter()))
        .http_status(Status::Down, StatusCode::INTERNAL_SERVER_ERROR)
        .default_format(seed_like);
    db.store(false, Ordering::SeqCst);
    let res = get(&layer, "/status", &[]).await;
    assert_eq!(res.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.json()["status"], "unhealthy");
}

// ---------------------------------------------------------------------------
// Named formats and negotiation
// ---------------------------------------------------------------------------

fn csv(report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    let mut out = format!("component,status\n_,{}\n", report.status);
    for (name, c) in &report.components {
        out.push_str(&format!("{name},{}\n", c.status));
    }
    Rendered::new(ctx.status_code(), "text/csv", out)
}

fn csv_layer(runs: &Arc<AtomicUsize>) -> StatusLayer {
    StatusLayer::new()
        .check(flag_check("db", &flag(), runs))
        .format("csv", Some("text/csv"), csv)
}

fn assert_csv(res: &Got) {
    assert_eq!(res.status, StatusCode::OK, "{}", res.utf8());
    assert_json_headers(res, "text/csv");
    assert_eq!(res.utf8(), "component,status\n_,ok\ndb,ok\n");
}

fn assert_default_json(res: &Got) {
    assert_eq!(res.status, StatusCode::OK, "{}", res.utf8());
    assert_json_headers(res, "application/json");
    let body = res.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["components"]["db"]["status"], "ok", "{body}");
    assert!(body["requests"].is_object(), "{body}");
}

#[tokio::test]
async fn named_formats_by_accept_and_query() {
    let runs = counter();
    let layer = csv_layer(&runs);

    assert_csv(&get(&layer, "/status", &[("accept", "text/csv")]).await);
    assert_csv(&get(&layer, "/status", &[("accept", "TEXT/CSV; charset=utf-8")]).await);
    assert_csv(&get(&layer, "/status?format=csv", &[]).await);
    assert_csv(&get(&layer, "/status/?verbose&format=csv", &[]).await);
    // `?format=` wins over Accept.
    assert_csv(
        &get(
            &layer,
            "/status?format=csv",
            &[("accept", "application/health+json")],
        )
        .await,
    );
    assert_default_json(&get(&layer, "/status?format=json", &[("accept", "text/csv")]).await);
    // Unregistered media types get the default.
    assert_default_json(&get(&layer, "/status", &[("accept", "application/xml")]).await);
    assert_default_json(&get(&layer, "/status", &[("accept", "*/*")]).await);
    assert_default_json(&get(&layer, "/status", &[("accept", "")]).await);
    // The preferred registered media type wins, unregistered ones are skipped.
    assert_csv(
        &get(
            &layer,
            "/status",
            &[(
                "accept",
                "application/xml, text/csv;q=0.5, application/json;q=0.4",
            )],
        )
        .await,
    );
    assert_default_json(
        &get(
            &layer,
            "/status",
            &[(
                "accept",
                "application/xml, text/csv;q=0.5, application/json",
            )],
        )
        .await,
    );
    // Several Accept headers are read in order.
    let mut two = req(Method::GET, "/status", &[("accept", "image/png")]);
    two.headers_mut()
        .append(ACCEPT, http::HeaderValue::from_static("text/csv"));
    assert_csv(&call_layer(&layer, two).await);
    // HEAD of a named format: its headers, no body.
    let head = call_layer(&layer, req(Method::HEAD, "/status?format=csv", &[])).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_json_headers(&head, "text/csv");
    assert_eq!(
        head.header(CONTENT_LENGTH),
        "component,status\n_,ok\ndb,ok\n".len().to_string()
    );
    assert!(head.body.is_empty());
}

/// Quality values decide (RFC 9110 §12.5.1), then the order of the header;
/// `q=0` means "not acceptable".
#[tokio::test]
async fn accept_quality_wins_over_order() {
    let layer = StatusLayer::new().check(HealthCheck::new("db", || async { true }));
    let res = get(
        &layer,
        "/status",
        &[("accept", "application/json;q=0.9, application/health+json")],
    )
    .await;
    assert_json_headers(&res, "application/health+json");
    assert_eq!(res.json()["status"], "pass");

    let res = get(
        &layer,
        "/status",
        &[("accept", "application/json, application/health+json")],
    )
    .await;
    assert_json_headers(&res, "application/json");
    assert_eq!(res.json()["components"]["db"]["status"], "ok");

    let res = get(
        &layer,
        "/status",
        &[("accept", "application/health+json;q=0, application/json")],
    )
    .await;
    assert_json_headers(&res, "application/json");

    // Anything but JSON.
    let res = get(
        &layer,
        "/status",
        &[("accept", "application/json;q=0, */*")],
    )
    .await;
    assert_json_headers(&res, "application/health+json");

    // Nothing acceptable: the default all the same, never 406.
    let res = get(&layer, "/status", &[("accept", "application/json;q=0")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_json_headers(&res, "application/json");
}

#[tokio::test]
async fn unknown_format_is_refused_before_any_check_runs() {
    let runs = counter();
    let layer = csv_layer(&runs);
    let before = runs.load(Ordering::SeqCst);
    for uri in [
        "/status?format=nope",
        "/status?format=",
        "/status?format=CSV",
        "/status?format=nope&format=csv",
    ] {
        let res = get(&layer, uri, &[("accept", "text/csv")]).await;
        assert_error(&res, StatusCode::BAD_REQUEST, "unknown_format");
    }
    let head = call_layer(&layer, req(Method::HEAD, "/status?format=nope", &[])).await;
    assert_eq!(head.status, StatusCode::BAD_REQUEST);
    assert!(head.body.is_empty());
    assert_eq!(runs.load(Ordering::SeqCst), before, "no check ran");

    // A known one runs the check (it is not cached: every request runs it).
    assert_csv(&get(&layer, "/status?format=csv", &[]).await);
    assert_eq!(runs.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn json_by_accept_is_the_default_format() {
    // Documented in `Formats::choose`: `Accept: application/json` means the default.
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .default_format(seed_like);
    let res = get(&layer, "/status", &[("accept", "application/json")]).await;
    assert_eq!(res.json()["status"], "healthy");
    let res = get(&layer, "/status", &[]).await;
    assert_eq!(res.json()["status"], "healthy");
}

#[tokio::test]
async fn format_json_is_the_builtin_json_when_the_default_is_replaced() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .default_format(seed_like);
    let res = get(&layer, "/status?format=json", &[]).await;
    assert_default_json(&res);
}

#[tokio::test]
async fn format_ietf_by_name() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .default_format(seed_like);
    let res = get(&layer, "/status?format=ietf", &[]).await;
    assert_json_headers(&res, "application/health+json");
    assert_eq!(res.json()["status"], "pass");
}

#[tokio::test]
async fn a_registered_name_replaces_a_builtin() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .format("ietf", Some("application/health+json"), csv);
    let res = get(&layer, "/status", &[("accept", "application/health+json")]).await;
    assert_csv(&res);
}

// ---------------------------------------------------------------------------
// IETF application/health+json
// ---------------------------------------------------------------------------

const HEALTH: [(&str, &str); 1] = [("accept", "application/health+json")];

fn ietf_layer(db: &Arc<AtomicBool>, cache: &Arc<AtomicBool>) -> StatusLayer {
    let db_up = Arc::clone(db);
    StatusLayer::new()
        .service_name("billing")
        .version("2.3.4")
        .environment("test")
        .check(
            HealthCheck::new("db", move || {
                let up = db_up.load(Ordering::SeqCst);
                async move {
                    if up {
                        CheckResult::ok().with_observed(5, "connections")
                    } else {
                        CheckResult::down("connection refused").with_observed(0, "connections")
                    }
                }
            })
            .component_type("datastore")
            .freshness(Freshness::OnDemand {
                ttl: Duration::ZERO,
            }),
        )
        .check(
            HealthCheck::new("latency", || async {
                CheckResult::ok().with_observed(12.5, "ms")
            })
            .component_type("component"),
        )
        .check(flag_check("cache", cache, &counter()).critical(false))
}

fn only(checks: &Value, key: &str) -> Value {
    let items = checks[key]
        .as_array()
        .unwrap_or_else(|| panic!("checks[{key:?}] is not an array: {checks}"));
    assert_eq!(items.len(), 1, "{key}: {items:?}");
    items[0].clone()
}

fn assert_figure(checks: &Value, key: &str, unit: &str) -> Value {
    let item = only(checks, key);
    assert_eq!(item["componentType"], "system", "{key}: {item}");
    assert_eq!(item["observedUnit"], unit, "{key}: {item}");
    assert_eq!(item["status"], "pass", "{key}: {item}");
    assert!(item["observedValue"].is_number(), "{key}: {item}");
    rfc3339(&item["time"]);
    item["observedValue"].clone()
}

#[tokio::test]
async fn ietf_health_json() {
    let (db, cache) = (flag(), flag());
    let layer = ietf_layer(&db, &cache);
    // Traffic, so requests:rate has something to say.
    let svc = layer.layer(hello_service());
    for _ in 0..4 {
        send(svc.clone(), common::get("/x")).await;
    }

    let before = SystemTime::now();
    let res = get(&layer, "/status", &HEALTH).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_json_headers(&res, "application/health+json");
    let body = res.json();
    assert_eq!(body["status"], "pass", "{body}");
    assert_eq!(body["version"], "2", "the major version");
    assert_eq!(body["releaseId"], "2.3.4");
    assert_eq!(body["serviceId"], "billing");
    assert_eq!(body["description"], "health of billing (test)");
    assert!(body.get("notes").is_none(), "{body}");
    assert!(body.get("output").is_none(), "{body}");

    let checks = &body["checks"];
    let keys: Vec<&str> = checks
        .as_object()
        .expect("checks object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "db:status",
        "latency:responseTime",
        "cache:status",
        "uptime",
        "requests:rate",
        "requests:errorRate",
        "responseTime:p99",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(!keys.contains(&"latency:status"), "{keys:?}");

    let db_item = only(checks, "db:status");
    assert_eq!(db_item["componentId"], "db");
    assert_eq!(db_item["componentType"], "datastore");
    assert_eq!(db_item["observedValue"], 5);
    assert_eq!(db_item["observedUnit"], "connections");
    assert_eq!(db_item["status"], "pass");
    assert!(db_item.get("output").is_none(), "{db_item}");
    let checked = rfc3339(&db_item["time"]);
    assert!(
        millis(checked) + 1 >= millis(before),
        "time is the check's run"
    );

    let latency = only(checks, "latency:responseTime");
    assert_eq!(latency["componentType"], "component");
    assert_eq!(latency["observedValue"], 12.5);
    assert_eq!(latency["observedUnit"], "ms");
    assert_eq!(latency["status"], "pass");

    let cache_item = only(checks, "cache:status");
    assert!(cache_item.get("componentType").is_none(), "{cache_item}");
    assert!(cache_item.get("observedValue").is_none(), "{cache_item}");
    assert_eq!(cache_item["status"], "pass");

    let uptime = assert_figure(checks, "uptime", "s");
    assert!(uptime.is_u64(), "{uptime}");
    let rate = assert_figure(checks, "requests:rate", "requests/s");
    assert!(rate.as_f64().is_some_and(|r| r > 0.0), "4 requests: {rate}");
    assert_figure(checks, "requests:errorRate", "ratio");
    assert_figure(checks, "responseTime:p99", "ms");
    if keys.contains(&"memory:rss") {
        assert_figure(checks, "memory:rss", "bytes");
    }

    // A failing non-critical component: warn, still 200.
    cache.store(false, Ordering::SeqCst);
    let res = get(&layer, "/status", &HEALTH).await;
    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["status"], "warn", "{body}");
    let cache_item = only(&body["checks"], "cache:status");
    assert_eq!(cache_item["status"], "fail", "the component itself is down");
    assert_eq!(cache_item["output"], "connection refused");
    assert_eq!(body["output"], "cache: connection refused");

    // A failing critical one: fail, 503.
    db.store(false, Ordering::SeqCst);
    let res = get(&layer, "/status", &HEALTH).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_json_headers(&res, "application/health+json");
    let body = res.json();
    assert_eq!(body["status"], "fail", "{body}");
    let db_item = only(&body["checks"], "db:status");
    assert_eq!(db_item["status"], "fail");
    assert_eq!(db_item["observedValue"], 0);
    assert_eq!(db_item["output"], "connection refused");
    let output = body["output"].as_str().expect("output");
    assert!(output.contains("db: connection refused"), "{output}");
    assert!(output.contains("cache: connection refused"), "{output}");

    // A degraded component is warn.
    let layer = StatusLayer::new().check(HealthCheck::new("queue", || async {
        CheckResult::degraded("slow")
    }));
    let body = get(&layer, "/status?format=ietf", &[]).await.json();
    assert_eq!(body["status"], "warn");
    assert_eq!(only(&body["checks"], "queue:status")["status"], "warn");
    // No service name or version configured: those fields are left out.
    assert!(body.get("serviceId").is_none() && body.get("version").is_none());
    assert!(body.get("releaseId").is_none());
}

#[tokio::test]
async fn ietf_maintenance_and_draining_notes() {
    let (db, cache) = (flag(), flag());
    let layer = ietf_layer(&db, &cache);
    let handle = layer.clone().build();
    let until = SystemTime::now() + Duration::from_secs(3600);
    handle.set_maintenance(Notice::new("database upgrade").estimated_completion(until));

    let res = get(&layer, "/status", &HEALTH).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry: u64 = res.header(RETRY_AFTER).parse().expect("seconds");
    assert!((3590..=3600).contains(&retry), "Retry-After {retry}");
    let body = res.json();
    assert_eq!(body["status"], "fail", "{body}");
    let notes = body["notes"].as_array().expect("notes");
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = notes[0].as_str().expect("text");
    assert!(
        note.starts_with("maintenance: database upgrade (until "),
        "{note}"
    );
    // The end time is in the note, RFC 3339.
    let at = note
        .trim_start_matches("maintenance: database upgrade (until ")
        .trim_end_matches(')');
    assert_eq!(millis(humantime_parse(at)), millis(until));

    handle.clear_maintenance();
    handle.set_maintenance(Notice::new("moving racks"));
    let body = get(&layer, "/status", &HEALTH).await.json();
    assert_eq!(body["notes"], json!(["maintenance: moving racks"]));

    handle.clear_maintenance();
    handle.start_draining();
    let res = get(&layer, "/status", &HEALTH).await;
    assert_eq!(res.status, StatusCode::OK, "draining alone is not down");
    let body = res.json();
    assert_eq!(body["status"], "pass");
    assert_eq!(body["notes"], json!(["draining: shutting down"]));
}

#[tokio::test]
async fn ietf_without_details_is_only_the_status() {
    let (db, cache) = (flag(), flag());
    let layer = with_open_keys(ietf_layer(&db, &cache));
    for headers in [vec![], vec![("x-api-key", LB_KEY)]] {
        let mut headers = headers;
        headers.push(HEALTH[0]);
        let res = get(&layer, "/status", &headers).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_json_headers(&res, "application/health+json");
        assert_eq!(res.json(), json!({"status": "pass"}), "{headers:?}");
    }
    db.store(false, Ordering::SeqCst);
    let res = get(&layer, "/status?format=ietf", &[]).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json(), json!({"status": "fail"}));
    assert!(!res.utf8().contains("connection refused"));

    // With a key that may see details: everything.
    let res = get(&layer, "/status", &[HEALTH[0], ("x-api-key", OPS_KEY)]).await;
    let body = res.json();
    assert_eq!(body["serviceId"], "billing");
    assert_eq!(only(&body["checks"], "db:status")["status"], "fail");
}

// ---------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------

fn jobs_section(layer: StatusLayer, runs: &Arc<AtomicUsize>) -> StatusLayer {
    let runs = Arc::clone(runs);
    layer.section("jobs", move || {
        let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
        async move { json!({"total": 3, "run": n}) }
    })
}

fn me_section(layer: StatusLayer, runs: &Arc<AtomicUsize>) -> StatusLayer {
    let runs = Arc::clone(runs);
    layer.caller_section("me", move |caller: Caller| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            json!({
                "name": caller.identity().map(|i| i.name.clone()),
                "tier": caller.identity().and_then(|i| i.attributes.get("tier").cloned()),
                "details": caller.details(),
            })
        }
    })
}

#[tokio::test]
async fn sections_are_cached_and_shown() {
    let runs = counter();
    let layer = jobs_section(
        StatusLayer::new().check(HealthCheck::new("db", || async { true })),
        &runs,
    );

    let body = get(&layer, "/status", &[]).await.json();
    assert_eq!(body["sections"]["jobs"], json!({"total": 3, "run": 1}));
    // Sections are not components and not counted in the status.
    assert_eq!(body["status"], "ok");
    assert!(body["components"].get("jobs").is_none(), "{body}");

    // Within the 1 s cache: the same value, no second run.
    let body = get(&layer, "/status", &[]).await.json();
    assert_eq!(body["sections"]["jobs"]["run"], 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Concurrent requests share one run once the cache is stale.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (a, b) = tokio::join!(get(&layer, "/status", &[]), get(&layer, "/status", &[]));
    assert_eq!(a.json()["sections"]["jobs"]["run"], 2);
    assert_eq!(b.json()["sections"]["jobs"]["run"], 2);
    assert_eq!(runs.load(Ordering::SeqCst), 2);

    // The typed report carries them too.
    let report = layer.clone().build().report().await;
    assert_eq!(report.sections["jobs"]["total"], 3);
}

#[tokio::test]
async fn failing_sections_show_an_error_and_leave_the_status_alone() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .section("broken", || async {
            if std::hint::black_box(true) {
                panic!("queue stats unavailable");
            }
            json!({})
        })
        .section("unserializable", || async {
            HashMap::from([((1u8, 2u8), 3u8)])
        })
        .section("plain", || async { 42 });
    let res = get(&layer, "/status", &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(
        body["sections"]["broken"],
        json!({"error": "check panicked: queue stats unavailable"})
    );
    let err = body["sections"]["unserializable"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("an error: {body}"));
    assert!(err.starts_with("section could not be serialized"), "{err}");
    assert_eq!(body["sections"]["plain"], 42);
    assert_eq!(
        body["components"].as_object().map(|c| c.len()),
        Some(1),
        "{body}"
    );

    // IETF does not show sections, and its status is untouched too.
    let body = get(&layer, "/status", &HEALTH).await.json();
    assert_eq!(body["status"], "pass");
}

#[tokio::test]
async fn caller_sections_see_the_caller() {
    let (plain, mine) = (counter(), counter());
    let layer = with_open_keys(me_section(
        jobs_section(
            StatusLayer::new().check(HealthCheck::new("db", || async { true })),
            &plain,
        ),
        &mine,
    ));

    let res = get(&layer, "/status", &[("x-api-key", OPS_KEY)]).await;
    assert_eq!(res.status, StatusCode::OK);
    let body = res.json();
    assert_eq!(
        body["sections"]["me"],
        json!({"name": "ops", "tier": "gold", "details": true})
    );
    assert_eq!(body["sections"]["jobs"]["total"], 3);
    assert_eq!(body["caller"]["name"], "ops");
    // Per request, never cached.
    let body = get(&layer, "/status", &[("x-api-key", OPS_KEY)])
        .await
        .json();
    assert_eq!(body["sections"]["me"]["name"], "ops");
    assert_eq!(mine.load(Ordering::SeqCst), 2);
    assert_eq!(plain.load(Ordering::SeqCst), 1);

    // Anonymous and status-only callers: no sections, and nothing runs.
    for headers in [vec![], vec![("x-api-key", LB_KEY)]] {
        let res = get(&layer, "/status", &headers).await;
        assert_eq!(res.status, StatusCode::OK);
        let body = res.json();
        assert!(body.get("sections").is_none(), "{headers:?}: {body}");
        let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["status", "timestamp"], "{headers:?}");
        // The IETF format is as bare.
        let res = get(&layer, "/status?format=ietf", &headers).await;
        assert_eq!(res.json(), json!({"status": "pass"}));
    }
    // Let the plain section's cache expire, so a run would show.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let res = get(&layer, "/status", &[]).await;
        assert!(res.json().get("sections").is_none());
    }
    assert_eq!(mine.load(Ordering::SeqCst), 2, "caller section never ran");
    assert_eq!(plain.load(Ordering::SeqCst), 1, "plain section never ran");

    // A format that shows sections sees them only with details.
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let layer = with_open_keys(me_section(StatusLayer::new(), &counter())).default_format(
        move |report: &Report, ctx: &FormatContext<'_>| {
            s.lock()
                .expect("lock")
                .push(report.sections.keys().cloned().collect::<Vec<_>>());
            Rendered::json(ctx.status_code(), &json!({}))
        },
    );
    get(&layer, "/status", &[]).await;
    get(&layer, "/status", &[("x-api-key", OPS_KEY)]).await;
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![vec![], vec!["me".to_owned()]]
    );
}

#[tokio::test]
async fn a_caller_section_replaces_one_of_the_same_name() {
    let layer = StatusLayer::new()
        .caller_section("me", |_c: Caller| async { 1 })
        .caller_section(
            "me",
            |c: Caller| async move { json!({"details": c.details()}) },
        );
    let body = get(&layer, "/status", &[]).await.json();
    assert_eq!(body["sections"], json!({"me": {"details": true}}));
}

#[tokio::test]
async fn maintenance_retry_after_reaches_callers_without_details() {
    let layer = with_open_keys(StatusLayer::new().check(HealthCheck::new("db", || async { true })));
    let until = SystemTime::now() + Duration::from_secs(120);
    layer
        .clone()
        .build()
        .set_maintenance(Notice::new("database upgrade").estimated_completion(until));
    for (uri, headers) in [
        ("/status", vec![("x-api-key", OPS_KEY)]),
        ("/status/ready", vec![]),
        ("/status", vec![]),
        ("/status?format=ietf", vec![]),
    ] {
        let res = get(&layer, uri, &headers).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(
            res.headers.contains_key(RETRY_AFTER),
            "{uri} {headers:?}: no Retry-After in {:?}",
            res.headers
        );
    }
}
