//! [`StatusService`]: answers the status path, times everything else.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::ResponseBody;
use crate::endpoint;
use crate::future::ResponseFuture;
use crate::recorder::{Block, RequestGuard};
use crate::state::Shared;

/// Middleware that serves the status report on its path and records the
/// traffic of every other request it passes to `S`.
///
/// Built by [`StatusLayer`](crate::StatusLayer).
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
    /// What a passed-through request reads, copied here so that it never
    /// touches the shared state (whose cache line holds the reference
    /// count every clone of the service changes).
    hot: Hot,
    shared: Arc<Shared>,
}

/// The pass-through path's read-only data.
#[derive(Clone, Copy)]
struct Hot {
    /// The recorder's counters.
    block: &'static Block,
    /// The status path's first bytes, zero-padded: a request path that
    /// does not start with them is passed through without further test.
    prefix: [u8; PREFIX],
    /// How many of `prefix` are the path's (at most `PREFIX`).
    prefix_len: u8,
    /// Passed-through requests' keys are counted (`Access`).
    count_passthrough: bool,
}

/// Bytes of the status path kept inline: `/status`, `/_status` and
/// `/health/status` fit.
const PREFIX: usize = 15;

impl Hot {
    fn new(shared: &Shared) -> Self {
        let path = shared.config.path.as_bytes();
        let len = path.len().min(PREFIX);
        let mut prefix = [0; PREFIX];
        prefix[..len].copy_from_slice(&path[..len]);
        Self {
            block: shared.recorder.block(),
            prefix,
            prefix_len: len as u8,
            count_passthrough: shared.config.access.count_passthrough,
        }
    }

    /// Whether `path` may be the status path or below it: its first bytes
    /// are the status path's (only those kept inline).
    #[inline(always)]
    fn may_be_status(&self, path: &str) -> bool {
        let len = usize::from(self.prefix_len);
        path.as_bytes().get(..len) == self.prefix.get(..len)
    }
}

impl<S> StatusService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self {
            inner,
            hot: Hot::new(&shared),
            shared,
        }
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
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            hot: self.hot,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for StatusService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusService")
            .field("inner", &self.inner)
            .field("path", &self.shared.config.path)
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
        // A test of the path's first bytes, inline, first: most requests
        // are not for us.
        if self.hot.may_be_status(req.uri().path()) {
            if let Some(route) = endpoint::route(req.uri().path(), &self.shared.config) {
                let (parts, _body) = req.into_parts();
                return ResponseFuture::status(endpoint::respond(
                    Arc::clone(&self.shared),
                    route,
                    parts,
                ));
            }
        }
        let mut guard = RequestGuard::start(self.hot.block);
        if self.hot.count_passthrough {
            self.shared.config.access.count_passthrough(req.headers());
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
