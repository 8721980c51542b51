//! [`StatusService`]: answers the status path, times everything else.

use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::endpoint;
use crate::future::ResponseFuture;
use crate::recorder::{self, Keep, Lease, RequestGuard, REAP_EVERY};
use crate::state::Shared;

/// Middleware that serves the status report on its path and records the
/// traffic of every other request it passes to `S`.
///
/// Built by [`StatusLayer`](crate::StatusLayer).
///
/// Cloning a service (axum and tonic clone it for every request) writes
/// one counter of the calling thread's own shard and copies a few words:
/// there is no shared reference count for cores to contend on. The
/// layer's state (checks, their background runs, the watcher) lives while
/// any service made from it or any [`StatusHandle`](crate::StatusHandle)
/// does; after the last one is dropped it is let go within about a second
/// (a task on the crate's own runtime thread looks every second, whatever
/// runtime the services ran on, if any).
///
/// `poll_ready` is forwarded to the wrapped service, since the next request
/// may pass through. Routers (axum, tonic) are always ready; if the wrapped
/// service applies backpressure itself (`ConcurrencyLimit`, `RateLimit`),
/// put a `Buffer` in front of it, or apply the limit per route
/// (`Router::route_layer`), so `/status` is not held back while the service
/// is saturated.
///
/// ```
/// # tokio_test();
/// # fn tokio_test() { tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::{BodyExt, Full};
/// use bytes::Bytes;
/// use tower::{service_fn, Layer, ServiceExt};
/// use tower_status::StatusLayer;
///
/// let layer = StatusLayer::new();
/// let svc = layer.layer(service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
/// }));
///
/// let res = svc.clone().oneshot(Request::new(Full::default())).await.unwrap();
/// assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), "hello");
///
/// let req = Request::get("/status").body(Full::default()).unwrap();
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), StatusCode::OK);
/// let report: serde_json::Value =
///     serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
/// assert_eq!(report["requests"]["total"], 1);
/// # }) }
/// ```
pub struct StatusService<S> {
    inner: S,
    /// The status path, tested on every request.
    path: &'static str,
    /// Pass-through requests count against their callers' budgets (opt-in).
    count_passthrough: bool,
    /// Where requests are recorded, keeping the layer's state alive
    /// without a shared reference count (see [`Lease`]).
    lease: Lease,
}

impl<S> StatusService<S> {
    pub(crate) fn new(inner: S, shared: &Arc<Shared>) -> Self {
        start_reaper();
        let keep: Keep = Arc::clone(shared) as Keep;
        Self {
            inner,
            path: intern(&shared.config.path),
            count_passthrough: shared.config.access.count_passthrough,
            lease: shared.recorder.lease(&keep),
        }
    }

    /// The layer's state (cold path: a lock and a reference count).
    fn shared(&self) -> Option<Arc<Shared>> {
        self.lease.keep()?.downcast::<Shared>().ok()
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes `self`, returning the wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for StatusService<S> {
    #[inline]
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            path: self.path,
            count_passthrough: self.count_passthrough,
            lease: self.lease.clone(),
        }
    }
}

/// Starts, once per process, the task that lets a layer's state go once
/// no service holds it any more ([`recorder::reap_all`] every
/// [`REAP_EVERY`]). It runs on the crate's own runtime (a thread with
/// timers for the life of the process), so it works whatever runtime, if
/// any, the services were made or are dropped on.
fn start_reaper() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let Some(runtime) = crate::check::runtime::fallback() else {
            // No thread could be started: layers go when the next is built.
            return;
        };
        runtime.spawn(async {
            let mut every = tokio::time::interval(REAP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // Dropped here, outside the pool's lock.
                drop(recorder::reap_all());
            }
        });
    });
}

/// The status path as a `&'static str`, copied into every service: each
/// distinct path is leaked once for the process, so building layers again
/// and again takes no more memory (paths made up per tenant at run time
/// would each stay, a few bytes apiece).
fn intern(path: &str) -> &'static str {
    static PATHS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = paths.iter().find(|p| **p == path) {
        return known;
    }
    let leaked: &'static str = Box::leak(path.to_owned().into_boxed_str());
    paths.push(leaked);
    leaked
}

impl<S: std::fmt::Debug> std::fmt::Debug for StatusService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusService")
            .field("inner", &self.inner)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for StatusService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Forwarded: the next request may pass through.
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // An inlined prefix test first: most requests are not for us.
        if endpoint::is_status_path(req.uri().path(), self.path) {
            if let Some(shared) = self.shared() {
                if let Some(route) = endpoint::route(req.uri().path(), &shared.config) {
                    let (parts, _body) = req.into_parts();
                    return ResponseFuture::status(endpoint::respond(shared, route, parts));
                }
            }
        }
        let mut guard = RequestGuard::start(self.lease.block());
        if self.count_passthrough {
            // A shared read lock: what the `Arc` of the state cost before.
            self.lease.with_keep(|keep| {
                if let Some(shared) = keep.downcast_ref::<Shared>() {
                    shared.config.access.count_passthrough(req.headers());
                }
            });
        }
        // Only POSTs can be gRPC: other requests skip the header lookup.
        if req.method() == Method::POST {
            guard.grpc = is_grpc(req.headers());
        } else if req.method() == Method::HEAD {
            // Servers drop a HEAD response's body unpolled.
            guard.head = true;
        }
        ResponseFuture::inner(self.inner.call(req), guard)
    }
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}
