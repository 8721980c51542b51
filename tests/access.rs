//! Access control end to end: API keys from code, the environment and an
//! async lookup; 401 and 403 answers; malformed credentials; which details
//! each caller sees; refusals cost no check; the caller's own view; and the
//! same rules over a real axum server.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower_status::check::HealthCheck;

use bytes::Bytes;
use common::service::{call_layer, Got};
use common::{bounded, http1_client, send, serve_hello, wait_until};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::Layer;
use tower_status::auth::{ApiKeys, Endpoint, Identity, Permissions, Visibility};
use tower_status::check::CheckResult;
use tower_status::{Report, StatusLayer};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A distinctive key that must never come back in any answer.
const SECRET: &str = "sk-live-SECRET-123";

/// One request header: name and raw value.
type Header<'a> = (&'a str, &'a [u8]);

/// Request headers, in order.
type Headers<'a> = &'a [Header<'a>];

/// `GET uri` with the given headers (values as raw bytes, appended in order).
fn req(uri: &str, headers: &[(&str, &[u8])]) -> Request<Full<Bytes>> {
    let mut req = common::get(uri);
    for (name, value) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    req
}

async fn get(layer: &StatusLayer, uri: &str, headers: &[(&str, &[u8])]) -> Got {
    call_layer(layer, req(uri, headers)).await
}

/// The keys of a JSON object.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

/// An error answer: JSON `{"error": <text>, "code": <code>}` and nothing else.
fn assert_error(res: &Got, status: StatusCode, code: &str) {
    assert_eq!(res.status, status, "{res:?}");
    assert_eq!(
        res.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
        Some(&b"application/json"[..]),
        "{res:?}"
    );
    let body = res.json();
    assert_eq!(keys(&body), set(&["error", "code"]), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error message missing: {body}"
    );
}

/// 401 `unauthorized`, with a Bearer challenge when `challenge`, else none.
fn assert_unauthorized(res: &Got, challenge: bool) {
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized");
    match res.headers.get(WWW_AUTHENTICATE) {
        Some(v) if challenge => assert!(
            v.as_bytes().starts_with(b"Bearer"),
            "www-authenticate {v:?}"
        ),
        None if !challenge => {}
        other => panic!("www-authenticate {other:?}, expected challenge: {challenge}"),
    }
}

/// 403 `forbidden`, without a challenge (the key was read and is valid).
fn assert_forbidden(res: &Got) {
    assert_error(res, StatusCode::FORBIDDEN, "forbidden");
    assert!(res.headers.get(WWW_AUTHENTICATE).is_none(), "{res:?}");
}

/// The minimal body: the overall status and the timestamp, nothing else.
fn assert_minimal(body: &Value) {
    assert_eq!(keys(body), set(&["status", "timestamp"]), "{body}");
}

/// `text` does not occur anywhere in the answer: body or any header.
fn assert_not_in(res: &Got, text: &str) {
    let needle = text.as_bytes();
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&res.body), "{text:?} in the body: {}", res.text());
    for (name, value) in &res.headers {
        assert!(
            !contains(name.as_str().as_bytes()) && !contains(value.as_bytes()),
            "{text:?} in header {name}: {value:?}"
        );
    }
}

/// A layer with a healthy critical check `db`.
fn with_healthy_db(layer: StatusLayer) -> StatusLayer {
    layer.check(HealthCheck::new("db", || async { CheckResult::ok() }))
}

// ---------------------------------------------------------------------------
// Where keys come from
// ---------------------------------------------------------------------------

#[tokio::test]
async fn keys_from_code() {
    let layer = StatusLayer::new().api_keys(ApiKeys::new().key("k", Identity::new("ops")));

    assert_unauthorized(&get(&layer, "/status", &[]).await, true);
    assert_unauthorized(&get(&layer, "/status", &[("x-api-key", b"k2")]).await, true);
    // A prefix or an extension of the key is not the key.
    assert_unauthorized(&get(&layer, "/status", &[("x-api-key", b"kk")]).await, true);

    let res = get(&layer, "/status", &[("x-api-key", b"k")]).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    let body = res.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["caller"]["name"], "ops", "{body}");
    // No counter configured: no window in the caller section.
    assert_eq!(keys(&body["caller"]), set(&["name"]), "{body}");

    // Empty keys are ignored: they never open the endpoint.
    let layer = StatusLayer::new().api_keys(ApiKeys::new().key("", Identity::new("empty")));
    assert_unauthorized(&get(&layer, "/status", &[("x-api-key", b"")]).await, true);
    assert_unauthorized(&get(&layer, "/status", &[]).await, true);
}

#[tokio::test]
async fn keys_from_env() {
    const VAR: &str = "TOWER_STATUS_ACCESS_TEST_KEYS_FROM_ENV_7f3a";
    // Edition 2021: `set_var` is safe here.
    std::env::set_var(VAR, " env-key-a ,env-key-b,, ");
    let layer = StatusLayer::new().api_keys(
        ApiKeys::new().keys_from_env(VAR, Identity::new("from-env").attribute("source", "env")),
    );

    for key in [&b"env-key-a"[..], b"env-key-b"] {
        let res = get(&layer, "/status", &[("x-api-key", key)]).await;
        assert_eq!(res.status, StatusCode::OK, "{res:?}");
        let body = res.json();
        assert_eq!(body["caller"]["name"], "from-env", "{body}");
        assert_eq!(body["caller"]["source"], "env", "{body}");
    }
    let bearer = get(&layer, "/status", &[("authorization", b"Bearer env-key-b")]).await;
    assert_eq!(bearer.status, StatusCode::OK, "{bearer:?}");

    // The untrimmed and the joined forms are not keys.
    for bad in [
        &b"env-key-c"[..],
        b"env-key-a ,env-key-b",
        b"env-key-a,env-key-b",
    ] {
        assert_unauthorized(&get(&layer, "/status", &[("x-api-key", bad)]).await, true);
    }
    assert_unauthorized(&get(&layer, "/status", &[]).await, true);

    // An unset variable gives no keys: the report stays closed.
    const UNSET: &str = "TOWER_STATUS_ACCESS_TEST_UNSET_VAR_9c1e";
    std::env::remove_var(UNSET);
    let layer =
        StatusLayer::new().api_keys(ApiKeys::new().keys_from_env(UNSET, Identity::new("nobody")));
    assert_unauthorized(&get(&layer, "/status", &[]).await, true);
    assert_unauthorized(&get(&layer, "/status", &[("x-api-key", b"")]).await, true);
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"anything")]).await,
        true,
    );
}

/// Counts lookups; knows `db-key` (as `from-db`) and `status-only`.
fn counting_lookup(calls: &Arc<AtomicUsize>) -> ApiKeys {
    let calls = Arc::clone(calls);
    ApiKeys::new().lookup(move |key: String| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            match key.as_str() {
                "db-key" => Some(Identity::new("from-db").attribute("plan", "gold")),
                "status-only" => Some(Identity::new("lb-from-db").permissions(Permissions::STATUS)),
                _ => None,
            }
        }
    })
}

#[tokio::test]
async fn keys_from_an_async_lookup_are_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer =
        StatusLayer::new().api_keys(counting_lookup(&calls).key("static", Identity::new("s")));

    // Five requests with one key inside the (default 30 s) TTL: one lookup.
    for _ in 0..5 {
        let res = get(&layer, "/status", &[("x-api-key", b"db-key")]).await;
        assert_eq!(res.status, StatusCode::OK, "{res:?}");
        let body = res.json();
        assert_eq!(body["caller"]["name"], "from-db", "{body}");
        assert_eq!(body["caller"]["plan"], "gold", "{body}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The same key by Bearer is the same cache entry.
    let res = get(&layer, "/status", &[("authorization", b"Bearer db-key")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Unknown keys are cached too: five refusals, one more lookup.
    for _ in 0..5 {
        assert_unauthorized(
            &get(&layer, "/status", &[("x-api-key", b"nope")]).await,
            true,
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // Static keys never reach the lookup; missing keys neither.
    for _ in 0..3 {
        let res = get(&layer, "/status", &[("x-api-key", b"static")]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_unauthorized(&get(&layer, "/status", &[]).await, true);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A looked-up identity's permissions apply.
    let res = get(&layer, "/status", &[("x-api-key", b"status-only")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_minimal(&res.json());
    assert_forbidden(&get(&layer, "/status/db", &[("x-api-key", b"status-only")]).await);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn lookup_answers_expire_after_the_cache_ttl() {
    let calls = Arc::new(AtomicUsize::new(0));
    let layer =
        StatusLayer::new().api_keys(counting_lookup(&calls).cache_ttl(Duration::from_millis(50)));

    let res = get(&layer, "/status", &[("x-api-key", b"db-key")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    for expected in 2..=3 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        let res = get(&layer, "/status", &[("x-api-key", b"db-key")]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(calls.load(Ordering::SeqCst), expected, "after the TTL");
    }

    // Negative answers expire as well.
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"nope")]).await,
        true,
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"nope")]).await,
        true,
    );
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

// ---------------------------------------------------------------------------
// 401 and 403
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_unknown_and_forbidden_keys() {
    let layer = with_healthy_db(StatusLayer::new()).api_keys(
        ApiKeys::new()
            .key("good", Identity::new("ops"))
            .key("none", Identity::new("x").permissions(Permissions::NONE)),
    );

    let missing = get(&layer, "/status", &[]).await;
    assert_unauthorized(&missing, true);
    assert_eq!(missing.headers["cache-control"], "no-store");
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"bad")]).await,
        true,
    );
    assert_unauthorized(
        &get(&layer, "/status", &[("authorization", b"Bearer bad")]).await,
        true,
    );

    // A valid key without the status permission: 403 where a key is needed...
    for path in ["/status", "/status/db"] {
        assert_forbidden(&get(&layer, path, &[("x-api-key", b"none")]).await);
        assert_forbidden(&get(&layer, path, &[("authorization", b"Bearer none")]).await);
    }
    // ...while open probes serve it as they serve anyone: only the status.
    for path in ["/status/live", "/status/ready"] {
        let res = get(&layer, path, &[("x-api-key", b"none")]).await;
        assert_eq!(res.status, StatusCode::OK, "{res:?}");
        assert_eq!(keys(&res.json()), set(&["status", "timestamp"]), "{res:?}");
    }

    // HEAD gets the same status and headers, without a body.
    let head = call_layer(
        &layer,
        Request::head("/status").body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    assert!(head.headers.contains_key(WWW_AUTHENTICATE));
    assert!(head.body.is_empty());

    // The report still works for the good key.
    let res = get(&layer, "/status", &[("x-api-key", b"good")]).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
}

#[tokio::test]
async fn without_bearer_there_is_no_challenge() {
    let layer = StatusLayer::new().api_keys(
        ApiKeys::new()
            .bearer(false)
            .key("good", Identity::new("ops")),
    );
    assert_unauthorized(&get(&layer, "/status", &[]).await, false);
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"bad")]).await,
        false,
    );
    // `Authorization` is not read at all: a valid key there is no key.
    assert_unauthorized(
        &get(&layer, "/status", &[("authorization", b"Bearer good")]).await,
        false,
    );
    assert_unauthorized(
        &get(&layer, "/status", &[("authorization", b"Basic abc")]).await,
        false,
    );
    let res = get(&layer, "/status", &[("x-api-key", b"good")]).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
}

#[tokio::test]
async fn malformed_credentials_are_refused_without_panicking() {
    let layer = StatusLayer::new().api_keys(ApiKeys::new().key("good", Identity::new("ops")));
    let cases: &[(&str, Headers<'_>)] = &[
        ("non-UTF-8 key header", &[("x-api-key", b"\xff")]),
        (
            "non-UTF-8 key header, longer",
            &[("x-api-key", b"go\xc3\x28od")],
        ),
        ("empty key header", &[("x-api-key", b"")]),
        ("blank key header", &[("x-api-key", b"   ")]),
        ("Bearer without token", &[("authorization", b"Bearer")]),
        ("Bearer and spaces", &[("authorization", b"Bearer    ")]),
        ("Bearer and a tab", &[("authorization", b"Bearer \t")]),
        ("Basic", &[("authorization", b"Basic abc")]),
        ("other scheme", &[("authorization", b"Token good")]),
        ("only a key, no scheme", &[("authorization", b"good")]),
        ("empty Authorization", &[("authorization", b"")]),
        (
            "non-UTF-8 Authorization",
            &[("authorization", b"Bearer \xff")],
        ),
        (
            "two key headers, both valid",
            &[("x-api-key", b"good"), ("x-api-key", b"good")],
        ),
        (
            "two key headers",
            &[("x-api-key", b"good"), ("x-api-key", b"other")],
        ),
        (
            "two Authorization headers",
            &[
                ("authorization", b"Bearer good"),
                ("authorization", b"Bearer good"),
            ],
        ),
        (
            "empty key header next to a valid bearer",
            &[("x-api-key", b""), ("authorization", b"Bearer good")],
        ),
    ];
    for (what, headers) in cases {
        for path in ["/status", "/status/db", "/status/"] {
            let res = get(&layer, path, headers).await;
            assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{what} on {path}");
            assert_unauthorized(&res, true);
        }
    }
    // Still serving afterwards.
    let res = get(&layer, "/status", &[("x-api-key", b"good")]).await;
    assert_eq!(res.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------
// Where the key is read
// ---------------------------------------------------------------------------

#[tokio::test]
async fn key_header_and_bearer() {
    let keys = ApiKeys::new()
        .key("full", Identity::new("ops"))
        .key("lb", Identity::new("lb").permissions(Permissions::STATUS));

    // `X-API-Key` spelled any way is the same header.
    let layer = StatusLayer::new().api_keys(
        keys.clone()
            .header(HeaderName::try_from("X-API-Key").unwrap()),
    );
    for name in ["x-api-key", "X-Api-Key", "X-API-KEY"] {
        let res = get(&layer, "/status", &[(name, b"full")]).await;
        assert_eq!(res.status, StatusCode::OK, "{name}");
    }

    // Another header name: read there, and X-Api-Key no longer counts.
    let layer = StatusLayer::new().api_keys(
        keys.clone()
            .header(HeaderName::from_static("x-status-token")),
    );
    let res = get(&layer, "/status", &[("x-status-token", b"full")]).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    assert_eq!(res.json()["caller"]["name"], "ops");
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"full")]).await,
        true,
    );
    assert_eq!(
        get(&layer, "/status", &[("authorization", b"Bearer full")])
            .await
            .status,
        StatusCode::OK
    );

    let layer = StatusLayer::new().api_keys(keys.clone());
    // Bearer, any case of the scheme, extra spaces.
    for value in [&b"Bearer full"[..], b"bearer full", b"BEARER   full  "] {
        let res = get(&layer, "/status", &[("authorization", value)]).await;
        assert_eq!(res.status, StatusCode::OK, "{value:?}");
        assert_eq!(res.json()["caller"]["name"], "ops");
    }

    // The key header wins over Bearer when both are there.
    let res = get(
        &layer,
        "/status",
        &[("x-api-key", b"lb"), ("authorization", b"Bearer full")],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_minimal(&res.json());
    let res = get(
        &layer,
        "/status",
        &[("x-api-key", b"full"), ("authorization", b"Bearer lb")],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["caller"]["name"], "ops");
    assert_unauthorized(
        &get(
            &layer,
            "/status",
            &[("x-api-key", b"bad"), ("authorization", b"Bearer full")],
        )
        .await,
        true,
    );
    // A valid key header makes a broken Authorization header irrelevant.
    let res = get(
        &layer,
        "/status",
        &[("x-api-key", b"full"), ("authorization", b"Basic abc")],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);

    // `no_header`: only Bearer.
    let layer = StatusLayer::new().api_keys(keys.no_header());
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"full")]).await,
        true,
    );
    let res = get(&layer, "/status", &[("authorization", b"Bearer full")]).await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn keys_are_never_echoed() {
    let keys = ApiKeys::new()
        .key("good", Identity::new("ops"))
        .key(
            "sk-live-SECRET-123-none",
            Identity::new("none").permissions(Permissions::NONE),
        )
        .key(
            "sk-live-SECRET-123-lb",
            Identity::new("lb").permissions(Permissions::STATUS),
        );
    let secret = SECRET.as_bytes();
    let none = b"sk-live-SECRET-123-none";
    let lb = b"sk-live-SECRET-123-lb";
    let bearer_secret = format!("Bearer {SECRET}");
    let bearer_none = b"Bearer sk-live-SECRET-123-none";
    let secret_non_utf8 = [secret, b"\xff"].concat();

    let layers = [
        StatusLayer::new().api_keys(keys.clone()),
        StatusLayer::new().api_keys(keys.clone().bearer(false)),
        StatusLayer::new()
            .api_keys(keys.clone())
            .require_key(Endpoint::Probes, true),
    ];
    let cases: Vec<(&str, Vec<Header<'_>>)> = vec![
        ("/status", vec![("x-api-key", secret)]),
        ("/status", vec![("authorization", bearer_secret.as_bytes())]),
        ("/status", vec![("authorization", secret)]),
        (
            "/status",
            vec![("x-api-key", secret), ("x-api-key", secret)],
        ),
        ("/status", vec![("x-api-key", &secret_non_utf8)]),
        ("/status", vec![("x-api-key", none)]),
        ("/status", vec![("authorization", bearer_none)]),
        ("/status/db", vec![("x-api-key", lb)]),
        ("/status/db", vec![("x-api-key", secret)]),
        ("/status/live", vec![("x-api-key", secret)]),
        ("/status/live", vec![("x-api-key", none)]),
        (
            "/status/ready",
            vec![("authorization", bearer_secret.as_bytes())],
        ),
    ];
    let mut refusals = 0;
    for layer in &layers {
        for (path, headers) in &cases {
            let res = get(layer, path, headers).await;
            if res.status == StatusCode::UNAUTHORIZED || res.status == StatusCode::FORBIDDEN {
                refusals += 1;
                assert_not_in(&res, SECRET);
            }
        }
    }
    assert!(refusals >= 30, "only {refusals} refusals");

    // Nor in the debug output of the configuration.
    let layer = StatusLayer::new().api_keys(keys.clone());
    for debug in [format!("{keys:?}"), format!("{layer:?}")] {
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(!debug.contains("good"), "{debug}");
    }
}

// ---------------------------------------------------------------------------
// Who sees details
// ---------------------------------------------------------------------------

/// A layer with a failing check `db`, a version and a name; keys `full`
/// (every permission) and `lb` (status only).
fn detailed(visibility: Visibility) -> StatusLayer {
    StatusLayer::new()
        .service_name("svc-billing")
        .version("9.9.9")
        .environment("env-staging")
        .check(HealthCheck::new("db", || async {
            CheckResult::down("db secret error")
        }))
        .api_keys(
            ApiKeys::new()
                .key("full", Identity::new("ops"))
                .key("lb", Identity::new("lb").permissions(Permissions::STATUS)),
        )
        .show_details(visibility)
        .require_key(Endpoint::Report, false)
}

/// Every detail is there, equal to what was configured.
fn assert_full(body: &Value) {
    for field in [
        "status",
        "timestamp",
        "service",
        "version",
        "environment",
        "uptime_seconds",
        "memory",
        "requests",
        "response_time_ms",
        "status_requests",
        "components",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {body}");
    }
    assert_eq!(body["status"], "down");
    assert_eq!(body["service"], "svc-billing");
    assert_eq!(body["version"], "9.9.9");
    assert_eq!(body["environment"], "env-staging");
    assert_eq!(body["components"]["db"]["status"], "down");
    assert_eq!(body["components"]["db"]["error"], "db secret error");
    assert_eq!(body["requests"]["total"], 2, "{body}");
    assert!(body["response_time_ms"]["count"].is_u64(), "{body}");
    assert!(body["memory"]["rss_bytes"].is_u64(), "{body}");
}

/// Anonymous (or status-only) body: just the overall status, with nothing
/// that names the service, its components or their errors.
fn assert_hidden(res: &Got) {
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{res:?}");
    let body = res.json();
    assert_minimal(&body);
    assert_eq!(body["status"], "down");
    for secret in [
        "db",
        "db secret error",
        "9.9.9",
        "svc-billing",
        "env-staging",
        "requests",
        "response_time_ms",
        "memory",
        "components",
        "caller",
    ] {
        assert_not_in(res, secret);
    }
}

async fn passthrough_twice(layer: &StatusLayer) {
    for _ in 0..2 {
        let res = get(layer, "/", &[]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body, "hello");
    }
}

#[tokio::test]
async fn details_when_authorized() {
    let layer = detailed(Visibility::WhenAuthorized);
    passthrough_twice(&layer).await;

    let anonymous = get(&layer, "/status", &[]).await;
    assert_hidden(&anonymous);
    let lb = get(&layer, "/status", &[("x-api-key", b"lb")]).await;
    assert_hidden(&lb);

    let full = get(&layer, "/status", &[("x-api-key", b"full")]).await;
    assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
    let full_body = full.json();
    assert_full(&full_body);
    assert_eq!(full_body["caller"]["name"], "ops");
    // What the anonymous body does show agrees with the full one.
    assert_eq!(anonymous.json()["status"], full_body["status"]);
    assert!(anonymous.json()["timestamp"].is_string());

    // The typed report reads the full body.
    let report: Report = serde_json::from_value(full_body).expect("a report");
    assert_eq!(report.version.as_deref(), Some("9.9.9"));
    assert_eq!(
        report.components["db"].error.as_deref(),
        Some("db secret error")
    );

    // Components are details: anonymous 401, status-only 403.
    assert_unauthorized(&get(&layer, "/status/db", &[]).await, true);
    assert_forbidden(&get(&layer, "/status/db", &[("x-api-key", b"lb")]).await);
    let db = get(&layer, "/status/db", &[("x-api-key", b"full")]).await;
    assert_eq!(db.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(db.json()["error"], "db secret error");
}

#[tokio::test]
async fn details_never() {
    let layer = detailed(Visibility::Never);
    passthrough_twice(&layer).await;
    for headers in [
        &[][..],
        &[("x-api-key", &b"lb"[..])],
        &[("x-api-key", &b"full"[..])],
    ] {
        assert_hidden(&get(&layer, "/status", headers).await);
        let ready = get(&layer, "/status/ready?verbose", headers).await;
        assert_hidden(&ready);
    }
    assert_forbidden(&get(&layer, "/status/db", &[("x-api-key", b"full")]).await);
    // Refused keys are still refused.
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"bad")]).await,
        true,
    );
}

#[tokio::test]
async fn details_always() {
    let layer = detailed(Visibility::Always);
    passthrough_twice(&layer).await;

    let anonymous = get(&layer, "/status", &[]).await;
    assert_eq!(anonymous.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = anonymous.json();
    assert_full(&body);
    // No key, no caller section.
    assert!(body.get("caller").is_none(), "{body}");

    let lb = get(&layer, "/status", &[("x-api-key", b"lb")]).await.json();
    assert_full(&lb);
    assert_eq!(lb["caller"]["name"], "lb");

    let db = get(&layer, "/status/db", &[]).await;
    assert_eq!(db.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(db.json()["error"], "db secret error");
    // A wrong key is refused even where no key is needed.
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"bad")]).await,
        true,
    );
}

#[tokio::test]
async fn without_keys_everything_is_open_and_detailed() {
    let layer = StatusLayer::new().version("9.9.9");
    let res = get(&layer, "/status", &[]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["version"], "9.9.9");
    // A key sent to a layer without keys is simply ignored.
    let res = get(&layer, "/status", &[("x-api-key", b"whatever")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.json().get("caller").is_none());
}

// ---------------------------------------------------------------------------
// Probes and components
// ---------------------------------------------------------------------------

#[tokio::test]
async fn probes_are_open_while_the_report_needs_a_key() {
    let layer = with_healthy_db(StatusLayer::new())
        .version("9.9.9")
        .api_keys(
            ApiKeys::new()
                .key("full", Identity::new("ops"))
                .key("lb", Identity::new("lb").permissions(Permissions::STATUS)),
        );

    assert_unauthorized(&get(&layer, "/status", &[]).await, true);

    let live = get(&layer, "/status/live", &[]).await;
    assert_eq!(live.status, StatusCode::OK, "{live:?}");
    assert_minimal(&live.json());
    assert_eq!(live.json()["status"], "ok");

    for path in [
        "/status/ready",
        "/status/ready?verbose",
        "/status/ready?verbose=1",
    ] {
        let ready = get(&layer, path, &[]).await;
        assert_eq!(ready.status, StatusCode::OK, "{path}: {ready:?}");
        assert_minimal(&ready.json());
        assert_not_in(&ready, "db");
        assert_not_in(&ready, "components");
        // A status-only key sees no more.
        let ready = get(&layer, path, &[("x-api-key", b"lb")]).await;
        assert_eq!(ready.status, StatusCode::OK);
        assert_minimal(&ready.json());
    }
    // A full key with `verbose` sees the components.
    let ready = get(&layer, "/status/ready?verbose", &[("x-api-key", b"full")]).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["components"]["db"]["status"], "ok");

    // One component: 401 anonymous, 403 status-only, 200 with every permission.
    assert_unauthorized(&get(&layer, "/status/db", &[]).await, true);
    assert_forbidden(&get(&layer, "/status/db", &[("x-api-key", b"lb")]).await);
    let db = get(&layer, "/status/db", &[("x-api-key", b"full")]).await;
    assert_eq!(db.status, StatusCode::OK, "{db:?}");
    assert_eq!(db.json()["name"], "db");
    assert_eq!(db.json()["status"], "ok");
    // Unknown component names are not disclosed before authentication.
    assert_unauthorized(&get(&layer, "/status/nope", &[]).await, true);
    assert_eq!(
        get(&layer, "/status/nope", &[("x-api-key", b"full")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn probes_can_require_a_key() {
    let layer = with_healthy_db(StatusLayer::new())
        .api_keys(ApiKeys::new().key("full", Identity::new("ops")))
        .require_key(Endpoint::Probes, true);
    for path in ["/status/live", "/status/ready", "/status/ready?verbose"] {
        assert_unauthorized(&get(&layer, path, &[]).await, true);
        assert_unauthorized(&get(&layer, path, &[("x-api-key", b"bad")]).await, true);
        let res = get(&layer, path, &[("x-api-key", b"full")]).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {res:?}");
    }
    // The report still needs one too.
    assert_unauthorized(&get(&layer, "/status", &[]).await, true);

    // And the report can be opened on its own.
    let layer = with_healthy_db(StatusLayer::new())
        .api_keys(ApiKeys::new().key("full", Identity::new("ops")))
        .require_key(Endpoint::Report, false)
        .require_key(Endpoint::Probes, true);
    assert_eq!(get(&layer, "/status", &[]).await.status, StatusCode::OK);
    assert_unauthorized(&get(&layer, "/status/live", &[]).await, true);
}

// ---------------------------------------------------------------------------
// Refusals cost nothing
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_requests_never_run_checks() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", move || {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                CheckResult::ok()
            }
        }))
        .api_keys(
            ApiKeys::new()
                .key("good", Identity::new("ops"))
                .key("lb", Identity::new("lb").permissions(Permissions::STATUS))
                .key("none", Identity::new("none").permissions(Permissions::NONE)),
        );

    let svc = layer.layer(common::hello_service());
    let mut flood = Vec::new();
    for i in 0..400 {
        let headers: &[(&str, &[u8])] = if i % 2 == 0 {
            &[]
        } else {
            &[("x-api-key", b"bad-key")]
        };
        let path = ["/status", "/status/db", "/status/", "/status?verbose"][i % 4];
        let request = req(path, headers);
        let svc = svc.clone();
        flood.push(tokio::spawn(async move {
            let (parts, body) = send(svc, request).await;
            (parts.status, body)
        }));
    }
    let answers = bounded("the flood", futures_util::future::join_all(flood)).await;
    assert_eq!(answers.len(), 400);
    for answer in answers {
        let (status, body) = answer.expect("no panic");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(common::parse_json(&body)["code"], "unauthorized");
    }
    // Forbidden keys cost nothing either, nor components for status-only keys.
    assert_forbidden(&get(&layer, "/status", &[("x-api-key", b"none")]).await);
    assert_forbidden(&get(&layer, "/status/db", &[("x-api-key", b"lb")]).await);
    // Probes never run the checks behind live.
    assert_eq!(
        get(&layer, "/status/live", &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "a refused request ran the check"
    );

    let res = get(&layer, "/status", &[("x-api-key", b"good")]).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["components"]["db"]["status"], "ok");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// The caller's own view
// ---------------------------------------------------------------------------

/// Sleeps past the top of the hour when it is a few seconds away, so that a
/// test counting in hourly windows does not straddle two.
async fn away_from_the_hour() {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let left = 3600.0 - secs % 3600.0;
    if left < 3.0 {
        tokio::time::sleep(Duration::from_secs_f64(left + 0.1)).await;
    }
}

#[tokio::test]
async fn caller_view_counts_requests_per_key() {
    let layer = StatusLayer::new()
        .api_keys(
            ApiKeys::new()
                .key(
                    "acme-key",
                    Identity::new("acme")
                        .attribute("tier", "standard")
                        .attribute("limit", 1000),
                )
                .key("other-key", Identity::new("other")),
        )
        .count_requests_per_key(Duration::from_secs(3600));
    away_from_the_hour().await;

    for _ in 0..3 {
        let res = get(&layer, "/", &[("x-api-key", b"acme-key")]).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body, "hello");
    }
    // Not counted for acme: no key, unknown keys, malformed keys, other callers.
    for headers in [
        &[][..],
        &[("x-api-key", &b"unknown"[..])],
        &[("authorization", &b"Bearer unknown"[..])],
        &[("x-api-key", &b"\xff"[..])],
        &[
            ("x-api-key", &b"acme-key"[..]),
            ("x-api-key", &b"acme-key"[..]),
        ],
        &[("x-api-key", &b"other-key"[..])],
    ] {
        let res = get(&layer, "/", headers).await;
        assert_eq!(res.status, StatusCode::OK, "passed through");
    }
    // Refused status requests are not counted either.
    assert_unauthorized(
        &get(&layer, "/status", &[("x-api-key", b"unknown")]).await,
        true,
    );

    let before = SystemTime::now();
    let res = get(&layer, "/status", &[("x-api-key", b"acme-key")]).await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    let body = res.json();
    let caller = &body["caller"];
    assert_eq!(
        keys(caller),
        set(&["name", "tier", "limit", "requests_in_window", "window_ends"]),
        "{body}"
    );
    assert_eq!(caller["name"], "acme");
    assert_eq!(caller["tier"], "standard");
    assert_eq!(caller["limit"], 1000);
    // Three passed through, plus this status request.
    assert_eq!(caller["requests_in_window"], 4, "{body}");

    let ends_text = caller["window_ends"].as_str().expect("window_ends text");
    let ends = humantime::parse_rfc3339(ends_text).expect("RFC 3339");
    let ends_since_epoch = ends.duration_since(UNIX_EPOCH).unwrap();
    assert_eq!(ends_since_epoch.as_secs() % 3600, 0, "{ends_text}");
    assert_eq!(ends_since_epoch.subsec_nanos(), 0, "{ends_text}");
    assert!(ends_text.ends_with(":00:00.000Z"), "{ends_text}");
    assert!(ends > before, "{ends_text} is not ahead");
    assert!(
        ends.duration_since(before).unwrap() <= Duration::from_secs(3600),
        "{ends_text} is past the next hour"
    );

    // The typed report reads the caller section.
    let report: Report = serde_json::from_value(body.clone()).expect("a report");
    let summary = report.caller.expect("caller");
    assert_eq!(summary.name, "acme");
    assert_eq!(summary.requests_in_window, Some(4));
    assert_eq!(summary.window_ends.map(|t| t.0), Some(ends));
    assert_eq!(summary.attributes["limit"], 1000);

    // Every status request counts; other callers have their own count.
    let again = get(&layer, "/status", &[("authorization", b"Bearer acme-key")]).await;
    assert_eq!(again.json()["caller"]["requests_in_window"], 5);
    let other = get(&layer, "/status", &[("x-api-key", b"other-key")]).await;
    assert_eq!(other.json()["caller"]["name"], "other");
    assert_eq!(other.json()["caller"]["requests_in_window"], 2);
    // The caller's view is a detail: anonymous callers get no caller section.
    let layer_open = layer.clone().require_key(Endpoint::Report, false);
    let anonymous = get(&layer_open, "/status", &[]).await.json();
    assert_minimal(&anonymous);
}

// ---------------------------------------------------------------------------
// A real server
// ---------------------------------------------------------------------------

async fn fetch(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &[u8])],
) -> Got {
    let mut request = req(&format!("http://{addr}{path}"), &[]);
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let res = bounded("HTTP request", client.request(request))
        .await
        .expect("HTTP request failed");
    let (parts, body) = res.into_parts();
    let body = bounded("HTTP body", body.collect())
        .await
        .expect("HTTP body failed")
        .to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[tokio::test]
async fn real_axum_server_with_keys() {
    let layer = with_healthy_db(StatusLayer::new())
        .api_keys(ApiKeys::new().key(SECRET, Identity::new("ops")))
        .count_requests_per_key(Duration::from_secs(3600));
    let addr = serve_hello(&layer).await;
    let client = http1_client();
    away_from_the_hour().await;

    // Passed-through requests need no key.
    let sent: [&[(&str, &[u8])]; 4] = [
        &[],
        &[("x-api-key", SECRET.as_bytes())],
        &[("x-api-key", b"wrong")],
        &[("authorization", b"Basic abc")],
    ];
    for headers in sent {
        let res = fetch(&client, addr, "/", headers).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body, "hello");
    }
    wait_until("passed-through requests recorded", || async {
        layer.clone().build().report().await.requests.total >= 4
    })
    .await;

    let res = fetch(&client, addr, "/status", &[]).await;
    assert_unauthorized(&res, true);
    let res = fetch(&client, addr, "/status", &[("x-api-key", b"wrong")]).await;
    assert_unauthorized(&res, true);
    assert_not_in(&res, "wrong");
    let live = fetch(&client, addr, "/status/live", &[]).await;
    assert_eq!(live.status, StatusCode::OK);

    let res = fetch(
        &client,
        addr,
        "/status",
        &[("x-api-key", SECRET.as_bytes())],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{res:?}");
    assert_eq!(res.headers[CONTENT_TYPE], "application/json");
    let body = res.json();
    assert_eq!(body["requests"]["total"], 4, "{body}");
    assert_eq!(body["components"]["db"]["status"], "ok", "{body}");
    assert_eq!(body["caller"]["name"], "ops");
    // One passed-through request and this one carried the key.
    assert_eq!(body["caller"]["requests_in_window"], 2, "{body}");
    // The key is the caller's own; it is not in the report.
    assert_not_in(&res, SECRET);

    let bearer = format!("Bearer {SECRET}");
    let res = fetch(
        &client,
        addr,
        "/status",
        &[("authorization", bearer.as_bytes())],
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["requests"]["total"], 4);
}

/// A scraper's key (`Permissions::METRICS`) opens `/status/metrics` and
/// nothing else, over a real server, whether the report needs a key or not;
/// every other caller is answered as before.
#[tokio::test]
async fn a_scraper_key_opens_the_metrics_only() {
    const SCRAPE: &str = "sk-scrape-SECRET-456";
    let keys = ApiKeys::new().key(SECRET, Identity::new("ops")).key(
        SCRAPE,
        Identity::new("prometheus").permissions(Permissions::METRICS),
    );
    let keyed = with_healthy_db(StatusLayer::new())
        .serve_metrics(true)
        .api_keys(keys);
    let open = keyed.clone().require_key(Endpoint::Report, false);
    let client = http1_client();
    let scrape_bearer = format!("Bearer {SCRAPE}");
    let scraper: [&[(&str, &[u8])]; 2] = [
        &[("x-api-key", SCRAPE.as_bytes())],
        &[("authorization", scrape_bearer.as_bytes())],
    ];
    for (report_open, layer) in [(false, &keyed), (true, &open)] {
        let addr = serve_hello(layer).await;
        for headers in scraper {
            let res = fetch(&client, addr, "/status/metrics", headers).await;
            assert_eq!(res.status, StatusCode::OK, "{res:?}");
            let text = res.text();
            assert!(text.contains("tower_status_up 1\n"), "{text}");
            assert!(
                text.contains(r#"tower_status_component_up{component="db",critical="true"} 1"#),
                "{text}"
            );
            assert_not_in(&res, SCRAPE);
            // Everything else under the report's rules is refused: the key
            // may not see the status.
            for path in [
                "/status",
                "/status?format=ietf",
                "/status/db",
                "/status/transitions",
                "/status/history",
                "/status/badge.svg",
                "/status/watch",
                "/status/no-such-thing",
            ] {
                let res = fetch(&client, addr, path, headers).await;
                assert_forbidden(&res);
                assert_not_in(&res, SCRAPE);
            }
            // Open probes answer it as anyone.
            for path in ["/status/live", "/status/ready?verbose"] {
                let res = fetch(&client, addr, path, headers).await;
                assert_eq!(res.status, StatusCode::OK, "{path}: {res:?}");
                assert_minimal(&res.json());
            }
        }
        // A wrong key gets the 401 it always got, on the metrics too.
        for path in ["/status", "/status/metrics"] {
            let res = fetch(&client, addr, path, &[("x-api-key", b"sk-scrape-wrong")]).await;
            assert_unauthorized(&res, true);
            assert_not_in(&res, "sk-scrape-wrong");
        }
        // Anonymous callers: as before.
        let res = fetch(&client, addr, "/status/metrics", &[]).await;
        assert_unauthorized(&res, true);
        let res = fetch(&client, addr, "/status", &[]).await;
        if report_open {
            assert_eq!(res.status, StatusCode::OK, "{res:?}");
            assert_minimal(&res.json());
        } else {
            assert_unauthorized(&res, true);
        }
        // The full key still sees everything, the metrics included.
        let res = fetch(
            &client,
            addr,
            "/status/metrics",
            &[("x-api-key", SECRET.as_bytes())],
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{res:?}");
        let res = fetch(
            &client,
            addr,
            "/status",
            &[("x-api-key", SECRET.as_bytes())],
        )
        .await;
        assert_eq!(res.json()["components"]["db"]["status"], "ok");
    }
}
