//! Collecting a report: the selected checks and sections run concurrently,
//! joined with pushed components, traffic rules, the recorder's figures and
//! the lifecycle, into what the endpoint renders.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::{Config, Shared};
use crate::auth::Caller;
use crate::check::{Board, CheckResult, Entry, TrafficRule};
use crate::recorder::{Recorder, Snapshot};
use crate::report::{
    aggregate, CallerSummary, Component, ComponentsWire, Latency, Memory, Notice, Part, Report,
    RootCause, Status, Timestamp, Traffic, Wire, TRAFFIC_COMPONENT,
};

/// Which components a report covers.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// Only critical checks (readiness).
    pub(crate) only_critical: bool,
    /// Components left out (`?exclude=`), neither run nor counted.
    pub(crate) exclude: Vec<String>,
    /// Only the status: no sections.
    pub(crate) status_only: bool,
    /// Checks are not run: their last results are taken, however old.
    pub(crate) seen_only: bool,
}

impl Selection {
    pub(crate) fn all() -> Self {
        Self::default()
    }

    /// What the evaluator needs: every component's status, no sections;
    /// checks are run only when `run_checks`.
    pub(crate) fn verdict(run_checks: bool) -> Self {
        Self {
            status_only: true,
            seen_only: !run_checks,
            ..Self::default()
        }
    }

    fn wants(&self, name: &str, critical: bool) -> bool {
        (critical || !self.only_critical) && !self.exclude.iter().any(|e| e == name)
    }
}

/// Builds the report of the layer behind `shared`, running the selected
/// checks and, for the full report, the sections, all concurrently.
pub(crate) async fn collect(shared: &Shared, selection: &Selection, caller: &Caller) -> Report {
    collect_parts(shared, selection, caller).await.into_report()
}

/// Everything a report holds, before it becomes a typed [`Report`] (for
/// formats) or is written straight to the default JSON.
pub(crate) struct Collected<'a> {
    config: &'a Config,
    /// Overall status.
    pub(crate) status: Status,
    /// Failing components not blocked by another (with dependencies only).
    pub(crate) root_causes: Vec<RootCause>,
    /// When the report was made.
    pub(crate) timestamp: Timestamp,
    uptime_seconds: u64,
    memory: Option<Memory>,
    requests: Traffic,
    response_time_ms: Latency,
    /// The cumulative counters, for the typed report's histogram.
    total: Snapshot,
    status_requests: u64,
    /// Every check's result, when the report has them and nothing else.
    board: Option<Arc<Board>>,
    /// Sorted by name, each name once (empty with a board).
    components: Vec<(Cow<'a, str>, Part)>,
    /// The typed components, when a custom aggregation rule needed them.
    typed: Option<BTreeMap<String, Component>>,
    /// The maintenance notice in force.
    pub(crate) notice: Option<Notice>,
    draining: bool,
    sections: BTreeMap<String, serde_json::Value>,
}

/// A board's results as parts, under the names of their checks.
fn board_parts<'a>(board: &Board, entries: &'a [Arc<Entry>]) -> Vec<(Cow<'a, str>, Part)> {
    board
        .items
        .iter()
        .map(|(i, stored)| {
            (
                Cow::Borrowed(entries[*i].spec.name.as_str()),
                Part::Stored(Arc::clone(stored)),
            )
        })
        .collect()
}

/// The components as a typed map: from the board, else from the parts.
fn typed_components(
    board: Option<&Board>,
    components: &[(Cow<'_, str>, Part)],
    config: &Config,
) -> BTreeMap<String, Component> {
    match board {
        Some(board) => board
            .items
            .iter()
            .map(|(i, stored)| {
                (
                    config.checks.entries[*i].spec.name.clone(),
                    stored.component.clone(),
                )
            })
            .collect(),
        None => components
            .iter()
            .map(|(name, part)| (name.to_string(), part.component().clone()))
            .collect(),
    }
}

/// Puts `part` under `name` in `components` (sorted by name), replacing the
/// one of that name.
fn put<'a>(components: &mut Vec<(Cow<'a, str>, Part)>, name: Cow<'a, str>, part: Part) {
    match components.binary_search_by(|(n, _)| n.as_ref().cmp(name.as_ref())) {
        Ok(i) => components[i].1 = part,
        Err(i) => components.insert(i, (name, part)),
    }
}

/// Gathers what the report of the layer behind `shared` holds, running the
/// selected checks and, for the full report, the sections, all concurrently.
pub(crate) async fn collect_parts<'a>(
    shared: &'a Shared,
    selection: &Selection,
    caller: &Caller,
) -> Collected<'a> {
    let config = &shared.config;
    let entries = config
        .checks
        .entries
        .iter()
        .filter(|e| selection.wants(&e.spec.name, e.spec.critical));
    // Readiness needs no sections; neither does a caller who cannot see them.
    let with_sections = !selection.only_critical && !selection.status_only && caller.details;
    // One clock read for every cached result, and for the rest of the
    // report unless something had to be waited for.
    let started = Instant::now();
    let sections = async {
        if !with_sections {
            return (BTreeMap::new(), false);
        }
        let plain = config
            .sections
            .gather(config.sections.entries.iter(), started);
        let per_caller = futures_util::future::join_all(config.caller_sections.iter().map(
            |(name, section)| async move {
                let value = super::section::run_caller_section(section, caller.clone()).await;
                (name.clone(), value)
            },
        ));
        let ((plain, waited), per_caller) = futures_util::future::join(plain, per_caller).await;
        let sections = plain
            .into_iter()
            .map(|(name, c)| (name.to_owned(), super::section::value_of(&c.component)))
            .chain(per_caller)
            .collect();
        (sections, waited || !config.caller_sections.is_empty())
    };
    // Every check, each serving its cached result: all of them at once.
    let board = if !selection.only_critical && selection.exclude.is_empty() {
        config.checks.board(started)
    } else {
        None
    };
    let checks = async {
        if board.is_some() {
            return (Vec::new(), false);
        }
        if selection.seen_only {
            return (config.checks.peek(entries), false);
        }
        config.checks.gather(entries, started).await
    };
    let ((checked, checks_waited), (sections, sections_waited)) =
        futures_util::future::join(checks, sections).await;
    let mut components: Vec<(Cow<'a, str>, Part)> = checked
        .into_iter()
        .map(|(name, stored)| (Cow::Borrowed(name), Part::Stored(stored)))
        .collect();
    // By name, as a map holds them (`Checks::add` keeps names unique).
    components.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let pushed: Vec<_> = shared
        .lifecycle
        .pushed()
        .into_iter()
        .filter(|(name, c)| selection.wants(name, c.critical))
        .collect();
    let with_traffic = !config.traffic_rules.is_empty() && selection.wants(TRAFFIC_COMPONENT, true);
    // Others to merge in, or dependencies to mark: the board's results become parts.
    let mut board = board;
    let slo_health = shared.past.drives_health();
    if !pushed.is_empty() || with_traffic || slo_health || !shared.dependencies.is_empty() {
        if let Some(board) = board.take() {
            components = board_parts(&board, &config.checks.entries);
        }
    }
    for (name, c) in pushed {
        put(&mut components, Cow::Owned(name), Part::Owned(Box::new(c)));
    }

    // The moment of the window, the uptime and the memory figures.
    let at = if checks_waited || sections_waited {
        Instant::now()
    } else {
        started
    };
    let recorder = &shared.recorder;
    let (requests, response_time_ms, total) = traffic(recorder, at);
    if with_traffic {
        put(
            &mut components,
            Cow::Borrowed(TRAFFIC_COMPONENT),
            Part::Owned(Box::new(traffic_component(
                &config.traffic_rules,
                &requests,
                &response_time_ms,
            ))),
        );
    }

    if slo_health {
        for (name, c) in shared.past.slo_components() {
            if selection.wants(&name, c.critical) {
                put(&mut components, Cow::Owned(name), Part::Owned(Box::new(c)));
            }
        }
    }
    let root_causes = if shared.dependencies.is_empty() {
        Vec::new()
    } else {
        mark_blocked(&mut components, &shared.dependencies)
    };

    let notice = shared.lifecycle.maintenance();
    let mut typed = None;
    let status = match &config.aggregation {
        Some(_) if notice.is_some() => Status::Maintenance,
        Some(rule) => {
            let map = typed_components(board.as_deref(), &components, config);
            let status = (rule.0)(&map);
            typed = Some(map);
            status
        }
        None if notice.is_some() => Status::Maintenance,
        None => match &board {
            Some(board) => board.impact,
            None => aggregate(components.iter().map(|(_, part)| part.component())),
        },
    };
    Collected {
        config,
        status,
        root_causes,
        timestamp: Timestamp::now(),
        uptime_seconds: at.saturating_duration_since(shared.started).as_secs(),
        memory: recorder.memory.get_at(at),
        requests,
        response_time_ms,
        total,
        status_requests: recorder.status_requests(),
        board,
        components,
        typed,
        notice,
        draining: shared.lifecycle.draining(),
        sections,
    }
}

impl Collected<'_> {
    /// The typed report.
    pub(crate) fn into_report(self) -> Report {
        let components = match (self.typed, &self.board) {
            (Some(map), _) => map,
            (None, Some(board)) => typed_components(Some(board), &[], self.config),
            (None, None) => self
                .components
                .into_iter()
                .map(|(name, part)| (name.into_owned(), part.into_component()))
                .collect(),
        };
        Report {
            status: self.status,
            root_causes: self.root_causes,
            service: self.config.service.clone(),
            version: self.config.version.clone(),
            environment: self.config.environment.clone(),
            timestamp: self.timestamp,
            uptime_seconds: self.uptime_seconds,
            memory: self.memory,
            requests: self.requests,
            response_time_ms: self.response_time_ms,
            status_requests: self.status_requests,
            components,
            notice: self.notice,
            draining: self.draining,
            caller: None,
            sections: self.sections,
            histogram: crate::recorder::cumulative_histogram(&self.total),
        }
    }

    /// The default JSON of the report with `caller`: the report's one
    /// serializer, writing each stored component's rendered JSON.
    pub(crate) fn to_json(&self, caller: Option<&CallerSummary>) -> Vec<u8> {
        let components = match &self.board {
            Some(board) => ComponentsWire::Joined(&board.joined),
            None => ComponentsWire::Parts(&self.components),
        };
        let wire = Wire {
            status: self.status,
            root_causes: &self.root_causes,
            service: self.config.service.as_deref(),
            version: self.config.version.as_deref(),
            environment: &self.config.environment,
            timestamp: self.timestamp,
            uptime_seconds: self.uptime_seconds,
            memory: self.memory,
            requests: &self.requests,
            response_time_ms: &self.response_time_ms,
            status_requests: self.status_requests,
            components,
            notice: self.notice.as_ref(),
            draining: self.draining,
            caller,
            sections: &self.sections,
        };
        // Sized once: the stored results' JSON plus the rest of the report.
        let components_len = match &self.board {
            Some(board) => board.joined.get().len(),
            None => self
                .components
                .iter()
                .map(|(name, part)| {
                    name.len()
                        + match part {
                            Part::Stored(stored) => stored.json.get().len(),
                            Part::Owned(_) => 256,
                        }
                })
                .sum(),
        };
        let mut out = Vec::with_capacity(640 + components_len);
        // Nothing in it fails to serialize (maps of `Value` have string
        // keys, numbers are finite or written as null), and a `Vec` takes
        // any write.
        let _ = serde_json::to_writer(&mut out, &wire);
        out
    }
}

/// Marks each failing component whose dependencies fail too as blocked by
/// them, and returns the failing components that are not blocked: the root
/// causes. A dependency left out of the report (`?exclude=`) blocks nothing.
fn mark_blocked(
    components: &mut [(Cow<'_, str>, Part)],
    dependencies: &[(String, Vec<String>)],
) -> Vec<RootCause> {
    // A dependency whose last run failed counts as failing even while its
    // threshold still shows it `ok`: the cause is named whichever
    // component's damping lets its failure show first.
    let status_of = |components: &[(Cow<'_, str>, Part)], name: &str| {
        components
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
            .map(|i| {
                let c = components[i].1.component();
                c.last_run
                    .as_ref()
                    .map_or(c.status, |run| run.status.max(c.status))
            })
    };
    let mut blocked = Vec::new();
    for (name, needs) in dependencies {
        let Some(i) = components
            .binary_search_by(|(n, _)| n.as_ref().cmp(name))
            .ok()
        else {
            continue;
        };
        if components[i].1.component().status == Status::Ok {
            continue;
        }
        let failing: Vec<String> = needs
            .iter()
            .filter(|need| status_of(components, need).is_some_and(|s| s != Status::Ok))
            .cloned()
            .collect();
        if !failing.is_empty() {
            blocked.push((i, failing));
        }
    }
    for (i, by) in blocked {
        let mut component = components[i].1.component().clone();
        component.blocked_by = by;
        components[i].1 = Part::Owned(Box::new(component));
    }
    components
        .iter()
        .map(|(name, part)| (name, part.component()))
        .filter(|(_, c)| c.status != Status::Ok && c.blocked_by.is_empty())
        .map(|(name, c)| RootCause {
            component: name.to_string(),
            status: c.status,
            error: c.error.clone(),
        })
        .collect()
}

/// The dependencies of the component `name` that fail, as last seen
/// (no check is run): what blocks it when it fails too.
pub(crate) fn failing_dependencies(shared: &Shared, name: &str) -> Vec<String> {
    let Some((_, needs)) = shared.dependencies.iter().find(|(n, _)| n == name) else {
        return Vec::new();
    };
    let checks = &shared.config.checks;
    needs
        .iter()
        .filter(|need| {
            let status = match shared.lifecycle.pushed_one(need) {
                Some(c) => Some(c.status),
                None => checks
                    .peek(checks.get(need).into_iter())
                    .pop()
                    .map(|(_, s)| {
                        let c = &s.component;
                        c.last_run
                            .as_ref()
                            .map_or(c.status, |run| run.status.max(c.status))
                    }),
            };
            status.is_some_and(|s| s != Status::Ok)
        })
        .cloned()
        .collect()
}

/// Traffic and window latency of the wrapped service at `at`, with the
/// cumulative snapshot they come from.
fn traffic(recorder: &Recorder, at: Instant) -> (Traffic, Latency, Snapshot) {
    let now = recorder.snapshot();
    let (requests, latency) = recorder.window.advance_with(at, &now, |span, base| {
        let window = now.counts_since(base);
        (
            crate::recorder::traffic(&now, &window, span),
            crate::recorder::latency_between(&now, base),
        )
    });
    (requests, latency, now)
}

/// The `traffic` component alone, when traffic rules are set: runs no check.
pub(crate) fn traffic_only(shared: &Shared) -> Option<Component> {
    let rules = &shared.config.traffic_rules;
    if rules.is_empty() {
        return None;
    }
    let (requests, latency, _) = traffic(&shared.recorder, Instant::now());
    Some(traffic_component(rules, &requests, &latency))
}

fn traffic_component(rules: &[TrafficRule], traffic: &Traffic, latency: &Latency) -> Component {
    let at = Timestamp::now();
    let worst = rules
        .iter()
        .filter_map(|r| r.evaluate(traffic, latency))
        .max_by_key(|(status, _)| *status);
    let result = match worst {
        Some((status, why)) => CheckResult::new(status, Some(why)),
        None => CheckResult::ok(),
    }
    .with_details(serde_json::json!({
        "window_seconds": traffic.window_seconds,
        "requests": traffic.window_total,
        "error_rate": traffic.error_rate,
        "p99_ms": latency.p99,
    }));
    Component::from_result(result, None, true, std::time::Duration::ZERO, at)
}
