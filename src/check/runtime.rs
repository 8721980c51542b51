//! Where checks and sections run: the caller's tokio runtime, or one of our own.
//!
//! Checks need tokio (timeouts, tasks, and often the check's own I/O), but
//! a report may be asked for outside any runtime: `layer.report()` under
//! `futures::executor::block_on`, a synchronous test. Then the work goes to
//! a fallback runtime: one for the whole process, created on first need,
//! with a single thread of its own that does nothing else. What runs there
//! is awaited through its `JoinHandle`, which any executor can poll.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

/// The error of a check that could not run: off a runtime, with no fallback.
pub(crate) const UNAVAILABLE: &str = "no tokio runtime to run on, and none could be started";

/// Name of the fallback runtime's thread.
const THREAD_NAME: &str = "tower-status-runtime";

/// The runtime to run on: the current one, else the fallback (`None` only
/// if the fallback could not be started: no thread could be spawned).
pub(crate) fn handle() -> Option<Handle> {
    match Handle::try_current() {
        Ok(current) => Some(current),
        Err(_) => fallback().cloned(),
    }
}

/// The process-wide fallback runtime, started on the first call: a thread
/// with I/O and timers for the life of the process.
pub(crate) fn fallback() -> Option<&'static Handle> {
    static FALLBACK: OnceLock<Option<Handle>> = OnceLock::new();
    FALLBACK.get_or_init(start).as_ref()
}

/// A current-thread runtime with I/O and timers, driven by its own thread
/// for as long as the process lives.
fn start() -> Option<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(THREAD_NAME)
        .build()
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(THREAD_NAME.to_owned())
        // Spawned tasks run while `block_on` waits on what never ends.
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .ok()?;
    Some(handle)
}

/// Awaits `fut` where tokio is available: in place when the caller is on
/// a runtime, else as a task on the fallback runtime. `None` when that
/// task could not run to its end (the fallback could not be started, or
/// the task panicked).
pub(crate) async fn in_tokio<F>(fut: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if Handle::try_current().is_ok() {
        return Some(fut.await);
    }
    fallback()?.spawn(fut).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn outside_a_runtime_work_goes_to_the_fallback() {
        assert!(Handle::try_current().is_err());
        let slept = futures_executor::block_on(in_tokio(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            std::thread::current().name().map(str::to_owned)
        }));
        assert_eq!(slept, Some(Some(THREAD_NAME.to_owned())));
        // One fallback for everyone.
        let again = handle().expect("the fallback runs");
        assert_eq!(again.id(), fallback().unwrap().id());
    }

    #[tokio::test]
    async fn on_a_runtime_work_stays_there() {
        let here = Handle::current().id();
        assert_eq!(handle().map(|h| h.id()), Some(here));
        let ran = in_tokio(async { Handle::current().id() }).await;
        assert_eq!(ran, Some(here));
    }
}
