//! A hello-world axum server for `scripts/load.sh`, bare or behind a layer.
//!
//! ```text
//! cargo bench --no-run --bench load_server
//! load_server <MODE> <ADDR> [WORKERS]
//! ```
//!
//! `GET /` answers `Hello, World!`. Modes:
//!
//! - `bare`: the router alone;
//! - `layered`: `Router::layer(StatusLayer)`, as applications do, with 20
//!   checks (`|| async { true }`, `Freshness::OnDemand { ttl: 1 h }`), so
//!   `/status` answers from cached results after its first request;
//! - `outer`: the same `StatusLayer` wrapped around the whole router
//!   instead (`StatusLayer.layer(router)`, body turned back into axum's by
//!   `into_response`), which spares axum's per-route boxing;
//! - `identity`: `Router::layer(Identity)`, a layer that does nothing:
//!   what axum's layering costs before the layer does any work;
//! - `wrap`: `Router::layer` with a layer that only puts the response body
//!   in a wrapper forwarding every call (it records nothing): what axum
//!   adds for any layer that must see the body's end (the body boxed
//!   again per request);
//! - `floor`: `Router::layer` with a minimal layer (two `Instant` reads and
//!   three relaxed adds on `&'static` counters, no body wrapper): what any
//!   layer costs under axum.
//!
//! `WORKERS` is the number of tokio worker threads: 1 (the default) runs a
//! current-thread runtime, so the server uses one core. It prints
//! `listening on ADDR` once bound and serves until killed. (A `[[bench]]`
//! target with `harness = false`: `cargo bench` runs it with `--bench`,
//! and then it returns at once.)

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower::{Layer, Service, ServiceExt};
use tower_status::check::{Freshness, HealthCheck};
use tower_status::StatusLayer;

#[path = "../tests/support/forward.rs"]
mod forward;
use forward::forward;

/// Checks registered on the `StatusLayer`.
const CHECKS: usize = 20;

fn usage() -> ! {
    eprintln!("usage: load_server <bare|layered|outer|floor|identity|wrap> <ADDR> [WORKERS]");
    std::process::exit(2);
}

fn router() -> Router {
    Router::new().route("/", get(|| async { "Hello, World!" }))
}

fn status_layer() -> StatusLayer {
    (0..CHECKS).fold(
        StatusLayer::new().service_name("load-server"),
        |layer, i| {
            layer.check(
                HealthCheck::new(format!("check-{i:02}"), || async { true }).freshness(
                    Freshness::OnDemand {
                        ttl: Duration::from_secs(3600),
                    },
                ),
            )
        },
    )
}

// --- the floor layer --------------------------------------------------------

/// The floor's counters: `&'static`, as in the issue's static floor (no
/// reference count per request).
static COUNTERS: Counters = Counters {
    requests: AtomicU64::new(0),
    ok: AtomicU64::new(0),
    total_ns: AtomicU64::new(0),
};

struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    total_ns: AtomicU64,
}

#[derive(Clone)]
struct FloorLayer(&'static Counters);

impl Default for FloorLayer {
    fn default() -> Self {
        FloorLayer(&COUNTERS)
    }
}

#[derive(Clone)]
struct Floor<S> {
    inner: S,
    counters: &'static Counters,
}

impl<S> Layer<S> for FloorLayer {
    type Service = Floor<S>;

    fn layer(&self, inner: S) -> Floor<S> {
        Floor {
            inner,
            counters: self.0,
        }
    }
}

impl<S> Service<Request> for Floor<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        FloorFuture {
            start: Instant::now(),
            counters: self.counters,
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        counters: &'static Counters,
    }
}

impl<F, E> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let ok = matches!(&out, Ok(res) if !res.status().is_server_error());
        this.counters.requests.fetch_add(1, Relaxed);
        this.counters.ok.fetch_add(u64::from(ok), Relaxed);
        this.counters
            .total_ns
            .fetch_add(this.start.elapsed().as_nanos() as u64, Relaxed);
        Poll::Ready(out)
    }
}

// --- main -----------------------------------------------------------------------

async fn serve(mode: &str, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    match mode {
        "bare" => axum::serve(listener, router()).await,
        "layered" => axum::serve(listener, router().layer(status_layer())).await,
        "floor" => axum::serve(listener, router().layer(FloorLayer::default())).await,
        "wrap" => {
            let layer = tower::util::MapResponseLayer::new(forward);
            axum::serve(listener, router().layer(layer)).await
        }
        "identity" => {
            let layer = tower::layer::util::Identity::new();
            axum::serve(listener, router().layer(layer)).await
        }
        "outer" => {
            let svc = ServiceExt::<Request>::map_response(
                status_layer().layer(router()),
                IntoResponse::into_response,
            );
            axum::serve(listener, tower::make::Shared::new(svc)).await
        }
        _ => usage(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to do here.
    if args.is_empty() || args.iter().any(|a| a == "--bench" || a == "--test") {
        return;
    }
    let mode = args[0].clone();
    if !["bare", "layered", "outer", "floor", "identity", "wrap"].contains(&mode.as_str()) {
        usage();
    }
    let addr: SocketAddr = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let workers: usize = args
        .get(2)
        .map_or(1, |w| w.parse().unwrap_or_else(|_| usage()));

    let runtime = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"));
        println!(
            "listening on {} ({mode}, {workers} worker thread{})",
            listener.local_addr().expect("bound address"),
            if workers == 1 { "" } else { "s" }
        );
        serve(&mode, listener).await.expect("server");
    });
}
