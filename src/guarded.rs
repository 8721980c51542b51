//! Running user code guarded: its panics caught, its time bounded.
//!
//! Checks, sections and key lookups are the caller's code, run inside the
//! status endpoint: one that panics or hangs must give an error in the
//! report, never take the request (or the task it runs on) down. [`run`]
//! is that guard, and [`Failure`] says which of the two went wrong, with
//! the panic's message taken out of its payload here and nowhere else.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;

/// Why a guarded future gave no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// It panicked, with this message (`(no message)` when the payload was
    /// neither a `&str` nor a `String`).
    Panicked(String),
    /// It was still running after this long.
    TimedOut(Duration),
}

impl fmt::Display for Failure {
    /// `panicked: MESSAGE` or `timed out after N ms`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Panicked(message) => write!(f, "panicked: {message}"),
            Failure::TimedOut(after) => write!(f, "timed out after {} ms", after.as_millis()),
        }
    }
}

/// Runs `fut` to completion, catching its panics, for at most `timeout`
/// (any `Duration`: one too long to reach means no limit). A future that
/// panics before its first await is caught too when the call that makes
/// it happens inside `fut` (`async move { check.check().await }`).
///
/// Needs a tokio runtime with timers, as [`tokio::time::timeout`] does.
pub(crate) async fn run<F: Future>(fut: F, timeout: Duration) -> Result<F::Output, Failure> {
    // `timeout` treats a deadline past the clock's end as none.
    match tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(payload)) => Err(Failure::Panicked(
            panic_message(payload.as_ref()).to_owned(),
        )),
        Err(_) => Err(Failure::TimedOut(timeout)),
    }
}

/// The message of a panic payload: what `panic!` was given.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_comes_back() {
        assert_eq!(run(async { 7 }, Duration::from_secs(1)).await, Ok(7));
    }

    #[tokio::test]
    async fn panics_are_caught_with_their_message() {
        let literal = run(async { panic!("boom") }, Duration::from_secs(1)).await;
        assert_eq!(literal, Err::<(), _>(Failure::Panicked("boom".into())));
        let n = 3;
        let formatted = run(async move { panic!("boom {n}") }, Duration::from_secs(1)).await;
        assert_eq!(formatted, Err::<(), _>(Failure::Panicked("boom 3".into())));
        let other = run(
            async { std::panic::panic_any(42_u8) },
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(
            other,
            Err::<(), _>(Failure::Panicked("(no message)".into()))
        );
        assert_eq!(
            Failure::Panicked("boom".into()).to_string(),
            "panicked: boom"
        );
    }

    #[tokio::test]
    async fn a_hang_times_out() {
        let hang = run(std::future::pending::<()>(), Duration::from_millis(20)).await;
        assert_eq!(hang, Err(Failure::TimedOut(Duration::from_millis(20))));
        assert_eq!(
            Failure::TimedOut(Duration::from_millis(20)).to_string(),
            "timed out after 20 ms"
        );
    }

    #[tokio::test]
    async fn any_timeout_is_valid() {
        assert_eq!(run(async { 1 }, Duration::MAX).await, Ok(1));
        assert_eq!(
            run(std::future::pending::<()>(), Duration::ZERO).await,
            Err(Failure::TimedOut(Duration::ZERO))
        );
    }
}
