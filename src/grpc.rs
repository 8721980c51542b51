//! The gRPC health bridge (feature `grpc`): keeps a `tonic-health`
//! reporter in step with the status, so `grpc.health.v1.Health/Check` and
//! `Watch` answer what `/status` answers.
//!
//! The overall service (`""`) is `SERVING` exactly when `/status` answers
//! with a 2xx (by default: ok and degraded); every component is published
//! under its own name, `SERVING` unless it is down. A component that
//! disappears is cleared.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_status::{check::HealthCheck, grpc::HealthBridge, StatusLayer};
//!
//! let status = StatusLayer::new().check(HealthCheck::new("db", || async { true })).build();
//! let (reporter, health_service) = tonic_health::server::health_reporter();
//! HealthBridge::new(reporter).spawn(&status);
//! tonic::transport::Server::builder()
//!     .accept_http1(true)
//!     .layer(status)
//!     .add_service(health_service)
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::handle::StatusHandle;
use crate::report::Status;
use crate::state::{StatusChange, StatusWatch};

/// Publishes the status of a built layer ([`StatusHandle`]) to a
/// `tonic-health` reporter.
#[derive(Debug)]
pub struct HealthBridge {
    reporter: HealthReporter,
    overall: Vec<String>,
}

impl HealthBridge {
    /// A bridge that publishes the overall status as the server's (`""`).
    #[must_use]
    pub fn new(reporter: HealthReporter) -> Self {
        Self {
            reporter,
            overall: vec![String::new()],
        }
    }

    /// Also publishes the overall status under `service` (a gRPC service
    /// name such as `"my.package.Orders"`).
    #[must_use]
    pub fn overall_as(mut self, service: impl Into<String>) -> Self {
        self.overall.push(service.into());
        self
    }

    /// Runs the bridge in a task of the current tokio runtime; it ends
    /// when the layer is gone.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does); use
    /// [`run`](Self::run) to drive it on another executor.
    pub fn spawn(self, status: &StatusHandle) {
        let watch = status.subscribe();
        let overall_code = OverallCodes::of(status);
        tokio::spawn(self.run_with(watch, overall_code));
    }

    /// Runs the bridge until the layer is gone.
    pub async fn run(self, status: &StatusHandle) {
        let watch = status.subscribe();
        let overall_code = OverallCodes::of(status);
        self.run_with(watch, overall_code).await;
    }

    async fn run_with(mut self, mut watch: StatusWatch, codes: OverallCodes) {
        // What each service was last set to: Watch streams see changes only.
        let mut published: BTreeMap<String, ServingStatus> = BTreeMap::new();
        while let Some(change) = watch.changed().await {
            self.publish(&change, &codes, &mut published).await;
        }
    }

    async fn publish(
        &mut self,
        change: &StatusChange,
        codes: &OverallCodes,
        published: &mut BTreeMap<String, ServingStatus>,
    ) {
        let overall = serving(codes.serving(change.status));
        let mut wanted: BTreeMap<String, ServingStatus> = change
            .components
            .iter()
            .map(|(name, status)| (name.clone(), serving(*status != Status::Down)))
            .collect();
        // The overall names win over a component of the same name.
        for service in &self.overall {
            wanted.insert(service.clone(), overall);
        }
        for (name, status) in &wanted {
            if published.get(name) != Some(status) {
                self.reporter.set_service_status(name, *status).await;
            }
        }
        for name in published.keys().filter(|n| !wanted.contains_key(*n)) {
            self.reporter.clear_service_status(name).await;
        }
        *published = wanted;
    }
}

fn serving(up: bool) -> ServingStatus {
    if up {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Which overall statuses `/status` answers with a 2xx.
struct OverallCodes([bool; 4]);

impl OverallCodes {
    fn of(status: &StatusHandle) -> Self {
        let config = &status.shared().config;
        Self(
            [
                Status::Ok,
                Status::Degraded,
                Status::Down,
                Status::Maintenance,
            ]
            .map(|s| config.code(s).is_success()),
        )
    }

    fn serving(&self, status: Status) -> bool {
        self.0[status as usize]
    }
}
