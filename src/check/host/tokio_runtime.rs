//! [`RuntimeCheck`]: the tokio runtime's workers, tasks and global queue.

use serde_json::json;
use tokio::runtime::Handle;

use crate::check::{BoxFuture, Check, CheckResult};

/// Reads a tokio runtime's stable metrics: worker threads, alive tasks and
/// the depth of its global queue (tasks spawned or woken from outside the
/// runtime, waiting for a worker). Degraded when more than the threshold
/// (default 1000) wait there: the workers do not keep up.
///
/// The observed value is the global queue depth in tasks; the details give
/// `workers`, `alive_tasks`, `global_queue_depth` and the threshold. The
/// reading takes no I/O, so the check has no timeout of its own (the
/// [`HealthCheck`](crate::check::HealthCheck)'s still applies).
///
/// ```
/// use tower_status::check::RuntimeCheck;
///
/// // The runtime the check runs on (the application's).
/// let here = RuntimeCheck::new().degraded_above_queue(200);
/// # let _ = here;
/// // A runtime of the application's own, for blocking work, say.
/// let other = tokio::runtime::Builder::new_current_thread().build()?;
/// let there = RuntimeCheck::for_handle(other.handle().clone());
/// # let _ = there;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeCheck {
    handle: Option<Handle>,
    max_queue: usize,
}

impl Default for RuntimeCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl RuntimeCheck {
    /// Checks the runtime the check runs on; degraded above 1000 queued
    /// tasks. A report asked for outside any runtime runs checks on this
    /// crate's own one-thread runtime: that is the one checked then.
    #[must_use]
    pub fn new() -> Self {
        Self {
            handle: None,
            max_queue: 1000,
        }
    }

    /// Checks the runtime of `handle`; degraded above 1000 queued tasks.
    #[must_use]
    pub fn for_handle(handle: Handle) -> Self {
        Self {
            handle: Some(handle),
            ..Self::new()
        }
    }

    /// Degraded when more than `tasks` wait in the global queue.
    #[must_use]
    pub fn degraded_above_queue(mut self, tasks: usize) -> Self {
        self.max_queue = tasks;
        self
    }

    fn read(&self, handle: &Handle) -> CheckResult {
        let metrics = handle.metrics();
        let depth = metrics.global_queue_depth();
        let result = if depth > self.max_queue {
            CheckResult::degraded(format!(
                "{depth} tasks wait in the runtime's global queue, above the threshold of {}",
                self.max_queue
            ))
        } else {
            CheckResult::ok()
        };
        result
            .with_details(json!({
                "workers": metrics.num_workers(),
                "alive_tasks": metrics.num_alive_tasks(),
                "global_queue_depth": depth,
                "degraded_above_queue": self.max_queue,
            }))
            .with_observed(depth, "tasks")
    }
}

impl Check for RuntimeCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            match &self.handle {
                Some(handle) => self.read(handle),
                None => match Handle::try_current() {
                    Ok(handle) => self.read(&handle),
                    Err(_) => CheckResult::down("RuntimeCheck: not running on a tokio runtime"),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    #[test]
    fn a_queue_that_is_not_drained_degrades() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let check = RuntimeCheck::for_handle(rt.handle().clone()).degraded_above_queue(10);
        // Spawned from outside the runtime, nothing drives them yet.
        let tasks: Vec<_> = (0..50).map(|_| rt.spawn(async {})).collect();
        let result = futures_executor::block_on(check.check());
        assert_eq!(result.status, Status::Degraded, "{result:?}");
        let details = result.details.unwrap();
        assert_eq!(details["global_queue_depth"], 50);
        assert_eq!(details["alive_tasks"], 50);
        assert_eq!(details["workers"], 1);
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        let result = futures_executor::block_on(check.check());
        assert_eq!(result.status, Status::Ok, "{result:?}");
        assert_eq!(result.observed_value, Some(0.into()));
    }
}
