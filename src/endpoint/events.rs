//! `/status/watch`: Server-Sent Events of status changes.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use tokio::sync::watch;

use crate::state::StatusChange;

/// What woke the stream.
enum Wake {
    KeepAlive,
    Change(Option<StatusChange>),
    /// The layer is gone: the stream ends.
    Closed,
}

type Receiver = watch::Receiver<Option<StatusChange>>;
type Next = Pin<Box<dyn std::future::Future<Output = (Receiver, Wake)> + Send + Sync>>;

/// The `text/event-stream` body of `/status/watch`: an `event: status` with
/// the current status first, then one on every change the caller may see,
/// and a comment line every keep-alive period.
pub(crate) struct SseBody {
    next: Next,
    details: bool,
    keepalive: Duration,
    last: Option<StatusChange>,
}

impl SseBody {
    pub(crate) fn new(mut rx: Receiver, details: bool, keepalive: Duration) -> Self {
        // The current value, when known, is the first event.
        rx.mark_changed();
        Self {
            next: Self::wait(rx, keepalive),
            details,
            keepalive,
            last: None,
        }
    }

    fn wait(mut rx: Receiver, keepalive: Duration) -> Next {
        Box::pin(async move {
            let wake = match tokio::time::timeout(keepalive, rx.changed()).await {
                Err(_) => Wake::KeepAlive,
                Ok(Err(_)) => Wake::Closed,
                Ok(Ok(())) => Wake::Change(rx.borrow_and_update().clone()),
            };
            (rx, wake)
        })
    }

    /// What this caller may see of a change.
    fn view(&self, change: &StatusChange) -> StatusChange {
        StatusChange {
            status: change.status,
            components: if self.details {
                change.components.clone()
            } else {
                BTreeMap::new()
            },
            draining: change.draining,
            transitions: if self.details {
                change.transitions.clone()
            } else {
                // The overall change alone, without the error that names a component.
                change
                    .transitions
                    .iter()
                    .filter(|t| t.component.is_none())
                    .map(|t| {
                        let mut t = t.clone();
                        t.error = None;
                        t
                    })
                    .collect()
            },
        }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            let (rx, wake) = ready!(self.next.as_mut().poll(cx));
            let keepalive = self.keepalive;
            self.next = Self::wait(rx, keepalive);
            let change = match wake {
                Wake::Closed => return Poll::Ready(None),
                Wake::KeepAlive => {
                    let comment = Bytes::from_static(b": keep-alive\n\n");
                    return Poll::Ready(Some(Ok(Frame::data(comment))));
                }
                // Not evaluated yet: nothing to say.
                Wake::Change(None) => continue,
                Wake::Change(Some(change)) => change,
            };
            let mut view = self.view(&change);
            match &self.last {
                // A change this caller cannot see (a component, without details).
                Some(last) if last.same_status(&view) => continue,
                Some(_) => {}
                // The first event is the current status: the changes that
                // led to it happened before this stream.
                None => view.transitions.clear(),
            }
            let json = serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned());
            self.last = Some(view);
            let event = format!("event: status\ndata: {json}\n\n");
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
        }
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The status endpoint's own bodies: a whole JSON (or text) document, or
/// the event stream of `/status/watch`.
pub(crate) enum StatusBody {
    Full(Full<Bytes>),
    Events(SseBody),
}

impl From<Full<Bytes>> for StatusBody {
    fn from(body: Full<Bytes>) -> Self {
        StatusBody::Full(body)
    }
}

impl Body for StatusBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            StatusBody::Full(body) => Pin::new(body).poll_frame(cx),
            StatusBody::Events(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            StatusBody::Full(body) => body.is_end_stream(),
            StatusBody::Events(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            StatusBody::Full(body) => body.size_hint(),
            StatusBody::Events(body) => body.size_hint(),
        }
    }
}
