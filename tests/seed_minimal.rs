//! `examples/minimal.rs` against seed 002 (the Decentraland Badges API's
//! OpenAPI document for `GET /status`): the example runs as a child process
//! and is driven over real TCP, with real TCP listeners as its dependencies.
//! Every body is validated against `tests/schemas/seed_002.json`, the
//! document's own schemas.

mod seeds;

use http::StatusCode;
use seeds::{
    age_ms, assert_head, assert_head_like_get, assert_methods_not_allowed, get, get_until,
    run_to_exit, App, Dependency, Reply, Schema,
};
use serde_json::{json, Value};

const NAME: &str = "minimal";

fn schema() -> Schema {
    Schema::load("seed_002.json")
}

/// Checks a status reply: code, schema, exactly `status` and `timestamp`
/// (in that order), a fresh timestamp. Returns the body.
fn check(r: &Reply, code: StatusCode, status: &str) -> Value {
    assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    schema().assert_valid(&body);
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.starts_with("{\"status\":"), "{text}");
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert!(age_ms(ts) < 5_000, "{body}");
    body
}

#[test]
fn schema_is_the_documents_and_validates_formats() {
    let s = schema();
    for status in ["ok", "degraded", "down"] {
        s.assert_valid(&json!({"status": status, "timestamp": "2024-01-15T10:30:00.000Z"}));
    }
    // `timestamp` is optional in the document; `status` is not.
    s.assert_valid(&json!({"status": "ok"}));
    for (what, bad) in [
        (
            "no status",
            json!({"timestamp": "2024-01-15T10:30:00.000Z"}),
        ),
        ("status healthy", json!({"status": "healthy"})),
        ("status maintenance", json!({"status": "maintenance"})),
        ("status as number", json!({"status": 1})),
        (
            "not a date-time (format validation is on)",
            json!({"status": "ok", "timestamp": "yesterday"}),
        ),
        (
            "date without time",
            json!({"status": "ok", "timestamp": "2024-01-15"}),
        ),
    ] {
        assert!(!s.errors(&bad).is_empty(), "schema accepts {what}: {bad}");
    }
    s.assert_valid_def("error", &json!({"error": "bad", "code": "x"}));
    assert!(!s.def_errors("error", &json!({"code": "x"})).is_empty());
}

#[tokio::test]
async fn ok_with_and_without_a_dependency() {
    let app = App::start(NAME, &[]).await;
    check(&get(&app.url("/status"), &[]).await, StatusCode::OK, "ok");

    let dep = Dependency::open().await;
    let app = App::start(NAME, &[("DEPENDENCY_ADDR", &dep.addr_string())]).await;
    check(&get(&app.url("/status"), &[]).await, StatusCode::OK, "ok");
    assert_head(&app.url("/status"), &[], StatusCode::OK).await;
}

#[tokio::test]
async fn dependency_down_is_503_down_and_recovers() {
    let dep = Dependency::open().await;
    let app = App::start(NAME, &[("DEPENDENCY_ADDR", &dep.addr_string())]).await;
    let url = app.url("/status");
    check(&get(&url, &[]).await, StatusCode::OK, "ok");
    let addr = dep.close().await;
    let r = get_until("503", &url, &[], |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    check(&r, StatusCode::SERVICE_UNAVAILABLE, "down");
    assert_head(&url, &[], StatusCode::SERVICE_UNAVAILABLE).await;
    let c = get(&app.url("/status/dependency"), &[]).await.json();
    assert!(
        c["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("connect to {addr}: "))),
        "{c}"
    );
    let _dep = Dependency::open_at(addr).await;
    let r = get_until("200", &url, &[], |r| r.status == StatusCode::OK).await;
    check(&r, StatusCode::OK, "ok");
}

#[tokio::test]
async fn every_enum_value_from_two_dependencies() {
    let critical = Dependency::open().await;
    let optional = Dependency::open().await;
    let app = App::start(
        NAME,
        &[
            ("DEPENDENCY_ADDR", &critical.addr_string()),
            ("OPTIONAL_DEPENDENCY_ADDR", &optional.addr_string()),
        ],
    )
    .await;
    let url = app.url("/status");
    let mut seen = Vec::new();
    check(&get(&url, &[]).await, StatusCode::OK, "ok");
    seen.push("ok");

    // The optional one down: degraded, still 200 (operational).
    let optional_addr = optional.close().await;
    let r = get_until("degraded", &url, &[], |r| r.json()["status"] == "degraded").await;
    check(&r, StatusCode::OK, "degraded");
    seen.push("degraded");

    // The critical one down too: down, 503.
    let critical_addr = critical.close().await;
    let r = get_until("down", &url, &[], |r| r.json()["status"] == "down").await;
    check(&r, StatusCode::SERVICE_UNAVAILABLE, "down");
    seen.push("down");

    // Both back: ok.
    let _c = Dependency::open_at(critical_addr).await;
    let _o = Dependency::open_at(optional_addr).await;
    let r = get_until("ok", &url, &[], |r| r.json()["status"] == "ok").await;
    check(&r, StatusCode::OK, "ok");

    // Every value of the document's enum, produced by the example.
    let doc = schema();
    let listed: Vec<&str> = doc.doc()["properties"]["status"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(seen, listed);
}

#[tokio::test]
async fn errors_are_the_documents_error_object() {
    let app = App::start(NAME, &[]).await;
    let url = app.url("/status");
    let s = schema();
    // The document's 400.
    let r = get(&app.url("/status?format=nope"), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("content-type"), "application/json");
    let body = r.json();
    s.assert_valid_def("error", &body);
    assert_eq!(body["code"], "unknown_format");
    // The crate's own formats are off: the document's body is the only one.
    for query in ["format=json", "format=ietf"] {
        let r = get(&app.url(&format!("/status?{query}")), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        let body = r.json();
        s.assert_valid_def("error", &body);
        assert_eq!(body["code"], "unknown_format", "{query}");
    }
    for accept in ["application/json", "application/health+json"] {
        let r = get(&url, &[("accept", accept)]).await;
        check(&r, StatusCode::OK, "ok");
    }
    // Not in the document, same object: 405 and 404.
    for body in assert_methods_not_allowed(&url, &[]).await {
        s.assert_valid_def("error", &body);
        assert_eq!(body["code"], "method_not_allowed", "{body}");
    }
    let r = get(&app.url("/status/a/b"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    s.assert_valid_def("error", &r.json());
    assert_head_like_get(&app.url("/status/a/b"), &[], StatusCode::NOT_FOUND).await;
}

#[test]
fn malformed_dependency_addrs_stop_the_example_with_a_message() {
    for var in ["DEPENDENCY_ADDR", "OPTIONAL_DEPENDENCY_ADDR"] {
        for bad in ["db", "db:0", "db:x", ":1", "db:99999", "d b:1"] {
            let (code, stderr) = run_to_exit(NAME, &[(var, bad)]);
            assert_eq!(code, Some(2), "{var}={bad}: {stderr}");
            // One line, with `TcpCheck::parse`'s reason.
            assert_eq!(
                stderr,
                format!("minimal: invalid {var}: `{bad}` is not host:port\n"),
                "{var}={bad}"
            );
        }
    }
}
