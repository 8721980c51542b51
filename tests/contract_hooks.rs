//! The hooks a contract of its own shape needs: an aggregation rule that
//! readiness and watchers follow, error bodies in the contract's shape, and
//! built-in formats turned off.

use std::convert::Infallible;
use std::time::Duration;
use tower_status::check::HealthCheck;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};
use tower_status::check::CheckResult;
use tower_status::format::{FormatContext, Rendered, StatusError};
use tower_status::report::aggregate;
use tower_status::{Report, Status, StatusLayer};

async fn call(
    layer: &StatusLayer,
    method: Method,
    uri: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let svc = layer
        .clone()
        .layer(service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
        }));
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(req))
        .await
        .unwrap()
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, value)
}

/// Down only when every component is down, else the default rule.
fn all_down_rule(layer: StatusLayer) -> StatusLayer {
    layer.aggregation(|components| {
        if !components.is_empty() && components.values().all(|c| c.status == Status::Down) {
            Status::Down
        } else {
            aggregate(components.values())
        }
    })
}

#[tokio::test]
async fn an_aggregation_rule_decides_status_readiness_and_watch() {
    let layer = all_down_rule(
        StatusLayer::new()
            .check(HealthCheck::pushed("a").critical(false))
            .check(HealthCheck::pushed("b").critical(false)),
    );
    let handle = layer.clone().build();
    handle.set_component("a", CheckResult::ok());
    handle.set_component("b", CheckResult::down("gone"));

    let (code, _, body) = call(&layer, Method::GET, "/status").await;
    assert_eq!(
        (code, body["status"].clone()),
        (StatusCode::OK, json!("degraded"))
    );

    handle.set_component("a", CheckResult::down("gone too"));
    let (code, _, body) = call(&layer, Method::GET, "/status").await;
    assert_eq!(
        (code, body["status"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("down"))
    );
    // Readiness and watchers follow the same rule.
    let (code, _, _) = call(&layer, Method::GET, "/status/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let mut watch = layer.clone().build().subscribe();
    let change = tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.status, Status::Down);
    // Maintenance still wins over the rule.
    handle.set_maintenance(tower_status::report::Notice::new("upgrade"));
    let (_, _, body) = call(&layer, Method::GET, "/status").await;
    assert_eq!(body["status"], "maintenance");
}

#[tokio::test]
async fn error_bodies_take_the_contracts_shape_and_keep_the_endpoints_headers() {
    let layer = StatusLayer::new()
        .api_keys(tower_status::auth::ApiKeys::new().key("k", tower_status::auth::Identity::new("ops")))
        .error_format(|err: &StatusError| {
            Rendered::json(
                err.status,
                &json!({ "error": err.message, "code": err.status.as_u16(), "service": "all-services" }),
            )
        });
    let (code, headers, body) = call(&layer, Method::GET, "/status").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 401);
    assert_eq!(body["service"], "all-services");
    assert!(headers.contains_key("www-authenticate"), "{headers:?}");
    assert_eq!(headers["cache-control"], "no-store");

    let (code, headers, body) = call(&layer, Method::POST, "/status").await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], 405);
    assert_eq!(headers["allow"], "GET, HEAD");

    // HEAD keeps the status and headers, without a body.
    let (code, headers, body) = call(&layer, Method::HEAD, "/status").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(body, Value::Null);
}

#[tokio::test]
async fn builtin_formats_can_be_turned_off() {
    let layer = StatusLayer::new()
        .default_format(|report: &Report, ctx: &FormatContext<'_>| {
            Rendered::json(ctx.status_code(), &json!({ "state": report.status }))
        })
        .serve_builtin_formats(false);
    for uri in ["/status?format=json", "/status?format=ietf"] {
        let (code, _, body) = call(&layer, Method::GET, uri).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["code"], "unknown_format");
    }
    let svc = layer
        .clone()
        .layer(service_fn(|_req: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        }));
    let req = Request::get("/status")
        .header("accept", "application/health+json")
        .body(Full::default())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body, json!({ "state": "ok" }));
}

#[tokio::test]
async fn the_application_reads_a_callers_count_and_formats_their_own_time() {
    use tower_status::auth::{ApiKeys, Identity};
    let layer = StatusLayer::new()
        .api_keys(ApiKeys::new().key("k1", Identity::new("acme")))
        .count_requests_per_key(Duration::from_secs(3600))
        .section("slow", || async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            1
        })
        .default_format(|_report: &Report, ctx: &FormatContext<'_>| {
            Rendered::json(
                ctx.status_code(),
                &json!({ "ms": ctx.elapsed().as_secs_f64() * 1000.0 }),
            )
        });
    let handle = layer.clone().build();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    }));
    for _ in 0..3 {
        let req = Request::get("/")
            .header("x-api-key", "k1")
            .body(Full::default())
            .unwrap();
        svc.clone().oneshot(req).await.unwrap();
    }
    let req = Request::get("/status")
        .header("x-api-key", "k1")
        .body(Full::default())
        .unwrap();
    let res = svc.clone().oneshot(req).await.unwrap();
    let body: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    // The status call's own time includes its 30 ms section.
    assert!(body["ms"].as_f64().unwrap() >= 30.0, "{body}");
    let acme = handle.requests_of("acme").unwrap();
    assert_eq!(acme.count, 4);
    assert!(acme.window_ends > std::time::SystemTime::now());
    assert_eq!(handle.requests_of("nobody").unwrap().count, 0);
}
