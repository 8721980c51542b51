//! Custom report sections: user JSON computed beside the checks.
//!
//! A section is an async closure returning anything `Serialize`: job-queue
//! counters, stream statistics. Plain sections run under the checks' rules
//! (2 s timeout, cached 1 s, single flight, panics caught); sections that
//! need the caller run for each request under the same timeout. A failing
//! section shows `{"error": ...}` in its place and never changes the
//! status.
//!
//! ```
//! use serde_json::json;
//! use tower_status::StatusLayer;
//!
//! let layer = StatusLayer::new()
//!     .section("jobs", || async { json!({ "total": 100, "failed": 3 }) })
//!     .caller_section("account", |caller: tower_status::auth::Caller| async move {
//!         json!({ "name": caller.identity().map(|i| i.name.clone()) })
//!     });
//! # let _ = layer;
//! ```

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::check::{runtime, BoxFuture, CheckResult, DEFAULT_TIMEOUT};
use crate::guarded::{self, Failure};

/// A section that depends on who is asking.
pub(crate) type CallerSection = Arc<dyn Fn(Caller) -> BoxFuture<'static, Value> + Send + Sync>;

/// Wraps a section closure as a check whose details are the section's JSON.
pub(crate) fn as_check<F, Fut, V>(f: F) -> impl crate::check::Check
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = V> + Send + 'static,
    V: Serialize,
{
    move || {
        let fut = f();
        async move {
            match serde_json::to_value(fut.await) {
                Ok(value) => CheckResult::ok().with_details(value),
                Err(e) => CheckResult::down(format!("section could not be serialized: {e}")),
            }
        }
    }
}

/// Boxes a caller-aware section closure.
pub(crate) fn caller_section<F, Fut, V>(f: F) -> CallerSection
where
    F: Fn(Caller) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = V> + Send + 'static,
    V: Serialize,
{
    Arc::new(move |caller| {
        let fut = f(caller);
        Box::pin(async move {
            serde_json::to_value(fut.await).unwrap_or_else(
                |e| json!({ "error": format!("section could not be serialized: {e}") }),
            )
        })
    })
}

/// The JSON a section's check result stands for.
pub(crate) fn value_of(result: &crate::report::Component) -> Value {
    match (&result.details, &result.error) {
        (Some(v), None) => v.clone(),
        (_, Some(e)) => json!({ "error": e }),
        (None, None) => Value::Null,
    }
}

/// Runs a caller section under the default timeout, with panics caught
/// (off a tokio runtime, on the checks' fallback runtime).
pub(crate) async fn run_caller_section(section: &CallerSection, caller: Caller) -> Value {
    let section = Arc::clone(section);
    // The call itself is guarded too: a section that panics before
    // returning its future is caught.
    let run = guarded::run(async move { section(caller).await }, DEFAULT_TIMEOUT);
    match runtime::in_tokio(run).await {
        Some(Ok(v)) => v,
        Some(Err(Failure::Panicked(_))) => json!({ "error": "section panicked" }),
        Some(Err(timed_out @ Failure::TimedOut(_))) => json!({ "error": timed_out.to_string() }),
        None => json!({ "error": runtime::UNAVAILABLE }),
    }
}
