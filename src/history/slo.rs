//! Service level objectives on the wrapped service's traffic, read from
//! the history.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::ring::{History, SLOTS};
use crate::report::Status;

/// Burn rate above which, over both the last hour and the last 5 minutes,
/// the budget burns fast (2 % of a 30-day budget in an hour).
pub(crate) const FAST_BURN: f64 = 14.4;
/// Burn rate above which, over both the last 6 hours and the last 30
/// minutes, the budget burns slowly (5 % of a 30-day budget in 6 hours).
pub(crate) const SLOW_BURN: f64 = 6.0;

/// The windows burn rates are read over: 5 minutes, 30 minutes, 1 hour, 6 hours.
pub(crate) const WINDOWS: [Duration; 4] = [
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(6 * 3600),
];

/// The span of the error budget: the whole history, a day.
pub(crate) const BUDGET_SPAN: Duration = Duration::from_secs(SLOTS as u64 * 60);

/// A service level objective on the wrapped service's own requests: the
/// share of them that must be good.
///
/// ```
/// use std::time::Duration;
/// use tower_status::history::Objective;
///
/// // 99.9 % of requests without error.
/// let availability = Objective::availability(0.999);
/// // 99 % of requests answered within 300 ms.
/// let latency = Objective::latency(Duration::from_millis(300), 0.99);
/// assert_eq!((availability.name(), latency.name()), ("availability", "latency"));
/// assert_eq!(latency.target(), 0.99);
/// ```
///
/// Minutes without requests count for nothing: an idle service neither
/// spends nor earns budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    name: String,
    target: f64,
    /// `Some` for a latency objective.
    threshold: Option<Duration>,
    /// The health of the `slo.NAME` component on a fast burn (`None`: the
    /// objective is only reported).
    on_fast_burn: Option<Status>,
}

impl Objective {
    /// Availability: the share `target` of requests must be without error
    /// (an error as the report counts them: 5xx, a service or body error,
    /// a non-zero `grpc-status`; an aborted request is not one). Named
    /// `availability`.
    ///
    /// # Panics
    ///
    /// If `target` is not strictly between 0 and 1.
    #[must_use]
    pub fn availability(target: f64) -> Self {
        Self::new("availability", target, None)
    }

    /// Latency: the share `target` of requests must take at most
    /// `threshold`, from the call of the service until its response body
    /// ended (aborted requests until they were dropped). Named `latency`.
    ///
    /// Requests are counted from the recorder's histogram buckets lying
    /// wholly at or below `threshold`: requests up to about 6 % below it
    /// may share a bucket with slower ones and count as slow, never the
    /// other way round.
    ///
    /// # Panics
    ///
    /// If `target` is not strictly between 0 and 1, or `threshold` is zero.
    #[must_use]
    pub fn latency(threshold: Duration, target: f64) -> Self {
        assert!(
            !threshold.is_zero(),
            "a latency objective needs a threshold above zero"
        );
        Self::new("latency", target, Some(threshold))
    }

    fn new(name: &str, target: f64, threshold: Option<Duration>) -> Self {
        assert!(
            target > 0.0 && target < 1.0,
            "an objective's target is a share strictly between 0 and 1, not {target}"
        );
        Self {
            name: name.to_owned(),
            target,
            threshold,
            on_fast_burn: None,
        }
    }

    /// Lets the objective drive health: while its error budget burns fast
    /// (above 14.4x over both the last hour and the last 5 minutes), the
    /// report has a component `slo.NAME` with `status` (`down` takes the
    /// service down, `degraded` degrades it), `ok` otherwise. Without it
    /// the objective is only reported.
    ///
    /// ```
    /// use tower_status::{history::Objective, Status};
    ///
    /// let availability = Objective::availability(0.999).on_fast_burn(Status::Down);
    /// # let _ = availability;
    /// ```
    #[must_use]
    pub fn on_fast_burn(mut self, status: Status) -> Self {
        self.on_fast_burn = Some(status);
        self
    }

    /// The health it drives on a fast burn, when it drives any.
    pub(crate) fn fast_burn_status(&self) -> Option<Status> {
        self.on_fast_burn
    }

    /// Names the objective in reports.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The objective's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The share of requests that must be good.
    #[must_use]
    pub fn target(&self) -> f64 {
        self.target
    }

    /// The threshold of a latency objective; `None` for availability.
    #[must_use]
    pub fn latency_threshold(&self) -> Option<Duration> {
        self.threshold
    }

    /// Bad and counted requests over the `window` ending at `now`; `None`
    /// for a latency objective whose threshold the history does not count.
    fn events(&self, history: &History, now: SystemTime, window: Duration) -> Option<(u64, u64)> {
        let sums = history.sums(now, window);
        match self.threshold {
            None => Some((sums.errors.min(sums.requests), sums.requests)),
            Some(t) if history.settings().latency_threshold == Some(t) => {
                Some((sums.timed.saturating_sub(sums.fast), sums.timed))
            }
            Some(_) => None,
        }
    }

    /// How fast the budget burns over the `window` ending at `now`: the
    /// share of bad requests over the share allowed (`1 - target`). `None`
    /// without requests in the window.
    pub(crate) fn burn_rate(
        &self,
        history: &History,
        now: SystemTime,
        window: Duration,
    ) -> Option<f64> {
        let (bad, valid) = self.events(history, now, window)?;
        (valid > 0).then(|| bad as f64 / valid as f64 / (1.0 - self.target))
    }

    /// The share of the error budget left over the history's span (the
    /// last day): 1 untouched, 0 spent, below 0 overspent. `None` without
    /// requests in the span.
    pub(crate) fn budget_left(&self, history: &History, now: SystemTime) -> Option<f64> {
        self.burn_rate(history, now, BUDGET_SPAN)
            .map(|burn| 1.0 - burn)
    }

    /// The objective's report at `now`.
    pub(crate) fn report(&self, history: &History, now: SystemTime) -> SloReport {
        let (bad, valid) = self.events(history, now, BUDGET_SPAN).unwrap_or_default();
        let [five_minutes, thirty_minutes, one_hour, six_hours] =
            WINDOWS.map(|w| self.burn_rate(history, now, w));
        let above = |rate: Option<f64>, limit: f64| rate.is_some_and(|r| r > limit);
        SloReport {
            name: self.name.clone(),
            target: self.target,
            latency_threshold_ms: self.threshold.map(|t| t.as_secs_f64() * 1000.0),
            requests: valid,
            bad_requests: bad,
            budget_left: self.budget_left(history, now),
            fast_burn: above(one_hour, FAST_BURN) && above(five_minutes, FAST_BURN),
            slow_burn: above(six_hours, SLOW_BURN) && above(thirty_minutes, SLOW_BURN),
            burn_rates: BurnRates {
                five_minutes,
                thirty_minutes,
                one_hour,
                six_hours,
            },
        }
    }
}

/// How a service level objective stands: its error budget over the last
/// day and how fast it burns.
///
/// ```
/// use tower_status::history::SloReport;
///
/// let json = r#"{"name":"availability","target":0.999,"requests":1440000,"bad_requests":28800,
///   "budget_left":-19.0,"burn_rates":{"5m":20.0,"30m":20.0,"1h":20.0,"6h":20.0},
///   "fast_burn":true,"slow_burn":true}"#;
/// let slo: SloReport = serde_json::from_str(json).unwrap();
/// assert!(slo.fast_burn);
/// assert_eq!(slo.burn_rates.one_hour, Some(20.0));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct SloReport {
    /// The objective's name.
    pub name: String,
    /// The share of requests that must be good, 0 to 1.
    pub target: f64,
    /// A latency objective's threshold, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_threshold_ms: Option<f64>,
    /// Requests counted over the last day (minutes without a latency
    /// figure are left out of a latency objective).
    pub requests: u64,
    /// Those that missed the objective.
    pub bad_requests: u64,
    /// The share of the error budget (`1 - target` of the requests) left
    /// over the last day: 1 untouched, 0 spent, below 0 overspent; absent
    /// without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_left: Option<f64>,
    /// Burn rates over the alerting windows.
    pub burn_rates: BurnRates,
    /// The budget burns fast: above 14.4 over both the last hour and the
    /// last 5 minutes.
    pub fast_burn: bool,
    /// The budget burns slowly: above 6 over both the last 6 hours and the
    /// last 30 minutes.
    pub slow_burn: bool,
}

/// Burn rates of an objective over the windows of multiwindow alerts: the
/// share of bad requests over the share allowed (1 spends the budget
/// exactly in its period). Absent for a window without requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct BurnRates {
    /// Over the last 5 minutes.
    #[serde(rename = "5m", default, skip_serializing_if = "Option::is_none")]
    pub five_minutes: Option<f64>,
    /// Over the last 30 minutes.
    #[serde(rename = "30m", default, skip_serializing_if = "Option::is_none")]
    pub thirty_minutes: Option<f64>,
    /// Over the last hour.
    #[serde(rename = "1h", default, skip_serializing_if = "Option::is_none")]
    pub one_hour: Option<f64>,
    /// Over the last 6 hours.
    #[serde(rename = "6h", default, skip_serializing_if = "Option::is_none")]
    pub six_hours: Option<f64>,
}

#[cfg(test)]
mod tests {
    use std::ops::Range;

    use super::*;
    use crate::history::ring::Settings;
    use crate::history::testing::{at, FakeRecorder};

    /// Books, once a minute, what `minute` adds to the recorder.
    fn run(
        history: &mut History,
        rec: &mut FakeRecorder,
        minutes: Range<u64>,
        traffic: impl Fn(&mut FakeRecorder),
    ) {
        for minute in minutes {
            traffic(rec);
            history.record_traffic(at(minute, 30), rec.snapshot());
        }
    }

    fn close(actual: Option<f64>, expected: f64) -> bool {
        actual.is_some_and(|a| (a - expected).abs() < 1e-9 * expected.abs().max(1.0))
    }

    macro_rules! assert_close {
        ($actual:expr, $expected:expr) => {
            let (actual, expected) = ($actual, $expected);
            assert!(close(actual, expected), "{actual:?} is not {expected}");
        };
    }

    fn settings() -> Settings {
        Settings {
            latency_threshold: Some(Duration::from_millis(300)),
        }
    }

    #[test]
    fn two_percent_errors_burn_a_999_budget_twenty_times_over() {
        let mut history = History::new(settings());
        let mut rec = FakeRecorder::new();
        run(&mut history, &mut rec, 0..1450, |r| {
            r.requests(980, 10.0, false).requests(20, 10.0, true);
        });
        let now = at(1449, 59);
        let slo = Objective::availability(0.999);
        for window in WINDOWS {
            assert_close!(slo.burn_rate(&history, now, window), 20.0);
        }
        // The day's budget is spent 20 times: 19 budgets over.
        assert_close!(slo.budget_left(&history, now), -19.0);
        let report = slo.report(&history, now);
        assert_eq!((report.requests, report.bad_requests), (1_440_000, 28_800));
        assert!(report.fast_burn && report.slow_burn);
        assert_close!(report.burn_rates.six_hours, 20.0);
        assert_eq!(report.latency_threshold_ms, None);

        // Every request took 10 ms: the latency budget is untouched.
        let fast = Objective::latency(Duration::from_millis(300), 0.99);
        let report = fast.report(&history, now);
        assert_eq!(report.budget_left, Some(1.0));
        assert_eq!(report.burn_rates.five_minutes, Some(0.0));
        assert!(!report.fast_burn && !report.slow_burn);
        assert_eq!(report.latency_threshold_ms, Some(300.0));
    }

    #[test]
    fn a_spike_burns_fast_and_a_steady_leak_slowly() {
        let mut history = History::new(settings());
        let mut rec = FakeRecorder::new();
        let clean = |r: &mut FakeRecorder| {
            r.requests(1000, 10.0, false);
        };
        // Six hours clean, then ten minutes with 10 % errors.
        run(&mut history, &mut rec, 0..360, clean);
        run(&mut history, &mut rec, 360..370, |r| {
            r.requests(900, 10.0, false).requests(100, 10.0, true);
        });
        let slo = Objective::availability(0.999);
        let now = at(369, 59);
        let r = slo.report(&history, now);
        // 5 m: 500 bad of 5 000 = 10 %, over 0.1 % allowed.
        assert_close!(r.burn_rates.five_minutes, 100.0);
        // 30 m: 1 000 of 30 000.
        assert_close!(r.burn_rates.thirty_minutes, 1000.0 / 30.0);
        // 1 h: 1 000 of 60 000.
        assert_close!(r.burn_rates.one_hour, 1000.0 / 60.0);
        // 6 h: 1 000 of 360 000.
        assert_close!(r.burn_rates.six_hours, 1000.0 / 360.0);
        assert!(r.fast_burn, "1 h and 5 m both above 14.4");
        assert!(!r.slow_burn, "6 h below 6");
        // The day so far: 370 minutes, 1 000 bad of 370 000.
        assert_close!(r.budget_left, 1.0 - 1000.0 / 370.0);

        // Ten clean minutes later the last 5 minutes are fine: no fast
        // burn, though the last hour still burns at 16.7.
        run(&mut history, &mut rec, 370..380, clean);
        let r = slo.report(&history, at(379, 59));
        assert_eq!(r.burn_rates.five_minutes, Some(0.0));
        assert_close!(r.burn_rates.one_hour, 1000.0 / 60.0);
        assert!(!r.fast_burn && !r.slow_burn);

        // A steady 1 % leak for six hours: burn rate 10, slow not fast.
        let mut history = History::new(settings());
        run(&mut history, &mut FakeRecorder::new(), 0..360, |r| {
            r.requests(990, 10.0, false).requests(10, 10.0, true);
        });
        let r = slo.report(&history, at(359, 59));
        for rate in [
            r.burn_rates.five_minutes,
            r.burn_rates.thirty_minutes,
            r.burn_rates.one_hour,
            r.burn_rates.six_hours,
        ] {
            assert_close!(rate, 10.0);
        }
        assert!(r.slow_burn && !r.fast_burn);
    }

    #[test]
    fn minutes_without_requests_count_for_nothing() {
        let slo = Objective::availability(0.999);
        let empty = History::new(settings());
        let r = slo.report(&empty, at(100, 0));
        assert_eq!(r.budget_left, None);
        assert_eq!(r.burn_rates, BurnRates::default());
        assert_eq!((r.requests, r.fast_burn, r.slow_burn), (0, false, false));

        // Ten busy minutes at 2 % errors, then an idle hour and a half.
        let mut history = History::new(settings());
        run(&mut history, &mut FakeRecorder::new(), 0..10, |r| {
            r.requests(980, 10.0, false).requests(20, 10.0, true);
        });
        let now = at(100, 0);
        let r = slo.report(&history, now);
        assert_eq!(r.burn_rates.five_minutes, None);
        assert_eq!(r.burn_rates.thirty_minutes, None);
        assert_eq!(r.burn_rates.one_hour, None);
        // The idle minutes do not dilute the busy ones.
        assert_close!(r.burn_rates.six_hours, 20.0);
        assert_close!(r.budget_left, -19.0);
        assert!(!r.fast_burn && !r.slow_burn);
    }

    #[test]
    fn latency_counts_requests_over_the_threshold() {
        let mut history = History::new(settings());
        run(&mut history, &mut FakeRecorder::new(), 0..120, |r| {
            r.requests(970, 100.0, false).requests(30, 500.0, false);
        });
        let now = at(119, 59);
        let slo = Objective::latency(Duration::from_millis(300), 0.99);
        // 3 % slow over 1 % allowed.
        assert_close!(slo.burn_rate(&history, now, Duration::from_secs(3600)), 3.0);
        assert_close!(slo.budget_left(&history, now), -2.0);
        let r = slo.report(&history, now);
        assert_eq!((r.requests, r.bad_requests), (120_000, 3_600));
        // Availability is untouched: slow is not an error.
        let available = Objective::availability(0.999).report(&history, now);
        assert_eq!(available.budget_left, Some(1.0));

        // A threshold the history does not count: no figures.
        let other = Objective::latency(Duration::from_millis(250), 0.99);
        let r = other.report(&history, now);
        assert_eq!((r.budget_left, r.burn_rates), (None, BurnRates::default()));
        let untimed = History::new(Settings::default());
        assert_eq!(slo.budget_left(&untimed, now), None);
    }

    #[test]
    fn settings_count_the_first_latency_objective() {
        let objectives = [
            Objective::availability(0.999),
            Objective::latency(Duration::from_millis(300), 0.99),
            Objective::latency(Duration::from_millis(100), 0.9).named("snappy"),
        ];
        assert_eq!(
            Settings::for_objectives(&objectives).latency_threshold,
            Some(Duration::from_millis(300))
        );
        assert_eq!(
            Settings::for_objectives(&objectives[..1]).latency_threshold,
            None
        );
        assert_eq!(objectives[2].name(), "snappy");
    }

    #[test]
    fn targets_must_be_shares() {
        for target in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            assert!(std::panic::catch_unwind(|| Objective::availability(target)).is_err());
        }
        let zero = std::panic::catch_unwind(|| Objective::latency(Duration::ZERO, 0.99));
        assert!(zero.is_err());
    }

    #[test]
    fn the_report_serializes_windows_by_their_length() {
        let mut history = History::new(settings());
        run(&mut history, &mut FakeRecorder::new(), 0..5, |r| {
            r.requests(98, 10.0, false).requests(2, 10.0, true);
        });
        let report = Objective::availability(0.999).report(&history, at(4, 59));
        let json = serde_json::to_value(&report).unwrap();
        let windows: Vec<&String> = json["burn_rates"].as_object().unwrap().keys().collect();
        assert_eq!(windows, ["1h", "30m", "5m", "6h"]);
        assert_eq!(json["fast_burn"], true);
        assert!(json.get("latency_threshold_ms").is_none());
        let back: SloReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
