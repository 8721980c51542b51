//! Consumer signals: what the status endpoint adds to its answers for the
//! load balancers and service registries that read them, beside the status
//! code and `Retry-After`.

use std::time::Duration;

use http::StatusCode;

use crate::report::Status;

/// The header Envoy's active HTTP health checking reads as "degraded".
pub const ENVOY_DEGRADED_HEADER: &str = "x-envoy-degraded";

/// The header Google Cloud's weighted load balancing reads the weight of
/// an endpoint from (an integer, `0..=`[`MAX_WEIGHT`]).
pub const WEIGHT_HEADER: &str = "x-load-balancing-endpoint-weight";

/// The highest weight in [`WEIGHT_HEADER`]: an idle endpoint's.
pub const MAX_WEIGHT: u16 = 1000;

/// An answer of the status endpoint that [`ConsumerSignals`] apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Probe {
    /// The report, at the status path itself (`/status`), in every format.
    Report,
    /// Liveness, `/status/live` (always `ok`).
    Live,
    /// Readiness, `/status/ready`.
    Ready,
    /// One component, `/status/{component}`.
    Component,
}

impl Probe {
    /// Every probe.
    pub const ALL: [Probe; 4] = [Probe::Report, Probe::Live, Probe::Ready, Probe::Component];

    fn index(self) -> usize {
        match self {
            Probe::Report => 0,
            Probe::Live => 1,
            Probe::Ready => 2,
            Probe::Component => 3,
        }
    }
}

/// Signals the status endpoint adds to a probe's answers for the systems
/// that read them, set per [`Probe`] with
/// [`StatusLayer::consumer_signals`](crate::StatusLayer::consumer_signals).
/// By default there are none: every answer is as without them.
///
/// - [`degraded_as_429`](Self::degraded_as_429): a `degraded` answer is
///   `429 Too Many Requests` instead of its configured status (200 by
///   default). Consul's HTTP checks read 2xx as passing, 429 as warning
///   and anything else as critical, so `degraded` becomes Consul's warning.
/// - [`envoy_degraded_header`](Self::envoy_degraded_header): a `degraded`
///   answer carries `x-envoy-degraded: true`; Envoy's active HTTP health
///   checking then marks the host degraded (used only when there are not
///   enough healthy hosts). Envoy expects `200` by default, so leave
///   `degraded_as_429` off on the probe Envoy checks.
/// - [`load_balancing_weight`](Self::load_balancing_weight): every status
///   answer (not the endpoint's errors: 400, 401, 403, 404, 405) carries
///   `x-load-balancing-endpoint-weight`, an integer from 0 to 1000,
///   as Google Cloud's weighted load balancing (`WEIGHTED_MAGLEV`) reads it
///   from a passing (200) health check: new connections go to the
///   endpoints in proportion to their weights. It is 0 while the answer is
///   `down` and while the layer is in maintenance or drains (on every
///   probe, liveness too); otherwise it falls
///   as the wrapped service gets busier or slower (see
///   [`weight_for`](Self::weight_for)).
///
/// `Retry-After` on `503` answers during maintenance is sent whatever the
/// signals.
///
/// ```
/// use std::time::Duration;
/// use tower_status::format::{ConsumerSignals, Probe};
/// use tower_status::StatusLayer;
///
/// let layer = StatusLayer::new()
///     // Consul checks the report: degraded is its warning state.
///     .consumer_signals([Probe::Report], ConsumerSignals::new().degraded_as_429(true))
///     // Envoy and Google Cloud check readiness.
///     .consumer_signals(
///         [Probe::Ready],
///         ConsumerSignals::new()
///             .envoy_degraded_header(true)
///             .load_balancing_weight(true),
///     );
/// # let _ = layer;
///
/// // The weight: 1000 when idle, halved by 10 requests in flight, halved
/// // again by a p90 latency of 100 ms over the last minute.
/// let signals = ConsumerSignals::new().load_balancing_weight(true);
/// assert_eq!(signals.weight_for(0, Duration::ZERO), 1000);
/// assert_eq!(signals.weight_for(10, Duration::ZERO), 500);
/// assert_eq!(signals.weight_for(10, Duration::from_millis(100)), 250);
/// assert!(signals.weight_for(11, Duration::ZERO) < signals.weight_for(10, Duration::ZERO));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsumerSignals {
    pub(crate) degraded_as_429: bool,
    pub(crate) envoy_degraded_header: bool,
    pub(crate) load_balancing_weight: bool,
    /// Requests in flight that halve the weight.
    pub(crate) half_weight_in_flight: u32,
    /// Window p90 latency that halves the weight.
    pub(crate) half_weight_latency: Duration,
}

impl Default for ConsumerSignals {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsumerSignals {
    /// No signal: answers are as without any. The weight, once turned on,
    /// is halved by 10 requests in flight and by a p90 latency of 100 ms.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            degraded_as_429: false,
            envoy_degraded_header: false,
            load_balancing_weight: false,
            half_weight_in_flight: 10,
            half_weight_latency: Duration::from_millis(100),
        }
    }

    /// Answers `degraded` with `429 Too Many Requests` (Consul's warning),
    /// whatever [`StatusLayer::http_status`](crate::StatusLayer::http_status)
    /// or a format says for it. Turn it on only for the probe Consul reads:
    /// other clients take 429 for rate limiting (some retry with backoff),
    /// and Envoy and Google Cloud count it as failing.
    #[must_use]
    pub const fn degraded_as_429(mut self, on: bool) -> Self {
        self.degraded_as_429 = on;
        self
    }

    /// Adds `x-envoy-degraded: true` to `degraded` answers (Envoy's degraded host).
    #[must_use]
    pub const fn envoy_degraded_header(mut self, on: bool) -> Self {
        self.envoy_degraded_header = on;
        self
    }

    /// Adds `x-load-balancing-endpoint-weight` (0 to 1000) to every status
    /// answer: 0 when `down`, in maintenance or draining, else
    /// [`weight_for`](Self::weight_for) the wrapped service's requests in
    /// flight and its p90 latency over the recent window.
    #[must_use]
    pub const fn load_balancing_weight(mut self, on: bool) -> Self {
        self.load_balancing_weight = on;
        self
    }

    /// The load that halves the weight: `in_flight` requests in flight, and
    /// (independently) a p90 latency of `latency`. Defaults: 10 and 100 ms.
    ///
    /// # Panics
    ///
    /// When `in_flight` is 0 or `latency` is zero.
    #[must_use]
    pub const fn weight_halved_at(mut self, in_flight: u32, latency: Duration) -> Self {
        assert!(
            in_flight > 0,
            "ConsumerSignals::weight_halved_at: in_flight must be at least 1"
        );
        assert!(
            !latency.is_zero(),
            "ConsumerSignals::weight_halved_at: latency must be greater than zero"
        );
        self.half_weight_in_flight = in_flight;
        self.half_weight_latency = latency;
        self
    }

    /// The weight of an endpoint that is up and not draining, with
    /// `in_flight` requests in flight in the wrapped service and a p90
    /// latency of `latency` over the recent window (the report's
    /// `requests.in_flight` and `response_time_ms.p90`):
    ///
    /// ```text
    /// weight = round(1000 / ((1 + in_flight / N) × (1 + latency / L)))
    /// ```
    ///
    /// clamped to `1..=1000`, where `N` and `L` are the load that halves
    /// it ([`weight_halved_at`](Self::weight_halved_at)). It never rises
    /// when either input does, and never falls to 0, which is left to mean
    /// "send nothing new" (down, maintenance, draining). Google Cloud
    /// spreads new connections equally when every endpoint reports 0.
    #[must_use]
    pub fn weight_for(&self, in_flight: u64, latency: Duration) -> u16 {
        let busy = 1.0 + in_flight as f64 / f64::from(self.half_weight_in_flight);
        let slow = 1.0 + latency.as_secs_f64() / self.half_weight_latency.as_secs_f64();
        let weight = (f64::from(MAX_WEIGHT) / (busy * slow)).round();
        // NaN cannot occur (both factors are at least 1); clamp keeps 1..=1000.
        weight.clamp(1.0, f64::from(MAX_WEIGHT)) as u16
    }

    /// Whether it adds nothing to any answer.
    pub(crate) fn is_none(&self) -> bool {
        !(self.degraded_as_429 || self.envoy_degraded_header || self.load_balancing_weight)
    }

    /// The HTTP status a probe answers `status` with, `configured` being
    /// what the layer's `http_status` says.
    pub(crate) fn code(&self, status: Status, configured: StatusCode) -> StatusCode {
        if self.degraded_as_429 && status == Status::Degraded {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            configured
        }
    }
}

/// The signals of each probe, in a layer's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SignalsByProbe([ConsumerSignals; 4]);

impl SignalsByProbe {
    pub(crate) fn get(&self, probe: Probe) -> &ConsumerSignals {
        &self.0[probe.index()]
    }

    pub(crate) fn set(&mut self, probe: Probe, signals: ConsumerSignals) {
        self.0[probe.index()] = signals;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_falls_with_load_and_latency_never_to_zero() {
        let s = ConsumerSignals::new();
        assert_eq!(s.weight_for(0, Duration::ZERO), MAX_WEIGHT);
        let latencies = [0u64, 1, 10, 50, 100, 400, 1_000, 60_000, 3_600_000];
        let in_flight = [0u64, 1, 2, 5, 10, 50, 100, 1_000, 100_000, u64::MAX];
        for (i, &n) in in_flight.iter().enumerate() {
            for (j, &ms) in latencies.iter().enumerate() {
                let w = s.weight_for(n, Duration::from_millis(ms));
                assert!((1..=MAX_WEIGHT).contains(&w), "{n} {ms}: {w}");
                if let Some(&more) = in_flight.get(i + 1) {
                    assert!(s.weight_for(more, Duration::from_millis(ms)) <= w);
                }
                if let Some(&slower) = latencies.get(j + 1) {
                    assert!(s.weight_for(n, Duration::from_millis(slower)) <= w);
                }
            }
        }
        let scaled = s.weight_halved_at(100, Duration::from_secs(1));
        assert_eq!(scaled.weight_for(100, Duration::ZERO), 500);
        assert_eq!(scaled.weight_for(0, Duration::from_secs(1)), 500);
    }

    #[test]
    fn only_degraded_becomes_429() {
        let s = ConsumerSignals::new().degraded_as_429(true);
        let configured = StatusCode::OK;
        assert_eq!(
            s.code(Status::Degraded, configured),
            StatusCode::TOO_MANY_REQUESTS
        );
        for status in [Status::Ok, Status::Down, Status::Maintenance] {
            assert_eq!(s.code(status, configured), configured);
        }
        assert_eq!(
            ConsumerSignals::new().code(Status::Degraded, configured),
            configured
        );
        assert!(ConsumerSignals::new().is_none());
        assert!(!s.is_none());
    }

    #[test]
    fn bad_weight_scales_panic_naming_the_setting() {
        for (n, d) in [(0, Duration::from_secs(1)), (1, Duration::ZERO)] {
            let err = std::panic::catch_unwind(|| ConsumerSignals::new().weight_halved_at(n, d))
                .unwrap_err();
            let text = err.downcast_ref::<&str>().copied().unwrap_or_default();
            assert!(text.contains("weight_halved_at"), "{text}");
        }
    }
}
