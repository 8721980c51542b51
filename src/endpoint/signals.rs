//! Consumer signals on the probes' answers: the status code a probe
//! answers with, and the headers [`ConsumerSignals`] add to it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::format::{ConsumerSignals, Probe, ENVOY_DEGRADED_HEADER, WEIGHT_HEADER};
use crate::report::Status;
use crate::state::{Config, Shared};

/// The HTTP status `probe` answers `status` with: the layer's
/// `http_status`, unless the probe's signals answer `degraded` with 429.
pub(crate) fn code(config: &Config, probe: Probe, status: Status) -> StatusCode {
    config
        .consumer_signals
        .get(probe)
        .code(status, config.code(status))
}

/// Adds the signals of `probe` to its answer `res`, whose status is
/// `status`: the 429, `x-envoy-degraded` and the weight header, as set.
/// Nothing at all when the probe has none.
pub(crate) fn apply(
    shared: &Shared,
    probe: Probe,
    status: Status,
    res: &mut Response<Full<Bytes>>,
) {
    let signals = shared.config.consumer_signals.get(probe);
    if signals.is_none() {
        return;
    }
    if signals.degraded_as_429 && status == Status::Degraded {
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    if signals.envoy_degraded_header && status == Status::Degraded {
        res.headers_mut().insert(
            HeaderName::from_static(ENVOY_DEGRADED_HEADER),
            HeaderValue::from_static("true"),
        );
    }
    if signals.load_balancing_weight {
        res.headers_mut().insert(
            HeaderName::from_static(WEIGHT_HEADER),
            HeaderValue::from(weight(shared, signals, status)),
        );
    }
}

/// The load-balancing weight: 0 when the answer is `down`, or the layer
/// is in maintenance or drains (liveness too: it stays `ok` then), else
/// from the wrapped service's requests in flight now and its p90 latency
/// over the recent window.
fn weight(shared: &Shared, signals: &ConsumerSignals, status: Status) -> u16 {
    let lifecycle = &shared.lifecycle;
    if matches!(status, Status::Down | Status::Maintenance)
        || lifecycle.draining()
        || lifecycle.maintenance().is_some()
    {
        return 0;
    }
    let recorder = &shared.recorder;
    let now = recorder.snapshot();
    let in_flight = now.started.saturating_sub(now.finished());
    let latency = recorder
        .window
        .advance_with(Instant::now(), &now, |_, base| {
            crate::recorder::latency_between(&now, base)
        });
    // Milliseconds with microsecond resolution, never negative.
    let p90 = Duration::try_from_secs_f64(latency.p90 / 1_000.0).unwrap_or(Duration::MAX);
    signals.weight_for(in_flight, p90)
}
