//! The gRPC health bridge (feature `grpc`): keeps a `tonic-health`
//! reporter in step with the status, so `grpc.health.v1.Health/Check` and
//! `Watch` answer what `/status` answers.
//!
//! A [`HealthBridge`] publishes, on every status change:
//!
//! - the overall service (`""`, and every [`overall_as`](HealthBridge::overall_as)
//!   name): `SERVING` exactly when `/status` answers with a 2xx (by default:
//!   ok and degraded);
//! - every component under its own name, `SERVING` unless it is down (a
//!   component that disappears is cleared); turn this off with
//!   [`publish_components(false)`](HealthBridge::publish_components);
//! - every mapped service ([`service`](HealthBridge::service)), `SERVING`
//!   when each of the components it lists is reported and not down.
//!
//! While the service is draining
//! ([`StatusHandle::start_draining`]), every one of them is `NOT_SERVING`
//! (from the next evaluation of the status, every
//! [`watch_interval`](crate::StatusLayer::watch_interval)), so
//! clients that check a particular gRPC service stop sending to it too, not
//! only those that check `""`; after
//! [`stop_draining`](StatusHandle::stop_draining) each goes back to what
//! its status says.
//!
//! tonic-health 0.14 serves only `Check` and `Watch`, not the health `List`
//! RPC: to see every service the bridge publishes, `Check` each name, or
//! read the components of `/status` (or [`StatusHandle::report`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_status::{check::{HealthCheck, TcpCheck}, grpc::HealthBridge, StatusLayer};
//!
//! let status = StatusLayer::new()
//!     .check(HealthCheck::new("db", TcpCheck::new("127.0.0.1:5432")))
//!     .check(HealthCheck::new("search", TcpCheck::new("127.0.0.1:9200")).critical(false))
//!     .build();
//! let (reporter, health_service) = tonic_health::server::health_reporter();
//! HealthBridge::new(reporter)
//!     .overall_as("shop.Orders") // follows the overall status, like ""
//!     .service("shop.Search", ["search", "db"]) // needs both components
//!     .spawn(&status);
//!
//! // On shutdown: "", "shop.Orders", "shop.Search", "db" and "search" all
//! // answer NOT_SERVING while the server finishes its calls.
//! let drain = {
//!     let status = status.clone();
//!     async move {
//!         tokio::signal::ctrl_c().await.ok();
//!         status.start_draining();
//!         tokio::time::sleep(std::time::Duration::from_secs(5)).await;
//!     }
//! };
//! tonic::transport::Server::builder()
//!     .accept_http1(true)
//!     .layer(status)
//!     .add_service(health_service)
//!     .serve_with_shutdown("127.0.0.1:50051".parse()?, drain)
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
/// `tonic-health` reporter; see the [module docs](self) for what each
/// service answers.
///
/// Each gRPC service name has one meaning: the last of
/// [`overall_as`](Self::overall_as) and [`service`](Self::service) that
/// names it wins, and a name registered either way hides a component of
/// the same name. The services the bridge publishes are its own: setting
/// them on the reporter elsewhere is overwritten at the next change.
#[derive(Debug)]
pub struct HealthBridge {
    reporter: HealthReporter,
    /// The registered gRPC service names, each once, in registration order.
    services: Vec<(String, Source)>,
    publish_components: bool,
}

/// What a registered gRPC service follows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The overall status, as `/status` answers it.
    Overall,
    /// These components: serving when each is reported and none is down.
    Components(Vec<String>),
}

impl HealthBridge {
    /// A bridge that publishes the overall status as the server's (`""`),
    /// and every component under its own name.
    #[must_use]
    pub fn new(reporter: HealthReporter) -> Self {
        Self {
            reporter,
            services: vec![(String::new(), Source::Overall)],
            publish_components: true,
        }
    }

    /// Also publishes the overall status under `service` (a gRPC service
    /// name such as `"my.package.Orders"`).
    #[must_use]
    pub fn overall_as(self, service: impl Into<String>) -> Self {
        self.register(service.into(), Source::Overall)
    }

    /// Publishes `service` (a gRPC service name such as `"shop.Search"`,
    /// or `FooServer::<F>::NAME` from tonic's `NamedService`) as
    /// `SERVING` when each of `components` is reported and none of them is
    /// down (degraded serves), `NOT_SERVING` otherwise.
    ///
    /// It does not follow the overall status: a critical component it does
    /// not list leaves it `SERVING` (that is what the mapping is for; list
    /// the component to make it count). The service-wide states do stop
    /// it: it is `NOT_SERVING` while the service is draining, and in
    /// maintenance when `/status` answers maintenance with an error (the
    /// default). A listed component the report does not have (a typo, or a
    /// pushed component not pushed yet) keeps it `NOT_SERVING`. With no
    /// components, it is `SERVING` except in those service-wide states:
    /// the way to have a service the application serves drained with the
    /// rest.
    ///
    /// ```
    /// use tower_status::grpc::HealthBridge;
    ///
    /// let (reporter, _health_service) = tonic_health::server::health_reporter();
    /// let bridge = HealthBridge::new(reporter)
    ///     .service("shop.Search", ["search", "db"])
    ///     .service("shop.Cart", ["db"])
    ///     .service("shop.Static", [] as [&str; 0]);
    /// # let _ = bridge;
    /// ```
    #[must_use]
    pub fn service<I>(self, service: impl Into<String>, components: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let components = components.into_iter().map(Into::into).collect();
        self.register(service.into(), Source::Components(components))
    }

    /// Whether every component is also published under its own name
    /// (default: `true`). With `false`, only `""`, the
    /// [`overall_as`](Self::overall_as) names and the mapped
    /// [`service`](Self::service)s are published.
    #[must_use]
    pub fn publish_components(mut self, publish: bool) -> Self {
        self.publish_components = publish;
        self
    }

    fn register(mut self, name: String, source: Source) -> Self {
        self.services.retain(|(n, _)| *n != name);
        self.services.push((name, source));
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
            let wanted = self.wanted(&change, &codes);
            for (name, status) in &wanted {
                if published.get(name) != Some(status) {
                    self.reporter.set_service_status(name, *status).await;
                }
            }
            for name in published.keys().filter(|n| !wanted.contains_key(*n)) {
                self.reporter.clear_service_status(name).await;
            }
            published = wanted;
        }
    }

    /// What every published service should answer for `change`.
    fn wanted(
        &self,
        change: &StatusChange,
        codes: &OverallCodes,
    ) -> BTreeMap<String, ServingStatus> {
        let mut wanted: BTreeMap<String, ServingStatus> = BTreeMap::new();
        if self.publish_components {
            for (name, status) in &change.components {
                wanted.insert(name.clone(), serving(*status != Status::Down));
            }
        }
        let overall = codes.serving(change.status);
        let stopped = change.status == Status::Maintenance && !overall;
        for (name, source) in &self.services {
            let up = match source {
                Source::Overall => overall,
                Source::Components(needed) => {
                    !stopped
                        && needed
                            .iter()
                            .all(|c| change.components.get(c).is_some_and(|s| *s != Status::Down))
                }
            };
            wanted.insert(name.clone(), serving(up));
        }
        if change.draining {
            for status in wanted.values_mut() {
                *status = ServingStatus::NotServing;
            }
        }
        wanted
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

#[cfg(test)]
mod tests {
    use super::*;

    use ServingStatus::{NotServing, Serving};

    /// The defaults: ok and degraded 2xx, down and maintenance 503.
    const DEFAULT_CODES: OverallCodes = OverallCodes([true, true, false, false]);

    fn change(status: Status, components: &[(&str, Status)], draining: bool) -> StatusChange {
        StatusChange {
            status,
            components: components
                .iter()
                .map(|(n, s)| ((*n).to_owned(), *s))
                .collect(),
            draining,
            transitions: Vec::new(),
        }
    }

    fn bridge() -> HealthBridge {
        HealthBridge::new(HealthReporter::new())
    }

    fn wanted(bridge: &HealthBridge, change: &StatusChange) -> Vec<(String, ServingStatus)> {
        bridge.wanted(change, &DEFAULT_CODES).into_iter().collect()
    }

    fn list(services: &[(&str, ServingStatus)]) -> Vec<(String, ServingStatus)> {
        services
            .iter()
            .map(|(n, s)| ((*n).to_owned(), *s))
            .collect()
    }

    #[test]
    fn default_publishes_overall_and_components() {
        let c = change(
            Status::Degraded,
            &[("db", Status::Ok), ("cache", Status::Down)],
            false,
        );
        assert_eq!(
            wanted(&bridge(), &c),
            list(&[("", Serving), ("cache", NotServing), ("db", Serving)])
        );
    }

    #[test]
    fn a_mapped_service_needs_each_listed_component() {
        let b = bridge()
            .service("shop.Search", ["search", "db"])
            .service("shop.Cart", ["db"])
            .service("shop.Ghost", ["missing"])
            .service("shop.Static", [] as [&str; 0]);
        let c = change(
            Status::Down,
            &[("db", Status::Degraded), ("search", Status::Down)],
            false,
        );
        assert_eq!(
            wanted(&b, &c),
            list(&[
                ("", NotServing),
                ("db", Serving),
                ("search", NotServing),
                ("shop.Cart", Serving),
                ("shop.Ghost", NotServing),
                ("shop.Search", NotServing),
                ("shop.Static", Serving),
            ])
        );
    }

    #[test]
    fn draining_stops_every_service() {
        let b = bridge()
            .overall_as("shop.Orders")
            .service("shop.Search", ["db"])
            .service("shop.Static", [] as [&str; 0]);
        let c = change(Status::Ok, &[("db", Status::Ok)], true);
        let got = wanted(&b, &c);
        assert_eq!(got.len(), 5);
        assert!(got.iter().all(|(_, s)| *s == NotServing), "{got:?}");
    }

    #[test]
    fn maintenance_stops_mapped_services_when_it_answers_an_error() {
        let b = bridge()
            .service("shop.Search", ["db"])
            .publish_components(false);
        let c = change(Status::Maintenance, &[("db", Status::Ok)], false);
        assert_eq!(
            wanted(&b, &c),
            list(&[("", NotServing), ("shop.Search", NotServing)])
        );
        // Maintenance answered with a 200: everything serves.
        let codes = OverallCodes([true, true, false, true]);
        assert!(b.wanted(&c, &codes).values().all(|s| *s == Serving));
    }

    #[test]
    fn the_last_registration_of_a_name_wins_and_hides_a_component() {
        let b = bridge()
            .service("db", [] as [&str; 0])
            .overall_as("shop.X")
            .service("shop.X", ["db"])
            .service("", ["cache"]);
        let c = change(
            Status::Down,
            &[("db", Status::Down), ("cache", Status::Ok)],
            false,
        );
        assert_eq!(
            wanted(&b, &c),
            list(&[
                ("", Serving),
                ("cache", Serving),
                ("db", Serving),
                ("shop.X", NotServing),
            ])
        );
    }
}
