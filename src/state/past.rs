//! The layer's past: the history ring fed by the evaluator, kept in a file
//! when configured, and the service level objectives read from it.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::Config;
use crate::history::{
    move_aside, save_bytes, History, HistoryView, Objective, Settings, SloReport,
};
use crate::recorder::Recorder;
use crate::report::{CheckResult, Component, Report, Status, Timestamp};

/// How often the history is written to its file.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// The body of `/status/history`: the per-minute series of the last day,
/// uptime over the last hour and day, and each objective's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct HistoryReport {
    /// The per-minute series and uptime.
    #[serde(flatten)]
    pub history: HistoryView,
    /// Each service level objective's budget and burn rates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slos: Vec<SloReport>,
}

/// The history of one layer.
pub(crate) struct Past {
    history: Mutex<History>,
    objectives: Vec<Objective>,
    file: Option<PathBuf>,
    /// When the history was last written to its file.
    saved: Mutex<Instant>,
}

impl Past {
    /// An empty history, or the one saved in the configured file. A file
    /// that cannot be read is reported once (a `tracing` warning naming it
    /// and why); a bad one is moved aside. Either way the layer starts
    /// with an empty history, never a half-read one.
    pub(crate) fn new(config: &Config) -> Self {
        let settings = Settings::for_objectives(&config.objectives);
        let history = config
            .history_file
            .as_deref()
            .and_then(|path| match History::load(path, settings) {
                Ok(found) => found,
                Err(e) => {
                    if e.bad_file().is_some() {
                        match move_aside(path) {
                            Ok(aside) => tracing::warn!(
                                moved_to = %aside.display(),
                                "{e}; starting with an empty history"
                            ),
                            Err(io) => tracing::warn!(
                                "{e}; starting with an empty history (could not move it aside: {io})"
                            ),
                        }
                    } else {
                        tracing::warn!("{e}; starting with an empty history");
                    }
                    None
                }
            })
            .unwrap_or_else(|| History::new(settings));
        Self {
            history: Mutex::new(history),
            objectives: config.objectives.clone(),
            file: config.history_file.clone(),
            saved: Mutex::new(Instant::now()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, History> {
        // Nothing panics while it is held; stay usable if something did.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Books an evaluation's `report` (its overall status only when
    /// `complete`) and the recorder's traffic into the current minute.
    pub(crate) fn observe(&self, report: &Report, complete: bool, recorder: &Recorder) {
        let now = SystemTime::now();
        let snapshot = recorder.snapshot();
        let mut history = self.lock();
        history.observe(
            now,
            complete.then_some(report.status),
            report
                .components
                .iter()
                .map(|(name, c)| (name.as_str(), c.status)),
        );
        history.record_traffic(now, &snapshot);
    }

    /// The history's bytes when its file is due (about once a minute).
    pub(crate) fn due(&self) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.file.clone()?;
        {
            let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            if saved.elapsed() < SAVE_EVERY {
                return None;
            }
            *saved = Instant::now();
        }
        Some((path, self.lock().to_bytes()))
    }

    /// Writes the history to its file now (blocking I/O); `Ok` without
    /// one.
    pub(crate) fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let bytes = self.lock().to_bytes();
        save_bytes(path, &bytes)
    }

    /// The body of `/status/history`.
    pub(crate) fn report(&self) -> HistoryReport {
        let now = SystemTime::now();
        let history = self.lock();
        HistoryReport {
            history: history.series(now, Duration::from_secs(86_400)),
            slos: self
                .objectives
                .iter()
                .map(|o| o.report(&history, now))
                .collect(),
        }
    }

    /// Whether an objective drives health.
    pub(crate) fn drives_health(&self) -> bool {
        self.objectives
            .iter()
            .any(|o| o.fast_burn_status().is_some())
    }

    /// The `slo.NAME` component of each objective that drives health:
    /// its configured status while its budget burns fast, else `ok`.
    pub(crate) fn slo_components(&self) -> Vec<(String, Component)> {
        let now = SystemTime::now();
        let history = self.lock();
        self.objectives
            .iter()
            .filter_map(|o| Some((o, o.fast_burn_status()?)))
            .map(|(o, on_burn)| {
                let slo = o.report(&history, now);
                let result = if slo.fast_burn {
                    CheckResult::new(
                        on_burn,
                        Some(format!(
                            "error budget burning fast: {:.1}x over the last hour, {:.1}x over the last 5 minutes (target {})",
                            slo.burn_rates.one_hour.unwrap_or_default(),
                            slo.burn_rates.five_minutes.unwrap_or_default(),
                            slo.target
                        )),
                    )
                } else {
                    CheckResult::ok()
                };
                let result = match slo.burn_rates.one_hour {
                    Some(rate) => result.with_observed(rate, "burn rate (1 h)"),
                    None => result,
                };
                let component = Component::from_result(
                    result,
                    Some("slo".to_owned()),
                    on_burn == Status::Down,
                    Duration::ZERO,
                    Timestamp::now(),
                );
                (format!("slo.{}", o.name()), component)
            })
            .collect()
    }

    /// Uptime over the last day, as a share, when there is data.
    pub(crate) fn uptime_24h(&self) -> Option<f64> {
        let now = SystemTime::now();
        self.lock()
            .uptime(now, Duration::from_secs(86_400))
            .overall
            .ratio
    }
}

/// Writes `bytes` to `path` off the runtime's threads, warning on failure.
pub(crate) fn save_in_background(path: PathBuf, bytes: Vec<u8>) {
    let write = move || {
        if let Err(e) = save_bytes(&path, &bytes) {
            tracing::warn!(file = %path.display(), "could not save the status history: {e}");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(write);
        }
        Err(_) => write(),
    }
}
