//! Per-request cost of the pass-through path, against a bare service and
//! other layers doing comparable work.
//!
//! ```text
//! cargo bench --bench overhead
//! ```
//!
//! Variants, all wrapping the same hello-world `service_fn` returning
//! `Response<Full<Bytes>>` with a 13-byte body:
//!
//! - `bare`: the service alone;
//! - `status`: `StatusLayer::new()` with three registered checks (traffic
//!   recording on, as by default);
//! - `floor`: the smallest layer that records comparable data, written
//!   here: two `Instant` reads (in `call` and when the response is ready)
//!   and three relaxed atomic adds on `&'static` counters, nothing else
//!   (no reference counting, no body wrapper). Every `delta/floor` is
//!   against this floor;
//! - `floor-arc`: the same with the counters behind an `Arc` cloned into
//!   every request's future, as a layer built at run time might do;
//! - `trace`: `tower_http::trace::TraceLayer::new_for_http()`, no subscriber;
//! - `prometheus`: `axum_prometheus::PrometheusMetricLayer::new()`, with the
//!   global Prometheus recorder installed once (as `pair()` does);
//! - `axum/bare`, `axum/status`, `axum/floor`, `axum/prometheus`: the same
//!   handler as an axum route (`Router::route("/hello", get(..))`), bare and
//!   with each layer applied by `Router::layer`, as applications do. axum
//!   boxes a layered route (a second `BoxCloneSyncService`, cloned per
//!   request) and re-boxes a response body whose type the layer changed, so
//!   these deltas include what axum adds around any layer. Compared within
//!   their group (delta over `axum/bare`). `axum/wrap` is a layer that
//!   only puts the body in a forwarding wrapper and records nothing
//!   (`tests/support/forward.rs`): what axum adds for any layer that must
//!   see the body's end. `axum/status-outer` is
//!   `StatusLayer` wrapped around the whole router instead, which spares
//!   the per-route boxing.
//! - `body-*` groups (`bare`, `status`, `floor`, `floor-end`,
//!   `floor-end-tsc`, `prometheus` each): the
//!   tower service answering other body shapes: `body-empty` an empty
//!   `axum::body::Body` (the issue's bare service), `body-axum` a one-frame
//!   `axum::body::Body`, `body-frames` an `axum::body::Body` of four frames
//!   of unknown length, `body-stream` `axum::body::Body::from_stream` of
//!   four chunks, `body-full` a `Full<Bytes>`, `body-grpc` a
//!   `tonic::body::Body` of four frames then trailers (`grpc-status: 0`)
//!   answering a `POST` with `content-type: application/grpc`. `status`
//!   follows every frame and records at the body's end; the floor records
//!   at the response head, and `floor-end` does the floor's work at the
//!   body's end instead (the body wrapped, every frame looked at, a body
//!   dropped early booked then): what booking at the end costs in the
//!   floor's own terms; `floor-end-tsc` the same with `StatusLayer`'s
//!   clock (raw TSC reads through `quanta`) instead of `Instant`.
//!
//! Every request is driven as axum drives a route's service: the service is
//! cloned, `oneshot` (`poll_ready` + `call`) is polled to its response,
//! and the response body is polled frame by frame until it ends. Two
//! drivers: `noop` polls by hand with `std::task::Waker::noop()`
//! (everything is ready at once, so no runtime is measured); `tokio` awaits the same requests
//! in a task of a current-thread tokio runtime.
//!
//! Two measurements:
//!
//! 1. criterion, one thread, one benchmark per variant (`overhead/1-thread/*`);
//! 2. an interleaved table: `ROUNDS` rounds; in each, every variant runs
//!    `REQUESTS` requests on one thread, then every variant runs `REQUESTS`
//!    requests on each of two threads sharing one service (the variant
//!    order rotates every round). A run is timed in batches of 500
//!    requests and its figure is the median batch's time per request, so
//!    batches interrupted by other processes drop out. The median over
//!    rounds per variant is printed with its delta over its group's `bare`
//!    and the ratios of that delta to the group's floor delta and
//!    axum-prometheus delta. For two threads, the figure is the time per
//!    request seen by each thread (the mean of both threads' figures) while
//!    both run. The table comes once per driver, after the size of each
//!    variant's response future and response body.
//!
//! Environment: `OVERHEAD_ROUNDS` (default 15), `OVERHEAD_REQUESTS` (default
//! 200000), `OVERHEAD_CRITERION=0` skips the criterion part,
//! `OVERHEAD_TABLE=0` the table, `OVERHEAD_DRIVERS=noop` (or `tokio`; default
//! both) keeps one driver, `OVERHEAD_VARIANTS=tower` or
//! `OVERHEAD_VARIANTS=bare,status,floor,prometheus` keeps only those
//! (groups or names). `cargo bench --bench overhead -- --test`
//! runs everything once, tiny, as a smoke test.

use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::hint::black_box;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Barrier, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower_status::check::HealthCheck;

use axum_prometheus::metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use axum_prometheus::{utils::SECONDS_DURATION_BUCKETS, PrometheusMetricLayer};
use bytes::Bytes;
use criterion::Criterion;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceExt};
use tower_http::trace::TraceLayer;
use tower_status::StatusLayer;

#[path = "../tests/support/forward.rs"]
mod forward;

type Req = Request<Full<Bytes>>;

const BODY: &[u8] = b"Hello, World!";

// ---------------------------------------------------------------------------
// Driver: the same for every variant.

/// Polls `fut` to completion with a no-op waker; every future here is
/// ready at its first poll, so this never spins in practice.
#[inline(always)]
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::hint::spin_loop();
    }
}

#[inline(always)]
fn request() -> Req {
    // A static URI: building the request allocates nothing, so the bare
    // figure is mostly the service and the driver.
    let mut req = Request::new(Full::default());
    *req.uri_mut() = http::Uri::from_static("/hello");
    req
}

/// A gRPC call as tonic's client sends it: `POST` with
/// `content-type: application/grpc`.
#[inline(always)]
fn grpc_request() -> Req {
    let mut req = request();
    *req.method_mut() = http::Method::POST;
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    req
}

/// One request as axum sends it to a route: clone, `oneshot`, drain the body.
#[inline(always)]
async fn one_request_async<S, B>(svc: &S, make: fn() -> Req)
where
    S: Service<Req, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    let res = svc.clone().oneshot(make()).await.expect("service error");
    let mut body = pin!(res.into_body());
    while let Some(frame) = body.frame().await {
        black_box(frame.expect("body error"));
    }
}

/// [`one_request_async`] polled by [`block_on`] (no-op waker).
#[inline(always)]
fn one_request<S, B>(svc: &S, make: fn() -> Req)
where
    S: Service<Req, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    block_on(one_request_async(svc, make));
}

/// Requests per timed batch: short enough (tens of microseconds) that most
/// batches run without being preempted on a busy machine.
const BATCH: u64 = 500;

/// Runs `n` requests on this thread, timed in batches of [`BATCH`]; returns
/// the median batch's time per request, in nanoseconds. The median of short
/// batches drops the batches that other processes interrupted.
#[inline(never)]
fn run<S, B>(svc: &S, n: u64, make: fn() -> Req, driver: Driver) -> f64
where
    S: Service<Req, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    let batch = BATCH.min(n).max(1);
    let mut per_request = Vec::with_capacity((n / batch) as usize);
    match driver {
        Driver::Noop => {
            for _ in 0..n / batch {
                let start = Instant::now();
                for _ in 0..batch {
                    one_request(svc, make);
                }
                per_request.push(ns_per(start.elapsed(), batch));
            }
        }
        Driver::Tokio => {
            // The same requests awaited in one task of a current-thread
            // runtime, as a server's connection task awaits them.
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            rt.block_on(async {
                for _ in 0..n / batch {
                    let start = Instant::now();
                    for _ in 0..batch {
                        one_request_async(svc, make).await;
                    }
                    per_request.push(ns_per(start.elapsed(), batch));
                }
            });
        }
    }
    median(&mut per_request)
}

/// How requests are polled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// By hand, with `Waker::noop()`.
    Noop,
    /// In a task of a current-thread tokio runtime.
    Tokio,
}

/// Runs `n` requests on each of two threads sharing `svc`, started together;
/// returns the mean, over both threads, of each thread's median time per
/// request (see [`run`]).
fn run_two<S, B>(svc: &S, n: u64, make: fn() -> Req, driver: Driver) -> f64
where
    S: Service<Req, Response = Response<B>> + Clone + Sync,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    let barrier = Barrier::new(2);
    let times: Vec<f64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    // A few requests first, so the thread's lazy state
                    // (thread-locals, shard slot) is set before timing.
                    run(svc, 1_000, make, driver);
                    barrier.wait();
                    run(svc, n, make, driver)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .collect()
    });
    times.iter().sum::<f64>() / times.len() as f64
}

fn ns_per(t: Duration, n: u64) -> f64 {
    t.as_nanos() as f64 / n as f64
}

// ---------------------------------------------------------------------------
// The services.

fn hello_service(
) -> impl Service<Req, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
       + Clone
       + Send
       + Sync {
    tower::service_fn(|_req: Req| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(BODY))))
    })
}

/// The hello-world service with another response body.
fn body_service<B, F>(
    make: F,
) -> impl Service<Req, Response = Response<B>, Error = Infallible, Future: Send> + Clone + Send + Sync
where
    F: Fn() -> B + Clone + Send + Sync + 'static,
    B: Send + 'static,
{
    tower::service_fn(move |_req: Req| {
        let body = make();
        async move { Ok::<_, Infallible>(Response::new(body)) }
    })
}

/// Four frames of [`BODY`], length unknown until the stream ends.
type Stream = http_body_util::StreamBody<
    futures_util::stream::Iter<
        std::array::IntoIter<Result<http_body::Frame<Bytes>, Infallible>, 4>,
    >,
>;

fn stream_body() -> Stream {
    let frame = || Ok(http_body::Frame::data(Bytes::from_static(BODY)));
    http_body_util::StreamBody::new(futures_util::stream::iter([
        frame(),
        frame(),
        frame(),
        frame(),
    ]))
}

/// Counters of the floor layer, shared by every thread.
#[derive(Default)]
struct FloorCounters {
    requests: AtomicU64,
    ok: AtomicU64,
    total_ns: AtomicU64,
}

impl FloorCounters {
    #[inline]
    fn record(&self, ok: bool, elapsed: Duration) {
        self.requests.fetch_add(1, Relaxed);
        self.ok.fetch_add(u64::from(ok), Relaxed);
        self.total_ns.fetch_add(elapsed.as_nanos() as u64, Relaxed);
    }
}

/// Where the floor layer keeps its counters: an `Arc` (as a layer built at
/// run time must) or a `&'static` (no reference counting at all).
trait CounterRef: Clone {
    fn counters(&self) -> &FloorCounters;
}

impl CounterRef for Arc<FloorCounters> {
    #[inline]
    fn counters(&self) -> &FloorCounters {
        self
    }
}

impl CounterRef for &'static FloorCounters {
    #[inline]
    fn counters(&self) -> &FloorCounters {
        self
    }
}

#[derive(Clone)]
struct FloorLayer<C>(C);

#[derive(Clone)]
struct FloorService<S, C> {
    inner: S,
    counters: C,
}

impl<S, C: Clone> Layer<S> for FloorLayer<C> {
    type Service = FloorService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        FloorService {
            inner,
            counters: self.0.clone(),
        }
    }
}

impl<S, C, ReqB, B> Service<Request<ReqB>> for FloorService<S, C>
where
    S: Service<Request<ReqB>, Response = Response<B>>,
    C: CounterRef,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        FloorFuture {
            start: Instant::now(),
            counters: self.counters.clone(),
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorFuture<F, C> {
        #[pin]
        inner: F,
        start: Instant,
        counters: C,
    }
}

impl<F, C, B, E> Future for FloorFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    C: CounterRef,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        let ok = matches!(&out, Ok(res) if !res.status().is_server_error());
        this.counters.counters().record(ok, this.start.elapsed());
        Poll::Ready(out)
    }
}

/// The floor's own work (two `Instant` reads, three relaxed adds on
/// `&'static` counters) booked at the end of the body instead of at the
/// head: the response body is wrapped, every frame looked at for the end,
/// an error or trailers, and a body dropped before its end is booked then.
/// What booking at the end costs in the floor's own terms; it records
/// less than the end of a body needs to be exact (no size, no `HEAD`).
/// `T` is the clock: `Instant` (the floor's) or [`Tsc`] (`StatusLayer`'s).
struct FloorEndLayer<T>(&'static FloorCounters, std::marker::PhantomData<T>);

impl<T> FloorEndLayer<T> {
    fn new() -> Self {
        FloorEndLayer(Box::leak(Box::default()), std::marker::PhantomData)
    }
}

/// A start time: read when the request is called, elapsed at its end.
trait Stamp: Copy {
    fn now() -> Self;
    fn elapsed(self) -> Duration;
}

impl Stamp for Instant {
    #[inline]
    fn now() -> Self {
        Instant::now()
    }

    #[inline]
    fn elapsed(self) -> Duration {
        Instant::elapsed(&self)
    }
}

/// A raw TSC reading through `quanta`, as `StatusLayer` times requests.
#[derive(Clone, Copy)]
struct Tsc(u64);

fn tsc_clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

impl Stamp for Tsc {
    #[inline]
    fn now() -> Self {
        Tsc(tsc_clock().raw())
    }

    #[inline]
    fn elapsed(self) -> Duration {
        let clock = tsc_clock();
        Duration::from_nanos(clock.delta_as_nanos(self.0, clock.raw()))
    }
}

#[derive(Clone)]
struct FloorEndService<S, T> {
    inner: S,
    counters: &'static FloorCounters,
    clock: std::marker::PhantomData<T>,
}

impl<S, T> Layer<S> for FloorEndLayer<T> {
    type Service = FloorEndService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        FloorEndService {
            inner,
            counters: self.0,
            clock: std::marker::PhantomData,
        }
    }
}

impl<S, T: Stamp, ReqB, B> Service<Request<ReqB>> for FloorEndService<S, T>
where
    S: Service<Request<ReqB>, Response = Response<B>>,
{
    type Response = Response<FloorEndBody<B, T>>;
    type Error = S::Error;
    type Future = FloorEndFuture<S::Future, T>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        FloorEndFuture {
            start: T::now(),
            counters: self.counters,
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorEndFuture<F, T> {
        #[pin]
        inner: F,
        start: T,
        counters: &'static FloorCounters,
    }
}

impl<F, T: Stamp, B, E> Future for FloorEndFuture<F, T>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<FloorEndBody<B, T>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (start, counters) = (*this.start, *this.counters);
        match std::task::ready!(this.inner.poll(cx)) {
            Ok(res) => {
                let ok = !res.status().is_server_error();
                Poll::Ready(Ok(res.map(|inner| FloorEndBody {
                    inner,
                    start,
                    counters,
                    ok,
                    booked: false,
                })))
            }
            Err(err) => {
                counters.record(false, start.elapsed());
                Poll::Ready(Err(err))
            }
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorEndBody<B, T: Stamp> {
        #[pin]
        inner: B,
        start: T,
        counters: &'static FloorCounters,
        ok: bool,
        booked: bool,
    }

    impl<B, T: Stamp> PinnedDrop for FloorEndBody<B, T> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.booked {
                this.counters.record(false, this.start.elapsed());
            }
        }
    }
}

impl<B: Body<Data = Bytes>, T: Stamp> Body for FloorEndBody<B, T> {
    type Data = Bytes;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let this = self.project();
        if *this.booked {
            return this.inner.poll_frame(cx);
        }
        // A data frame rebuilt from its bytes, as `StatusLayer` does: moving
        // the whole poll through costs a stalled copy per frame.
        let (polled, end_ok) = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => return Poll::Ready(Some(Ok(http_body::Frame::data(data)))),
                Err(frame) => {
                    let end = frame.is_trailers().then_some(*this.ok);
                    (Poll::Ready(Some(Ok(frame))), end)
                }
            },
            Poll::Ready(Some(Err(err))) => (Poll::Ready(Some(Err(err))), Some(false)),
            Poll::Ready(None) => (Poll::Ready(None), Some(*this.ok)),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(ok) = end_ok {
            *this.booked = true;
            this.counters.record(ok, this.start.elapsed());
        }
        polled
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The global Prometheus recorder, installed once as
/// `PrometheusMetricLayer::pair()` installs it (same histogram buckets),
/// minus the upkeep task: [`prometheus_upkeep`] runs between rounds.
fn prometheus_handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(axum_prometheus::AXUM_HTTP_REQUESTS_DURATION_SECONDS.to_string()),
                    SECONDS_DURATION_BUCKETS,
                )
                .expect("valid buckets");
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(e) => {
                    // Another recorder is already global: the layer records into that one.
                    eprintln!(
                        "note: Prometheus recorder not installed ({e}); using the existing one"
                    );
                    None
                }
            }
        })
        .as_ref()
}

fn prometheus_upkeep() {
    if let Some(handle) = prometheus_handle() {
        handle.run_upkeep();
    }
}

// ---------------------------------------------------------------------------
// The variants, type-erased per batch (the per-request loop is monomorphic).

struct Variant {
    /// `tower` (the service alone) or `axum` (the service as an axum route).
    group: &'static str,
    /// `bare`, `status`, `floor`, ...: compared within its group.
    kind: &'static str,
    /// Bytes of the response future and of the response body.
    sizes: (usize, usize),
    one: Box<dyn Fn(u64, Driver) -> f64>,
    two: Box<dyn Fn(u64, Driver) -> f64>,
    criterion: Box<dyn Fn(&mut criterion::Bencher<'_>)>,
}

impl Variant {
    fn name(&self) -> String {
        if self.group == "tower" {
            self.kind.to_owned()
        } else {
            format!("{}/{}", self.group, self.kind)
        }
    }
}

fn variant<S, B>(group: &'static str, kind: &'static str, svc: S) -> Variant
where
    S: Service<Req, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    variant_with(group, kind, svc, request)
}

fn variant_with<S, B>(group: &'static str, kind: &'static str, svc: S, make: fn() -> Req) -> Variant
where
    S: Service<Req, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    let svc = Arc::new(svc);
    let (a, b, c) = (svc.clone(), svc.clone(), svc);
    Variant {
        group,
        kind,
        sizes: (std::mem::size_of::<S::Future>(), std::mem::size_of::<B>()),
        one: Box::new(move |n, d| run(&*a, n, make, d)),
        two: Box::new(move |n, d| run_two(&*b, n, make, d)),
        criterion: Box::new(move |bencher| bencher.iter(|| one_request(&*c, make))),
    }
}

fn status_layer() -> StatusLayer {
    StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .check(HealthCheck::new("cache", || async { true }))
        .check(HealthCheck::new("queue", || async { true }))
}

/// The hello-world handler as an axum route, at `/hello`. Callers apply
/// their layer, then `with_state(())`, which turns handlers into routes once
/// as `axum::serve` does (without it axum re-applies the layers to the
/// handler on every request).
fn router() -> axum::Router {
    axum::Router::new().route(
        "/hello",
        axum::routing::get(|| async { Response::new(Full::new(Bytes::from_static(BODY))) }),
    )
}

/// `&'static` counters for a floor layer: no reference counting.
fn floor_static() -> FloorLayer<&'static FloorCounters> {
    FloorLayer(Box::leak(Box::default()))
}

/// `bare`, `status`, `floor`, `floor-end`, `floor-end-tsc` and
/// `prometheus` of one body shape.
fn body_group<B, F>(group: &'static str, make: F, req: fn() -> Req) -> [Variant; 6]
where
    F: Fn() -> B + Clone + Send + Sync + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Debug + std::fmt::Display,
{
    [
        variant_with(group, "bare", body_service(make.clone()), req),
        variant_with(
            group,
            "status",
            status_layer().layer(body_service(make.clone())),
            req,
        ),
        variant_with(
            group,
            "floor",
            floor_static().layer(body_service(make.clone())),
            req,
        ),
        variant_with(
            group,
            "floor-end",
            FloorEndLayer::<Instant>::new().layer(body_service(make.clone())),
            req,
        ),
        variant_with(
            group,
            "floor-end-tsc",
            FloorEndLayer::<Tsc>::new().layer(body_service(make.clone())),
            req,
        ),
        variant_with(
            group,
            "prometheus",
            PrometheusMetricLayer::new().layer(body_service(make)),
            req,
        ),
    ]
}

/// Four frames of [`BODY`] with trailers after them (`grpc-status: 0`), as
/// a gRPC answer ends, in tonic's response body type.
fn grpc_body() -> tonic::body::Body {
    let frame = || Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(BODY)));
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    tonic::body::Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(
        [
            frame(),
            frame(),
            frame(),
            frame(),
            Ok(http_body::Frame::trailers(trailers)),
        ],
    )))
}

fn variants() -> Vec<Variant> {
    prometheus_handle();
    let mut all = vec![
        variant("tower", "bare", hello_service()),
        variant("tower", "status", status_layer().layer(hello_service())),
        variant("tower", "floor", floor_static().layer(hello_service())),
        variant(
            "tower",
            "floor-arc",
            FloorLayer(Arc::new(FloorCounters::default())).layer(hello_service()),
        ),
        variant(
            "tower",
            "trace",
            TraceLayer::new_for_http().layer(hello_service()),
        ),
        variant(
            "tower",
            "prometheus",
            PrometheusMetricLayer::new().layer(hello_service()),
        ),
        // The same layers applied with `Router::layer`, as an application
        // does: axum boxes the layered route and the new response body.
        variant("axum", "bare", router().with_state(())),
        variant(
            "axum",
            "status",
            router().layer(status_layer()).with_state(()),
        ),
        variant(
            "axum",
            "floor",
            router().layer(floor_static()).with_state(()),
        ),
        variant(
            "axum",
            "prometheus",
            router().layer(PrometheusMetricLayer::new()).with_state(()),
        ),
        variant(
            "axum",
            "wrap",
            router()
                .layer(tower::util::MapResponseLayer::new(forward::forward))
                .with_state(()),
        ),
        // StatusLayer around the whole router instead (no per-route boxing;
        // `into_response` still boxes the body), as `load_server outer`.
        variant(
            "axum",
            "status-outer",
            ServiceExt::<Request<axum::body::Body>>::map_response(
                status_layer().layer(router().with_state(())),
                axum::response::IntoResponse::into_response,
            ),
        ),
    ];
    all.extend(body_group("body-empty", axum::body::Body::empty, request));
    all.extend(body_group(
        "body-axum",
        || axum::body::Body::from(Bytes::from_static(BODY)),
        request,
    ));
    all.extend(body_group(
        "body-frames",
        || axum::body::Body::new(stream_body()),
        request,
    ));
    all.extend(body_group(
        "body-stream",
        || {
            axum::body::Body::from_stream(futures_util::stream::iter(
                [BODY; 4].map(|b| Ok::<_, Infallible>(Bytes::from_static(b))),
            ))
        },
        request,
    ));
    all.extend(body_group(
        "body-full",
        || Full::new(Bytes::from_static(BODY)),
        request,
    ));
    all.extend(body_group("body-grpc", grpc_body, grpc_request));
    all
}

// ---------------------------------------------------------------------------

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn criterion_part(c: &mut Criterion, variants: &[Variant]) {
    let mut group = c.benchmark_group("overhead/1-thread");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(30);
    for v in variants {
        group.bench_function(v.name(), |b| {
            (v.criterion)(b);
        });
        prometheus_upkeep();
    }
    group.finish();
}

fn spread(xs: &[f64]) -> String {
    let lo = xs.iter().copied().fold(f64::MAX, f64::min);
    let hi = xs.iter().copied().fold(f64::MIN, f64::max);
    format!("{lo:.1}..{hi:.1}")
}

fn print_table(label: &str, variants: &[Variant], samples: &mut [Vec<f64>], rounds: usize) {
    let spreads: Vec<String> = samples.iter().map(|s| spread(s)).collect();
    let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
    let find = |group: &str, kind: &str| {
        variants
            .iter()
            .position(|v| v.group == group && v.kind == kind)
            .map(|i| medians[i])
    };
    println!("\n{label}: median ns/request over {rounds} rounds");
    println!(
        "{:<18} {:>9} {:>15} {:>9} {:>12} {:>11}",
        "variant", "ns/req", "min..max", "delta", "delta/floor", "delta/prom"
    );
    let mut last_group = "";
    for (i, v) in variants.iter().enumerate() {
        if v.group != last_group {
            last_group = v.group;
            println!(
                "  [{}: delta over {}]",
                v.group,
                if v.group == "tower" {
                    "bare".to_owned()
                } else {
                    format!("{}/bare", v.group)
                }
            );
        }
        let bare = find(v.group, "bare").unwrap_or(f64::NAN);
        let floor = find(v.group, "floor").unwrap_or(f64::NAN) - bare;
        let prom = find(v.group, "prometheus").unwrap_or(f64::NAN) - bare;
        let d = medians[i] - bare;
        let ratio = |base: f64| {
            if v.kind != "bare" && base > 0.0 {
                format!("{:.3}", d / base)
            } else {
                "-".to_owned() // no baseline (NaN) or nothing to compare
            }
        };
        println!(
            "{:<18} {:>9.1} {:>15} {:>9.1} {:>12} {:>11}",
            v.name(),
            medians[i],
            spreads[i],
            d,
            ratio(floor),
            ratio(prom)
        );
    }
}

fn table_part(variants: &[Variant], rounds: usize, n: u64, drivers: &[Driver]) {
    println!(
        "\ninterleaved table: {rounds} rounds x {n} requests per variant, driver and thread count \
         ({} cores, load average before: {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    println!("sizes in bytes (response future / response body):");
    for v in variants {
        println!("  {:<22} {:>5} / {:>4}", v.name(), v.sizes.0, v.sizes.1);
    }
    // Samples per driver, thread count and variant.
    let mut samples: Vec<[Vec<Vec<f64>>; 2]> = drivers
        .iter()
        .map(|_| {
            [
                vec![Vec::new(); variants.len()],
                vec![Vec::new(); variants.len()],
            ]
        })
        .collect();
    // One untimed pass to warm caches, thread-locals and lazy statics.
    for v in variants {
        for &d in drivers {
            (v.one)((n / 10).max(1), d);
        }
        prometheus_upkeep();
    }
    let started = Instant::now();
    for round in 0..rounds {
        let order: Vec<usize> = (0..variants.len())
            .map(|i| (i + round) % variants.len())
            .collect();
        for (di, &d) in drivers.iter().enumerate() {
            for &i in &order {
                samples[di][0][i].push((variants[i].one)(n, d));
                prometheus_upkeep();
            }
            for &i in &order {
                samples[di][1][i].push((variants[i].two)(n, d));
                prometheus_upkeep();
            }
        }
    }
    let elapsed = started.elapsed();
    for (di, &d) in drivers.iter().enumerate() {
        let name = match d {
            Driver::Noop => "driver noop-waker",
            Driver::Tokio => "driver tokio",
        };
        let [one, two] = &mut samples[di];
        print_table(&format!("{name}, 1 thread"), variants, one, rounds);
        print_table(
            &format!("{name}, 2 threads (time per request seen by each thread, both running)"),
            variants,
            two,
            rounds,
        );
    }
    println!(
        "\ntable measured in {:.1} s (load average after: {})",
        elapsed.as_secs_f64(),
        loadavg()
    );
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test");
    let mut variants = variants();
    if let Ok(only) = std::env::var("OVERHEAD_VARIANTS") {
        let wanted: Vec<&str> = only.split(',').map(str::trim).collect();
        variants.retain(|v| wanted.contains(&v.name().as_str()) || wanted.contains(&v.group));
    }

    if env_u64("OVERHEAD_CRITERION", 1) != 0 {
        let mut c = Criterion::default().configure_from_args();
        criterion_part(&mut c, &variants);
        c.final_summary();
    }
    if env_u64("OVERHEAD_TABLE", 1) != 0 {
        let (rounds, n) = if smoke {
            (1, 1_000)
        } else {
            (
                env_u64("OVERHEAD_ROUNDS", 15) as usize,
                env_u64("OVERHEAD_REQUESTS", 200_000),
            )
        };
        let drivers: Vec<Driver> = std::env::var("OVERHEAD_DRIVERS")
            .unwrap_or_else(|_| "noop,tokio".to_owned())
            .split(',')
            .filter_map(|d| match d.trim() {
                "noop" => Some(Driver::Noop),
                "tokio" => Some(Driver::Tokio),
                _ => None,
            })
            .collect();
        table_part(&variants, rounds.max(1), n.max(1), &drivers);
    }
}
