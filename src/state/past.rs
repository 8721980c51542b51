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
use crate::recorder::{Recorder, Snapshot};
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
        self.observe_at(
            SystemTime::now(),
            complete.then_some(report.status),
            report
                .components
                .iter()
                .map(|(name, c)| (name.as_str(), c.status)),
            &recorder.snapshot(),
        );
    }

    /// [`Past::observe`] at `now` (the tests' simulated clock).
    fn observe_at<'a>(
        &self,
        now: SystemTime,
        overall: Option<Status>,
        components: impl IntoIterator<Item = (&'a str, Status)>,
        snapshot: &Snapshot,
    ) {
        let mut history = self.lock();
        history.observe(now, overall, components);
        history.record_traffic(now, snapshot);
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
        self.report_at(SystemTime::now())
    }

    fn report_at(&self, now: SystemTime) -> HistoryReport {
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
        self.slo_components_at(SystemTime::now())
    }

    fn slo_components_at(&self, now: SystemTime) -> Vec<(String, Component)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testing::{at, FakeRecorder, Rng};

    /// Resident set size, from `/proc/self/statm` (pages of 4 KiB).
    #[cfg(target_os = "linux")]
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("resident pages");
        pages * 4096
    }

    /// Simulated days in the memory test.
    const DAYS: u64 = 4;

    const COMPONENTS: [&str; 6] = ["db", "cache", "search", "queue", "mail", "payments"];
    const STATUSES: [Status; 4] = [
        Status::Ok,
        Status::Degraded,
        Status::Down,
        Status::Maintenance,
    ];

    /// Simulated days, as the evaluator and callers drive the past: an
    /// observation every 20 s with the recorder's traffic, the file saved
    /// every 10 minutes (about once a minute in service, fewer here as the
    /// unoptimized SHA-256 is slow), `/status/history` and the objectives
    /// read every 10 minutes, a restart from the file at the start of
    /// each day. Returns the resident set size after each day.
    #[cfg(target_os = "linux")]
    fn simulated_days(days: u64, file: &std::path::Path) -> Vec<u64> {
        let mut config = Config::new("test".to_owned());
        config.history_file = Some(file.to_owned());
        config.objectives = vec![
            Objective::availability(0.999),
            Objective::latency(Duration::from_millis(300), 0.99).on_fast_burn(Status::Degraded),
        ];
        let mut rng = Rng::new(16);
        let mut recorder = FakeRecorder::new();
        let mut sizes = Vec::new();
        for day in 0..days {
            let past = Past::new(&config);
            for minute in day * 1440..(day + 1) * 1440 {
                for secs in [0, 20, 40] {
                    recorder
                        .requests(rng.below(300), rng.below(400) as f64, false)
                        .requests(rng.below(3), 1000.0, true);
                    let status = |rng: &mut Rng| STATUSES[rng.below(40).min(3) as usize];
                    let components: Vec<(&str, Status)> =
                        COMPONENTS.iter().map(|n| (*n, status(&mut rng))).collect();
                    past.observe_at(
                        at(minute, secs),
                        Some(status(&mut rng)),
                        components,
                        recorder.snapshot(),
                    );
                }
                if minute % 10 == 9 {
                    past.save().expect("saving the history");
                    let now = at(minute, 59);
                    let body = serde_json::to_vec(&past.report_at(now)).expect("serializable");
                    assert!(body.len() > 1000);
                    assert_eq!(past.slo_components_at(now).len(), 1);
                }
            }
            past.save().expect("saving the history");
            sizes.push(rss());
        }
        sizes
    }

    /// Runs in a process of its own, started by
    /// [`memory_stays_flat_over_simulated_days`]: other tests in this
    /// process would move its resident set size.
    #[test]
    #[ignore = "run in a process of its own by memory_stays_flat_over_simulated_days"]
    #[cfg(target_os = "linux")]
    fn simulated_days_in_this_process() {
        let dir = std::env::var_os("TOWER_STATUS_PAST_DIR").expect("TOWER_STATUS_PAST_DIR");
        let sizes = simulated_days(DAYS, &std::path::Path::new(&dir).join("history.bin"));
        println!("rss after each simulated day: {sizes:?}");
        // The first day fills the ring, the column table and the
        // allocator's pools; after it nothing may grow.
        let settled = sizes[1];
        let last = *sizes.last().expect("days");
        assert!(
            last <= settled + (256 << 10),
            "RSS grew from {settled} to {last} bytes over days 2 to 4: {sizes:?}"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn memory_stays_flat_over_simulated_days() {
        let dir = std::env::temp_dir().join(format!("tower-status-past-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
            .args([
                "--exact",
                "state::past::tests::simulated_days_in_this_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TOWER_STATUS_PAST_DIR", &dir)
            // glibc: a fixed mmap threshold, so large buffers freed go back
            // to the system instead of moving the threshold up and staying
            // in the heap (resident, though free).
            .env("MALLOC_MMAP_THRESHOLD_", "65536")
            .output()
            .expect("running this test binary");
        let _ = std::fs::remove_dir_all(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // Printed on the harness's `test NAME ... ` line.
        let figures = stdout
            .lines()
            .find_map(|l| Some(&l[l.find("rss after each simulated day")?..]))
            .expect("the figures");
        eprintln!("{figures}");
    }
}
