//! A layer's response body that forwards every call and records nothing
//! (tests/alloc.rs, benches/overhead.rs, benches/load_server.rs):
//! the part of any body-wrapping layer's cost that is not the layer's own
//! work (under `Router::layer`, axum boxes the new body type again).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};

pin_project_lite::pin_project! {
    /// A response body passed on untouched, call for call.
    pub struct Forward<B> {
        #[pin]
        inner: B,
    }
}

impl<B: Body> Body for Forward<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response with its body in a [`Forward`]; for `MapResponseLayer`.
pub fn forward<B>(res: http::Response<B>) -> http::Response<Forward<B>> {
    res.map(|inner| Forward { inner })
}
