//! The status page: what a browser asking for the status path gets. The
//! rendering is [`crate::format::page`]'s; this gathers its input under the
//! caller's access.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use super::responses::{rendered, vary_accept};
use crate::auth::Caller;
use crate::format::page::{
    page_response, BurnRate, PageComponent, PageDetails, PageInput, PageSlo, SlotTraffic,
};
use crate::history::SloReport;
use crate::report::Status;
use crate::state::{collect, Selection, Shared};

/// The page for `caller`: the overall status for anyone, the components,
/// history, transitions and objectives for callers with details.
pub(crate) async fn page(shared: &Shared, caller: Caller) -> Response<Full<Bytes>> {
    let report = collect(shared, &Selection::all(), &caller).await;
    let code = shared.config.code(report.status);
    let details = caller.details.then(|| {
        let past = shared.past.report();
        let history = &past.history;
        let percent = |ratio: Option<f64>| ratio.map(|r| r * 100.0);
        let components = report
            .components
            .iter()
            .map(|(name, c)| PageComponent {
                name: name.clone(),
                status: c.status,
                critical: c.critical,
                error: c.error.clone(),
                blocked_by: c.blocked_by.clone(),
                uptime_1h: percent(history.uptime_1h.components.get(name).and_then(|u| u.ratio)),
                uptime_24h: percent(
                    history
                        .uptime_24h
                        .components
                        .get(name)
                        .and_then(|u| u.ratio),
                ),
                slots: history
                    .minutes
                    .iter()
                    .map(|m| m.components.get(name).copied())
                    .collect(),
            })
            .collect();
        PageDetails {
            slot_starts: history.minutes.iter().map(|m| m.start).collect(),
            overall: history.minutes.iter().map(|m| m.status).collect(),
            uptime_1h: percent(history.uptime_1h.overall.ratio),
            uptime_24h: percent(history.uptime_24h.overall.ratio),
            traffic: history
                .minutes
                .iter()
                .map(|m| SlotTraffic {
                    requests: m.requests,
                    errors: m.errors,
                    p50_ms: m.p50_ms,
                    p99_ms: m.p99_ms,
                })
                .collect(),
            components,
            transitions: shared.verdicts.log().transitions,
            slos: past.slos.iter().map(page_slo).collect(),
        }
    });
    let (service, version, environment) = if caller.details {
        (
            report.service.clone(),
            report.version.clone(),
            Some(report.environment.clone()),
        )
    } else {
        (None, None, None)
    };
    let input = PageInput {
        service,
        version,
        environment,
        status: report.status,
        timestamp: report.timestamp,
        draining: caller.details && report.draining,
        notice: report.notice.clone(),
        status_path: shared.config.path.clone(),
        details,
    };
    let mut res = rendered(page_response(code, &input));
    vary_accept(&mut res);
    res
}

/// An objective as the page shows it.
fn page_slo(slo: &SloReport) -> PageSlo {
    let windows = [
        (Duration::from_secs(300), slo.burn_rates.five_minutes, 14.4),
        (
            Duration::from_secs(1800),
            slo.burn_rates.thirty_minutes,
            6.0,
        ),
        (Duration::from_secs(3600), slo.burn_rates.one_hour, 14.4),
        (Duration::from_secs(21_600), slo.burn_rates.six_hours, 6.0),
    ];
    PageSlo {
        name: slo.name.clone(),
        objective: slo.target,
        achieved: (slo.requests > 0).then(|| 1.0 - slo.bad_requests as f64 / slo.requests as f64),
        budget_left: slo.budget_left,
        burn_rates: windows
            .into_iter()
            .map(|(window, rate, threshold)| BurnRate {
                window,
                rate,
                threshold: Some(threshold),
            })
            .collect(),
        status: if slo.fast_burn || slo.slow_burn {
            Status::Degraded
        } else {
            Status::Ok
        },
    }
}
