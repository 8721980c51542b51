//! A passed-through request allocates nothing more than the bare service does.
//!
//! A counting global allocator wraps `System`. It counts only on a thread
//! that has switched counting on, and only while it is on, so the test
//! harness and other threads never disturb the figures. Every case drives the
//! service as axum does (clone, `oneshot`, drain the body), once bare and
//! once behind `StatusLayer`, on a current-thread runtime; after a warm-up,
//! the allocations of `REQUESTS` requests are counted and must be equal.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use tower_status::check::HealthCheck;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Empty, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_status::StatusLayer;

#[path = "support/forward.rs"]
mod forward;

// ---------------------------------------------------------------------------
// The counting allocator.

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` and without a destructor: using it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

#[inline]
fn note(size: usize) {
    // `try_with`: during thread teardown the flag may be gone; then nothing is counted.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters are
// plain atomics and the thread-local flag is const-initialized, so counting
// never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (count, bytes) made on this thread while `fut` runs.
async fn count<F: Future<Output = ()>>(fut: F) -> (usize, usize) {
    let (a0, b0) = (ALLOCATIONS.load(Relaxed), BYTES.load(Relaxed));
    COUNTING.with(|c| c.set(true));
    fut.await;
    COUNTING.with(|c| c.set(false));
    (ALLOCATIONS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0)
}

// ---------------------------------------------------------------------------
// The driver and the cases.

const WARM_UP: usize = 200;
const REQUESTS: usize = 1_000;

type Req = Request<Full<Bytes>>;

/// What one request does with its response.
#[derive(Clone, Copy, Debug)]
enum Drive {
    /// Polls the body until it ends.
    Drain,
    /// Drops the body after its first frame (an aborted request).
    DropEarly,
}

/// One request as axum sends it: clone the service, `oneshot`, then the body.
async fn one<S, B>(svc: &S, req: Req, drive: Drive)
where
    S: Service<Req, Response = Response<B>> + Clone,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let Ok(res) = svc.clone().oneshot(req).await else {
        return; // a service error: nothing to drain
    };
    let mut body = pin!(res.into_body());
    match drive {
        Drive::Drain => {
            while let Some(frame) = body.frame().await {
                std::hint::black_box(frame.expect("body error"));
            }
        }
        Drive::DropEarly => {
            let first = body.frame().await;
            std::hint::black_box(&first);
        }
    }
}

/// Allocations (count, bytes) of `REQUESTS` requests after a warm-up.
async fn measure<S, B>(svc: &S, make: fn() -> Req, drive: Drive) -> (usize, usize)
where
    S: Service<Req, Response = Response<B>> + Clone,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    for _ in 0..WARM_UP {
        one(svc, make(), drive).await;
    }
    count(async {
        for _ in 0..REQUESTS {
            one(svc, make(), drive).await;
        }
    })
    .await
}

/// A layer like an application's: checks registered, traffic recorded.
fn layer() -> StatusLayer {
    StatusLayer::new()
        .service_name("alloc-test")
        .check(HealthCheck::new("db", || async { true }))
        .check(HealthCheck::new("cache", || async { true }))
        .check(HealthCheck::new("queue", || async { true }))
}

fn get() -> Req {
    let mut req = Request::new(Full::default());
    *req.uri_mut() = http::Uri::from_static("/hello");
    req
}

fn grpc_post() -> Req {
    let mut req = Request::new(Full::new(Bytes::from_static(b"\0\0\0\0\0")));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = http::Uri::from_static("/pkg.Service/Method");
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    req
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Measures `inner` bare and behind the layer with the same driver, prints
/// both, asserts they are equal, and returns the layer's report of the
/// recorded traffic.
fn compare<S, B>(case: &str, inner: S, make: fn() -> Req, drive: Drive) -> tower_status::Report
where
    S: Service<Req, Response = Response<B>, Error = Infallible> + Clone,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let rt = runtime();
    let layer = layer();
    let layered = layer.layer(inner.clone());
    let (bare, with_layer) = rt.block_on(async {
        // Interleaved twice, each measured after its own warm-up; the
        // second pair is the one compared (the first settles lazy statics).
        measure(&inner, make, drive).await;
        measure(&layered, make, drive).await;
        (
            measure(&inner, make, drive).await,
            measure(&layered, make, drive).await,
        )
    });
    println!(
        "{case:<22} bare: {} allocations ({} bytes) per {REQUESTS} requests; \
         layered: {} allocations ({} bytes)",
        bare.0, bare.1, with_layer.0, with_layer.1
    );
    assert_eq!(
        with_layer.0,
        bare.0,
        "{case}: the layer added {} allocations per {REQUESTS} requests",
        with_layer.0 as i64 - bare.0 as i64
    );
    assert_eq!(
        with_layer.1, bare.1,
        "{case}: the layer added allocated bytes"
    );
    rt.block_on(layer.clone().build().report())
}

/// Requests made per case by `compare` (two warm-ups, two measured runs).
const RECORDED: u64 = 2 * (WARM_UP + REQUESTS) as u64;

// One test only: the figures are per thread anyway, but a single test keeps
// the run deterministic and its output in one place.
#[test]
fn passed_through_requests_allocate_nothing_more_than_the_bare_service() {
    // The counter itself: one box, one allocation; nothing when off.
    let rt = runtime();
    let (n, bytes) = rt.block_on(count(async {
        std::hint::black_box(Box::new(7u64));
    }));
    assert_eq!((n, bytes), (1, 8), "the counting allocator counts");
    let before = ALLOCATIONS.load(Relaxed);
    std::hint::black_box(vec![0u8; 64]);
    assert_eq!(
        ALLOCATIONS.load(Relaxed),
        before,
        "counting is off outside `count`"
    );

    // 200 with a small body, drained.
    let hello = service_fn(|_req: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    });
    let report = compare("200, body drained", hello, get, Drive::Drain);
    assert_eq!(report.requests.total, RECORDED);
    assert_eq!(report.requests.by_class.get("2xx"), Some(&RECORDED));

    // 500: an error.
    let failing = service_fn(|_req: Req| async {
        let mut res = Response::new(Full::new(Bytes::from_static(b"oops")));
        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        Ok::<_, Infallible>(res)
    });
    let report = compare("500, body drained", failing, get, Drive::Drain);
    assert_eq!(report.requests.errors, RECORDED);

    // An empty body: recorded when the response head arrives.
    let empty = service_fn(|_req: Req| async {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        Ok::<_, Infallible>(res)
    });
    let report = compare("204, empty body", empty, get, Drive::Drain);
    assert_eq!(report.requests.by_class.get("2xx"), Some(&RECORDED));

    // The body dropped before its end: recorded as aborted.
    let chunks = service_fn(|_req: Req| async {
        let body = http_body_util::StreamBody::new(futures_util::stream::iter([
            Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(b"one"))),
            Ok(http_body::Frame::data(Bytes::from_static(b"two"))),
        ]));
        Ok::<_, Infallible>(Response::new(body))
    });
    let report = compare("body dropped early", chunks, get, Drive::DropEarly);
    assert_eq!(report.requests.aborted, RECORDED);

    // A gRPC call (POST, `application/grpc`) failing in its headers.
    let grpc = service_fn(|_req: Req| async {
        let mut res = Response::new(Empty::<Bytes>::new());
        res.headers_mut()
            .insert("grpc-status", HeaderValue::from_static("14"));
        Ok::<_, Infallible>(res)
    });
    let report = compare("gRPC, grpc-status 14", grpc, grpc_post, Drive::Drain);
    assert_eq!(report.requests.errors, RECORDED);

    axum_routes_allocate_what_any_body_wrapping_layer_does();
}

// ---------------------------------------------------------------------------
// Under axum.
//
// `Router::layer` boxes the layered route (cloned per request, and its
// future boxed per call) and, when a layer changes the response body type as
// every body-observing layer must, `into_response` boxes the new body: axum
// adds three allocations per request around any such layer. The layer
// itself must add nothing on top of those, so it is compared with the most
// trivial layer that wraps the response body ([`forward::Forward`]).

fn axum_routes_allocate_what_any_body_wrapping_layer_does() {
    // `with_state(())` turns handlers into routes once, as `axum::serve`
    // does (`into_make_service`); without it axum re-applies the layers
    // to the handler on every request.
    fn router() -> axum::Router {
        axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }))
    }
    let rt = runtime();
    let (bare, wrapped, layered) = rt.block_on(async {
        let (bare, wrapped, layered) = (
            router().with_state(()),
            router()
                .layer(tower::util::MapResponseLayer::new(forward::forward))
                .with_state(()),
            router().layer(layer()).with_state(()),
        );
        // Twice, interleaved; the second measurements are compared.
        measure(&bare, get, Drive::Drain).await;
        measure(&wrapped, get, Drive::Drain).await;
        measure(&layered, get, Drive::Drain).await;
        (
            measure(&bare, get, Drive::Drain).await,
            measure(&wrapped, get, Drive::Drain).await,
            measure(&layered, get, Drive::Drain).await,
        )
    });
    for (name, (n, bytes)) in [
        ("axum route, bare", bare),
        ("axum, body-wrapping", wrapped),
        ("axum, StatusLayer", layered),
    ] {
        println!("{name:<22} {n} allocations ({bytes} bytes) per {REQUESTS} requests");
    }
    assert_eq!(
        layered.0, wrapped.0,
        "under axum, StatusLayer must allocate as often as a trivial body-wrapping layer"
    );
}
