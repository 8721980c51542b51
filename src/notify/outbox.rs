//! The queue of one notifier and the task that empties it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::Notify;

use super::{Delivery, DeliveryStats};
use crate::check::runtime;
use crate::guarded::{self, Failure};
use crate::report::{Notification, Timestamp};

/// Where notifications wait for one notifier. Sending never waits; a task
/// (started by the first send) delivers them in order and ends when the
/// outbox is dropped.
pub(crate) struct Outbox {
    inner: Arc<Inner>,
    /// Shared with the task, which waits on it while the queue is empty.
    wake: Arc<Notify>,
}

struct Inner {
    delivery: Delivery,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Arc<Notification>>,
    /// One is being delivered (it counts as queued, and is never dropped).
    delivering: bool,
    worker: bool,
    stats: DeliveryStats,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while it is held; stay usable if something did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Outbox {
    pub(crate) fn new(delivery: Delivery) -> Self {
        Self {
            inner: Arc::new(Inner {
                delivery,
                state: Mutex::default(),
            }),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The notifier's name.
    pub(crate) fn name(&self) -> &str {
        &self.inner.delivery.name
    }

    /// Queues `notification`, dropping the oldest waiting one when full.
    pub(crate) fn send(&self, notification: Arc<Notification>) {
        let mut state = self.inner.lock();
        if state.waiting.len() >= self.inner.delivery.capacity {
            state.waiting.pop_front();
            state.stats.dropped += 1;
        }
        state.waiting.push_back(notification);
        if !state.worker {
            match runtime::handle() {
                Some(rt) => {
                    state.worker = true;
                    rt.spawn(deliver(Arc::downgrade(&self.inner), Arc::clone(&self.wake)));
                }
                None => {
                    // Nowhere to deliver from: counted, not silently kept.
                    state.stats.dropped += state.waiting.len() as u64;
                    state.waiting.clear();
                    return;
                }
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// How deliveries went so far.
    pub(crate) fn stats(&self) -> DeliveryStats {
        let state = self.inner.lock();
        let mut stats = state.stats.clone();
        stats.queued = state.waiting.len() as u64 + u64::from(state.delivering);
        stats
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        // Let a waiting task see that the outbox is gone.
        self.wake.notify_one();
    }
}

/// Delivers, one at a time and in order, until the outbox is gone.
async fn deliver(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            let mut state = inner.lock();
            let next = state.waiting.pop_front();
            state.delivering = next.is_some();
            next.map(|n| (n, inner.delivery.clone()))
        };
        let Some((notification, delivery)) = next else {
            wake.notified().await;
            continue;
        };
        let outcome = attempts(&inner, &delivery, &notification).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut state = inner.lock();
        state.delivering = false;
        match outcome {
            Ok(()) => state.stats.delivered += 1,
            Err(()) => state.stats.failed += 1,
        }
    }
}

/// Up to `max_attempts` attempts, with backoff between them.
async fn attempts(
    inner: &Weak<Inner>,
    delivery: &Delivery,
    notification: &Notification,
) -> Result<(), ()> {
    let mut backoff = delivery.first_backoff;
    for attempt in 1..=delivery.max_attempts {
        let notifier = Arc::clone(&delivery.notifier);
        let result = guarded::run(
            async move { notifier.notify(notification).await },
            delivery.attempt_timeout,
        )
        .await;
        let error = match result {
            Ok(Ok(())) => {
                if attempt > 1 {
                    tracing::info!(
                        notifier = %delivery.name,
                        sequence = notification.sequence,
                        attempt,
                        "status notification delivered after retrying"
                    );
                }
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(Failure::Panicked(message)) => format!("notifier panicked: {message}"),
            Err(timed_out @ Failure::TimedOut(_)) => timed_out.to_string(),
        };
        tracing::warn!(
            notifier = %delivery.name,
            sequence = notification.sequence,
            attempt,
            max_attempts = delivery.max_attempts,
            error = %error,
            "status notification attempt failed"
        );
        {
            let Some(inner) = inner.upgrade() else {
                return Err(());
            };
            let mut state = inner.lock();
            state.stats.failed_attempts += 1;
            state.stats.last_error = Some(crate::report::truncate_error(error));
            state.stats.last_error_at = Some(Timestamp::now());
        }
        if attempt < delivery.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(delivery.max_backoff);
        }
    }
    tracing::error!(
        notifier = %delivery.name,
        sequence = notification.sequence,
        "status notification given up after its last attempt"
    );
    Err(())
}
