//! Cost of answering `GET /status` with 0, 10 and 100 checks whose results
//! are cached.
//!
//! ```text
//! cargo bench --bench report
//! ```
//!
//! Each check is `|| async { true }` with `Freshness::OnDemand { ttl: 1 h }`,
//! so after the first request (made before measuring) every answer is built
//! from cached results: what is measured is routing, collecting the report
//! (recorder snapshot, window, memory figures, components) and rendering
//! the default JSON, plus draining the body. Requests are sent with
//! `oneshot` on a clone of the service, awaited on a current-thread tokio
//! runtime (criterion's `to_async`). `report/format` answers the same
//! request (10 cached checks) in each built-in format and from each probe:
//! the default JSON (`/status`, written from pre-rendered components),
//! `?format=ietf` (`application/health+json`), Prometheus text
//! (`/status/metrics`), a custom format (a closure rendering a seed-style
//! shape from the typed report), `/status/live`, `/status/ready` and one
//! component (`/status/check-003`). `report/memory` times one
//! `Memory::current()` (the process memory figures every report includes),
//! and `report/hello` the same layered service answering a passed-through
//! hello-world request, for scale. `cargo bench --bench report -- --test`
//! runs each once.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_status::check::{Freshness, HealthCheck};
use tower_status::format::{FormatContext, Rendered};
use tower_status::{Report, Status, StatusLayer};

type Req = Request<Full<Bytes>>;

const TTL: Duration = Duration::from_secs(3600);

fn layer_with_checks(n: usize) -> StatusLayer {
    (0..n).fold(
        StatusLayer::new()
            .service_name("bench")
            .version("1.0.0")
            .environment("bench"),
        |layer, i| {
            layer.check(
                HealthCheck::new(format!("check-{i:03}"), || async { true })
                    .freshness(Freshness::OnDemand { ttl: TTL }),
            )
        },
    )
}

fn hello(
) -> impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send> + Clone {
    service_fn(|_req: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
            b"Hello, World!",
        ))))
    })
}

fn status_request() -> Req {
    request("/status")
}

fn request(uri: &'static str) -> Req {
    let mut req = Request::new(Full::default());
    *req.uri_mut() = http::Uri::from_static(uri);
    req
}

/// A seed-style contract: a word for the status, the timestamp, and each
/// component's status, rendered from the typed report.
fn custom_format(report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    let word = |s: Status| {
        if s == Status::Down {
            "unhealthy"
        } else {
            "healthy"
        }
    };
    let services: serde_json::Map<String, serde_json::Value> = report
        .components
        .iter()
        .map(|(name, c)| (name.clone(), word(c.status).into()))
        .collect();
    Rendered::json(
        ctx.status_code(),
        &serde_json::json!({
            "status": word(report.status),
            "timestamp": report.timestamp,
            "services": services,
        }),
    )
}

fn hello_request() -> Req {
    let mut req = Request::new(Full::default());
    *req.uri_mut() = http::Uri::from_static("/hello");
    req
}

/// Sends `req` and returns the status and the body's length.
async fn send<S>(svc: &S, req: Req) -> (StatusCode, usize)
where
    S: Service<Req, Response = Response<tower_status::body::ResponseBody<Full<Bytes>>>> + Clone,
    S::Error: std::fmt::Debug,
{
    let res = svc.clone().oneshot(req).await.expect("service error");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body.len())
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("report/status");
    group.throughput(Throughput::Elements(1));
    for checks in [0usize, 10, 100] {
        let svc = layer_with_checks(checks).layer(hello());
        // The first answer runs the checks and fills the cache.
        let (status, len) = rt.block_on(send(&svc, status_request()));
        assert_eq!(status, StatusCode::OK);
        println!("/status with {checks} cached checks: {len} bytes of JSON");
        group.bench_with_input(BenchmarkId::from_parameter(checks), &svc, |b, svc| {
            b.to_async(&rt).iter(|| send(svc, status_request()));
        });
    }
    group.finish();

    // Each built-in format and probe, 10 cached checks.
    let mut group = c.benchmark_group("report/format");
    group.throughput(Throughput::Elements(1));
    let svc = layer_with_checks(10)
        .serve_metrics(true)
        .format("custom", None, custom_format)
        .layer(hello());
    let cases: [(&str, &'static str); 7] = [
        ("json", "/status"),
        ("ietf", "/status?format=ietf"),
        ("prometheus", "/status/metrics"),
        ("custom", "/status?format=custom"),
        ("live", "/status/live"),
        ("ready", "/status/ready"),
        ("component", "/status/check-003"),
    ];
    for (name, uri) in cases {
        let (status, len) = rt.block_on(send(&svc, request(uri)));
        assert_eq!(status, StatusCode::OK, "{uri}");
        println!("{name} ({uri}), 10 cached checks: {len} bytes");
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| send(&svc, request(uri)));
        });
    }
    group.finish();

    // One reading of the process memory figures, which every report
    // includes: a large share of the answer's cost (see BENCHMARKS.md).
    let mut group = c.benchmark_group("report/memory");
    group.bench_function("Memory::current", |b| {
        b.iter(tower_status::report::Memory::current);
    });
    group.finish();

    let mut group = c.benchmark_group("report/hello");
    group.throughput(Throughput::Elements(1));
    let svc = layer_with_checks(10).layer(hello());
    group.bench_function("passed-through", |b| {
        b.to_async(&rt).iter(|| send(&svc, hello_request()));
    });
    group.finish();

    c.final_summary();
}
