//! Helpers shared by the integration tests: bodies, report reading, loopback
//! servers and a real HTTP client. Every wait is bounded.

// Each test file uses only some of these.
#![allow(dead_code)]

pub mod service;

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::task::JoinHandle;
use tonic_health::pb::health_server::{Health, HealthServer};
use tower::{Service, ServiceExt};
use tower_status::check::{Check, CheckResult, Freshness, HealthCheck};
use tower_status::StatusLayer;

/// Upper bound for any single step of a test.
pub const STEP: Duration = Duration::from_secs(5);

/// Error type of the test bodies and services.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs `fut`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

/// Polls `cond` every few milliseconds until it holds, for at most [`STEP`].
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    bounded(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

/// A request with an empty body.
pub fn request(method: Method, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .expect("valid request")
}

/// A `GET` request with an empty body.
pub fn get(uri: &str) -> Request<Full<Bytes>> {
    request(Method::GET, uri)
}

/// A `200` response with `body` as its whole content.
pub fn text(body: &'static str) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from_static(body.as_bytes())))
}

/// One frame of a test body, or its error.
pub type FrameResult = Result<Frame<Bytes>, BoxError>;

/// The body [`frames`] makes.
pub type Frames = StreamBody<tokio_stream::Iter<std::vec::IntoIter<FrameResult>>>;

/// A body made of the given frames, in order, with nothing else.
pub fn frames(frames: Vec<FrameResult>) -> Frames {
    StreamBody::new(tokio_stream::iter(frames))
}

/// Header map from `(name, value)` pairs.
pub fn header_map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                http::HeaderName::from_static(k),
                http::HeaderValue::from_static(v),
            )
        })
        .collect()
}

/// Reads a whole body, failing on a body error or a slow body.
pub async fn body_bytes<B>(body: B) -> Bytes
where
    B: Body,
    B::Error: Debug,
{
    bounded("reading a body", body.collect())
        .await
        .expect("body error")
        .to_bytes()
}

/// Parses `bytes` as JSON, showing them when they are not.
pub fn parse_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
        )
    })
}

/// Sends one request through `svc` with `oneshot` and returns the response
/// head and its whole body.
pub async fn send<S, ReqB, ResB>(svc: S, req: Request<ReqB>) -> (http::response::Parts, Bytes)
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Debug,
    ResB: Body,
    ResB::Error: Debug,
{
    let res = bounded("service call", svc.oneshot(req))
        .await
        .expect("service error");
    let (parts, body) = res.into_parts();
    (parts, body_bytes(body).await)
}

/// `GET path` through `svc`: the status must be 200 and the body JSON.
pub async fn get_json<S, ResB>(svc: S, path: &str) -> Value
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResB>>,
    S::Error: Debug,
    ResB: Body,
    ResB::Error: Debug,
{
    let (parts, body) = send(svc, get(path)).await;
    assert_eq!(parts.status, StatusCode::OK, "GET {path}");
    parse_json(&body)
}

/// `report["requests"]["by_class"][class]`, 0 when the class is absent.
pub fn class_count(report: &Value, class: &str) -> u64 {
    report["requests"]["by_class"]
        .get(class)
        .map_or(0, |v| v.as_u64().expect("class count is a number"))
}

/// `report[section][field]` as a number, failing when it is missing.
pub fn num(report: &Value, section: &str, field: &str) -> u64 {
    report[section][field]
        .as_u64()
        .unwrap_or_else(|| panic!("{section}.{field} missing in {report}"))
}

/// A `service_fn` answering every request with the same text.
pub fn hello_service() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    tower::service_fn(|_req: Request<Full<Bytes>>| async { Ok(text("hello")) })
}

/// A TCP listener on a free loopback port.
pub async fn loopback() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Serves `app` with `axum::serve` on a loopback port until the test ends.
pub async fn start_axum(app: axum::Router) -> SocketAddr {
    let (listener, addr) = loopback().await;
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("axum server");
    });
    addr
}

/// HTTP/1.1 client.
pub fn http1_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// HTTP/2 client with prior knowledge (no upgrade, no TLS).
pub fn http2_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A response as a real client saw it.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Fetched {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        parse_json(&self.body)
    }
}

/// Sends `method path` to `addr` with `client` and reads the whole response.
pub async fn fetch(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
) -> Fetched {
    let req = request(method, &format!("http://{addr}{path}"));
    let res = bounded("HTTP request", client.request(req))
        .await
        .expect("HTTP request failed");
    let (parts, body) = res.into_parts();
    let collected = bounded("HTTP response body", body.collect())
        .await
        .expect("HTTP response body failed");
    let trailers = collected.trailers().cloned();
    Fetched {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// `GET /status` from the app at `addr` until component `name` has
/// `status`, for at most `within`; returns the whole report and how long it
/// took. (The report may be a 503 while a critical component is down.)
pub async fn status_until(
    addr: SocketAddr,
    name: &str,
    status: &str,
    within: Duration,
) -> (Value, Duration) {
    let client = http1_client();
    let started = std::time::Instant::now();
    loop {
        let report = fetch(&client, addr, Method::GET, "/status").await.json();
        if component(&report, name)["status"] == status {
            return (report, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "{name} not {status} within {within:?}: {report}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` from a real server with `client`: must be 200 with a JSON body.
pub async fn fetch_json(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> Value {
    let res = fetch(client, addr, Method::GET, path).await;
    assert_eq!(res.status, StatusCode::OK, "GET {path}: {res:?}");
    res.json()
}

/// Serves `/` ("hello") behind `layer` with axum on a loopback port.
pub async fn serve_hello(layer: &StatusLayer) -> SocketAddr {
    start_axum(
        axum::Router::new()
            .route("/", axum::routing::get(|| async { "hello" }))
            .layer(layer.clone()),
    )
    .await
}

/// Serves tonic-health's `Health` service, with `test.Echo` serving, behind
/// `layer` on a loopback port (HTTP/1.1 accepted too).
pub async fn serve_tonic_health(layer: &StatusLayer) -> SocketAddr {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("test.Echo", tonic_health::ServingStatus::Serving)
        .await;
    serve_health_service(&layer.clone().build(), health_service)
        .await
        .0
}

/// Serves `health_service` behind `layer` with tonic on a loopback port
/// (HTTP/1.1 accepted too), until the test ends or the task is aborted.
pub async fn serve_health_service<H: Health>(
    layer: &tower_status::StatusHandle,
    health_service: HealthServer<H>,
) -> (SocketAddr, JoinHandle<()>) {
    let (listener, addr) = loopback().await;
    let server = tonic::transport::Server::builder()
        .accept_http1(true)
        .layer(layer.clone())
        .add_service(health_service)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let task = tokio::spawn(async move { server.await.expect("tonic server") });
    (addr, task)
}

/// A check that is up while `flag` is set, run on every request (no cache),
/// counting its runs in `runs`.
pub fn flag_check(name: &str, flag: &Arc<AtomicBool>, runs: &Arc<AtomicUsize>) -> HealthCheck {
    let (flag, runs) = (Arc::clone(flag), Arc::clone(runs));
    HealthCheck::new(name, move || {
        runs.fetch_add(1, Ordering::SeqCst);
        let up = flag.load(Ordering::SeqCst);
        async move {
            if up {
                CheckResult::ok()
            } else {
                CheckResult::down("connection refused")
            }
        }
    })
    .freshness(Freshness::OnDemand {
        ttl: Duration::ZERO,
    })
}

/// A flag for [`flag_check`], set.
pub fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

/// A run counter for [`flag_check`], at 0.
pub fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

/// `report.components[name]`, failing when missing.
pub fn component<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["components"]
        .get(name)
        .unwrap_or_else(|| panic!("no component {name:?} in {report}"))
}

/// The `error` of component `name`, failing when it has none.
pub fn error_of(report: &Value, name: &str) -> String {
    component(report, name)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("component {name:?} has no error: {report}"))
        .to_owned()
}

/// A check closure that counts its runs in `runs` and passes while `flag` is
/// set, failing with `failure` otherwise.
pub fn flag_fn(
    flag: &Arc<AtomicBool>,
    runs: &Arc<AtomicUsize>,
    failure: &'static str,
) -> impl Check {
    let flag = Arc::clone(flag);
    let runs = Arc::clone(runs);
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        let ok = flag.load(Ordering::SeqCst);
        async move {
            if ok {
                Ok(())
            } else {
                Err(failure)
            }
        }
    }
}
