//! [`TrafficRule`]: health derived from the wrapped service's own traffic.

use std::time::Duration;

use crate::report::{Latency, Status, Traffic};

/// A rule on the recent window's traffic; when it holds, the `traffic`
/// component takes the rule's status. Rules apply only once the window has
/// at least `min_requests` requests (default 20), so one failure in a quiet
/// minute is not a 100% error rate.
///
/// ```
/// use std::time::Duration;
/// use tower_status::check::TrafficRule;
/// use tower_status::{StatusLayer, Status};
///
/// let layer = StatusLayer::new()
///     .traffic_rule(TrafficRule::error_rate_above(0.05, Status::Degraded))
///     .traffic_rule(TrafficRule::error_rate_above(0.5, Status::Down))
///     .traffic_rule(TrafficRule::p99_above(Duration::from_millis(800), Status::Degraded).min_requests(100));
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrafficRule {
    kind: Kind,
    status: Status,
    min_requests: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    ErrorRateAbove(f64),
    P99Above(Duration),
}

impl TrafficRule {
    /// Holds when the share of errors (0 to 1) in the window exceeds `rate`.
    #[must_use]
    pub fn error_rate_above(rate: f64, status: Status) -> Self {
        Self::new(Kind::ErrorRateAbove(rate), status)
    }

    /// Holds when the window's 99th percentile latency exceeds `latency`.
    #[must_use]
    pub fn p99_above(latency: Duration, status: Status) -> Self {
        Self::new(Kind::P99Above(latency), status)
    }

    fn new(kind: Kind, status: Status) -> Self {
        Self {
            kind,
            status,
            min_requests: 20,
        }
    }

    /// Requests the window must hold before the rule applies.
    #[must_use]
    pub fn min_requests(mut self, n: u64) -> Self {
        self.min_requests = n;
        self
    }

    /// The status and reason when the rule holds for this window.
    pub(crate) fn evaluate(
        &self,
        traffic: &Traffic,
        latency: &Latency,
    ) -> Option<(Status, String)> {
        if traffic.window_total < self.min_requests {
            return None;
        }
        let window = traffic.window_seconds.round();
        match self.kind {
            Kind::ErrorRateAbove(limit) if traffic.error_rate > limit => Some((
                self.status,
                format!(
                    "error rate {:.1}% over the last {window} s is above {:.1}%",
                    traffic.error_rate * 100.0,
                    limit * 100.0
                ),
            )),
            Kind::P99Above(limit) if latency.p99 > limit.as_secs_f64() * 1000.0 => Some((
                self.status,
                format!(
                    "p99 latency {} ms over the last {window} s is above {} ms",
                    latency.p99,
                    limit.as_millis()
                ),
            )),
            _ => None,
        }
    }
}
