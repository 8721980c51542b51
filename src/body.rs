//! [`ResponseBody`]: the inner body with its request timer, or the status
//! endpoint's own JSON.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

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
        },
        Full {
            body: Full<Bytes>,
        },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B, guard: Option<RequestGuard>) -> Self {
        Self {
            kind: Kind::Inner { body, guard },
        }
    }

    pub(crate) fn full(body: Full<Bytes>) -> Self {
        Self {
            kind: Kind::Full { body },
        }
    }
}

impl<B: Default> Default for ResponseBody<B> {
    fn default() -> Self {
        Self::inner(B::default(), None)
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
            KindProj::Inner { mut body, guard } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
                let Some(g) = guard.as_mut() else {
                    return Poll::Ready(frame);
                };
                match &frame {
                    Some(Ok(f)) => {
                        if let Some(trailers) = f.trailers_ref() {
                            g.trailers(trailers);
                        }
                        // Record as soon as the body says it is done, not at the next poll.
                        if body.is_end_stream() {
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
            KindProj::Full { body } => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, .. } => body.is_end_stream(),
            Kind::Full { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body, .. } => body.size_hint(),
            Kind::Full { body } => body.size_hint(),
        }
    }
}
