//! [`ResponseBody`]: the inner body with its request timer, or the status
//! endpoint's own JSON.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

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
        Status {
            body: StatusBody,
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
            kind: Kind::Status { body },
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

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner {
                mut body,
                guard,
                remaining,
            } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
                let Some(g) = guard.as_mut() else {
                    return Poll::Ready(frame);
                };
                match &frame {
                    Some(Ok(f)) => {
                        // Servers may stop polling after trailers (always last)
                        // or when the body says it is done: each ends the request.
                        let mut done = body.is_end_stream();
                        if let Some(trailers) = f.trailers_ref() {
                            g.trailers(trailers);
                            done = true;
                        } else if let (Some(left), Some(data)) = (remaining.as_mut(), f.data_ref())
                        {
                            *left = left.saturating_sub(data.len() as u64);
                            // All announced bytes are out: h1 drops the body
                            // unpolled, h2 may still poll trailers; either ends it.
                            g.complete |= *left == 0;
                        }
                        if done {
                            if let Some(g) = guard.take() {
                                g.finish(false);
                            }
                        }
                    }
                    Some(Err(_)) => {
                        if let Some(g) = guard.take() {
                            g.finish(true);
                        }
                    }
                    None => {
                        if let Some(g) = guard.take() {
                            g.finish(false);
                        }
                    }
                }
                Poll::Ready(frame)
            }
            KindProj::Status { body } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, .. } => body.is_end_stream(),
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
