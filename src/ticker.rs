//! A task that does something at an interval for as long as its owner lives.
//!
//! Background work (polling a check, moving the traffic window) belongs to
//! a layer's shared state but must not keep it alive: the task holds a
//! [`Weak`] to its owner, upgrades it for each tick and ends at the first
//! tick after the owner is gone (or when the tick says so, or with its
//! runtime). The first tick comes at once; a tick that runs late delays the
//! ones after it ([`MissedTickBehavior::Delay`]) instead of bursting to
//! catch up.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Shortest period: tokio refuses a zero one.
pub(crate) const MIN_PERIOD: Duration = Duration::from_millis(1);

/// Longest period (30 years, tokio's own "far future"): a longer one would
/// overflow the clock, and is as good as never after the first tick anyway.
pub(crate) const MAX_PERIOD: Duration = Duration::from_secs(86_400 * 365 * 30);

/// Spawns on `runtime` a task that, every `every` (kept within
/// [`MIN_PERIOD`]..=[`MAX_PERIOD`], so any `Duration` will do), upgrades
/// `owner` and awaits `tick` with it. It ends when `owner` is gone or a
/// tick returns [`ControlFlow::Break`].
///
/// `tick` gets the owner by value: it should drop it before anything slow
/// it returns to be awaited, so as not to keep the owner alive meanwhile.
pub(crate) fn spawn<T, F, Fut>(
    runtime: &Handle,
    every: Duration,
    owner: Weak<T>,
    mut tick: F,
) -> JoinHandle<()>
where
    T: Send + Sync + 'static,
    F: FnMut(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ControlFlow<()>> + Send + 'static,
{
    let period = every.clamp(MIN_PERIOD, MAX_PERIOD);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(owner) = owner.upgrade() else { break };
            if tick(owner).await.is_break() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("never happened: {what}");
    }

    #[tokio::test]
    async fn ticks_until_the_owner_is_gone() {
        let owner = Arc::new(AtomicUsize::new(0));
        let task = spawn(
            &Handle::current(),
            Duration::from_millis(5),
            Arc::downgrade(&owner),
            |owner: Arc<AtomicUsize>| {
                owner.fetch_add(1, Ordering::SeqCst);
                std::future::ready(ControlFlow::Continue(()))
            },
        );
        until("three ticks", || owner.load(Ordering::SeqCst) >= 3).await;
        // The task holds no strong reference between ticks.
        drop(owner);
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the task ends once its owner is gone")
            .unwrap();
    }

    #[tokio::test]
    async fn a_tick_may_stop_it() {
        let owner = Arc::new(AtomicUsize::new(0));
        let task = spawn(
            &Handle::current(),
            Duration::ZERO,
            Arc::downgrade(&owner),
            |owner: Arc<AtomicUsize>| async move {
                if owner.fetch_add(1, Ordering::SeqCst) == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the third tick stops it")
            .unwrap();
        assert_eq!(owner.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn any_period_is_valid() {
        let owner = Arc::new(AtomicUsize::new(0));
        let task = spawn(
            &Handle::current(),
            Duration::MAX,
            Arc::downgrade(&owner),
            |owner: Arc<AtomicUsize>| {
                owner.fetch_add(1, Ordering::SeqCst);
                std::future::ready(ControlFlow::Continue(()))
            },
        );
        until("the first tick", || owner.load(Ordering::SeqCst) == 1).await;
        // Scheduling the next tick did not overflow (a panic would end the task).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished());
        assert_eq!(owner.load(Ordering::SeqCst), 1);
        task.abort();
    }
}
