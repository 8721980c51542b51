//! Transitions: what changed, when, for how long it had been so, and who
//! is told. The watcher's evaluator hands each report it makes to
//! [`Verdicts::observe`], which compares it with the last one, logs the
//! changes (a fixed-capacity log, flap counts over the last hour), emits
//! them as `tracing` events and queues one notification per change.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Config;
use crate::notify::{DeliveryStats, Outbox};
use crate::report::{Notification, Report, RootCause, Status, Timestamp, Transition};

/// The window of flap counts.
const FLAP_WINDOW: Duration = Duration::from_secs(3600);

/// Transitions kept per component for its flap count: more in an hour
/// count as this many.
const MAX_FLAPS: usize = 4096;

/// The transition log of a layer, as `/status/transitions` serves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[non_exhaustive]
pub struct TransitionLog {
    /// The most recent transitions, oldest first.
    pub transitions: Vec<Transition>,
    /// How many transitions the log keeps.
    pub capacity: usize,
    /// Transitions pushed out of the log by newer ones.
    pub evicted: u64,
    /// Each component's transitions over the last hour (components that
    /// had none are left out).
    pub flaps_last_hour: BTreeMap<String, u64>,
    /// How each notifier's deliveries went, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notifiers: BTreeMap<String, DeliveryStats>,
}

/// The transitions of one layer and the notifiers they go to.
pub(crate) struct Verdicts {
    log: Mutex<Log>,
    outboxes: Vec<Outbox>,
    capacity: usize,
    service: Option<String>,
    version: Option<String>,
    environment: String,
}

#[derive(Default)]
struct Log {
    /// The overall status last seen, since when.
    overall: Option<(Status, Instant)>,
    /// Each component's status last seen, since when.
    components: BTreeMap<String, (Status, Instant)>,
    entries: VecDeque<Transition>,
    evicted: u64,
    /// When each component's recent transitions happened.
    flaps: BTreeMap<String, VecDeque<Instant>>,
    sequence: u64,
}

impl Verdicts {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            log: Mutex::default(),
            outboxes: config.deliveries.iter().cloned().map(Outbox::new).collect(),
            capacity: config.transition_capacity,
            service: config.service.clone(),
            version: config.version.clone(),
            environment: config.environment.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        // Nothing panics while it is held; stay usable if something did.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Compares `report` with the last one observed: logs, emits and
    /// announces what changed, and returns the transitions. The overall
    /// status is taken only from a `complete` report (every check has a
    /// result): before that it is not known, and a service that starts with
    /// a dependency down announces `none -> down`, not `ok -> down`.
    pub(crate) fn observe(&self, report: &Report, complete: bool) -> Vec<Transition> {
        let now = Instant::now();
        let at = Timestamp::now();
        let root_causes = root_causes(report);
        let mut log = self.lock();
        let mut components = Vec::new();
        for (name, c) in &report.components {
            let before = log.components.get(name).copied();
            let from = match before {
                Some((status, _)) if status == c.status => continue,
                Some((status, _)) => Some(status),
                // First seen: worth a transition only when not ok.
                None if c.status == Status::Ok => {
                    log.components.insert(name.clone(), (c.status, now));
                    continue;
                }
                None => None,
            };
            components.push(Transition {
                component: Some(name.clone()),
                from,
                to: c.status,
                at,
                error: c.error.clone(),
                previous_lasted_ms: before.map(|(_, since)| millis(now - since)),
                blocked_by: c.blocked_by.clone(),
            });
            log.components.insert(name.clone(), (c.status, now));
            if from.is_some() {
                log.flap(name, now);
            }
        }
        // Gone from the report (removed pushed components): forgotten.
        log.components
            .retain(|name, _| report.components.contains_key(name));
        let overall = match log.overall {
            _ if !complete => None,
            Some((status, _)) if status == report.status => None,
            Some((status, since)) => Some((Some(status), Some(millis(now - since)))),
            None if report.status == Status::Ok => {
                log.overall = Some((report.status, now));
                None
            }
            None => Some((None, None)),
        }
        .map(|(from, lasted)| Transition {
            component: None,
            from,
            to: report.status,
            at,
            error: root_causes.first().and_then(|r| r.error.clone()),
            previous_lasted_ms: lasted,
            blocked_by: Vec::new(),
        });
        if overall.is_some() {
            log.overall = Some((report.status, now));
        }
        if overall.is_none() && components.is_empty() {
            return Vec::new();
        }
        let all: Vec<Transition> = components.iter().chain(&overall).cloned().collect();
        for t in &all {
            emit(t);
            if log.entries.len() == self.capacity {
                log.entries.pop_front();
                log.evicted += 1;
            }
            log.entries.push_back(t.clone());
        }
        log.sequence += 1;
        let sequence = log.sequence;
        // Queued in the order the changes happened: under the log's lock.
        if !self.outboxes.is_empty() {
            let notification = Arc::new(Notification {
                sequence,
                service: self.service.clone(),
                version: self.version.clone(),
                environment: self.environment.clone(),
                status: report.status,
                transition: overall,
                root_causes,
                components,
            });
            for outbox in &self.outboxes {
                outbox.send(Arc::clone(&notification));
            }
        }
        all
    }

    /// The log as served.
    pub(crate) fn log(&self) -> TransitionLog {
        let now = Instant::now();
        let mut log = self.lock();
        let flaps_last_hour = {
            let log = &mut *log;
            log.flaps.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            log.flaps
                .iter()
                .map(|(name, times)| (name.clone(), times.len() as u64))
                .collect()
        };
        TransitionLog {
            transitions: log.entries.iter().cloned().collect(),
            capacity: self.capacity,
            evicted: log.evicted,
            flaps_last_hour,
            notifiers: self
                .outboxes
                .iter()
                .map(|o| (o.name().to_owned(), o.stats()))
                .collect(),
        }
    }
}

impl Log {
    fn flap(&mut self, name: &str, now: Instant) {
        let times = self.flaps.entry(name.to_owned()).or_default();
        prune(times, now);
        if times.len() == MAX_FLAPS {
            times.pop_front();
        }
        times.push_back(now);
    }
}

/// Drops the times older than the flap window.
fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) > FLAP_WINDOW)
    {
        times.pop_front();
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The report's root causes, or when it names none (no dependencies
/// configured), every failing component.
fn root_causes(report: &Report) -> Vec<RootCause> {
    if !report.root_causes.is_empty() {
        return report.root_causes.clone();
    }
    report
        .components
        .iter()
        .filter(|(_, c)| c.status != Status::Ok && c.blocked_by.is_empty())
        .map(|(name, c)| RootCause {
            component: name.clone(),
            status: c.status,
            error: c.error.clone(),
        })
        .collect()
}

/// The transition as a `tracing` event: a warning when things got worse,
/// information when they got better.
fn emit(t: &Transition) {
    let subject = t.component.as_deref().unwrap_or("(overall)");
    let from = t.from.map_or("none", Status::as_str);
    let worse = t.from.is_none_or(|from| t.to > from) && t.to != Status::Ok;
    let error = t.error.as_deref().unwrap_or("");
    let blocked_by = t.blocked_by.join(",");
    if worse {
        tracing::warn!(
            component = subject,
            from,
            to = t.to.as_str(),
            error,
            blocked_by,
            previous_lasted_ms = t.previous_lasted_ms,
            "status changed"
        );
    } else {
        tracing::info!(
            component = subject,
            from,
            to = t.to.as_str(),
            previous_lasted_ms = t.previous_lasted_ms,
            "status changed"
        );
    }
}
