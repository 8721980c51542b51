//! Memory stays constant however many requests are recorded: the recorder
//! is fixed-size, and nothing on the request path accumulates.
//!
//! The resident set size is read before and after recording many requests
//! (with a `/status` read every 100 000 requests, so the report path and
//! the recent window are exercised too) and may grow by less than
//! [`TOLERANCE`].
//!
//! Ten million requests take about 10 s unoptimized (about 1 µs each) and
//! about 1 s optimized, so the test runs by default. With figures:
//!
//! ```text
//! cargo test --release --test memory -- --nocapture
//! ```
//!
//! `MEMORY_TEST_REQUESTS` overrides the count. The file holds a single test
//! on purpose: tests of one binary share the process, and a second one
//! running alongside would move its resident set size.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};
use tower_status::report::Memory;
use tower_status::StatusLayer;

/// Largest resident-set growth accepted over the whole run.
const TOLERANCE: u64 = 1 << 20;
/// Requests between two reads of `/status`.
const STATUS_EVERY: u64 = 100_000;
/// Requests made before the first reading (lazy statics, allocator pools).
const WARM_UP: u64 = 100_000;

type Req = Request<Full<Bytes>>;

fn rss() -> u64 {
    Memory::current()
        .expect("this platform reports process memory")
        .rss_bytes
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Polls a future that is ready at once (everything here is) with a no-op waker.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn records_requests_in_constant_memory(requests: u64) {
    let layer = StatusLayer::new().service_name("memory-test");
    let svc = layer.layer(service_fn(|_req: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    }));

    // A current-thread runtime for the status reads (checks and timers need
    // one); passed-through requests are polled directly, as they are ready
    // at once, which keeps the loop tight.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();

    let one = || {
        ready(async {
            let mut req = Request::new(Full::default());
            *req.uri_mut() = http::Uri::from_static("/hello");
            let res = svc.clone().oneshot(req).await.expect("infallible");
            let mut body = pin!(res.into_body());
            while let Some(frame) = body.frame().await {
                std::hint::black_box(frame.expect("infallible"));
            }
        });
    };
    let status = || {
        rt.block_on(async {
            let req = Request::get("/status")
                .body(Full::default())
                .expect("request");
            let res = svc.clone().oneshot(req).await.expect("infallible");
            res.into_body()
                .collect()
                .await
                .expect("infallible")
                .to_bytes()
        })
    };

    for i in 0..WARM_UP {
        one();
        if i % STATUS_EVERY == 0 {
            status();
        }
    }
    status();
    let before = rss();
    let started = Instant::now();
    for i in 1..=requests {
        one();
        if i % STATUS_EVERY == 0 {
            std::hint::black_box(status());
        }
    }
    let elapsed = started.elapsed();
    let after = rss();

    let report = rt.block_on(layer.clone().build().report());
    assert_eq!(report.requests.total, WARM_UP + requests);
    assert_eq!(report.requests.in_flight, 0);

    let growth = after.saturating_sub(before);
    println!(
        "{requests} requests in {:.1} s ({:.0} ns/request): RSS before {before} B ({:.2} MiB), \
         after {after} B ({:.2} MiB), growth {growth} B ({:.3} MiB)",
        elapsed.as_secs_f64(),
        elapsed.as_nanos() as f64 / requests as f64,
        mib(before),
        mib(after),
        mib(growth),
    );
    assert!(
        growth < TOLERANCE,
        "RSS grew by {growth} bytes over {requests} requests (tolerance {TOLERANCE})"
    );
}

#[test]
fn memory_is_constant_over_10m_requests() {
    let requests = std::env::var("MEMORY_TEST_REQUESTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(10_000_000);
    records_requests_in_constant_memory(requests);
}
