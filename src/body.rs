//! [`ResponseBody`]: the inner body with its request timer, or the status
//! endpoint's own JSON.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::endpoint::StatusBody;
use crate::recorder::RequestGuard;

pin_project! {
    /// Response body of [`StatusService`](crate::StatusService).
    ///
    /// A passed-through body is forwarded frame by frame, unchanged; the
    /// request is recorded when it ends, fails, or is dropped early.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
            guard: Option<RequestGuard>,
            // Bytes still to come when the length is known (size hint or
            // `Content-Length`): servers stop polling once it is sent.
            remaining: Option<u64>,
        },
        // Boxed: the status endpoint's event stream is large, and every
        // passed-through response would be moved at that size.
        Status {
            body: Box<StatusBody>,
        },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B, guard: Option<RequestGuard>, remaining: Option<u64>) -> Self {
        Self {
            kind: Kind::Inner {
                body,
                guard,
                remaining,
            },
        }
    }

    pub(crate) fn status(body: StatusBody) -> Self {
        Self {
            kind: Kind::Status {
                body: Box::new(body),
            },
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Status { .. } => "Status",
        };
        f.debug_struct("ResponseBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::inner(B::default(), None, None)
    }
}

/// The body's last frame: trailers (a non-zero `grpc-status` there is an
/// error). Cold: once per request at most, off the data frames' path.
#[cold]
#[inline(never)]
fn end_with_trailers(guard: &mut Option<RequestGuard>, trailers: &http::HeaderMap) {
    if let Some(g) = guard.as_mut() {
        g.trailers(trailers);
    }
    RequestGuard::finish_in(guard, false);
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    #[inline(always)]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner {
                body,
                guard,
                remaining,
            } => {
                // Recorded already: a plain forward.
                let Some(g) = guard.as_mut() else {
                    return body.poll_frame(cx);
                };
                // Each case is rebuilt from its parts rather than the frame
                // moved whole: a data frame is then a few words copied, not
                // the size of a trailers map.
                match body.poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => {
                            if let Some(left) = remaining {
                                *left = left.saturating_sub(data.len() as u64);
                                // All announced bytes are out: h1 drops the
                                // body unpolled, h2 may still poll trailers;
                                // either ends it.
                                if *left == 0 {
                                    g.mark_complete();
                                }
                            }
                            // Whether the body has ended is asked by the
                            // server after each frame, through
                            // `is_end_stream` below, which notes it.
                            Poll::Ready(Some(Ok(Frame::data(data))))
                        }
                        Err(frame) => {
                            if let Some(trailers) = frame.trailers_ref() {
                                // Trailers are always last: servers may stop here.
                                end_with_trailers(guard, trailers);
                            }
                            Poll::Ready(Some(Ok(frame)))
                        }
                    },
                    Poll::Ready(Some(Err(err))) => {
                        RequestGuard::finish_in(guard, true);
                        Poll::Ready(Some(Err(err)))
                    }
                    Poll::Ready(None) => {
                        RequestGuard::finish_in(guard, false);
                        Poll::Ready(None)
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            KindProj::Status { body } => Pin::new(&mut **body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, guard, .. } => {
                let end = body.is_end_stream();
                if end {
                    // Servers drop an ended body without polling it again:
                    // dropping the guard then finishes the request.
                    if let Some(g) = guard {
                        g.mark_complete();
                    }
                }
                end
            }
            Kind::Status { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body, .. } => body.size_hint(),
            Kind::Status { body } => body.size_hint(),
        }
    }
}
