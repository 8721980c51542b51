//! The queue of one notifier and the task that empties it.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::future::{select, Either};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{describe, Delivery, DeliveryStats};
use crate::check::runtime;
use crate::guarded::{self, Failure};
use crate::report::{Notification, Timestamp};

/// Where notifications wait for one notifier. Sending never waits; a task
/// (started by the first send, on the caller's tokio runtime or else the
/// crate's fallback one) delivers them in order and ends when the outbox
/// is dropped: the attempt in progress is finished (it is bounded by the
/// attempt timeout), no retry or other notification is tried after it.
pub(crate) struct Outbox {
    /// The only strong reference: the task holds a weak one, so dropping
    /// the outbox drops the queue, and `Inner`'s drop wakes the task.
    inner: Arc<Inner>,
}

struct Inner {
    delivery: Delivery,
    state: Mutex<State>,
    /// Shared with the task, which waits on it while the queue is empty.
    wake: Arc<Notify>,
}

#[derive(Default)]
struct State {
    waiting: VecDeque<Arc<Notification>>,
    /// One is being delivered (it counts as queued, and is never dropped).
    delivering: bool,
    /// A task is delivering (or about to be spawned to).
    worker: bool,
    stats: DeliveryStats,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while it is held; stay usable if something did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    /// Wakes the task once the queue is really gone (not before, as a
    /// wake-up from `Outbox::drop` would be: the task could still upgrade
    /// its reference, find the queue empty and wait forever). Stored as a
    /// permit when the task is not waiting yet.
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

impl Outbox {
    pub(crate) fn new(delivery: Delivery) -> Self {
        Self {
            inner: Arc::new(Inner {
                delivery,
                state: Mutex::default(),
                wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// The notifier's name.
    pub(crate) fn name(&self) -> &str {
        &self.inner.delivery.name
    }

    /// Queues `notification`, dropping the oldest waiting one when full.
    /// Never waits: it takes a lock the task holds only to pop or count.
    pub(crate) fn send(&self, notification: Arc<Notification>) {
        let start = {
            let mut state = self.inner.lock();
            // `while`: a task cancelled mid-delivery puts its notification
            // back in front, one over the capacity.
            while state.waiting.len() >= self.inner.delivery.capacity {
                state.waiting.pop_front();
                state.stats.dropped += 1;
            }
            state.waiting.push_back(notification);
            !std::mem::replace(&mut state.worker, true)
        };
        if start {
            // Spawned outside the lock: a runtime shutting down drops the
            // task right away, and its drop takes the lock.
            match runtime::handle() {
                Some(rt) => {
                    let worker = Worker {
                        inner: Arc::downgrade(&self.inner),
                        wake: Arc::clone(&self.inner.wake),
                        delivery: self.inner.delivery.clone(),
                        current: None,
                    };
                    drop(rt.spawn(worker.run()));
                }
                None => {
                    // Nowhere to deliver from: counted, not silently kept.
                    let mut state = self.inner.lock();
                    state.worker = false;
                    state.stats.dropped += state.waiting.len() as u64;
                    state.waiting.clear();
                    return;
                }
            }
        }
        self.inner.wake.notify_one();
    }

    /// How deliveries went so far.
    pub(crate) fn stats(&self) -> DeliveryStats {
        let state = self.inner.lock();
        let mut stats = state.stats.clone();
        stats.queued = state.waiting.len() as u64 + u64::from(state.delivering);
        stats
    }
}

/// The delivering task. When it is dropped without having finished (its
/// runtime shut down while the outbox lives on), its drop hands the
/// notification in progress back to the queue and lets the next send
/// start another task.
struct Worker {
    inner: Weak<Inner>,
    wake: Arc<Notify>,
    delivery: Delivery,
    /// The notification being delivered.
    current: Option<Arc<Notification>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut state = inner.lock();
        state.worker = false;
        state.delivering = false;
        if let Some(notification) = self.current.take() {
            state.waiting.push_front(notification);
        }
    }
}

impl Worker {
    /// Delivers, one at a time and in order, until the outbox is gone.
    async fn run(mut self) {
        loop {
            let next = {
                // Gone: the outbox was dropped, and its queue with it.
                let Some(inner) = self.inner.upgrade() else {
                    return;
                };
                let mut state = inner.lock();
                let next = state.waiting.pop_front();
                state.delivering = next.is_some();
                next
            };
            let Some(notification) = next else {
                // A send between the pop above and this wait stored a
                // permit (`notify_one`), so this returns at once: no
                // notification is left waiting for the next send.
                self.wake.notified().await;
                continue;
            };
            self.current = Some(Arc::clone(&notification));
            let outcome = self.attempts(&notification).await;
            self.current = None;
            let Some(inner) = self.inner.upgrade() else {
                return;
            };
            let mut state = inner.lock();
            state.delivering = false;
            match outcome {
                Ok(()) => state.stats.delivered += 1,
                Err(()) => state.stats.failed += 1,
            }
        }
    }

    /// Up to `max_attempts` attempts, with backoff between them; stops
    /// early (as failed) when the outbox is dropped.
    async fn attempts(&self, notification: &Notification) -> Result<(), ()> {
        let delivery = &self.delivery;
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
                Ok(Err(e)) => describe(e.as_ref()),
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
                let Some(inner) = self.inner.upgrade() else {
                    return Err(());
                };
                let mut state = inner.lock();
                state.stats.failed_attempts += 1;
                state.stats.last_error = Some(crate::report::truncate_error(error));
                state.stats.last_error_at = Some(Timestamp::now());
            }
            if attempt < delivery.max_attempts {
                if !self.pause(backoff).await {
                    return Err(());
                }
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

    /// Waits `wait`, or less when the outbox is dropped meanwhile: `true`
    /// when it is still there.
    async fn pause(&self, wait: Duration) -> bool {
        // A duration too long to add is as good as forever.
        let until = Instant::now().checked_add(wait);
        loop {
            if self.inner.strong_count() == 0 {
                return false;
            }
            // Sends wake this too (their notifications are popped after
            // this one is done); only the outbox's drop ends the wait.
            let sleep = async {
                match until {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => std::future::pending().await,
                }
            };
            let (sleep, woken) = (pin!(sleep), pin!(self.wake.notified()));
            if let Either::Left(_) = select(sleep, woken).await {
                return self.inner.strong_count() > 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant as StdInstant;

    use super::*;
    use crate::notify::{Notifier, NotifyFuture};
    use crate::report::Status;

    /// Upper bound of any wait in these tests.
    const STEP: Duration = Duration::from_secs(5);

    fn notification(sequence: u64) -> Arc<Notification> {
        Arc::new(Notification {
            sequence,
            service: Some("svc".into()),
            version: None,
            environment: "test".into(),
            status: Status::Down,
            transition: None,
            root_causes: Vec::new(),
            components: Vec::new(),
        })
    }

    /// Short settings: 200 ms per attempt, backoff 10 ms up to 50 ms.
    fn quick(name: &str, notifier: impl Notifier) -> Delivery {
        Delivery::to(name, notifier)
            .attempt_timeout(Duration::from_millis(200))
            .backoff(Duration::from_millis(10), Duration::from_millis(50))
    }

    /// Polls `cond` until it holds, failing after [`STEP`].
    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = StdInstant::now() + STEP;
        while !cond() {
            assert!(StdInstant::now() < deadline, "not within {STEP:?}: {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Whether the task has ended: it held a reference to the notifier.
    fn only_owner(notifier: &Arc<dyn Notifier>) -> bool {
        Arc::strong_count(notifier) == 1
    }

    /// Answers by script: each call takes the next step, then `Ok` once
    /// the script is done; records the sequences it delivered.
    #[derive(Clone, Default)]
    struct Scripted {
        steps: Arc<Mutex<VecDeque<Step>>>,
        delivered: Arc<Mutex<Vec<u64>>>,
        calls: Arc<AtomicU32>,
    }

    #[derive(Clone, Copy)]
    enum Step {
        Fail,
        Panic,
        Hang,
    }

    impl Scripted {
        fn new(steps: impl IntoIterator<Item = Step>) -> Self {
            let s = Self::default();
            s.steps.lock().unwrap().extend(steps);
            s
        }
        fn delivered(&self) -> Vec<u64> {
            self.delivered.lock().unwrap().clone()
        }
    }

    impl Notifier for Scripted {
        fn notify<'a>(&'a self, n: &'a Notification) -> NotifyFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let step = self.steps.lock().unwrap().pop_front();
            Box::pin(async move {
                match step {
                    Some(Step::Fail) => Err("refused".into()),
                    Some(Step::Panic) => panic!("boom"),
                    Some(Step::Hang) => std::future::pending().await,
                    None => {
                        self.delivered.lock().unwrap().push(n.sequence);
                        Ok(())
                    }
                }
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_notifier_is_caught_and_counted_as_a_failed_attempt() {
        let notifier = Scripted::new([Step::Panic, Step::Panic, Step::Panic]);
        let outbox = Outbox::new(quick("panics", notifier.clone()).max_attempts(2));
        outbox.send(notification(1)); // two panics: given up
        outbox.send(notification(2)); // a panic, then delivered
        wait_for("both done", || {
            let s = outbox.stats();
            s.delivered + s.failed == 2
        })
        .await;
        let stats = outbox.stats();
        assert_eq!((stats.delivered, stats.failed), (1, 1));
        assert_eq!(stats.failed_attempts, 3);
        assert_eq!(stats.last_error.as_deref(), Some("notifier panicked: boom"));
        assert!(stats.last_error_at.is_some());
        assert_eq!(notifier.delivered(), [2]);
        // The task survived its notifier's panics and still delivers.
        outbox.send(notification(3));
        wait_for("third delivered", || outbox.stats().delivered == 2).await;
        assert_eq!(notifier.delivered(), [2, 3]);
    }

    #[tokio::test]
    async fn errors_and_timeouts_are_retried_with_the_last_one_shown() {
        let notifier = Scripted::new([Step::Fail, Step::Hang]);
        let outbox = Outbox::new(quick("flaky", notifier.clone()).max_attempts(3));
        outbox.send(notification(1));
        wait_for("delivered", || outbox.stats().delivered == 1).await;
        let stats = outbox.stats();
        assert_eq!((stats.failed, stats.failed_attempts), (0, 2));
        assert_eq!(stats.last_error.as_deref(), Some("timed out after 200 ms"));
        assert_eq!(notifier.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_error_is_shown_with_its_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("connection error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        struct Failing;
        impl Notifier for Failing {
            fn notify<'a>(&'a self, _: &'a Notification) -> NotifyFuture<'a> {
                Box::pin(async {
                    let reset = std::io::Error::other("connection reset by peer");
                    Err(Outer(reset).into())
                })
            }
        }
        let outbox = Outbox::new(quick("failing", Failing).max_attempts(1));
        outbox.send(notification(1));
        wait_for("failed", || outbox.stats().failed == 1).await;
        assert_eq!(
            outbox.stats().last_error.as_deref(),
            Some("connection error: connection reset by peer")
        );
    }

    #[tokio::test]
    async fn queued_counts_the_one_being_delivered_and_the_oldest_waiting_is_dropped() {
        let notifier = Scripted::new([Step::Hang]);
        let delivery = quick("slow", notifier.clone())
            .attempt_timeout(STEP)
            .queue_capacity(2);
        let outbox = Outbox::new(delivery);
        outbox.send(notification(1));
        wait_for("1 in delivery", || {
            notifier.calls.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(outbox.stats().queued, 1);
        for sequence in 2..=5 {
            outbox.send(notification(sequence));
        }
        // 1 being delivered (never dropped), 4 and 5 waiting; 2 and 3 dropped.
        let stats = outbox.stats();
        assert_eq!((stats.queued, stats.dropped), (3, 2));
        drop(outbox);
    }

    #[tokio::test]
    async fn sending_never_waits_for_a_hanging_notifier() {
        let notifier = Scripted::new(std::iter::repeat_n(Step::Hang, 100));
        let delivery = quick("hangs", notifier).queue_capacity(8);
        let outbox = Outbox::new(delivery);
        let started = StdInstant::now();
        for sequence in 1..=1000 {
            outbox.send(notification(sequence));
            tokio::task::yield_now().await;
        }
        let took = started.elapsed();
        // Each send would wait 200 ms if it waited for an attempt.
        assert!(took < Duration::from_secs(1), "1000 sends took {took:?}");
        let stats = outbox.stats();
        assert_eq!(stats.queued, 9, "{stats:?}");
        assert_eq!(stats.dropped, 1000 - 9, "{stats:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_task_ends_when_the_outbox_is_dropped() {
        // Idle (waiting for a send), over and over: the wake-up of a drop
        // must never be lost to a task about to wait.
        for _ in 0..200 {
            let delivery = quick("idle", Scripted::default());
            let notifier = Arc::clone(&delivery.notifier);
            let outbox = Outbox::new(delivery);
            outbox.send(notification(1));
            wait_for("delivered", || outbox.stats().delivered == 1).await;
            drop(outbox);
            wait_for("idle task ended", || only_owner(&notifier)).await;
        }
        // Waiting out a long backoff: ends at once.
        let delivery = quick("backoff", Scripted::new([Step::Fail]))
            .backoff(Duration::from_secs(3600), Duration::from_secs(3600));
        let notifier = Arc::clone(&delivery.notifier);
        let outbox = Outbox::new(delivery);
        outbox.send(notification(1));
        wait_for("first attempt failed", || {
            outbox.stats().failed_attempts == 1
        })
        .await;
        let dropped = StdInstant::now();
        drop(outbox);
        wait_for("task in backoff ended", || only_owner(&notifier)).await;
        assert!(dropped.elapsed() < Duration::from_secs(1));
        // In an attempt that hangs: ends with the attempt's timeout, and
        // tries nothing after it.
        let scripted = Scripted::new([Step::Hang]);
        let delivery = quick("hang", scripted.clone());
        let notifier = Arc::clone(&delivery.notifier);
        let outbox = Outbox::new(delivery);
        outbox.send(notification(1));
        outbox.send(notification(2));
        wait_for("in the attempt", || {
            scripted.calls.load(Ordering::SeqCst) == 1
        })
        .await;
        drop(outbox);
        wait_for("hanging task ended", || only_owner(&notifier)).await;
        assert_eq!(scripted.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn off_a_runtime_the_fallback_runtime_delivers() {
        assert!(tokio::runtime::Handle::try_current().is_err());
        let notifier = Scripted::new([Step::Fail]);
        let outbox = Outbox::new(quick("off", notifier.clone()));
        outbox.send(notification(1));
        outbox.send(notification(2));
        let deadline = StdInstant::now() + STEP;
        while outbox.stats().delivered < 2 {
            assert!(StdInstant::now() < deadline, "{:?}", outbox.stats());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(notifier.delivered(), [1, 2]);
        assert_eq!(outbox.stats().failed_attempts, 1);
    }

    #[test]
    fn a_runtime_shut_down_mid_delivery_leaves_the_next_send_to_deliver() {
        let notifier = Scripted::new([Step::Hang]);
        let delivery = quick("moved", notifier.clone()).attempt_timeout(STEP);
        let outbox = Outbox::new(delivery);
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        first.block_on(async {
            outbox.send(notification(1));
            wait_for("1 in delivery", || {
                notifier.calls.load(Ordering::SeqCst) == 1
            })
            .await;
        });
        // Its task is dropped mid-attempt: the notification is handed back.
        drop(first);
        let stats = outbox.stats();
        assert_eq!((stats.queued, stats.dropped, stats.failed), (1, 0, 0));
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        second.block_on(async {
            outbox.send(notification(2));
            wait_for("both delivered", || outbox.stats().delivered == 2).await;
        });
        assert_eq!(notifier.delivered(), [1, 2]);
    }

    /// Receivers over real loopback HTTP, delivered to by the webhook
    /// notifier.
    #[cfg(feature = "webhook")]
    mod webhook {
        use std::sync::atomic::AtomicUsize;

        use axum::extract::State;
        use axum::http::StatusCode;
        use axum::routing::post;
        use axum::Router;
        use serde_json::Value;
        use tokio::net::TcpListener;

        use super::*;
        use crate::notify::WebhookNotifier;

        /// What the receiver does with each request, in order; then 200.
        #[derive(Clone, Copy)]
        enum Answer {
            Refuse,
            Hang,
        }

        #[derive(Clone, Default)]
        struct Receiver {
            script: Arc<Mutex<VecDeque<Answer>>>,
            /// The sequences of the notifications answered with 200.
            accepted: Arc<Mutex<Vec<u64>>>,
            requests: Arc<AtomicUsize>,
        }

        async fn receive(State(r): State<Receiver>, body: axum::body::Bytes) -> StatusCode {
            r.requests.fetch_add(1, Ordering::SeqCst);
            let answer = r.script.lock().unwrap().pop_front();
            match answer {
                Some(Answer::Refuse) => StatusCode::SERVICE_UNAVAILABLE,
                Some(Answer::Hang) => std::future::pending().await,
                None => {
                    let json: Value = serde_json::from_slice(&body).unwrap();
                    let sequence = json["sequence"].as_u64().unwrap();
                    r.accepted.lock().unwrap().push(sequence);
                    StatusCode::NO_CONTENT
                }
            }
        }

        /// A receiver on `127.0.0.1:0` answering by `script`; its URL.
        async fn serve(script: impl IntoIterator<Item = Answer>) -> (Receiver, String) {
            let receiver = Receiver::default();
            receiver.script.lock().unwrap().extend(script);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook", listener.local_addr().unwrap());
            let app = Router::new()
                .route("/hook", post(receive))
                .with_state(receiver.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            (receiver, url)
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn refused_then_hung_then_accepted_each_arrives_once_in_order() {
            use Answer::{Hang, Refuse};
            let (receiver, url) = serve([Refuse, Refuse, Hang, Refuse]).await;
            let webhook = WebhookNotifier::new(url).unwrap();
            let outbox = Outbox::new(quick("hook", webhook).max_attempts(10));
            for sequence in 1..=5 {
                outbox.send(notification(sequence));
            }
            wait_for("5 delivered", || outbox.stats().delivered == 5).await;
            assert_eq!(*receiver.accepted.lock().unwrap(), [1, 2, 3, 4, 5]);
            let stats = outbox.stats();
            assert_eq!(
                (
                    stats.failed,
                    stats.dropped,
                    stats.failed_attempts,
                    stats.queued
                ),
                (0, 0, 4, 0),
                "{stats:?}"
            );
            assert_eq!(receiver.requests.load(Ordering::SeqCst), 9);
            let error = stats.last_error.unwrap();
            assert!(
                error.ends_with("answered 503 Service Unavailable"),
                "{error}"
            );
            // More later: delivered at once, still in order.
            outbox.send(notification(6));
            wait_for("6 delivered", || outbox.stats().delivered == 6).await;
            assert_eq!(*receiver.accepted.lock().unwrap(), [1, 2, 3, 4, 5, 6]);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_receiver_gone_for_good_fills_the_queue_and_drops_are_counted() {
            // Accepts each connection and closes it at once.
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook", listener.local_addr().unwrap());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    drop(stream);
                }
            });
            let delivery = quick("gone", WebhookNotifier::new(url).unwrap())
                .max_attempts(2)
                .queue_capacity(4);
            let outbox = Outbox::new(delivery);
            let mut slowest = Duration::ZERO;
            for sequence in 1..=50 {
                let started = StdInstant::now();
                outbox.send(notification(sequence));
                slowest = slowest.max(started.elapsed());
            }
            // Far below one attempt's timeout: nothing waited for delivery.
            assert!(
                slowest < Duration::from_millis(100),
                "a send took {slowest:?}"
            );
            let stats = outbox.stats();
            assert!(stats.queued <= 5 && stats.dropped >= 40, "{stats:?}");
            assert_eq!(stats.queued + stats.dropped + stats.failed, 50, "{stats:?}");
            wait_for("all given up", || outbox.stats().queued == 0).await;
            let stats = outbox.stats();
            assert_eq!(stats.delivered, 0);
            // Every notification is accounted for: none silently lost.
            assert_eq!(stats.failed + stats.dropped, 50, "{stats:?}");
            assert!((1..=5).contains(&stats.failed), "{stats:?}");
            assert_eq!(stats.failed_attempts, 2 * stats.failed);
            let error = stats.last_error.unwrap();
            assert!(error.starts_with("POST to http://127.0.0.1:"), "{error}");
            assert!(stats.last_error_at.is_some());
        }
    }
}
