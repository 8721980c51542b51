//! Health checks: what makes the report's `status` true.
//!
//! A check is anything implementing [`Check`]: an async closure returning a
//! [`CheckResult`], a `Result<(), E: Display>` or a `bool`, or a struct such
//! as [`TcpCheck`]. Each is registered under a name with [`HealthCheck`]
//! settings: component type, criticality, timeout and [`Freshness`].
//!
//! ```
//! use std::time::Duration;
//! use tower_status::check::{CheckResult, Freshness, HealthCheck, TcpCheck};
//! use tower_status::StatusLayer;
//!
//! let layer = StatusLayer::new()
//!     // Defaults: critical, 2 s timeout, result cached for 1 s.
//!     .check(HealthCheck::new("cache", || async { Ok::<_, std::io::Error>(()) }))
//!     .check(
//!         HealthCheck::new("db", TcpCheck::new("127.0.0.1:5432"))
//!             .component_type("datastore")
//!             .timeout(Duration::from_millis(500))
//!             .freshness(Freshness::Background { every: Duration::from_secs(5) }),
//!     )
//!     .check(
//!         HealthCheck::new("search", || async { CheckResult::degraded("index is rebuilding") })
//!             .critical(false),
//!     );
//! # let _ = layer;
//! ```
//!
//! Checks run concurrently, each under its own timeout, and a panicking
//! check is reported unhealthy with its panic message. On-demand checks are
//! single-flight: however many status requests arrive while a check runs,
//! it runs once. Checks run on the caller's tokio runtime, which needs
//! timers enabled (as `#[tokio::main]` provides); a report asked for
//! outside any runtime (`futures::executor::block_on(status.report())`)
//! runs them, and polls background checks, on a runtime of this crate's
//! own: one thread for the whole process, started on first need.

mod runner;
pub(crate) mod runtime;
mod secret;
mod tcp;
mod traffic;

#[cfg(feature = "dns-check")]
mod dns;
#[cfg(feature = "grpc-check")]
mod grpc;
#[cfg(feature = "host-check")]
mod host;
#[cfg(feature = "http-check")]
mod http;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "redis-check")]
mod redis;
#[cfg(any(feature = "postgres-check", feature = "mysql-check"))]
mod sql;
#[cfg(feature = "tls-check")]
mod tls;

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use crate::report::{CheckResult, MAX_ERROR_LEN};

pub(crate) use runner::{Board, Checks, Entry};
pub use secret::redact;
pub use tcp::{InvalidAddr, TcpCheck};
pub use traffic::TrafficRule;

#[cfg(feature = "redis-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-check")))]
pub use self::redis::{RedisCheck, RedisCheckError};
#[cfg(feature = "dns-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "dns-check")))]
pub use dns::DnsCheck;
#[cfg(feature = "grpc-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc-check")))]
pub use grpc::GrpcCheck;
#[cfg(feature = "host-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "host-check")))]
pub use host::{DiskCheck, InvalidShare, MemoryCheck, RuntimeCheck, Share, Threshold};
#[cfg(feature = "http-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-check")))]
pub use http::HttpCheck;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use nats::NatsCheck;
#[cfg(feature = "mysql-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql-check")))]
pub use sql::MySqlCheck;
#[cfg(feature = "postgres-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-check")))]
pub use sql::PostgresCheck;
#[cfg(any(feature = "postgres-check", feature = "mysql-check"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres-check", feature = "mysql-check")))
)]
pub use sql::SqlCheck;
#[cfg(feature = "tls-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls-check")))]
pub use tls::{InvalidTlsTarget, TlsCheck};

/// Values a check may return: converted into a [`CheckResult`].
pub trait IntoCheckResult {
    /// The result.
    fn into_check_result(self) -> CheckResult;
}

impl IntoCheckResult for CheckResult {
    fn into_check_result(self) -> CheckResult {
        self
    }
}

/// `true` is healthy, `false` unhealthy.
impl IntoCheckResult for bool {
    fn into_check_result(self) -> CheckResult {
        if self {
            CheckResult::ok()
        } else {
            CheckResult::down("check failed")
        }
    }
}

/// `Ok(())` is healthy; `Err(e)` is unhealthy with `e` as the message.
impl<E: Display> IntoCheckResult for Result<(), E> {
    fn into_check_result(self) -> CheckResult {
        match self {
            Ok(()) => CheckResult::ok(),
            Err(e) => CheckResult::down(e.to_string()),
        }
    }
}

/// `Ok(result)` as it is; `Err(e)` is unhealthy with `e` as the message.
impl<E: Display> IntoCheckResult for Result<CheckResult, E> {
    fn into_check_result(self) -> CheckResult {
        self.unwrap_or_else(|e| CheckResult::down(e.to_string()))
    }
}

/// A boxed future, as [`Check::check`] returns it.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An asynchronous health check.
///
/// Implemented by async closures returning any [`IntoCheckResult`], and by
/// structs:
///
/// ```
/// use std::future::Future;
/// use std::pin::Pin;
/// use tower_status::check::{Check, CheckResult};
///
/// struct QueueDepth;
///
/// impl Check for QueueDepth {
///     fn check(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
///         Box::pin(async {
///             let depth = 12; // read it from the queue
///             CheckResult::ok().with_observed(depth, "messages")
///         })
///     }
/// }
/// ```
pub trait Check: Send + Sync + 'static {
    /// Runs the check once.
    fn check(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>>;
}

impl<F, Fut> Check for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoCheckResult,
{
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        let fut = self();
        Box::pin(async move { fut.await.into_check_result() })
    }
}

/// When a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Freshness {
    /// When a status request needs it, at most once per `ttl`: results are
    /// cached that long and concurrent requests share one run.
    OnDemand {
        /// How long a result is served before the check runs again.
        ttl: Duration,
    },
    /// Every `every`, from a background task started on first use (needs a
    /// tokio runtime); requests are served the last result.
    Background {
        /// Interval between runs.
        every: Duration,
    },
}

impl Default for Freshness {
    fn default() -> Self {
        Freshness::OnDemand {
            ttl: Duration::from_secs(1),
        }
    }
}

/// A check with its settings, for [`StatusLayer::check`](crate::StatusLayer::check).
#[derive(Clone)]
pub struct HealthCheck {
    pub(crate) name: String,
    pub(crate) check: Arc<dyn Check>,
    pub(crate) component_type: Option<String>,
    pub(crate) critical: bool,
    pub(crate) timeout: Duration,
    pub(crate) freshness: Freshness,
    pub(crate) serve_stale: Duration,
    /// No check runs: the application pushes the component's health.
    pub(crate) pushed: bool,
    pub(crate) damping: Damping,
    /// Background runs start up to this much later than their interval.
    pub(crate) jitter: Duration,
    /// The first background run waits this long.
    pub(crate) initial_delay: Duration,
    /// Components this one needs (names of checks or declared pushed components).
    pub(crate) depends_on: Vec<String>,
}

/// When a check's runs change its reported status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Damping {
    /// Failed runs in a row before it leaves `ok`.
    pub(crate) failure_threshold: u32,
    /// Passed runs in a row before it comes back to `ok`.
    pub(crate) success_threshold: u32,
    /// How long it must have been failing, too, before it leaves `ok`.
    pub(crate) max_time_in_error: Option<Duration>,
}

impl Damping {
    /// Every run shows as it is.
    pub(crate) const NONE: Damping = Damping {
        failure_threshold: 1,
        success_threshold: 1,
        max_time_in_error: None,
    };

    pub(crate) fn is_none(&self) -> bool {
        *self == Self::NONE
    }
}

impl std::fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("component_type", &self.component_type)
            .field("critical", &self.critical)
            .field("timeout", &self.timeout)
            .field("freshness", &self.freshness)
            .field("serve_stale", &self.serve_stale)
            .field("damping", &self.damping)
            .field("jitter", &self.jitter)
            .field("initial_delay", &self.initial_delay)
            .field("depends_on", &self.depends_on)
            .finish_non_exhaustive()
    }
}

/// Default timeout of a check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

impl HealthCheck {
    /// A critical check with a 2 s timeout whose result is cached for 1 s.
    #[must_use]
    pub fn new(name: impl Into<String>, check: impl Check) -> Self {
        Self {
            name: name.into(),
            check: Arc::new(check),
            component_type: None,
            critical: true,
            timeout: DEFAULT_TIMEOUT,
            freshness: Freshness::default(),
            serve_stale: Duration::ZERO,
            pushed: false,
            damping: Damping::NONE,
            jitter: Duration::ZERO,
            initial_delay: Duration::ZERO,
            depends_on: Vec::new(),
        }
    }

    /// A component whose health the application pushes with
    /// [`StatusHandle::set_component`](crate::StatusHandle::set_component)
    /// instead of a check: registered for its settings
    /// ([`component_type`](Self::component_type),
    /// [`critical`](Self::critical)); timeouts and freshness do not apply.
    /// A component pushed without being declared is critical, with no type.
    ///
    /// ```
    /// use tower_status::{check::{CheckResult, HealthCheck}, StatusLayer};
    ///
    /// let status = StatusLayer::new()
    ///     .check(HealthCheck::pushed("broker").component_type("queue").critical(false))
    ///     .build();
    /// status.set_component("broker", CheckResult::down("connection lost"));
    /// ```
    #[must_use]
    pub fn pushed(name: impl Into<String>) -> Self {
        Self {
            pushed: true,
            ..Self::new(name, || async {
                CheckResult::down("pushed components are not checked")
            })
        }
    }

    /// Kind of component (`"datastore"`, `"MJ"`, ...), used to count and
    /// group components by type.
    #[must_use]
    pub fn component_type(mut self, kind: impl Into<String>) -> Self {
        self.component_type = Some(kind.into());
        self
    }

    /// Whether a failure takes the whole service down (`true`, the default)
    /// or only degrades it.
    #[must_use]
    pub fn critical(mut self, critical: bool) -> Self {
        self.critical = critical;
        self
    }

    /// How long one run may take before it is reported unhealthy. Any
    /// non-zero `Duration` will do: one too long to reach means no limit.
    ///
    /// # Panics
    ///
    /// If `timeout` is zero: no run could finish within it.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "HealthCheck::timeout for check `{}` must be greater than zero",
            self.name
        );
        self.timeout = timeout;
        self
    }

    /// When the check runs: on demand with a cache TTL (zero: every
    /// request runs it), or in the background. Any `Duration` will do
    /// otherwise: one too long to reach means "never again".
    ///
    /// # Panics
    ///
    /// If the interval of [`Freshness::Background`] is zero: the check
    /// would never stop running.
    #[must_use]
    pub fn freshness(mut self, freshness: Freshness) -> Self {
        if let Freshness::Background { every } = freshness {
            assert!(
                !every.is_zero(),
                "HealthCheck::freshness for check `{}`: Freshness::Background {{ every }} \
                 must be greater than zero",
                self.name
            );
        }
        self.freshness = freshness;
        self
    }

    /// While a refresh runs, serve the last result if it is at most this
    /// much older than its TTL, instead of waiting for the new one. Any
    /// `Duration` will do: one too long to reach means "whatever its age".
    #[must_use]
    pub fn serve_stale(mut self, bound: Duration) -> Self {
        self.serve_stale = bound;
        self
    }

    /// Failed runs in a row (any status but `ok`) before the component
    /// leaves `ok`, as kubelet's `failureThreshold`; default 1. Until then
    /// it is reported as before, with the run itself under `last_run`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_status::check::{Freshness, HealthCheck, TcpCheck};
    ///
    /// // Down after 3 failed runs a second apart, back after 2 passed ones.
    /// let db = HealthCheck::new("db", TcpCheck::new("127.0.0.1:5432"))
    ///     .freshness(Freshness::Background { every: Duration::from_secs(1) })
    ///     .failure_threshold(3)
    ///     .success_threshold(2);
    /// # let _ = db;
    /// ```
    ///
    /// # Panics
    ///
    /// If `runs` is zero.
    #[must_use]
    pub fn failure_threshold(mut self, runs: u32) -> Self {
        assert!(
            runs > 0,
            "HealthCheck::failure_threshold for check `{}` must be at least 1",
            self.name
        );
        self.damping.failure_threshold = runs;
        self
    }

    /// Passed runs in a row before a failing component is `ok` again;
    /// default 1.
    ///
    /// # Panics
    ///
    /// If `runs` is zero.
    #[must_use]
    pub fn success_threshold(mut self, runs: u32) -> Self {
        assert!(
            runs > 0,
            "HealthCheck::success_threshold for check `{}` must be at least 1",
            self.name
        );
        self.damping.success_threshold = runs;
        self
    }

    /// How long runs must have been failing before the component leaves
    /// `ok`, on top of the [failure threshold](Self::failure_threshold)
    /// (both must be reached, as in Go's `alexliesenfeld/health`): the
    /// time a failure may stay in error unreported. Default: none.
    #[must_use]
    pub fn max_time_in_error(mut self, time: Duration) -> Self {
        self.damping.max_time_in_error = Some(time);
        self
    }

    /// Background runs start up to `jitter` later than their interval (a
    /// random share, drawn for each run), and the first run up to `jitter`
    /// after the [initial delay](Self::initial_delay): a fleet of
    /// instances does not probe a dependency in lockstep. Default: none.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// How long after the layer is first used the first background run
    /// starts; default: at once.
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Components this one needs to work (checks or
    /// [pushed](Self::pushed) components registered on the same layer).
    /// While one of them fails, this component's failure is reported as
    /// blocked by it (`blocked_by`), and the report names only the
    /// components that fail on their own as root causes.
    ///
    /// ```
    /// use tower_status::check::{HealthCheck, TcpCheck};
    /// use tower_status::StatusLayer;
    ///
    /// let layer = StatusLayer::new()
    ///     .check(HealthCheck::new("db", TcpCheck::new("127.0.0.1:5432")))
    ///     .check(HealthCheck::new("search", TcpCheck::new("127.0.0.1:9200")).depends_on(["db"]));
    /// # let _ = layer;
    /// ```
    ///
    /// A dependency on a component that is not registered, or a cycle, is
    /// refused when the layer is built (a panic naming them).
    #[must_use]
    pub fn depends_on<I, S>(mut self, components: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for name in components {
            let name = name.into();
            if !self.depends_on.contains(&name) {
                self.depends_on.push(name);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "HealthCheck::timeout for check `db` must be greater than zero")]
    fn a_zero_timeout_is_refused() {
        let _ = HealthCheck::new("db", || async { true }).timeout(Duration::ZERO);
    }

    #[test]
    #[should_panic(
        expected = "HealthCheck::freshness for check `db`: Freshness::Background { every } must be greater than zero"
    )]
    fn a_zero_background_interval_is_refused() {
        let _ = HealthCheck::new("db", || async { true }).freshness(Freshness::Background {
            every: Duration::ZERO,
        });
    }

    #[test]
    fn every_other_duration_is_accepted() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_secs(1),
            Duration::MAX,
        ] {
            let check = HealthCheck::new("db", || async { true })
                .timeout(d)
                .freshness(Freshness::Background { every: d })
                .serve_stale(d);
            assert_eq!((check.timeout, check.serve_stale), (d, d));
            let check = check.freshness(Freshness::OnDemand {
                ttl: Duration::ZERO,
            });
            assert_eq!(
                check.freshness,
                Freshness::OnDemand {
                    ttl: Duration::ZERO
                }
            );
        }
    }
}
