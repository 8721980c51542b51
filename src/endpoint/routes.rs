//! The route table of the status endpoint: which requests are ours, what
//! each path below the status path is, and who may ask for it. Routing and
//! the OpenAPI document both read [`RESOURCES`], so they cannot disagree.

use crate::auth::Endpoint;
use crate::state::Config;

/// A resource served below the status path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resource {
    /// The full report, at the status path itself.
    Report,
    /// Liveness: the process answers; no dependency checks.
    Live,
    /// Readiness: critical checks, draining, startup, maintenance.
    Ready,
    /// Server-Sent Events of status changes.
    Watch,
    /// Prometheus metrics, when enabled.
    Metrics,
    /// The transition log.
    Transitions,
    /// The last day, minute by minute, with uptime and objectives.
    History,
    /// An SVG badge of the overall status.
    StatusBadge,
    /// An SVG badge of the uptime over the last day.
    UptimeBadge,
    /// The OpenAPI document, when enabled.
    OpenApi,
    /// One component by name: any other single segment.
    Component,
}

/// One row of the route table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResourceRoute {
    pub(crate) resource: Resource,
    /// The path segment below the status path; `None` for the status path
    /// itself and for `{component}`, which takes any other segment.
    pub(crate) segment: Option<&'static str>,
    /// Its operations' ids in the OpenAPI document, after `get` or `head`.
    pub(crate) operation: &'static str,
    /// What it is, in a few words (the OpenAPI summary).
    pub(crate) summary: &'static str,
    /// What it answers (the OpenAPI description).
    pub(crate) description: &'static str,
}

/// Every resource, in the order the OpenAPI document lists them.
pub(crate) const RESOURCES: [ResourceRoute; 11] = [
    ResourceRoute {
        resource: Resource::Report,
        segment: None,
        operation: "Status",
        summary: "Status report",
        description: "The overall status, identity, uptime, memory, traffic, latency and components of the service; callers without the details permission get only `status` and `timestamp`. `Accept: application/health+json` (or `format=ietf`) selects the IETF health check format.",
    },
    ResourceRoute {
        resource: Resource::Live,
        segment: Some("live"),
        operation: "Live",
        summary: "Liveness",
        description: "The process answers; no check runs.",
    },
    ResourceRoute {
        resource: Resource::Ready,
        segment: Some("ready"),
        operation: "Ready",
        summary: "Readiness",
        description: "Critical checks, draining, startup and maintenance (down while draining or before the startup checks pass); `reason` and `components` only for callers allowed to see details.",
    },
    ResourceRoute {
        resource: Resource::Watch,
        segment: Some("watch"),
        operation: "Watch",
        summary: "Status changes as Server-Sent Events",
        description: "A stream that does not end: the current status, then every change of the overall or (with details) a component's status.",
    },
    ResourceRoute {
        resource: Resource::Metrics,
        segment: Some("metrics"),
        operation: "Metrics",
        summary: "Prometheus metrics",
        description: "The report as Prometheus metrics; needs the details or the metrics permission (a scraper's key, which may see nothing else).",
    },
    ResourceRoute {
        resource: Resource::Transitions,
        segment: Some("transitions"),
        operation: "Transitions",
        summary: "Transition log",
        description: "The latest changes of the overall and each component's status (oldest first), flap counts over the last hour and how the notifiers' deliveries went; needs the details permission.",
    },
    ResourceRoute {
        resource: Resource::History,
        segment: Some("history"),
        operation: "History",
        summary: "History of the last day",
        description: "Per minute over the last 24 hours (oldest first): the overall status and each component's worst, the wrapped service's requests, errors, p50 and p99; uptime over the last hour and day; each service level objective's error budget left and burn rates; needs the details permission.",
    },
    ResourceRoute {
        resource: Resource::StatusBadge,
        segment: Some("badge.svg"),
        operation: "StatusBadge",
        summary: "Status badge",
        description: "An SVG badge of the overall status (the look of README badges), cacheable by badge proxies for 60 s; under the report's access rules, without details.",
    },
    ResourceRoute {
        resource: Resource::UptimeBadge,
        segment: Some("badge/uptime.svg"),
        operation: "UptimeBadge",
        summary: "Uptime badge",
        description: "An SVG badge of the uptime over the last 24 hours, cacheable by badge proxies for 300 s; under the report's access rules, without details.",
    },
    ResourceRoute {
        resource: Resource::OpenApi,
        segment: Some("openapi.json"),
        operation: "OpenApi",
        summary: "This OpenAPI document",
        description: "Open to everyone: it holds no health data.",
    },
    ResourceRoute {
        resource: Resource::Component,
        segment: None,
        operation: "Component",
        summary: "One component",
        description: "A check (run if its cached result is stale), a pushed component or `traffic`; needs the details permission.",
    },
];

/// The methods every resource answers; any other gets `405` with this `Allow`.
pub(crate) const ALLOWED_METHODS: &str = "GET, HEAD";

impl Resource {
    /// Whether `config` serves it. Below a status path of `/`, only the
    /// report is the endpoint's: everything else is the application's.
    pub(crate) fn served(self, config: &Config) -> bool {
        match self {
            Resource::Report => true,
            _ if config.path == "/" => false,
            Resource::Metrics => config.serve_metrics,
            Resource::OpenApi => config.serve_openapi,
            Resource::Live
            | Resource::Ready
            | Resource::Watch
            | Resource::Transitions
            | Resource::History
            | Resource::StatusBadge
            | Resource::UptimeBadge
            | Resource::Component => true,
        }
    }

    /// Whether it is made of details (component names, errors, figures):
    /// refused to callers who may not see details.
    pub(crate) fn details(self) -> bool {
        matches!(
            self,
            Resource::Metrics | Resource::Transitions | Resource::History | Resource::Component
        )
    }

    /// The access rules it is under; `None`: open to everyone (it holds no
    /// health data).
    pub(crate) fn access(self) -> Option<Endpoint> {
        match self {
            Resource::Live | Resource::Ready => Some(Endpoint::Probes),
            Resource::OpenApi => None,
            Resource::Report
            | Resource::Watch
            | Resource::Metrics
            | Resource::Transitions
            | Resource::History
            | Resource::StatusBadge
            | Resource::UptimeBadge
            | Resource::Component => Some(Endpoint::Report),
        }
    }
}

/// What a request on the status path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// A fixed resource.
    Fixed(Resource),
    /// One component by name (percent-decoded).
    Component(String),
    /// Anything else below the status path.
    Unknown,
}

impl Route {
    /// The resource it reaches (`None` for unknown paths).
    pub(crate) fn resource(&self) -> Option<Resource> {
        match self {
            Route::Fixed(resource) => Some(*resource),
            Route::Component(_) => Some(Resource::Component),
            Route::Unknown => None,
        }
    }

    /// The access rules of the route (`Report` for unknown paths, so an
    /// anonymous caller learns nothing about which names exist).
    pub(crate) fn access(&self) -> Option<Endpoint> {
        match self {
            Route::Fixed(resource) => resource.access(),
            Route::Component(_) | Route::Unknown => Some(Endpoint::Report),
        }
    }
}

/// Whether `path` is the status path `base` or below it: what [`route`]
/// answers, without the configuration (the middleware asks this of every
/// request that shares the prefix before it reaches for the state).
#[inline]
pub(crate) fn is_status_path(path: &str, base: &str) -> bool {
    match path.strip_prefix(base) {
        Some(rest) => rest.is_empty() || (base != "/" && rest.starts_with('/')),
        None => false,
    }
}

/// Matches a request path against the status path of `config`. The status
/// path itself, with or without trailing slashes, is the report; one
/// segment below it is a served resource or else a component name; deeper
/// paths are unknown. A resource that is not served (metrics off, say) is
/// just a component name. The query string is not part of `path`.
#[inline]
pub(crate) fn route(path: &str, config: &Config) -> Option<Route> {
    let base = config.path.as_str();
    if !is_status_path(path, base) {
        return None;
    }
    let rest = &path[base.len()..];
    if rest.is_empty() {
        return Some(Route::Fixed(Resource::Report));
    }
    let rest = &rest[1..];
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Some(Route::Fixed(Resource::Report));
    }
    let fixed = RESOURCES
        .iter()
        .find(|r| r.segment == Some(rest) && r.resource.served(config));
    if let Some(r) = fixed {
        return Some(Route::Fixed(r.resource));
    }
    if rest.contains('/') {
        return Some(Route::Unknown);
    }
    Some(
        match percent_encoding::percent_decode_str(rest).decode_utf8() {
            Ok(name) => Route::Component(name.into_owned()),
            Err(_) => Route::Unknown,
        },
    )
}

/// Options from the query string.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub(crate) verbose: bool,
    pub(crate) exclude: Vec<String>,
    /// Every pair, for formats.
    pub(crate) pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Self {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            q.pairs.push((key.to_string(), value.to_string()));
            match &*key {
                "verbose" => q.verbose = !matches!(&*value, "0" | "false"),
                "exclude" => q.exclude.extend(
                    value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &str) -> Config {
        let mut c = Config::new("test".into());
        c.path = path.into();
        c
    }

    #[test]
    fn the_path_test_answers_as_the_router_does() {
        // The middleware asks `is_status_path` before it reaches for the
        // state: it must never say no where `route` says yes, nor yes
        // where `route` says no.
        let paths = [
            "/",
            "/status",
            "/status/",
            "/status//",
            "/status/db",
            "/status/a/b",
            "/statuses",
            "/statusx/db",
            "/stat",
            "/hello",
            "/api/status",
            "",
        ];
        for base in ["/status", "/", "/ops/health"] {
            let c = config(base);
            for path in paths
                .iter()
                .copied()
                .chain(["/ops/health/live", "/ops/healthz"])
            {
                assert_eq!(
                    is_status_path(path, base),
                    route(path, &c).is_some(),
                    "{path} under {base}"
                );
            }
        }
        assert!(!is_status_path("/statuses", "/status"));
        assert!(!is_status_path("/hello", "/"));
        assert!(is_status_path("/", "/"));
    }

    #[test]
    fn matches_the_path_with_or_without_slash() {
        let c = config("/status");
        let fixed = |r| Some(Route::Fixed(r));
        assert_eq!(route("/status", &c), fixed(Resource::Report));
        assert_eq!(route("/status/", &c), fixed(Resource::Report));
        assert_eq!(route("/status//", &c), fixed(Resource::Report));
        assert_eq!(route("/status/live", &c), fixed(Resource::Live));
        assert_eq!(route("/status/ready/", &c), fixed(Resource::Ready));
        assert_eq!(route("/status/db", &c), Some(Route::Component("db".into())));
        assert_eq!(
            route("/status/a%20b", &c),
            Some(Route::Component("a b".into()))
        );
        assert_eq!(route("/status/a/b", &c), Some(Route::Unknown));
        assert_eq!(route("/statusx", &c), None);
        assert_eq!(route("/", &c), None);
        let root = config("/");
        assert_eq!(route("/", &root), fixed(Resource::Report));
        assert_eq!(route("/x", &root), None);
    }

    #[test]
    fn resources_that_are_off_are_component_names() {
        let mut c = config("/status");
        assert_eq!(
            route("/status/metrics", &c),
            Some(Route::Component("metrics".into()))
        );
        c.serve_metrics = true;
        c.serve_openapi = true;
        assert_eq!(
            route("/status/metrics", &c),
            Some(Route::Fixed(Resource::Metrics))
        );
        assert_eq!(
            route("/status/openapi.json", &c),
            Some(Route::Fixed(Resource::OpenApi))
        );
    }
}
