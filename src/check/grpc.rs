//! [`GrpcCheck`]: `grpc.health.v1.Health/Check` on a tonic `Channel` the
//! application already has (feature `grpc-check`).
//!
//! ```
//! use std::time::Duration;
//! use tonic::transport::Channel;
//! use tower_status::check::{GrpcCheck, HealthCheck};
//! use tower_status::StatusLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The channel the application talks to its upstream with.
//! let channel = Channel::from_static("http://127.0.0.1:50051").connect_lazy();
//! let layer = StatusLayer::new()
//!     // The whole server (service "").
//!     .check(HealthCheck::new("billing", GrpcCheck::new(channel.clone())))
//!     // One of its services, with a shorter deadline.
//!     .check(
//!         HealthCheck::new(
//!             "billing-invoices",
//!             GrpcCheck::new(channel)
//!                 .service("billing.Invoices")
//!                 .timeout(Duration::from_millis(500)),
//!         )
//!         .critical(false),
//!     );
//! # let _ = layer;
//! # }
//! ```
//!
//! A healthy run has the round trip in milliseconds as its observed value
//! and details like `{ "service": "", "serving_status": "SERVING" }`.

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use super::{redact, BoxFuture, Check, CheckResult};

/// The longest deadline sent to the server: `grpc-timeout` has at most 8
/// digits, and nothing needs more than a day.
const MAX_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);

/// Asks a gRPC server's standard health service
/// (`grpc.health.v1.Health/Check`) about itself or one of its services.
///
/// | answer | status |
/// | --- | --- |
/// | `SERVING` | ok |
/// | `NOT_SERVING` | down |
/// | `UNKNOWN`, `SERVICE_UNKNOWN` | degraded |
/// | gRPC `NOT_FOUND` (service not registered) | degraded |
/// | gRPC `UNIMPLEMENTED` (no health service) | down |
/// | transport error, deadline exceeded, any other error | down |
///
/// The request carries the check's timeout (default 1 s) as its deadline
/// (`grpc-timeout`), and the call is bounded by it here too. The observed
/// value is the round trip in milliseconds; the details give the service,
/// its serving status, the gRPC code of an error and, when named with
/// [`endpoint`](Self::endpoint), the server (credentials redacted).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use tower_status::check::GrpcCheck;
///
/// let channel = tonic::transport::Channel::from_static("http://127.0.0.1:50051").connect_lazy();
/// let check = GrpcCheck::new(channel).service("pkg.Service").endpoint("http://127.0.0.1:50051");
/// assert_eq!(check.service_name(), "pkg.Service");
/// # }
/// ```
#[derive(Clone)]
pub struct GrpcCheck {
    channel: Channel,
    service: String,
    timeout: Duration,
    endpoint: Option<String>,
}

impl fmt::Debug for GrpcCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The channel is left out: its `Debug` is tonic's business.
        f.debug_struct("GrpcCheck")
            .field("service", &self.service)
            .field("timeout", &self.timeout)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl GrpcCheck {
    /// Checks the whole server (service `""`) over `channel`, within 1 s.
    #[must_use]
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            service: String::new(),
            timeout: Duration::from_secs(1),
            endpoint: None,
        }
    }

    /// Checks the service with this fully qualified name
    /// (`"package.Service"`) instead of the whole server.
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// The call's deadline, sent to the server and enforced here. Keep it
    /// below the [`HealthCheck`](super::HealthCheck) timeout (2 s by
    /// default) to get this check's own error text.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero (every call would time out).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "GrpcCheck::timeout must be greater than zero"
        );
        self.timeout = timeout;
        self
    }

    /// Names the server in the details and error texts (a channel does not
    /// tell its address); any credentials in it are redacted.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl AsRef<str>) -> Self {
        self.endpoint = Some(redact(endpoint.as_ref()));
        self
    }

    /// The service asked about (`""`: the whole server).
    #[must_use]
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// `the server at X` / `the server` / `service S at X`, for error texts.
    fn target(&self) -> String {
        let at = self
            .endpoint
            .as_deref()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default();
        if self.service.is_empty() {
            format!("the server{at}")
        } else {
            format!("service {}{at}", self.service)
        }
    }

    async fn run(&self) -> CheckResult {
        let mut details = Map::new();
        details.insert("service".into(), self.service.clone().into());
        if let Some(endpoint) = &self.endpoint {
            details.insert("endpoint".into(), endpoint.clone().into());
        }
        let mut request = Request::new(HealthCheckRequest {
            service: self.service.clone(),
        });
        request.set_timeout(self.timeout.min(MAX_DEADLINE));
        let mut client = HealthClient::new(self.channel.clone());
        let started = Instant::now();
        let answer = tokio::time::timeout(self.timeout, client.check(request)).await;
        let rtt_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        let result = match answer {
            Err(_) => CheckResult::down(format!(
                "{} did not answer the health check within {} ms",
                self.target(),
                self.timeout.as_millis()
            )),
            Ok(Err(status)) => {
                let code = status.code();
                details.insert("grpc_code".into(), code_name(code).into());
                // tonic's channel enforces the deadline too: CANCELLED
                // ("Timeout expired") when it is past.
                let late = code == Code::Cancelled && started.elapsed() >= self.timeout;
                self.failed(
                    if late { Code::DeadlineExceeded } else { code },
                    status.message(),
                )
            }
            Ok(Ok(response)) => {
                let raw = response.into_inner().status;
                let serving = ServingStatus::try_from(raw).ok();
                let name = serving.map_or_else(|| format!("{raw}"), |s| s.as_str_name().to_owned());
                details.insert("serving_status".into(), name.clone().into());
                match serving {
                    Some(ServingStatus::Serving) => CheckResult::ok(),
                    Some(ServingStatus::NotServing) => {
                        CheckResult::down(format!("{} is NOT_SERVING", self.target()))
                    }
                    _ => CheckResult::degraded(format!(
                        "{} reports its health as {name}",
                        self.target()
                    )),
                }
                .with_observed(rtt_ms, "ms")
            }
        };
        result.with_details(Value::Object(details))
    }

    /// The result of a call that ended with a gRPC error.
    fn failed(&self, code: Code, message: &str) -> CheckResult {
        let target = self.target();
        // Transport errors may quote what they connected to.
        let message = redact(message);
        match code {
            Code::NotFound => CheckResult::degraded(format!(
                "{target} is not registered with the server's health service (NOT_FOUND)"
            )),
            Code::Unimplemented => CheckResult::down(format!(
                "{target}: the server does not implement grpc.health.v1.Health (UNIMPLEMENTED)"
            )),
            Code::DeadlineExceeded => CheckResult::down(format!(
                "{target} did not answer the health check within {} ms",
                self.timeout.as_millis()
            )),
            Code::Unavailable => {
                CheckResult::down(format!("{target} is unavailable (UNAVAILABLE): {message}"))
            }
            other => CheckResult::down(format!(
                "health check of {target} failed ({}): {message}",
                code_name(other)
            )),
        }
    }
}

/// The canonical name of a gRPC status code, as in the gRPC spec.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Check for GrpcCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> GrpcCheck {
        GrpcCheck::new(Channel::from_static("http://127.0.0.1:1").connect_lazy())
    }

    #[tokio::test]
    async fn codes_map_to_statuses() {
        let c = check().service("pkg.Svc");
        let r = c.failed(Code::NotFound, "");
        assert_eq!(r.status, crate::Status::Degraded);
        assert_eq!(
            r.error.as_deref(),
            Some("service pkg.Svc is not registered with the server's health service (NOT_FOUND)")
        );
        let r = c.failed(Code::Unimplemented, "");
        assert_eq!(r.status, crate::Status::Down);
        assert!(r
            .error
            .unwrap()
            .contains("does not implement grpc.health.v1.Health"));
        let r = check()
            .endpoint("http://u:s3cret@h:1")
            .failed(Code::Unavailable, "connect to http://u:s3cret@h:1 refused");
        assert_eq!(r.status, crate::Status::Down);
        let error = r.error.unwrap();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(
            error.starts_with("the server at http://***@h:1 is unavailable"),
            "{error}"
        );
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
    }

    #[tokio::test]
    async fn debug_hides_credentials() {
        let c = check().endpoint("http://u:s3cret@h:1");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***@h:1"),
            "{shown}"
        );
    }
}
