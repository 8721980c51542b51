//! The report: a typed value that every format renders.
//!
//! [`Report`] is what `GET /status` describes: overall [`Status`], identity
//! of the service, uptime, [`Memory`], the wrapped service's [`Traffic`] and
//! [`Latency`]. It is plain data with `serde` support; the default JSON body
//! is its serialization.

mod component;
mod memory;
mod traffic;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub(crate) use component::Stored;
pub use component::{aggregate, Component, Notice};
pub use memory::Memory;
pub(crate) use memory::MemoryCache;
pub use traffic::{Latency, LatencyHistogram, Traffic, HISTOGRAM_BOUNDS};

use crate::check::Board;
use crate::recorder::Snapshot;

/// Overall health, from best to worst (`maintenance` is set by the operator).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything works.
    #[default]
    Ok,
    /// Working, but something non-critical is failing.
    Degraded,
    /// Not able to serve: something critical is failing.
    Down,
    /// Deliberately out of service for maintenance.
    Maintenance,
}

impl Status {
    /// The lowercase word used in the default report.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Down => "down",
            Status::Maintenance => "maintenance",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A moment in time, serialized as RFC 3339 UTC with milliseconds
/// (`2026-11-23T10:30:00.000Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time.
    #[must_use]
    pub fn now() -> Self {
        Self(SystemTime::now())
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text)
            .map(Timestamp)
            .map_err(serde::de::Error::custom)
    }
}

/// The status report of one service, as `GET /status` returns it.
///
/// ```
/// use tower_status::report::{Report, Status};
///
/// let json = r#"{"status":"ok","environment":"production",
///   "timestamp":"2026-11-23T10:30:00.000Z","uptime_seconds":5,
///   "requests":{"total":3,"in_flight":0,"errors":1,"aborted":0,"by_class":{"2xx":2,"5xx":1},
///     "window_seconds":5.0,"window_total":3,"rate_per_second":0.6,"error_rate":0.333},
///   "response_time_ms":{"count":3,"mean":1.0,"p50":1.0,"p90":1.0,"p99":1.0,"max":1.0},
///   "status_requests":1}"#;
/// let report: Report = serde_json::from_str(json).unwrap();
/// assert_eq!(report.status, Status::Ok);
/// assert_eq!(report.requests.total, 3);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// Overall status.
    pub status: Status,
    /// Name of the service, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Version of the service, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Deployment environment (`production`, `development`, ...).
    pub environment: String,
    /// When the report was made.
    pub timestamp: Timestamp,
    /// Whole seconds since the first `StatusLayer` of the process was created.
    pub uptime_seconds: u64,
    /// Memory of the process, where the platform reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Traffic of the wrapped service.
    pub requests: Traffic,
    /// Latency of the wrapped service over the recent window.
    pub response_time_ms: Latency,
    /// Requests answered by the status endpoint itself (not in `requests`).
    pub status_requests: u64,
    /// Health of each component, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, Component>,
    /// The maintenance notice in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<Notice>,
    /// The service is draining before shutdown (readiness fails).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draining: bool,
    /// Who asked, when the request carried a valid API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<CallerSummary>,
    /// Custom sections, by name (see [`StatusLayer::section`](crate::StatusLayer::section)).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sections: BTreeMap<String, serde_json::Value>,
    /// Response times since start in cumulative buckets (for metrics
    /// formats; not in the default JSON).
    #[serde(skip)]
    pub histogram: LatencyHistogram,
}

impl Report {
    /// The report with every detail removed: only `status` and
    /// `timestamp` keep their values, as anonymous callers see it.
    #[must_use]
    pub fn redacted(self) -> Self {
        Report {
            status: self.status,
            service: None,
            version: None,
            environment: String::new(),
            timestamp: self.timestamp,
            uptime_seconds: 0,
            memory: None,
            requests: Traffic::default(),
            response_time_ms: Latency::default(),
            status_requests: 0,
            components: BTreeMap::new(),
            notice: None,
            draining: false,
            caller: None,
            sections: BTreeMap::new(),
            histogram: LatencyHistogram::default(),
        }
    }
}

/// The caller's own view: its identity and, when counted, its requests in
/// the current window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallerSummary {
    /// Name of the caller.
    pub name: String,
    /// The identity's attributes (tier, limits, ...).
    #[serde(flatten)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Requests with this caller's key in the current window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_in_window: Option<u64>,
    /// When the current window ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ends: Option<Timestamp>,
}

/// Which components a report covers.
#[derive(Debug, Default)]
pub(crate) struct Selection {
    /// Only critical checks (readiness).
    pub(crate) only_critical: bool,
    /// Components left out (`?exclude=`), neither run nor counted.
    pub(crate) exclude: Vec<String>,
}

impl Selection {
    pub(crate) fn all() -> Self {
        Self::default()
    }

    fn wants(&self, name: &str, critical: bool) -> bool {
        (critical || !self.only_critical) && !self.exclude.iter().any(|e| e == name)
    }
}

/// Name of the component that traffic rules produce.
pub const TRAFFIC_COMPONENT: &str = "traffic";

/// Builds the report of the layer behind `shared`, running the selected
/// checks and, for the full report, the sections, all concurrently.
pub(crate) async fn collect(
    shared: &crate::layer::Shared,
    selection: &Selection,
    caller: &crate::auth::Caller,
) -> Report {
    collect_parts(shared, selection, caller).await.into_report()
}

/// A component of a collected report: a check's stored result (shared,
/// rendered once), or one made for this report (pushed, traffic).
#[derive(Clone)]
pub(crate) enum Part {
    Stored(Arc<Stored>),
    Owned(Component),
}

impl Part {
    fn component(&self) -> &Component {
        match self {
            Part::Stored(s) => &s.component,
            Part::Owned(c) => c,
        }
    }

    fn into_component(self) -> Component {
        match self {
            Part::Stored(s) => {
                Arc::try_unwrap(s).map_or_else(|s| s.component.clone(), |s| s.component)
            }
            Part::Owned(c) => c,
        }
    }
}

/// Everything a report holds, before it becomes a typed [`Report`] (for
/// formats) or is written straight to the default JSON.
#[derive(Clone)]
pub(crate) struct Collected<'a> {
    config: &'a crate::layer::Config,
    /// Overall status.
    pub(crate) status: Status,
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
fn board_parts<'a>(
    board: &Board,
    entries: &'a [Arc<crate::check::Entry>],
) -> Vec<(Cow<'a, str>, Part)> {
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
    config: &crate::layer::Config,
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
    shared: &'a crate::layer::Shared,
    selection: &Selection,
    caller: &crate::auth::Caller,
) -> Collected<'a> {
    let config = &shared.config;
    let entries = config
        .checks
        .entries
        .iter()
        .filter(|e| selection.wants(&e.spec.name, e.spec.critical));
    // Readiness needs no sections; neither does a caller who cannot see them.
    let with_sections = !selection.only_critical && caller.details;
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
                let value = crate::section::run_caller_section(section, caller.clone()).await;
                (name.clone(), value)
            },
        ));
        let ((plain, waited), per_caller) = futures_util::future::join(plain, per_caller).await;
        let sections = plain
            .into_iter()
            .map(|(name, c)| (name.to_owned(), crate::section::value_of(&c.component)))
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
    // Others to merge in: the board's results become parts.
    let mut board = board;
    if !pushed.is_empty() || with_traffic {
        if let Some(board) = board.take() {
            components = board_parts(&board, &config.checks.entries);
        }
    }
    for (name, c) in pushed {
        put(&mut components, Cow::Owned(name), Part::Owned(c));
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
            Part::Owned(traffic_component(
                &config.traffic_rules,
                &requests,
                &response_time_ms,
            )),
        );
    }

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
            histogram: LatencyHistogram::from_snapshot(&self.total),
        }
    }

    /// The report with `caller` as the default JSON serializes it (the
    /// bytes of `serde_json::to_vec(&report)`), splicing each stored
    /// component's rendered member.
    pub(crate) fn to_json(&self, caller: Option<&CallerSummary>) -> Vec<u8> {
        /// `Report`'s fields before `components`, serialized alike.
        #[derive(Serialize)]
        struct Head<'a> {
            status: Status,
            #[serde(skip_serializing_if = "Option::is_none")]
            service: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            version: Option<&'a str>,
            environment: &'a str,
            timestamp: Timestamp,
            uptime_seconds: u64,
            #[serde(skip_serializing_if = "Option::is_none")]
            memory: Option<Memory>,
            requests: &'a Traffic,
            response_time_ms: &'a Latency,
            status_requests: u64,
        }
        /// `Report`'s fields after `components`, serialized alike.
        #[derive(Serialize)]
        struct Tail<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            notice: Option<&'a Notice>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            draining: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            caller: Option<&'a CallerSummary>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            sections: &'a BTreeMap<String, serde_json::Value>,
        }

        let members: usize = self.board.as_ref().map_or(0, |b| b.members.len())
            + self
                .components
                .iter()
                .map(|(_, part)| match part {
                    Part::Stored(s) => s.member.len() + 1,
                    Part::Owned(_) => 256,
                })
                .sum::<usize>();
        let mut out = Vec::with_capacity(640 + members);
        // Nothing here can fail to serialize (maps of `Value` have string
        // keys, numbers are finite or written as null), and a `Vec` takes
        // any write.
        let _ = serde_json::to_writer(
            &mut out,
            &Head {
                status: self.status,
                service: self.config.service.as_deref(),
                version: self.config.version.as_deref(),
                environment: &self.config.environment,
                timestamp: self.timestamp,
                uptime_seconds: self.uptime_seconds,
                memory: self.memory,
                requests: &self.requests,
                response_time_ms: &self.response_time_ms,
                status_requests: self.status_requests,
            },
        );
        // Reopen the object: `Head` always has fields, so `,` follows.
        out.pop();
        if let Some(board) = self.board.as_ref().filter(|b| !b.items.is_empty()) {
            out.extend_from_slice(b",\"components\":{");
            out.extend_from_slice(&board.members);
            out.push(b'}');
        } else if !self.components.is_empty() {
            out.extend_from_slice(b",\"components\":{");
            for (i, (name, part)) in self.components.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match part {
                    Part::Stored(s) => out.extend_from_slice(&s.member),
                    Part::Owned(c) => component::write_member(&mut out, name, c),
                }
            }
            out.push(b'}');
        }
        let tail = out.len();
        let _ = serde_json::to_writer(
            &mut out,
            &Tail {
                notice: self.notice.as_ref(),
                draining: self.draining,
                caller,
                sections: &self.sections,
            },
        );
        if out[tail..] == *b"{}" {
            out.truncate(tail);
            out.push(b'}');
        } else {
            // `{"notice":..}` continues the report's object: `,"notice":..}`.
            out[tail] = b',';
        }
        out
    }
}

impl Collected<'_> {
    /// Panics unless `json` is the typed report's serialization.
    #[cfg(any(test, all(debug_assertions, feature = "_verify-json")))]
    pub(crate) fn assert_json(&self, caller: Option<&CallerSummary>, json: &[u8]) {
        let mut report = self.clone().into_report();
        report.caller = caller.cloned();
        let typed = serde_json::to_vec(&report).expect("serializable");
        assert_eq!(
            String::from_utf8_lossy(json),
            String::from_utf8_lossy(&typed),
            "spliced JSON differs from the typed report's"
        );
    }
}

/// Traffic and window latency of the wrapped service at `at`, with the
/// cumulative snapshot they come from.
fn traffic(recorder: &crate::recorder::Recorder, at: Instant) -> (Traffic, Latency, Snapshot) {
    let now = recorder.snapshot();
    let (requests, latency) = recorder.window.advance_with(at, &now, |span, base| {
        let window = now.counts_since(base);
        (
            Traffic::from_snapshots(&now, &window, span),
            Latency::between(&now, base),
        )
    });
    (requests, latency, now)
}

/// The `traffic` component alone, when traffic rules are set: runs no check.
pub(crate) fn traffic_only(shared: &crate::layer::Shared) -> Option<Component> {
    let rules = &shared.config.traffic_rules;
    if rules.is_empty() {
        return None;
    }
    let (requests, latency, _) = traffic(&shared.recorder, Instant::now());
    Some(traffic_component(rules, &requests, &latency))
}

fn traffic_component(
    rules: &[crate::check::TrafficRule],
    traffic: &Traffic,
    latency: &Latency,
) -> Component {
    let at = Timestamp::now();
    let worst = rules
        .iter()
        .filter_map(|r| r.evaluate(traffic, latency))
        .max_by_key(|(status, _)| *status);
    let result = match worst {
        Some((status, why)) => crate::check::CheckResult::new(status, Some(why)),
        None => crate::check::CheckResult::ok(),
    }
    .with_details(serde_json::json!({
        "window_seconds": traffic.window_seconds,
        "requests": traffic.window_total,
        "error_rate": traffic.error_rate,
        "p99_ms": latency.p99,
    }));
    Component::from_result(result, None, true, std::time::Duration::ZERO, at)
}
