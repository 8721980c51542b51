//! What the layer records for passed-through requests: latency up to the end
//! of the body, errors, aborts, in-flight requests, exact counts under
//! concurrency, and gRPC statuses.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, frames, get, header_map, send, text, wait_until, BoxError};
use futures_util::stream;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tokio::sync::Notify;
use tower::{service_fn, Layer, ServiceExt};
use tower_status::{Report, StatusLayer};

/// `report.requests.by_class[class]`, 0 when absent.
fn class(report: &Report, class: &str) -> u64 {
    report.requests.by_class.get(class).copied().unwrap_or(0)
}

/// Asserts the counters of `layer`'s report: total, errors, aborted, in flight.
macro_rules! assert_counts {
    ($layer:expr, $total:expr, $errors:expr, $aborted:expr, $in_flight:expr) => {{
        let r = $layer.clone().build().report().await.requests;
        assert_eq!(
            (r.total, r.errors, r.aborted, r.in_flight),
            ($total, $errors, $aborted, $in_flight),
            "(total, errors, aborted, in_flight) in {r:?}"
        );
    }};
}

/// A body of `n` chunks, each produced `gap` after the previous one.
fn slow_body(
    n: usize,
    gap: Duration,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    StreamBody::new(stream::unfold(0, move |i| async move {
        if i == n {
            return None;
        }
        tokio::time::sleep(gap).await;
        Some((Ok(Frame::data(Bytes::from(format!("chunk{i}")))), i + 1))
    }))
}

/// A gRPC-looking request.
fn grpc_request(content_type: &'static str) -> Request<Full<Bytes>> {
    Request::post("/grpc.health.v1.Health/Check")
        .header(CONTENT_TYPE, content_type)
        .header("te", "trailers")
        .body(Full::default())
        .unwrap()
}

#[tokio::test]
async fn latency_includes_body_streaming() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(slow_body(3, Duration::from_millis(30))))
    }));

    let res = bounded("call", svc.oneshot(get("/"))).await.unwrap();
    // The head is here, the body is not: the request is still running.
    assert_counts!(&layer, 0, 0, 0, 1);

    let body = common::body_bytes(res.into_body()).await;
    assert_eq!(body, "chunk0chunk1chunk2");

    let report = layer.clone().build().report().await;
    assert_counts!(&layer, 1, 0, 0, 0);
    assert_eq!(report.response_time_ms.count, 1);
    assert!(
        report.response_time_ms.max >= 90.0,
        "max {} ms < 90 ms of body streaming",
        report.response_time_ms.max
    );
    assert!(report.response_time_ms.p50 >= 85.0, "{report:?}");
    assert!(report.response_time_ms.mean >= 90.0, "{report:?}");
}

#[tokio::test]
async fn a_500_response_is_an_error() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let mut res = text("boom");
        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        Ok::<_, Infallible>(res)
    }));

    let (parts, body) = send(svc, get("/")).await;
    assert_eq!(parts.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, "boom");

    let report = layer.clone().build().report().await;
    assert_eq!(class(&report, "5xx"), 1, "{report:?}");
    assert_counts!(&layer, 1, 1, 0, 0);
    assert_eq!(report.requests.error_rate, 1.0);
}

#[tokio::test]
async fn a_4xx_response_is_not_an_error() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let mut res = text("nope");
        *res.status_mut() = StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(res)
    }));
    send(svc, get("/")).await;
    assert_eq!(class(&layer.clone().build().report().await, "4xx"), 1);
    assert_counts!(&layer, 1, 0, 0, 0);
}

#[tokio::test]
async fn a_body_error_is_an_error() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let body = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"partial"))),
            Err("disk on fire".into()),
        ]);
        Ok::<_, Infallible>(Response::new(body))
    }));

    let res = bounded("call", svc.oneshot(get("/"))).await.unwrap();
    let err = bounded("body", res.into_body().collect()).await;
    assert!(err.is_err(), "the body error must reach the caller");

    assert_counts!(&layer, 1, 1, 0, 0);
    assert_eq!(class(&layer.clone().build().report().await, "2xx"), 1);
}

#[tokio::test]
async fn an_inner_service_error_is_an_error() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        Err::<Response<Full<Bytes>>, BoxError>("connection refused".into())
    }));

    match bounded("call", svc.oneshot(get("/"))).await {
        Ok(res) => panic!("expected the inner error, got {}", res.status()),
        Err(err) => assert_eq!(err.to_string(), "connection refused"),
    }

    let report = layer.clone().build().report().await;
    assert_counts!(&layer, 1, 1, 0, 0);
    assert!(report.requests.by_class.is_empty(), "{report:?}");
    assert_eq!(report.response_time_ms.count, 1);
}

#[tokio::test]
async fn a_dropped_future_is_aborted_not_an_error() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, Infallible>(text("too late"))
    }));

    let outcome = tokio::time::timeout(Duration::from_millis(20), svc.oneshot(get("/"))).await;
    assert!(
        outcome.is_err(),
        "the inner service should still be sleeping"
    );

    assert_counts!(&layer, 1, 0, 1, 0);
    assert!(layer
        .clone()
        .build()
        .report()
        .await
        .requests
        .by_class
        .is_empty());
}

#[tokio::test]
async fn a_body_dropped_before_its_end_is_aborted() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let first = stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from_static(
            b"first",
        )))]);
        let body = StreamBody::new(futures_util::StreamExt::chain(first, stream::pending()));
        Ok::<_, Infallible>(Response::new(body))
    }));

    let mut body = bounded("call", svc.oneshot(get("/")))
        .await
        .unwrap()
        .into_body();
    let frame = bounded("first frame", body.frame()).await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "first");
    assert_counts!(&layer, 0, 0, 0, 1);
    drop(body);

    assert_counts!(&layer, 1, 0, 1, 0);
    // An abort counts as aborted only, not under its response's class.
    assert_eq!(class(&layer.clone().build().report().await, "2xx"), 0);
}

#[tokio::test]
async fn in_flight_counts_pending_requests() {
    let layer = StatusLayer::new();
    let release = Arc::new(Notify::new());
    let gate = Arc::clone(&release);
    let svc = layer.layer(service_fn(move |_req: Request<Full<Bytes>>| {
        let gate = Arc::clone(&gate);
        async move {
            gate.notified().await;
            Ok::<_, Infallible>(text("released"))
        }
    }));

    assert_counts!(&layer, 0, 0, 0, 0);
    let pending = tokio::spawn(send(svc.clone(), get("/")));
    wait_until("request in flight", || async {
        layer.clone().build().report().await.requests.in_flight == 1
    })
    .await;
    assert_counts!(&layer, 0, 0, 0, 1);

    // The status endpoint still answers while the request waits.
    let report = common::get_json(svc, "/status").await;
    assert_eq!(report["requests"]["in_flight"], 1, "{report}");

    release.notify_one();
    let (parts, body) = bounded("released request", pending).await.unwrap();
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, "released");
    assert_counts!(&layer, 1, 0, 0, 0);
}

#[tokio::test]
async fn an_empty_body_is_recorded_when_the_future_resolves() {
    let layer = StatusLayer::new();
    let full = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    }));
    let empty = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let mut res = Response::new(Empty::<Bytes>::new());
        *res.status_mut() = StatusCode::NO_CONTENT;
        Ok::<_, Infallible>(res)
    }));

    // Responses held, bodies never polled.
    let first = bounded("call", full.oneshot(get("/"))).await.unwrap();
    assert_counts!(&layer, 1, 0, 0, 0);
    let second = bounded("call", empty.oneshot(get("/"))).await.unwrap();
    assert_counts!(&layer, 2, 0, 0, 0);
    assert_eq!(class(&layer.clone().build().report().await, "2xx"), 2);

    // Dropping or draining them later changes nothing.
    drop(first);
    assert!(common::body_bytes(second.into_body()).await.is_empty());
    assert_counts!(&layer, 2, 0, 0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_counted_exactly() {
    const TASKS: usize = 8;
    const PER_TASK: usize = 250;
    const N: u64 = (TASKS * PER_TASK) as u64;

    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        tokio::task::yield_now().await;
        Ok::<_, Infallible>(text("ok"))
    }));

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let calls = (0..PER_TASK).map(|_| {
                    let svc = svc.clone();
                    async move {
                        let res = svc.oneshot(get("/")).await.unwrap();
                        res.into_body().collect().await.unwrap().to_bytes()
                    }
                });
                futures_util::future::join_all(calls).await
            })
        })
        .collect();
    for task in tasks {
        let bodies = bounded("concurrent task", task).await.unwrap();
        assert_eq!(bodies.len(), PER_TASK);
        assert!(bodies.iter().all(|b| b == "ok"));
    }

    let report = layer.clone().build().report().await;
    assert_eq!(report.requests.total, N, "{report:?}");
    assert_eq!(class(&report, "2xx"), N, "{report:?}");
    assert_eq!(report.response_time_ms.count, N, "{report:?}");
    assert_eq!(report.requests.window_total, N, "{report:?}");
    assert_eq!(report.requests.in_flight, 0, "{report:?}");
    assert_eq!(report.requests.errors, 0, "{report:?}");
    assert_eq!(report.requests.aborted, 0, "{report:?}");
}

#[tokio::test]
async fn grpc_status_decides_grpc_errors() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|req: Request<Full<Bytes>>| async move {
        // The test names the answer it wants in the path.
        let body = match req.uri().path() {
            "/headers-14" => {
                let res = Response::builder()
                    .header(CONTENT_TYPE, "application/grpc")
                    .header("grpc-status", "14")
                    .header("grpc-message", "unavailable")
                    .body(frames(vec![]))?;
                return Ok::<_, BoxError>(res);
            }
            "/trailers-0" => frames(vec![
                Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\x02\x08\x01"))),
                Ok(Frame::trailers(header_map(&[("grpc-status", "0")]))),
            ]),
            "/trailers-13" => frames(vec![
                Ok(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
                Ok(Frame::trailers(header_map(&[
                    ("grpc-status", "13"),
                    ("grpc-message", "internal"),
                ]))),
            ]),
            other => panic!("unexpected path {other}"),
        };
        Ok(Response::builder()
            .header(CONTENT_TYPE, "application/grpc")
            .body(body)?)
    }));
    let call = |path: &'static str, method: Method, content_type: &'static str| {
        let mut req = grpc_request(content_type);
        *req.method_mut() = method;
        *req.uri_mut() = path.parse().unwrap();
        send(svc.clone(), req)
    };

    // Trailers-only failure: grpc-status in the headers.
    let (parts, _) = call("/headers-14", Method::POST, "application/grpc").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_counts!(&layer, 1, 1, 0, 0);

    // Success: grpc-status 0 in the trailers.
    call("/trailers-0", Method::POST, "application/grpc").await;
    assert_counts!(&layer, 2, 1, 0, 0);

    // Failure in the trailers, with a content-type suffix.
    call("/trailers-13", Method::POST, "application/grpc+proto").await;
    assert_counts!(&layer, 3, 2, 0, 0);

    // Not gRPC (not application/grpc, or not a POST): grpc-status means nothing.
    call("/headers-14", Method::POST, "application/json").await;
    call("/trailers-13", Method::GET, "application/grpc").await;
    assert_counts!(&layer, 5, 2, 0, 0);
    assert_eq!(class(&layer.clone().build().report().await, "2xx"), 5);
}

/// A trailers frame is the last frame of a body: a consumer that stops
/// polling after it (as hyper does when it sends trailers) has read the
/// whole response, which is not an abort.
#[tokio::test]
async fn a_body_dropped_right_after_its_trailers_is_complete() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let body = frames(vec![
            Ok(Frame::data(Bytes::from_static(b"data"))),
            Ok(Frame::trailers(header_map(&[("x-checksum", "1")]))),
        ]);
        Ok::<_, Infallible>(Response::new(body))
    }));

    let mut body = bounded("call", svc.oneshot(get("/")))
        .await
        .unwrap()
        .into_body();
    let data = bounded("data", body.frame()).await.unwrap().unwrap();
    assert!(data.is_data());
    let trailers = bounded("trailers", body.frame()).await.unwrap().unwrap();
    assert!(trailers.is_trailers());
    drop(body);

    assert_counts!(&layer, 1, 0, 0, 0);
}

/// The same, for gRPC: a failure announced in the trailers stays an error
/// when the consumer stops right after them (hyper's HTTP/2 server does).
#[tokio::test]
async fn a_grpc_failure_in_trailers_is_an_error_when_the_body_is_dropped_after_them() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let body = frames(vec![Ok(Frame::trailers(header_map(&[
            ("grpc-status", "13"),
            ("grpc-message", "internal"),
        ])))]);
        let res = Response::builder()
            .header(CONTENT_TYPE, "application/grpc")
            .body(body)
            .unwrap();
        Ok::<_, Infallible>(res)
    }));

    let mut body = bounded("call", svc.oneshot(grpc_request("application/grpc")))
        .await
        .unwrap()
        .into_body();
    let trailers = bounded("trailers", body.frame()).await.unwrap().unwrap();
    assert_eq!(trailers.trailers_ref().unwrap()["grpc-status"], "13");
    drop(body);

    assert_counts!(layer, 1, 1, 0, 0);
}
