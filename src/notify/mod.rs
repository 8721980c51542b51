//! Notifications: telling someone when the status changes.
//!
//! A [`Notifier`] is handed a [`Notification`] for every change of the
//! overall status or of a component's (one per change, naming the root
//! causes once). Each notifier registered with
//! [`StatusLayer::notify`](crate::StatusLayer::notify) gets its own
//! [`Delivery`]: a bounded queue and a task that delivers in order, one at
//! a time, with a timeout per attempt and retries with exponential backoff.
//! Nothing waits for it: a request or a check only puts the notification
//! in the queue. When the queue is full the oldest waiting notification is
//! dropped, and counted; what was delivered, failed or dropped is shown to
//! callers with details at `/status/transitions`.
//!
//! ```
//! use std::time::Duration;
//! use tower_status::notify::{Delivery, Notifier, NotifyFuture};
//! use tower_status::report::Notification;
//! use tower_status::StatusLayer;
//!
//! /// Writes each change to the log.
//! struct Log;
//!
//! impl Notifier for Log {
//!     fn notify<'a>(&'a self, n: &'a Notification) -> NotifyFuture<'a> {
//!         Box::pin(async move {
//!             println!("#{}: now {}", n.sequence, n.status);
//!             Ok(())
//!         })
//!     }
//! }
//!
//! let status = StatusLayer::new()
//!     .notify(Delivery::to("log", Log).attempt_timeout(Duration::from_secs(1)).max_attempts(3))
//!     .build();
//! # let _ = status;
//! ```
//!
//! A notification may be delivered more than once (an attempt whose
//! answer was lost is tried again): receivers deduplicate and order by
//! [`sequence`](Notification::sequence).
//!
//! # Webhooks
//!
//! With the `webhook` feature, `WebhookNotifier` POSTs each notification
//! as JSON to a plain `http://` URL, with extra headers (an
//! `Authorization` header, say) that never show in `Debug` output, errors
//! or logs:
//!
//! ```no_run
//! # #[cfg(feature = "webhook")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use http::{header, HeaderValue};
//! use tower_status::check::{CheckResult, HealthCheck};
//! use tower_status::notify::{Delivery, WebhookNotifier};
//! use tower_status::StatusLayer;
//!
//! let token = std::env::var("ALERTS_TOKEN")?;
//! let webhook = WebhookNotifier::new("http://alerts.internal:9000/hooks/status")?
//!     .header(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?);
//! let status = StatusLayer::new()
//!     .check(HealthCheck::pushed("db"))
//!     .notify(
//!         Delivery::to("alerts", webhook)
//!             .attempt_timeout(Duration::from_secs(2))
//!             .backoff(Duration::from_millis(500), Duration::from_secs(30)),
//!     )
//!     .build();
//! // Once seen by the status, this is POSTed to the receiver:
//! // {"sequence":1,"environment":"production","status":"down",
//! //  "transition":{"from":"ok","to":"down",...},
//! //  "root_causes":[{"component":"db","status":"down","error":"connection refused"}],
//! //  "components":[{"component":"db","from":"ok","to":"down",...}]}
//! status.set_component("db", CheckResult::down("connection refused"));
//! # Ok(()) }
//! # #[cfg(not(feature = "webhook"))]
//! # fn main() {}
//! ```
//!
//! # Over HTTPS with your own client
//!
//! The crate carries no TLS stack, so `WebhookNotifier` refuses
//! `https://` URLs. Implement [`Notifier`] with the HTTPS client the
//! application already has (reqwest, say): one attempt per call, `Ok` when
//! delivered; the timeout, retries and queue stay [`Delivery`]'s.
//!
//! ```
//! use tower_status::notify::{Delivery, Notifier, NotifyFuture};
//! use tower_status::report::Notification;
//!
//! struct HttpsWebhook {
//!     url: String,
//!     // client: reqwest::Client,
//! }
//!
//! impl Notifier for HttpsWebhook {
//!     fn notify<'a>(&'a self, n: &'a Notification) -> NotifyFuture<'a> {
//!         Box::pin(async move {
//!             let body = serde_json::to_vec(n)?;
//!             // With reqwest:
//!             // self.client.post(&self.url)
//!             //     .header("content-type", "application/json")
//!             //     .body(body)
//!             //     .send().await?
//!             //     .error_for_status()?;
//!             # let _ = (&self.url, body);
//!             Ok(())
//!         })
//!     }
//! }
//!
//! let hook = HttpsWebhook { url: "https://hooks.example.com/status".into() };
//! let delivery = Delivery::to("https-hook", hook);
//! # let _ = delivery;
//! ```

mod outbox;
#[cfg(feature = "webhook")]
mod webhook;

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::{Notification, Timestamp};

pub(crate) use outbox::Outbox;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use webhook::{InvalidWebhookUrl, WebhookNotifier};

/// Why a delivery attempt failed.
pub type NotifyError = Box<dyn Error + Send + Sync>;

/// What [`Notifier::notify`] returns.
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Delivers notifications somewhere (a webhook, a chat, a pager).
pub trait Notifier: Send + Sync + 'static {
    /// One attempt to deliver `notification`. An error (or running past
    /// the attempt timeout) makes the delivery try again later.
    fn notify<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a>;
}

/// A notifier with its delivery settings, for
/// [`StatusLayer::notify`](crate::StatusLayer::notify).
#[derive(Clone)]
pub struct Delivery {
    pub(crate) name: String,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) attempt_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) first_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) capacity: usize,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("name", &self.name)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("first_backoff", &self.first_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Delivers to `notifier`, shown under `name`: 5 s per attempt, at most
    /// 5 attempts, backoff from 200 ms doubling up to 30 s, 256 waiting.
    #[must_use]
    pub fn to(name: impl Into<String>, notifier: impl Notifier) -> Self {
        Self {
            name: name.into(),
            notifier: Arc::new(notifier),
            attempt_timeout: Duration::from_secs(5),
            max_attempts: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            capacity: 256,
        }
    }

    /// How long one attempt may take before it counts as failed.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero.
    #[must_use]
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "Delivery::attempt_timeout for `{}` must be greater than zero",
            self.name
        );
        self.attempt_timeout = timeout;
        self
    }

    /// How many attempts a notification gets before it counts as failed.
    ///
    /// # Panics
    ///
    /// If `attempts` is zero.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        assert!(
            attempts > 0,
            "Delivery::max_attempts for `{}` must be at least 1",
            self.name
        );
        self.max_attempts = attempts;
        self
    }

    /// The wait after the first failed attempt, doubled after each next
    /// one up to `max`.
    ///
    /// # Panics
    ///
    /// If `first` is greater than `max`.
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        assert!(
            first <= max,
            "Delivery::backoff for `{}`: the first wait must not exceed the longest",
            self.name
        );
        self.first_backoff = first;
        self.max_backoff = max;
        self
    }

    /// How many notifications may wait besides the one being delivered
    /// (default 256); when one more comes, the oldest waiting is dropped
    /// (and counted in [`DeliveryStats::dropped`]).
    ///
    /// # Panics
    ///
    /// If `capacity` is zero.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "Delivery::queue_capacity for `{}` must be at least 1",
            self.name
        );
        self.capacity = capacity;
        self
    }
}

/// How a notifier's deliveries went, as `/status/transitions` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct DeliveryStats {
    /// Notifications delivered.
    pub delivered: u64,
    /// Notifications given up after their last attempt failed.
    pub failed: u64,
    /// Notifications dropped from a full queue, never attempted to the end.
    pub dropped: u64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Notifications waiting now, including one being delivered (so at
    /// most the [queue capacity](Delivery::queue_capacity) plus one).
    pub queued: u64,
    /// The last attempt's error, when an attempt has failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When that attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
}

/// An error's text followed by its sources' (`outer: inner`), leaving out
/// a source whose text the outer one already shows.
fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = e.source();
    }
    text
}
