//! The layer in real servers on loopback (axum, tonic, plain hyper), driven
//! by real clients over HTTP/1.1 and HTTP/2.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{
    bounded, class_count, fetch, fetch_json, frames, header_map, http1_client, http2_client,
    loopback, num, serve_hello, serve_tonic_health, wait_until, BoxError,
};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::ServingStatus;
use tower::{service_fn, Layer, Service};
use tower_status::StatusLayer;

/// Serves `svc` with hyper-util's auto (HTTP/1.1 and HTTP/2) connection
/// builder on a loopback port until the test ends.
async fn start_hyper<S, B>(svc: S) -> SocketAddr
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (listener, addr) = loopback().await;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let svc = TowerToHyperService::new(svc.clone());
            tokio::spawn(async move {
                // A connection error (a client going away) ends only that connection.
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// Waits until the layer's own report counts `total` finished requests.
async fn wait_for_total(layer: &StatusLayer, total: u64) {
    wait_until("requests recorded", || async {
        layer.clone().build().report().await.requests.total >= total
    })
    .await;
}

#[tokio::test]
async fn axum_server_over_http1() {
    let layer = StatusLayer::new().service_name("axum-app");
    let addr = serve_hello(&layer).await;
    let client = http1_client();

    for _ in 0..5 {
        let res = fetch(&client, addr, Method::GET, "/").await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.version, Version::HTTP_11);
        assert_eq!(res.body, "hello");
    }

    let res = fetch(&client, addr, Method::GET, "/status").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_TYPE], "application/json");
    let report = res.json();
    assert_eq!(report["service"], "axum-app");
    assert_eq!(num(&report, "requests", "total"), 5, "{report}");
    assert_eq!(class_count(&report, "2xx"), 5, "{report}");
    assert_eq!(num(&report, "requests", "errors"), 0, "{report}");
    assert_eq!(num(&report, "requests", "aborted"), 0, "{report}");
    assert_eq!(num(&report, "requests", "in_flight"), 0, "{report}");
    assert_eq!(num(&report, "response_time_ms", "count"), 5, "{report}");

    // HEAD over the wire: the length of the GET body, no body.
    let head = fetch(&client, addr, Method::HEAD, "/status").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    let len: usize = head.headers[CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(len > 0);

    let res = fetch(&client, addr, Method::POST, "/status").await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn axum_server_over_http2_prior_knowledge() {
    let addr = serve_hello(&StatusLayer::new()).await;
    let client = http2_client();

    let res = fetch(&client, addr, Method::GET, "/status").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.version, Version::HTTP_2);
    assert_eq!(res.headers[CONTENT_TYPE], "application/json");
    assert_eq!(res.json()["status"], "ok");

    let res = fetch(&client, addr, Method::GET, "/").await;
    assert_eq!(res.version, Version::HTTP_2);
    assert_eq!(res.body, "hello");

    let report = fetch_json(&client, addr, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 1, "{report}");
    assert_eq!(class_count(&report, "2xx"), 1, "{report}");
    assert_eq!(num(&report, "requests", "aborted"), 0, "{report}");
}

#[tokio::test]
async fn tonic_health_server_counts_grpc_calls() {
    let layer = StatusLayer::new();
    let addr = serve_tonic_health(&layer).await;

    // tonic-health's generated client has no `connect`: open the channel here.
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("valid URI")
        .connect_timeout(common::STEP);
    let channel = bounded("gRPC connect", channel.connect())
        .await
        .expect("gRPC connect");
    let mut client = HealthClient::new(channel);
    let check = |name: &str| HealthCheckRequest {
        service: name.to_owned(),
    };

    let res = bounded("check \"\"", client.check(check("")))
        .await
        .unwrap();
    assert_eq!(res.get_ref().status(), ServingStatus::Serving.into());
    let res = bounded("check test.Echo", client.check(check("test.Echo")))
        .await
        .unwrap();
    assert_eq!(res.get_ref().status(), ServingStatus::Serving.into());
    let err = bounded("check unknown", client.check(check("no.Such")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    // The status endpoint over HTTP/1.1 on the same port.
    let report = fetch_json(&http1_client(), addr, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 3, "{report}");
    assert_eq!(num(&report, "requests", "errors"), 1, "{report}");
    assert_eq!(num(&report, "requests", "aborted"), 0, "{report}");
    assert_eq!(class_count(&report, "2xx"), 3, "{report}");
    // And over HTTP/2, as a gRPC client's connection would be.
    let report = fetch_json(&http2_client(), addr, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 3, "{report}");
    assert_eq!(layer.clone().build().report().await.status_requests, 2);
}

#[tokio::test]
async fn hyper_server_counts_requests() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|req: Request<Incoming>| async move {
        let status = match req.uri().path() {
            "/fail" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        };
        let res = Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"from hyper")))?;
        Ok::<_, http::Error>(res)
    }));
    let addr = start_hyper(svc).await;
    let client = http1_client();

    let res = fetch(&client, addr, Method::GET, "/hello").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "from hyper");
    let res = fetch(&client, addr, Method::GET, "/fail").await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE);

    let report = fetch_json(&client, addr, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 2, "{report}");
    assert_eq!(class_count(&report, "2xx"), 1, "{report}");
    assert_eq!(class_count(&report, "5xx"), 1, "{report}");
    assert_eq!(num(&report, "requests", "errors"), 1, "{report}");

    // The same server speaks HTTP/2 with prior knowledge.
    let report = fetch_json(&http2_client(), addr, "/status").await;
    assert_eq!(num(&report, "requests", "total"), 2, "{report}");
}

/// A response whose body is a stream: its end is only known by polling it
/// once more, which hyper does not always do.
fn streamed(
    with_trailers: bool,
) -> Response<impl Body<Data = Bytes, Error = BoxError> + Send + 'static> {
    let mut parts = vec![
        Ok(Frame::data(Bytes::from_static(b"stream"))),
        Ok(Frame::data(Bytes::from_static(b"ed"))),
    ];
    if with_trailers {
        parts.push(Ok(Frame::trailers(header_map(&[("x-checksum", "8")]))));
    }
    let mut res = Response::new(frames(parts));
    if !with_trailers {
        // Known length: hyper ends the message after 8 bytes.
        res.headers_mut()
            .insert(CONTENT_LENGTH, http::HeaderValue::from_static("8"));
    }
    res
}

/// A streamed body with a `Content-Length`, like a file download, is
/// written whole and recorded as a success.
#[tokio::test]
async fn hyper_h1_streamed_body_with_content_length_is_a_success() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Incoming>| async {
        Ok::<_, Infallible>(streamed(false))
    }));
    let addr = start_hyper(svc).await;

    let res = fetch(&http1_client(), addr, Method::GET, "/file").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "streamed");

    wait_for_total(&layer, 1).await;
    let r = layer.clone().build().report().await.requests;
    assert_eq!((r.total, r.aborted, r.errors), (1, 0, 0), "{r:?}");
    assert_eq!(r.by_class.get("2xx"), Some(&1), "{r:?}");
}

/// Over HTTP/2 trailers end the stream: a body with trailers is sent whole
/// and recorded as a success.
#[tokio::test]
async fn h2_body_with_trailers_is_a_success() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Incoming>| async {
        Ok::<_, Infallible>(streamed(true))
    }));
    let addr = start_hyper(svc).await;

    let res = fetch(&http2_client(), addr, Method::GET, "/with-trailers").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "streamed");
    assert_eq!(
        res.trailers.expect("trailers over HTTP/2")["x-checksum"],
        "8"
    );

    wait_for_total(&layer, 1).await;
    // Give a late record a moment to show up too.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = layer.clone().build().report().await.requests;
    assert_eq!((r.total, r.aborted, r.errors), (1, 0, 0), "{r:?}");
    assert_eq!(r.by_class.get("2xx"), Some(&1), "{r:?}");
}

/// A `HEAD` to a route with a body (what load balancers send) is a
/// success in its class: axum replaces a layered route's body with an empty
/// one for HEAD, and hyper's HTTP/1.1 drops it unpolled. (hyper's HTTP/2
/// server sends a HEAD body, which clients reject: not a case here.)
#[tokio::test]
async fn head_to_a_route_with_a_body_is_a_success() {
    let axum_layer = StatusLayer::new();
    let axum_addr = serve_hello(&axum_layer).await;
    let hyper_layer = StatusLayer::new();
    let hyper_addr = start_hyper(
        hyper_layer.layer(service_fn(|_req: Request<Incoming>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
        })),
    )
    .await;

    for (server, layer, addr, client, version) in [
        (
            "axum",
            &axum_layer,
            axum_addr,
            http1_client(),
            Version::HTTP_11,
        ),
        (
            "axum",
            &axum_layer,
            axum_addr,
            http2_client(),
            Version::HTTP_2,
        ),
        (
            "hyper",
            &hyper_layer,
            hyper_addr,
            http1_client(),
            Version::HTTP_11,
        ),
    ] {
        let before = layer.clone().build().report().await.requests;
        let ok_before = before.by_class.get("2xx").copied().unwrap_or(0);
        for _ in 0..3 {
            let res = fetch(&client, addr, Method::HEAD, "/").await;
            assert_eq!((res.status, res.version), (StatusCode::OK, version));
            assert!(res.body.is_empty(), "{res:?}");
        }
        wait_for_total(layer, before.total + 3).await;
        let r = layer.clone().build().report().await.requests;
        let what = format!("{server} {version:?} {r:?}");
        assert_eq!(
            (r.total, r.aborted, r.errors),
            (before.total + 3, 0, 0),
            "{what}"
        );
        assert_eq!(r.by_class.get("2xx"), Some(&(ok_before + 3)), "{what}");
    }

    // A GET to the same route still sends and counts its body.
    let res = fetch(&http1_client(), hyper_addr, Method::GET, "/").await;
    assert_eq!(res.body, "hello");
    wait_for_total(&hyper_layer, 4).await;
    let r = hyper_layer.clone().build().report().await.requests;
    assert_eq!((r.total, r.aborted), (4, 0), "{r:?}");
}

/// A body that knows its length but never says it ended: HTTP/1.1 stops
/// polling once the announced bytes are out.
struct Sized {
    frames: std::collections::VecDeque<Bytes>,
    left: u64,
}

impl Body for Sized {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.frames.pop_front();
        if let Some(data) = &frame {
            self.left -= data.len() as u64;
        }
        std::task::Poll::Ready(frame.map(|data| Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// A sized body sent whole is a success, whether the server polls it to its
/// end (HTTP/2) or drops it after the announced length (HTTP/1.1).
#[tokio::test]
async fn a_sized_body_sent_whole_is_a_success() {
    let layer = StatusLayer::new();
    let svc = layer.layer(service_fn(|_req: Request<Incoming>| async {
        let frames = [&b"sized "[..], b"in ", b"parts"].map(Bytes::from_static);
        Ok::<_, Infallible>(Response::new(Sized {
            frames: frames.into(),
            left: 14,
        }))
    }));
    let addr = start_hyper(svc).await;

    let mut sent = 0;
    for (client, version) in [
        (http1_client(), Version::HTTP_11),
        (http2_client(), Version::HTTP_2),
    ] {
        let res = fetch(&client, addr, Method::GET, "/file").await;
        assert_eq!((res.status, res.version), (StatusCode::OK, version));
        assert_eq!(res.body, "sized in parts");
        sent += 1;
        wait_for_total(&layer, sent).await;
        let r = layer.clone().build().report().await.requests;
        assert_eq!(
            (r.total, r.aborted, r.errors),
            (sent, 0, 0),
            "{version:?} {r:?}"
        );
        assert_eq!(r.by_class.get("2xx"), Some(&sent), "{version:?} {r:?}");
    }
}

/// `HEAD` and `GET` to pass-through routes with bodies, the layer wrapped
/// around the whole axum router (not `Router::layer`), over HTTP/1.1 and
/// HTTP/2: each request is counted once in its class, none as aborted,
/// whether the body is whole, streamed in frames, or left out for `HEAD`.
#[tokio::test]
async fn around_the_whole_router_head_and_get_count_in_their_class() {
    use axum::response::IntoResponse;
    use tower::ServiceExt;

    let layer = StatusLayer::new();
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .route(
            "/stream",
            axum::routing::get(|| async {
                axum::body::Body::from_stream(futures_util::stream::iter(
                    [&b"one "[..], b"two ", b"three"]
                        .map(|b| Ok::<_, Infallible>(Bytes::from_static(b))),
                ))
            }),
        );
    let app = ServiceExt::<Request<Incoming>>::map_response(
        layer.layer(router),
        IntoResponse::into_response,
    );
    let addr = start_hyper(app).await;

    let mut sent = 0;
    for (client, version) in [
        (http1_client(), Version::HTTP_11),
        (http2_client(), Version::HTTP_2),
    ] {
        for (method, path, body) in [
            (Method::HEAD, "/", ""),
            (Method::HEAD, "/stream", ""),
            (Method::GET, "/", "hello"),
            (Method::GET, "/stream", "one two three"),
        ] {
            let res = fetch(&client, addr, method.clone(), path).await;
            let what = format!("{method} {path} {version:?}");
            assert_eq!(
                (res.status, res.version),
                (StatusCode::OK, version),
                "{what}"
            );
            assert_eq!(res.body, body, "{what}");
            sent += 1;
            wait_for_total(&layer, sent).await;
            let r = layer.clone().build().report().await.requests;
            assert_eq!((r.total, r.aborted, r.errors), (sent, 0, 0), "{what} {r:?}");
            assert_eq!(r.by_class.get("2xx"), Some(&sent), "{what} {r:?}");
        }
    }
}
