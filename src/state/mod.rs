//! The state of a built layer: its frozen configuration, the traffic
//! recorder, the run-time lifecycle (pushed components, draining,
//! maintenance), the status watcher, and the collection of a report from
//! all of them.
//!
//! Everything a consumer of a layer reads (the endpoint, [`StatusWatch`],
//! the gRPC bridge, [`report`](crate::StatusHandle::report)) reads one
//! [`Shared`], made once by [`StatusLayer::build`](crate::StatusLayer::build):
//! there is no second copy of the configuration to drift from.

mod collect;
mod lifecycle;
pub(crate) mod section;
mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::auth::{Access, CallerCounter};
use crate::check::{Checks, TrafficRule};
use crate::format::{ErrorFormat, Formats};
use crate::recorder::Recorder;
use crate::report::{Component, Status};

pub(crate) use collect::{collect, collect_parts, traffic_only, Selection};
pub(crate) use lifecycle::Lifecycle;
pub(crate) use section::CallerSection;
pub(crate) use watch::{subscribe, Watcher};
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
    /// What each probe adds for the systems that read it (none by default).
    pub(crate) consumer_signals: crate::format::SignalsByProbe,
}

/// The settings of a pushed component ([`HealthCheck::pushed`](crate::check::HealthCheck::pushed)).
#[derive(Clone, Debug)]
pub(crate) struct PushedSettings {
    pub(crate) component_type: Option<String>,
    pub(crate) critical: bool,
}

impl Default for PushedSettings {
    /// A component pushed without being declared: critical, no type.
    fn default() -> Self {
        Self {
            component_type: None,
            critical: true,
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
            consumer_signals: crate::format::SignalsByProbe::default(),
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
        Arc::new(Self {
            config,
            recorder: Arc::new(Recorder::new()),
            lifecycle: Lifecycle::default(),
            watcher: Arc::default(),
            started: *PROCESS_START.get_or_init(Instant::now),
        })
    }
}
