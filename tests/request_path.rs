//! The request path of `StatusService`: which requests the layer answers,
//! what it answers, and that everything else passes through unchanged.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get as axum_get;
use bytes::Bytes;
use common::{
    class_count, frames, get, get_json, header_map, num, parse_json, request, send, text, BoxError,
};
use http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tower_status::StatusLayer;

/// Calls made to an inner service.
type Calls = Arc<AtomicUsize>;

/// An inner service answering "inner" that counts its calls in `calls`.
fn counted(
    calls: &Calls,
) -> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone
{
    let seen = Arc::clone(calls);
    service_fn(move |_req: Request<Full<Bytes>>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(text("inner")) }
    })
}

/// Whether `s` looks like `2026-11-23T10:30:00.000Z`.
fn is_rfc3339_utc_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && s.ends_with('Z')
        && b[19] == b'.'
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19, 20..23]
            .into_iter()
            .all(|r| b[r].iter().all(u8::is_ascii_digit))
}

#[tokio::test]
async fn get_status_is_answered_without_calling_the_inner_service() {
    let calls = Calls::default();
    let inner = counted(&calls);
    let svc = StatusLayer::new().layer(inner);

    let (parts, body) = send(svc, get("/status")).await;

    assert_eq!(calls.load(Ordering::SeqCst), 0, "inner service was called");
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers[CONTENT_TYPE], "application/json");
    assert_eq!(parts.headers[CACHE_CONTROL], "no-store");
    let report = parse_json(&body);
    assert_eq!(report["status"], "ok", "{report}");
    let timestamp = report["timestamp"].as_str().expect("timestamp is a string");
    assert!(is_rfc3339_utc_millis(timestamp), "timestamp {timestamp:?}");
    assert!(report["requests"]["total"].is_u64(), "{report}");
    assert!(report["uptime_seconds"].is_u64(), "{report}");
    assert!(report["response_time_ms"].is_object(), "{report}");
}

#[tokio::test]
async fn other_paths_pass_through_byte_for_byte() {
    let inner = service_fn(|req: Request<Full<Bytes>>| async move {
        // The request reaches the inner service unchanged too.
        assert_eq!(req.method(), Method::PUT);
        assert_eq!(req.uri(), "/items/7?x=1");
        assert_eq!(req.headers()["x-request"], "r1");
        let body = req.into_body().collect().await?.to_bytes();
        assert_eq!(body, "payload");

        let body = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"hello "))),
            Ok(Frame::data(Bytes::from_static(b"\x00\xffworld"))),
            Ok(Frame::trailers(header_map(&[
                ("x-checksum", "42"),
                ("x-more", "yes"),
            ]))),
        ]);
        let res = Response::builder()
            .status(StatusCode::CREATED)
            .header("x-custom", "one")
            .header("x-custom", "two")
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body)?;
        Ok::<_, BoxError>(res)
    });
    let svc = StatusLayer::new().layer(inner);

    let req = Request::put("/items/7?x=1")
        .header("x-request", "r1")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let res = common::bounded("passthrough", svc.oneshot(req))
        .await
        .expect("inner service error");

    assert_eq!(res.status(), StatusCode::CREATED);
    let custom: Vec<&HeaderValue> = res.headers().get_all("x-custom").iter().collect();
    assert_eq!(custom, ["one", "two"]);
    assert_eq!(res.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(res.headers().len(), 3, "{:?}", res.headers());
    let collected = common::bounded("body", res.into_body().collect())
        .await
        .expect("body error");
    let trailers = collected.trailers().cloned().expect("trailers were lost");
    assert_eq!(
        trailers,
        header_map(&[("x-checksum", "42"), ("x-more", "yes")])
    );
    assert_eq!(collected.to_bytes(), &b"hello \x00\xffworld"[..]);
}

#[tokio::test]
async fn other_methods_on_the_status_path_get_405() {
    let methods = [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
        Method::from_bytes(b"PURGE").unwrap(),
    ];
    let calls = Calls::default();
    let inner = counted(&calls);
    let svc = StatusLayer::new().layer(inner);

    for method in methods {
        let (parts, body) = send(svc.clone(), request(method.clone(), "/status")).await;
        assert_eq!(parts.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(parts.headers[ALLOW], "GET, HEAD", "{method}");
        assert_eq!(parts.headers[CONTENT_TYPE], "application/json", "{method}");
        let json = parse_json(&body);
        assert!(json["error"].is_string(), "{method}: {json}");
        assert!(json["code"].is_string(), "{method}: {json}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "inner service was called");
}

#[tokio::test]
async fn head_status_has_headers_and_no_body() {
    let calls = Calls::default();
    let inner = counted(&calls);
    let svc = StatusLayer::new().layer(inner);

    let (parts, body) = send(svc, request(Method::HEAD, "/status")).await;

    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers[CONTENT_TYPE], "application/json");
    assert!(body.is_empty(), "HEAD body: {body:?}");
    let len: u64 = parts.headers[CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .expect("numeric content-length");
    assert!(len > 0, "content-length {len}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn status_path_matching() {
    let calls = Calls::default();
    let inner = counted(&calls);
    let svc = StatusLayer::new().layer(inner);

    for path in ["/status?verbose=1&x=y", "/status/", "/status/?a=b"] {
        let report = get_json(svc.clone(), path).await;
        assert_eq!(report["status"], "ok", "{path}: {report}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    for (i, path) in ["/statusx", "/", "/STATUS", "/api/status", "/api/status/"]
        .into_iter()
        .enumerate()
    {
        let (parts, body) = send(svc.clone(), get(path)).await;
        assert_eq!(parts.status, StatusCode::OK, "{path}");
        assert_eq!(body, "inner", "{path}");
        assert_eq!(calls.load(Ordering::SeqCst), i + 1, "{path}");
    }
}

#[tokio::test]
async fn custom_path_moves_the_endpoint() {
    let calls = Calls::default();
    let inner = counted(&calls);
    let layer = StatusLayer::new().path("/health/status");
    assert_eq!(layer.status_path(), "/health/status");
    let svc = layer.layer(inner);

    let report = get_json(svc.clone(), "/health/status").await;
    assert_eq!(report["status"], "ok");
    let report = get_json(svc.clone(), "/health/status/?q").await;
    assert_eq!(report["status"], "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let (_, body) = send(svc.clone(), get("/status")).await;
    assert_eq!(body, "inner");
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Unnormalized input is normalized.
    let layer = StatusLayer::new().path("v1/status/");
    assert_eq!(layer.status_path(), "/v1/status");
    let report = get_json(layer.layer(common::hello_service()), "/v1/status").await;
    assert_eq!(report["status"], "ok");
}

#[tokio::test]
async fn identity_appears_in_the_report() {
    let layer = StatusLayer::new()
        .service_name("billing")
        .version("1.2.3-rc.1")
        .environment("staging");
    let report = get_json(layer.clone().layer(common::hello_service()), "/status").await;
    assert_eq!(report["service"], "billing");
    assert_eq!(report["version"], "1.2.3-rc.1");
    assert_eq!(report["environment"], "staging");
    // The typed report agrees with the JSON one.
    let typed = layer.clone().build().report().await;
    assert_eq!(typed.service.as_deref(), Some("billing"));
    assert_eq!(typed.version.as_deref(), Some("1.2.3-rc.1"));
    assert_eq!(typed.environment, "staging");

    let layer = StatusLayer::new()
        .service_name(tower_status::app_name!())
        .version(tower_status::app_version!());
    let report = get_json(layer.layer(common::hello_service()), "/status").await;
    assert_eq!(report["service"], env!("CARGO_PKG_NAME"));
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert!(!report["version"].as_str().unwrap().is_empty());

    // Unset identity is left out, not null.
    let report = get_json(StatusLayer::new().layer(common::hello_service()), "/status").await;
    assert!(report.get("service").is_none(), "{report}");
    assert!(report.get("version").is_none(), "{report}");
    assert!(report["environment"].is_string(), "{report}");
}

#[test]
fn response_body_is_default_when_the_inner_body_is() {
    let body: tower_status::body::ResponseBody<Full<Bytes>> = Default::default();
    assert!(http_body::Body::is_end_stream(&body));
}

#[tokio::test]
async fn composes_with_tower_http_timeout_and_cors() {
    let layer = StatusLayer::new();
    let inner = service_fn(|req: Request<Full<Bytes>>| async move {
        if req.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Ok::<_, Infallible>(text("hello"))
    });
    let svc = ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(100),
        ))
        .layer(CorsLayer::permissive())
        .layer(layer.clone())
        .service(inner);

    let mut req = get("/status");
    req.headers_mut()
        .insert("origin", HeaderValue::from_static("https://example.com"));
    let (parts, body) = send(svc.clone(), req).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(parse_json(&body)["status"], "ok");

    let (parts, body) = send(svc.clone(), get("/")).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "hello");

    // The timeout answers 408 from outside and drops the layer's future.
    let (parts, body) = send(svc.clone(), get("/slow")).await;
    assert_eq!(parts.status, StatusCode::REQUEST_TIMEOUT);
    assert!(body.is_empty());

    let report = get_json(svc, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 2, "{report}");
    assert_eq!(num(&report, "requests", "aborted"), 1, "{report}");
    assert_eq!(num(&report, "requests", "errors"), 0, "{report}");
    assert_eq!(num(&report, "requests", "in_flight"), 0, "{report}");
}

#[tokio::test]
async fn status_requests_are_not_traffic() {
    let calls = Calls::default();
    let inner = counted(&calls);
    let svc = StatusLayer::new().layer(inner);

    let mut last = Value::Null;
    for _ in 0..3 {
        last = get_json(svc.clone(), "/status").await;
    }
    assert_eq!(num(&last, "requests", "total"), 0, "{last}");
    for _ in 0..2 {
        send(svc.clone(), get("/")).await;
    }
    send(svc.clone(), request(Method::HEAD, "/status")).await;
    send(svc.clone(), request(Method::POST, "/status")).await;

    let report = get_json(svc, "/status").await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(num(&report, "requests", "total"), 2, "{report}");
    assert_eq!(class_count(&report, "2xx"), 2, "{report}");
    assert!(report["status_requests"].as_u64().unwrap() >= 3, "{report}");
}

#[tokio::test]
async fn axum_routes_count_into_one_report() {
    let layer = StatusLayer::new();
    let app: axum::Router = axum::Router::new()
        .route("/a", axum_get(|| async { "a" }))
        .route("/b", axum_get(|| async { (StatusCode::CREATED, "b") }))
        .layer(layer.clone());

    let (_, body) = send(app.clone(), get("/a")).await;
    assert_eq!(body, "a");
    let (parts, body) = send(app.clone(), get("/b")).await;
    assert_eq!(parts.status, StatusCode::CREATED);
    assert_eq!(body, "b");

    let report = get_json(app.clone(), "/status").await;
    assert_eq!(num(&report, "requests", "total"), 2, "{report}");
    assert_eq!(class_count(&report, "2xx"), 2, "{report}");
    assert_eq!(layer.clone().build().report().await.requests.total, 2);

    // Unrouted paths reach axum's fallback through the layer and count too.
    let (parts, _) = send(app.clone(), get("/nowhere")).await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND);
    let report = get_json(app, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 3, "{report}");
    assert_eq!(class_count(&report, "4xx"), 1, "{report}");
}

/// A saturated service is when the status matters. `poll_ready` is
/// forwarded (any request may pass through), so a limit directly inside the
/// layer would hold `/status` back; with a `Buffer` in front of the limit, as
/// the `StatusService` docs advise, it answers.
#[tokio::test]
async fn status_answers_while_the_inner_service_is_saturated() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let release = Arc::clone(&gate);
    let inner = ServiceBuilder::new()
        .buffer(64)
        .concurrency_limit(1)
        .service(service_fn(move |_req: Request<Full<Bytes>>| {
            let gate = Arc::clone(&gate);
            async move {
                gate.notified().await;
                Ok::<_, Infallible>(text("done"))
            }
        }));
    let layer = StatusLayer::new();
    let svc = layer.clone().layer(inner);

    let busy = tokio::spawn(send(svc.clone(), get("/")));
    common::wait_until("inner service busy", || async {
        layer.clone().build().report().await.requests.in_flight == 1
    })
    .await;

    let status =
        tokio::time::timeout(Duration::from_secs(1), svc.clone().oneshot(get("/status"))).await;
    release.notify_one();
    let _ = common::bounded("busy request", busy).await;
    let res = status.expect("GET /status waited for the saturated inner service");
    assert_eq!(res.unwrap().status(), StatusCode::OK);
}
