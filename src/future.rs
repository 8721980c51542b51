//! [`ResponseFuture`]: the inner service's future with its request timer, or
//! the status endpoint's own answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use crate::body::ResponseBody;
use crate::endpoint::StatusFuture;
use crate::recorder::RequestGuard;

pin_project! {
    /// Response future of [`StatusService`](crate::StatusService).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner {
            #[pin]
            future: F,
            // Dropping the future with the guard still here records an abort.
            guard: Option<RequestGuard>,
        },
        Status {
            future: StatusFuture,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn inner(future: F, guard: RequestGuard) -> Self {
        Self {
            kind: Kind::Inner {
                future,
                guard: Some(guard),
            },
        }
    }

    pub(crate) fn status(future: StatusFuture) -> Self {
        Self {
            kind: Kind::Status { future },
        }
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    // Handlers that stream seldom set any header: no lookup then.
    if headers.is_empty() {
        return None;
    }
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Status { .. } => "Status",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future, guard } => match ready!(future.poll(cx)) {
                Ok(res) => {
                    let mut guard = guard.take();
                    let mut remaining = None;
                    if let Some(g) = guard.as_mut() {
                        g.response_head(res.status(), res.headers());
                        // The length to send, so the body knows when all of
                        // it is out: servers stop polling there.
                        let body = res.body();
                        remaining = match body.size_hint().exact() {
                            Some(n) => Some(n),
                            None => content_length(res.headers()),
                        };
                        // Nothing will be polled from an empty body, nor sent
                        // for a HEAD: the request ends here. A body with a
                        // known length left is not at its end, so only one of
                        // unknown length is asked.
                        let ended = match remaining {
                            Some(n) => n == 0,
                            None => body.is_end_stream(),
                        };
                        if g.head || ended {
                            RequestGuard::finish_in(&mut guard, false);
                        }
                    }
                    Poll::Ready(Ok(
                        res.map(|body| ResponseBody::inner(body, guard, remaining))
                    ))
                }
                Err(err) => {
                    RequestGuard::finish_in(guard, true);
                    Poll::Ready(Err(err))
                }
            },
            KindProj::Status { future } => future
                .as_mut()
                .poll(cx)
                .map(|res| Ok(res.map(ResponseBody::status))),
        }
    }
}
