//! The state of a built layer: its frozen configuration, the traffic
//! recorder, the run-time lifecycle (pushed components, draining,
//! maintenance), the evaluator behind watchers, the transition log and its
//! notifiers ([`verdict`]), and the collection of a report from all of them.
//!
//! Everything a consumer of a layer reads (the endpoint, [`StatusWatch`],
//! the gRPC bridge, [`report`](crate::StatusHandle::report)) reads one
//! [`Shared`], made once by [`StatusLayer::build`](crate::StatusLayer::build):
//! there is no second copy of the configuration to drift from.

mod collect;
mod lifecycle;
mod past;
pub(crate) mod section;
mod verdict;
mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::auth::{Access, CallerCounter};
use crate::check::{Checks, TrafficRule};
use crate::format::{ErrorFormat, Formats};
use crate::notify::Delivery;
use crate::recorder::Recorder;
use crate::report::{Component, Status};

pub(crate) use collect::{collect, collect_parts, failing_dependencies, traffic_only, Selection};
pub(crate) use lifecycle::Lifecycle;
pub use past::HistoryReport;
pub(crate) use past::{save_in_background, Past};
pub(crate) use section::CallerSection;
pub use verdict::TransitionLog;
pub(crate) use verdict::Verdicts;
pub(crate) use watch::{start, subscribe, Watcher};
pub use watch::{StatusChange, StatusWatch};

/// When the first layer of the process was built: the origin of `uptime`.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Settings fixed when the layer is built.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) path: String,
    pub(crate) service: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) environment: String,
    pub(crate) checks: Checks,
    pub(crate) traffic_rules: Vec<TrafficRule>,
    /// HTTP status per overall status, indexed by `Status as usize`.
    pub(crate) codes: [StatusCode; 4],
    /// Readiness fails until every critical check has passed once.
    pub(crate) startup_gate: bool,
    pub(crate) access: Access,
    pub(crate) formats: Formats,
    /// Sections computed under the checks' rules.
    pub(crate) sections: Checks,
    pub(crate) caller_sections: CallerSections,
    /// How often watchers' status is evaluated.
    pub(crate) watch_interval: Duration,
    /// Quiet time after which `/status/watch` sends a keep-alive comment.
    pub(crate) watch_keepalive: Duration,
    pub(crate) serve_metrics: bool,
    pub(crate) serve_openapi: bool,
    /// Serve the crate's own named formats (`json`, `ietf`).
    pub(crate) builtin_formats: bool,
    pub(crate) error_format: Option<Hook<dyn ErrorFormat>>,
    /// Decides the overall status from the components, when not the default rule.
    pub(crate) aggregation: Option<Hook<Aggregation>>,
    /// Settings of the components the application pushes, by name.
    pub(crate) pushed: BTreeMap<String, PushedSettings>,
    /// Where status changes are announced.
    pub(crate) deliveries: Vec<Delivery>,
    /// How many transitions the log keeps.
    pub(crate) transition_capacity: usize,
    /// What each probe adds for the systems that read it (none by default).
    pub(crate) consumer_signals: crate::format::SignalsByProbe,
    /// Where the history is kept across restarts.
    pub(crate) history_file: Option<std::path::PathBuf>,
    /// Service level objectives on the wrapped service's traffic.
    pub(crate) objectives: Vec<crate::history::Objective>,
}

/// The settings of a pushed component ([`HealthCheck::pushed`](crate::check::HealthCheck::pushed)).
#[derive(Clone, Debug)]
pub(crate) struct PushedSettings {
    pub(crate) component_type: Option<String>,
    pub(crate) critical: bool,
    pub(crate) depends_on: Vec<String>,
}

impl Default for PushedSettings {
    /// A component pushed without being declared: critical, no type.
    fn default() -> Self {
        Self {
            component_type: None,
            critical: true,
            depends_on: Vec::new(),
        }
    }
}

impl Config {
    /// The defaults of [`StatusLayer::new`](crate::StatusLayer::new), with
    /// the environment name given.
    pub(crate) fn new(environment: String) -> Self {
        Self {
            path: "/status".to_owned(),
            service: None,
            version: None,
            environment,
            checks: Checks::default(),
            traffic_rules: Vec::new(),
            codes: [
                StatusCode::OK,
                StatusCode::OK,
                StatusCode::SERVICE_UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
            ],
            startup_gate: false,
            access: Access::default(),
            formats: Formats::default(),
            sections: Checks::default(),
            caller_sections: CallerSections::default(),
            watch_interval: Duration::from_secs(1),
            watch_keepalive: Duration::from_secs(15),
            serve_metrics: false,
            serve_openapi: false,
            builtin_formats: true,
            error_format: None,
            aggregation: None,
            pushed: BTreeMap::new(),
            deliveries: Vec::new(),
            transition_capacity: 256,
            consumer_signals: crate::format::SignalsByProbe::default(),
            history_file: None,
            objectives: Vec::new(),
        }
    }

    /// The HTTP status answered for an overall status.
    pub(crate) fn code(&self, status: Status) -> StatusCode {
        self.codes[status as usize]
    }
}

/// User code held by the configuration; shown as `..` in `Debug`.
pub(crate) struct Hook<T: ?Sized>(pub(crate) Arc<T>);

impl<T: ?Sized> Clone for Hook<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::fmt::Debug for Hook<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// A custom rule for the overall status.
pub(crate) type Aggregation = dyn Fn(&BTreeMap<String, Component>) -> Status + Send + Sync;

/// Sections that need the caller, by name.
#[derive(Clone, Default)]
pub(crate) struct CallerSections(pub(crate) Vec<(String, CallerSection)>);

impl std::ops::Deref for CallerSections {
    type Target = [(String, CallerSection)];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for CallerSections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// The state of one built layer, shared by every service, handle, watcher
/// and bridge of it. Nothing here changes after it is made but the
/// run-time parts (recorder, lifecycle, watcher, check results).
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) recorder: Arc<Recorder>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) watcher: Arc<Watcher>,
    pub(crate) started: Instant,
    /// Each component that depends on others, with their names.
    pub(crate) dependencies: Vec<(String, Vec<String>)>,
    /// Transitions seen so far, and the notifiers they go to.
    pub(crate) verdicts: Verdicts,
    /// The last day, minute by minute.
    pub(crate) past: Past,
}

impl Shared {
    /// The state of a layer built from `config`, with check runners of its
    /// own: layers built from one configuration never share cached results,
    /// pollers or watchers.
    pub(crate) fn new(config: &Config) -> Arc<Self> {
        let mut config = config.clone();
        config.checks = config.checks.fresh();
        config.sections = config.sections.fresh();
        if !config.builtin_formats {
            config.formats.remove_builtins();
        }
        config.access.counter = config
            .access
            .counter
            .as_ref()
            .map(|counter| Arc::new(CallerCounter::new(counter.window())));
        let dependencies = dependencies(&config);
        let verdicts = Verdicts::new(&config);
        let past = Past::new(&config);
        Arc::new(Self {
            past,
            dependencies,
            verdicts,
            config,
            recorder: Arc::new(Recorder::new()),
            lifecycle: Lifecycle::default(),
            watcher: Arc::default(),
            started: *PROCESS_START.get_or_init(Instant::now),
        })
    }
}

/// Each component that depends on others, with their names: checked to
/// name only registered components, without cycles.
///
/// # Panics
///
/// On a dependency on an unknown component, or a cycle, naming them: a
/// configuration error found when the layer is built.
fn dependencies(config: &Config) -> Vec<(String, Vec<String>)> {
    let declared: Vec<(&str, &[String])> = config
        .checks
        .entries
        .iter()
        .map(|e| (e.spec.name.as_str(), e.spec.depends_on.as_slice()))
        .chain(
            config
                .pushed
                .iter()
                .map(|(name, p)| (name.as_str(), p.depends_on.as_slice())),
        )
        .collect();
    let known = |name: &str| declared.iter().any(|(n, _)| *n == name);
    for (name, needs) in &declared {
        for need in *needs {
            assert!(
                known(need),
                "HealthCheck::depends_on: `{name}` depends on `{need}`, which is not a registered \
                 check or pushed component"
            );
            assert!(
                need != name,
                "HealthCheck::depends_on: `{name}` depends on itself"
            );
        }
    }
    // A cycle: following dependencies from a component comes back to it.
    fn visit<'a>(
        name: &'a str,
        declared: &[(&'a str, &'a [String])],
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) {
        if done.contains(&name) {
            return;
        }
        if let Some(at) = path.iter().position(|n| *n == name) {
            panic!(
                "HealthCheck::depends_on: a cycle: {} -> {name}",
                path[at..].join(" -> ")
            );
        }
        path.push(name);
        let needs = declared.iter().find(|(n, _)| *n == name).map(|(_, d)| *d);
        for need in needs.unwrap_or_default() {
            visit(need, declared, path, done);
        }
        path.pop();
        done.push(name);
    }
    let mut done = Vec::new();
    for (name, _) in &declared {
        visit(name, &declared, &mut Vec::new(), &mut done);
    }
    declared
        .into_iter()
        .filter(|(_, needs)| !needs.is_empty())
        .map(|(name, needs)| (name.to_owned(), needs.to_vec()))
        .collect()
}
