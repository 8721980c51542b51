//! An OpenAPI 3.1 document of the status endpoints a layer serves.
//!
//! [`StatusLayer::openapi`](crate::StatusLayer::openapi) returns it as a
//! value to merge into an API's own document; with
//! [`serve_openapi`](crate::StatusLayer::serve_openapi) it is also served at
//! `PATH/openapi.json`.
//!
//! The document describes the layer as configured, and only what the
//! endpoint really answers:
//!
//! - the paths served below the status path (`PATH`, `PATH/live`,
//!   `PATH/ready`, `PATH/watch`, `PATH/metrics` and `PATH/openapi.json`
//!   when enabled, `PATH/{component}`; a status path of `/` serves only the
//!   report), each with `GET` and `HEAD` (the same responses, without
//!   bodies). Any other method gets `405` with `Allow: GET, HEAD`
//!   (`#/components/responses/MethodNotAllowed`, named in each path's
//!   description: OpenAPI has no place for methods a path does not offer);
//! - for each operation, every status code it can answer: the configured
//!   code of each overall status ([`http_status`](crate::StatusLayer::http_status)),
//!   `400` for unknown formats, `401`/`403`/`503` from API keys, `404` for
//!   unknown components, with `Retry-After`, `WWW-Authenticate` and
//!   `Cache-Control` headers where they are sent;
//! - body schemas that match the bodies exactly (no other properties): the
//!   full report, the minimal `{status, timestamp}` one for callers without
//!   details, `application/health+json`, probes, components, errors.
//!
//! Formats registered with a media type of their own are documented with
//! that media type and an open schema; a replaced default format
//! ([`default_format`](crate::StatusLayer::default_format)) cannot be seen
//! from here, so `application/json` keeps the built-in report's schema.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::responses::{ErrorCode, BEARER_CHALLENGE};
use super::routes::ALLOWED_METHODS;
use crate::auth::{ApiKeys, Endpoint, Visibility};
use crate::format::{IETF_MEDIA_TYPE, PROMETHEUS_MEDIA_TYPE};
use crate::report::MAX_ERROR_LEN;
use crate::report::{Status, TRAFFIC_COMPONENT};
use crate::state::Config;

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";
const ALL_STATUSES: [Status; 4] = [
    Status::Ok,
    Status::Degraded,
    Status::Down,
    Status::Maintenance,
];
fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema` with its `status` property limited to `values`.
fn with_status(schema: Value, values: Vec<&str>) -> Value {
    json!({ "allOf": [schema, { "properties": { "status": { "enum": values } } }] })
}

fn error_schema(code: &str) -> Value {
    json!({ "allOf": [schema_ref("Error"), { "properties": { "code": { "const": code } } }] })
}

fn status_words(statuses: &[Status]) -> Vec<&'static str> {
    statuses.iter().map(|s| s.as_str()).collect()
}

fn ietf_words(statuses: &[Status]) -> Vec<&'static str> {
    let mut words: Vec<&'static str> = statuses
        .iter()
        .map(|s| crate::format::ietf_word(*s))
        .collect();
    words.dedup();
    words
}

fn list(statuses: &[Status]) -> String {
    let words = status_words(statuses);
    match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// One way an operation can answer.
struct Outcome {
    code: StatusCode,
    description: String,
    content: Vec<(String, Value)>,
    headers: Vec<(&'static str, Value)>,
}

impl Outcome {
    fn new(code: StatusCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            content: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn content(mut self, media_type: &str, schema: Value) -> Self {
        self.content.push((media_type.to_owned(), schema));
        self
    }

    fn header(mut self, name: &'static str, header: Value) -> Self {
        self.headers.push((name, header));
        self
    }

    fn error(code: StatusCode, error_code: &str, description: &str) -> Self {
        Self::new(code, description).content(JSON, error_schema(error_code))
    }
}

/// Outcomes that share a status code, merged into one Response Object.
#[derive(Default)]
struct Group<'a> {
    count: usize,
    descriptions: Vec<&'a str>,
    content: BTreeMap<&'a str, Vec<&'a Value>>,
    /// Each header with the number of outcomes that always send it.
    headers: BTreeMap<&'static str, (&'a Value, usize)>,
}

/// The Responses Object of `outcomes`; `body` is false for `HEAD`.
fn responses(outcomes: &[Outcome], cache_control: &Value, body: bool) -> Value {
    let mut groups: BTreeMap<u16, Group<'_>> = BTreeMap::new();
    for outcome in outcomes {
        let group = groups.entry(outcome.code.as_u16()).or_default();
        group.count += 1;
        if !group.descriptions.contains(&outcome.description.as_str()) {
            group.descriptions.push(&outcome.description);
        }
        for (media_type, schema) in &outcome.content {
            let schemas = group.content.entry(media_type).or_default();
            if !schemas.contains(&schema) {
                schemas.push(schema);
            }
        }
        for (name, header) in &outcome.headers {
            let entry = group.headers.entry(name).or_insert((header, 0));
            if header["required"] == Value::Bool(true) {
                entry.1 += 1;
            }
        }
    }
    let mut out = Map::new();
    for (code, group) in groups {
        let mut headers = Map::new();
        headers.insert(
            "Cache-Control".into(),
            json!({ "description": "Status responses are never cached.", "required": true, "schema": cache_control }),
        );
        for (name, (header, always)) in group.headers {
            let mut header = header.clone();
            header["required"] = Value::Bool(always == group.count);
            headers.insert(name.into(), header);
        }
        let mut response = Map::new();
        response.insert("description".into(), group.descriptions.join(" ").into());
        response.insert("headers".into(), Value::Object(headers));
        if body && !group.content.is_empty() {
            let content: Map<String, Value> = group
                .content
                .into_iter()
                .map(|(media_type, schemas)| {
                    let schema = match schemas.as_slice() {
                        [one] => (*one).clone(),
                        many => json!({ "oneOf": many }),
                    };
                    (media_type.to_owned(), json!({ "schema": schema }))
                })
                .collect();
            response.insert("content".into(), Value::Object(content));
        }
        out.insert(code.to_string(), Value::Object(response));
    }
    Value::Object(out)
}

/// What the configuration says about callers and keys.
struct Facts<'a> {
    config: &'a Config,
    keys: Option<&'a ApiKeys>,
    /// Some callers see details.
    details: bool,
    /// Some callers do not.
    redacted: bool,
    visibility: Visibility,
    /// Named formats with a media type of their own, and whether any
    /// format besides the built-in ones is registered.
    custom_media_types: Vec<String>,
    custom_formats: bool,
}

impl<'a> Facts<'a> {
    fn new(config: &'a Config) -> Self {
        let keys = config.access.keys.as_ref();
        let visibility = config.access.details.unwrap_or(if keys.is_some() {
            Visibility::WhenAuthorized
        } else {
            Visibility::Always
        });
        let (details, redacted) = match visibility {
            Visibility::Always => (true, false),
            Visibility::Never => (false, true),
            Visibility::WhenAuthorized => (keys.is_some(), true),
        };
        let mut custom_media_types = Vec::new();
        let mut custom_formats = false;
        for (name, registered) in &config.formats.by_name {
            if name == crate::format::DEFAULT || name == "ietf" {
                continue;
            }
            custom_formats = true;
            if let Some(media_type) = &registered.media_type {
                if !custom_media_types.contains(media_type) {
                    custom_media_types.push(media_type.clone());
                }
            }
        }
        Self {
            config,
            keys,
            details,
            redacted,
            visibility,
            custom_media_types,
            custom_formats,
        }
    }

    /// Whether requests to `endpoint` must carry a key.
    fn required(&self, endpoint: Endpoint) -> bool {
        self.keys.is_some() && self.config.access.required(endpoint)
    }

    /// The overall statuses answered with each HTTP status.
    fn codes(&self, statuses: &[Status]) -> BTreeMap<u16, (StatusCode, Vec<Status>)> {
        let mut codes: BTreeMap<u16, (StatusCode, Vec<Status>)> = BTreeMap::new();
        for &status in statuses {
            let code = self.config.code(status);
            codes
                .entry(code.as_u16())
                .or_insert_with(|| (code, Vec::new()))
                .1
                .push(status);
        }
        codes
    }

    fn unauthorized(&self, description: &str) -> Outcome {
        let outcome = Outcome::error(StatusCode::UNAUTHORIZED, "unauthorized", description);
        if self.keys.is_some_and(|k| k.bearer) {
            outcome.header(
                "WWW-Authenticate",
                json!({
                    "description": "The Bearer challenge.",
                    "required": true,
                    "schema": { "type": "string", "const": BEARER_CHALLENGE }
                }),
            )
        } else {
            outcome
        }
    }

    /// Refusals decided from the key, before any work.
    fn access(&self, endpoint: Endpoint) -> Vec<Outcome> {
        // Open probes answer every caller: unusable or permission-less keys
        // and failed lookups are served as anonymous.
        if self.keys.is_none() || (endpoint == Endpoint::Probes && !self.required(endpoint)) {
            return Vec::new();
        }
        let mut out = Vec::new();
        // Open probes ignore unusable keys; the report group never does.
        if self.required(endpoint) || endpoint == Endpoint::Report {
            out.push(self.unauthorized(if self.required(endpoint) {
                "The API key is missing, unknown or malformed."
            } else {
                "The API key is unknown or malformed (a request without one is answered)."
            }));
        }
        out.push(Outcome::error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The API key may not see the status.",
        ));
        out.push(Outcome::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "The API key lookup failed or timed out.",
        ));
        out
    }

    /// Refusals of resources that are details (components, metrics).
    fn details_refusals(&self) -> Vec<Outcome> {
        let mut out = Vec::new();
        if !self.redacted {
            return out;
        }
        let key_unlocks = self.keys.is_some() && self.visibility == Visibility::WhenAuthorized;
        if key_unlocks && !self.required(Endpoint::Report) {
            out.push(self.unauthorized("Details need an API key with the details permission."));
        }
        out.push(Outcome::error(
            StatusCode::FORBIDDEN,
            "forbidden",
            if key_unlocks {
                "The API key may not see details."
            } else {
                "Details are not shown to anyone."
            },
        ));
        out
    }

    fn retry_after(&self) -> Value {
        json!({
            "description": "In maintenance with an estimated completion: whole seconds until then (at least 1).",
            "required": false,
            "schema": { "type": "integer", "minimum": 1 }
        })
    }

    fn report_outcomes(&self) -> Vec<Outcome> {
        let mut out = Vec::new();
        for (code, statuses) in self.codes(&ALL_STATUSES).into_values() {
            let restricted = statuses.len() < ALL_STATUSES.len();
            let json = if restricted {
                with_status(schema_ref("Report"), status_words(&statuses))
            } else {
                schema_ref("Report")
            };
            let ietf = if restricted {
                with_status(schema_ref("HealthResponse"), ietf_words(&statuses))
            } else {
                schema_ref("HealthResponse")
            };
            let mut outcome = Outcome::new(
                code,
                format!("The report; overall status {}.", list(&statuses)),
            )
            .content(JSON, json)
            .content(IETF_MEDIA_TYPE, ietf);
            for media_type in &self.custom_media_types {
                // A registered format's body is its own: any schema.
                outcome.content.retain(|(m, _)| m != media_type);
                outcome = outcome.content(media_type, json!({}));
            }
            if code == StatusCode::SERVICE_UNAVAILABLE && statuses.contains(&Status::Maintenance) {
                outcome = outcome.header("Retry-After", self.retry_after());
            }
            out.push(outcome);
        }
        out.push(Outcome::error(
            StatusCode::BAD_REQUEST,
            "unknown_format",
            "No format of the name given in `format`.",
        ));
        out.extend(self.access(Endpoint::Report));
        out
    }

    fn live_outcomes(&self) -> Vec<Outcome> {
        let mut out = vec![
            Outcome::new(self.config.code(Status::Ok), "The process answers.")
                .content(JSON, schema_ref("Live")),
        ];
        out.extend(self.access(Endpoint::Probes));
        out
    }

    fn ready_outcomes(&self) -> Vec<Outcome> {
        let mut out = Vec::new();
        for (code, statuses) in self.codes(&ALL_STATUSES).into_values() {
            let schema = if statuses.len() < ALL_STATUSES.len() {
                with_status(schema_ref("Ready"), status_words(&statuses))
            } else {
                schema_ref("Ready")
            };
            let mut outcome = Outcome::new(
                code,
                format!(
                    "Readiness {} (down also while draining or before the startup checks pass).",
                    list(&statuses)
                ),
            )
            .content(JSON, schema);
            if code == StatusCode::SERVICE_UNAVAILABLE && statuses.contains(&Status::Maintenance) {
                outcome = outcome.header("Retry-After", self.retry_after());
            }
            out.push(outcome);
        }
        out.extend(self.access(Endpoint::Probes));
        out
    }

    fn component_outcomes(&self) -> Vec<Outcome> {
        let mut out = Vec::new();
        if self.details {
            let up = [Status::Ok, Status::Degraded, Status::Maintenance];
            out.push(
                Outcome::new(
                    StatusCode::OK,
                    format!("The component; its status {}.", list(&up)),
                )
                .content(
                    JSON,
                    with_status(schema_ref("NamedComponent"), status_words(&up)),
                ),
            );
            out.push(
                Outcome::new(StatusCode::SERVICE_UNAVAILABLE, "The component is down.").content(
                    JSON,
                    with_status(schema_ref("NamedComponent"), vec!["down"]),
                ),
            );
            out.push(Outcome::error(
                StatusCode::NOT_FOUND,
                "not_found",
                "No component of that name.",
            ));
        }
        out.extend(self.details_refusals());
        out.extend(self.access(Endpoint::Report));
        out
    }

    fn watch_outcomes(&self) -> Vec<Outcome> {
        let mut out = vec![Outcome::new(
            StatusCode::OK,
            "Server-Sent Events, without end: `event: status` with a `StatusChange` as `data`, first the current status, then one on every change the caller may see; a `: keep-alive` comment line after a quiet period.",
        )
        .content(
            EVENT_STREAM,
            json!({ "type": "string", "description": "`event: status` / `data: <StatusChange as JSON>` events and `: keep-alive` comments." }),
        )];
        out.extend(self.access(Endpoint::Report));
        out
    }

    fn metrics_outcomes(&self) -> Vec<Outcome> {
        let mut out = Vec::new();
        if self.details {
            out.push(
                Outcome::new(
                    StatusCode::OK,
                    "The report in Prometheus text format (0.0.4), whatever the health.",
                )
                .content(PROMETHEUS_MEDIA_TYPE, json!({ "type": "string" })),
            );
        }
        out.extend(self.details_refusals());
        out.extend(self.access(Endpoint::Report));
        out
    }

    fn openapi_outcomes(&self) -> Vec<Outcome> {
        vec![
            Outcome::new(StatusCode::OK, "This document (open to everyone).").content(
                JSON,
                json!({ "type": "object", "required": ["openapi", "info", "paths"] }),
            ),
        ]
    }

    fn security(&self, endpoint: Option<Endpoint>) -> Option<Value> {
        let keys = self.keys?;
        if !self.required(endpoint?) {
            return None;
        }
        let mut alternatives = Vec::new();
        if keys.header.is_some() {
            alternatives.push(json!({ "apiKey": [] }));
        }
        if keys.bearer {
            alternatives.push(json!({ "bearer": [] }));
        }
        (!alternatives.is_empty()).then_some(Value::Array(alternatives))
    }

    fn security_schemes(&self) -> Map<String, Value> {
        let mut schemes = Map::new();
        if let Some(keys) = self.keys {
            if let Some(header) = &keys.header {
                schemes.insert(
                    "apiKey".into(),
                    json!({ "type": "apiKey", "in": "header", "name": header.as_str(), "description": "An API key in its header (checked first)." }),
                );
            }
            if keys.bearer {
                schemes.insert(
                    "bearer".into(),
                    json!({ "type": "http", "scheme": "bearer", "description": "An API key as `Authorization: Bearer <key>`." }),
                );
            }
        }
        schemes
    }

    /// Names that address other resources, not components.
    fn reserved_names(&self) -> Vec<&'static str> {
        let mut names = vec!["live", "ready", "watch"];
        if self.config.serve_metrics {
            names.push("metrics");
        }
        if self.config.serve_openapi {
            names.push("openapi.json");
        }
        // Dot segments: clients resolve them away before sending.
        names.extend([".", ".."]);
        names
    }

    fn component_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .config
            .checks
            .entries
            .iter()
            .map(|e| e.spec.name.clone())
            .collect();
        if !self.config.traffic_rules.is_empty() {
            names.push(TRAFFIC_COMPONENT.to_owned());
        }
        names
    }
}

/// An operation of a path.
struct Route {
    id: &'static str,
    summary: &'static str,
    description: String,
    parameters: Vec<Value>,
    endpoint: Option<Endpoint>,
    outcomes: Vec<Outcome>,
    cache_control: Value,
}

fn path_item(facts: &Facts<'_>, route: &Route) -> Value {
    let operation = |method: &str, body: bool| {
        let mut op = json!({
            "operationId": format!("{method}{}", route.id),
            "summary": if body { route.summary.to_owned() } else { format!("{} (headers only)", route.summary) },
            "description": route.description,
            "tags": ["status"],
            "responses": responses(&route.outcomes, &route.cache_control, body),
        });
        if !route.parameters.is_empty() {
            op["parameters"] = Value::Array(route.parameters.clone());
        }
        if let Some(security) = facts.security(route.endpoint) {
            op["security"] = security;
        }
        op
    };
    json!({
        "summary": route.summary,
        "description": format!(
            "Only GET and HEAD: any other method is answered 405 with `Allow: {ALLOWED_METHODS}` (see `#/components/responses/MethodNotAllowed`)."
        ),
        "get": operation("get", true),
        "head": operation("head", false),
    })
}

fn exclude_parameter(description: &str) -> Value {
    json!({
        "name": "exclude",
        "in": "query",
        "description": description,
        "style": "form",
        "explode": true,
        "schema": { "type": "array", "items": { "type": "string" } }
    })
}

fn no_store() -> Value {
    json!({ "type": "string", "const": "no-store" })
}

fn routes(facts: &Facts<'_>) -> Vec<(String, Route)> {
    let config = facts.config;
    let base = config.path.as_str();
    let formats: Vec<&String> = config.formats.by_name.keys().collect();
    let report = Route {
        id: "Status",
        summary: "Status report",
        description: "The overall status, identity, uptime, memory, traffic, latency and components of the service; callers without the details permission get only `status` and `timestamp`. `Accept: application/health+json` (or `format=ietf`) selects the IETF health check format.".into(),
        parameters: vec![
            exclude_parameter("Components to leave out (neither run nor counted); repeated, or comma-separated."),
            json!({
                "name": "format",
                "in": "query",
                "description": "A registered format by name; `json` is the default format. Without it, `Accept` picks a format by media type.",
                "schema": { "type": "string", "enum": formats }
            }),
        ],
        endpoint: Some(Endpoint::Report),
        outcomes: facts.report_outcomes(),
        cache_control: if facts.custom_formats {
            json!({ "type": "string", "description": "`no-store` unless a custom format sets its own." })
        } else {
            no_store()
        },
    };
    let mut out = Vec::new();
    out.push((base.to_owned(), report));
    if base == "/" {
        // Below a status path of `/`, nothing else is the endpoint's.
        return out;
    }
    out.push((
        format!("{base}/live"),
        Route {
            id: "Live",
            summary: "Liveness",
            description: "The process answers; no check runs.".into(),
            parameters: Vec::new(),
            endpoint: Some(Endpoint::Probes),
            outcomes: facts.live_outcomes(),
            cache_control: no_store(),
        },
    ));
    out.push((
        format!("{base}/ready"),
        Route {
            id: "Ready",
            summary: "Readiness",
            description: "Critical checks, draining, startup and maintenance; `reason` and `components` only for callers allowed to see details.".into(),
            parameters: vec![
                exclude_parameter("Critical components to leave out; repeated, or comma-separated."),
                json!({
                    "name": "verbose",
                    "in": "query",
                    "description": "Adds the critical components (callers with details only). Any value but `0` or `false` turns it on, an empty one too.",
                    "schema": { "type": "boolean" }
                }),
            ],
            endpoint: Some(Endpoint::Probes),
            outcomes: facts.ready_outcomes(),
            cache_control: no_store(),
        },
    ));
    out.push((
        format!("{base}/watch"),
        Route {
            id: "Watch",
            summary: "Status changes as Server-Sent Events",
            description: "A stream that does not end: the current status, then every change of the overall or (with details) a component's status.".into(),
            parameters: Vec::new(),
            endpoint: Some(Endpoint::Report),
            outcomes: facts.watch_outcomes(),
            cache_control: no_store(),
        },
    ));
    if config.serve_metrics {
        out.push((
            format!("{base}/metrics"),
            Route {
                id: "Metrics",
                summary: "Prometheus metrics",
                description: "The report as Prometheus metrics; needs the details permission."
                    .into(),
                parameters: Vec::new(),
                endpoint: Some(Endpoint::Report),
                outcomes: facts.metrics_outcomes(),
                cache_control: no_store(),
            },
        ));
    }
    if config.serve_openapi {
        out.push((
            format!("{base}/openapi.json"),
            Route {
                id: "OpenApi",
                summary: "This OpenAPI document",
                description: "Open to everyone: it holds no health data.".into(),
                parameters: Vec::new(),
                endpoint: None,
                outcomes: facts.openapi_outcomes(),
                cache_control: no_store(),
            },
        ));
    }
    let mut name = json!({
        "type": "string",
        "minLength": 1,
        "not": { "enum": facts.reserved_names() }
    });
    // The document is public: names are details unless everyone sees them.
    let examples = if facts.redacted {
        Vec::new()
    } else {
        facts.component_names()
    };
    if !examples.is_empty() {
        name["examples"] = json!(examples);
    }
    out.push((
        format!("{base}/{{component}}"),
        Route {
            id: "Component",
            summary: "One component",
            description: "A check (run if its cached result is stale), a pushed component or `traffic`; needs the details permission.".into(),
            parameters: vec![json!({
                "name": "component",
                "in": "path",
                "required": true,
                "description": "The component's name, percent-encoded. The names of the other resources below the status path reach those.",
                "schema": name
            })],
            endpoint: Some(Endpoint::Report),
            outcomes: facts.component_outcomes(),
            cache_control: no_store(),
        },
    ));
    out
}

fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time", "description": "RFC 3339, UTC, milliseconds." })
}

fn count() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn number() -> Value {
    json!({ "type": "number", "minimum": 0 })
}

/// Properties of a component, with `name` first when it is named.
fn component_schema(named: bool) -> Value {
    let mut properties = Map::new();
    let mut required = vec!["status", "critical", "duration_ms", "last_checked"];
    if named {
        properties.insert("name".into(), json!({ "type": "string" }));
        required.insert(0, "name");
    }
    properties.insert("status".into(), schema_ref("Status"));
    properties.insert(
        "type".into(),
        json!({ "type": "string", "description": "Kind of component, when configured." }),
    );
    properties.insert(
        "critical".into(),
        json!({ "type": "boolean", "description": "A failure takes the service down rather than degrading it." }),
    );
    properties.insert(
        "error".into(),
        json!({ "type": "string", "maxLength": MAX_ERROR_LEN, "description": "Why it is not healthy." }),
    );
    properties.insert("duration_ms".into(), number());
    properties.insert("last_checked".into(), timestamp());
    properties.insert(
        "details".into(),
        json!({ "description": "What the check reported (any JSON)." }),
    );
    properties.insert(
        "observed_value".into(),
        json!({ "description": "A measured value (any JSON)." }),
    );
    properties.insert("observed_unit".into(), json!({ "type": "string" }));
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": false
    })
}

fn full_report_schema(facts: &Facts<'_>) -> Value {
    let config = facts.config;
    let mut required = vec![
        "status",
        "environment",
        "timestamp",
        "uptime_seconds",
        "requests",
        "response_time_ms",
        "status_requests",
    ];
    let mut properties = Map::new();
    properties.insert("status".into(), schema_ref("Status"));
    if config.service.is_some() {
        properties.insert("service".into(), json!({ "type": "string" }));
        required.push("service");
    }
    if config.version.is_some() {
        properties.insert("version".into(), json!({ "type": "string" }));
        required.push("version");
    }
    properties.insert("environment".into(), json!({ "type": "string" }));
    properties.insert("timestamp".into(), timestamp());
    properties.insert("uptime_seconds".into(), count());
    properties.insert("memory".into(), schema_ref("Memory"));
    properties.insert("requests".into(), schema_ref("Traffic"));
    properties.insert("response_time_ms".into(), schema_ref("Latency"));
    properties.insert("status_requests".into(), count());
    properties.insert(
        "components".into(),
        json!({
            "type": "object",
            "description": "Each component by name; left out when there is none.",
            "minProperties": 1,
            "additionalProperties": schema_ref("Component")
        }),
    );
    properties.insert("notice".into(), schema_ref("Notice"));
    properties.insert(
        "draining".into(),
        json!({ "type": "boolean", "const": true, "description": "Present only while draining." }),
    );
    if facts.keys.is_some() {
        properties.insert("caller".into(), schema_ref("Caller"));
        if facts.required(Endpoint::Report) {
            required.push("caller");
        }
    }
    let mut sections: Vec<&str> = config
        .sections
        .entries
        .iter()
        .map(|e| e.spec.name.as_str())
        .collect();
    sections.extend(config.caller_sections.iter().map(|(name, _)| name.as_str()));
    if !sections.is_empty() && facts.redacted {
        // The document is public: section names are details here.
        properties.insert(
            "sections".into(),
            json!({
                "type": "object",
                "description": "Custom sections by name (any JSON).",
                "additionalProperties": true
            }),
        );
        required.push("sections");
    } else if !sections.is_empty() {
        let each: Map<String, Value> = sections
            .iter()
            .map(|name| ((*name).to_owned(), json!({})))
            .collect();
        properties.insert(
            "sections".into(),
            json!({
                "type": "object",
                "description": "Custom sections by name (any JSON).",
                "required": sections,
                "properties": each,
                "additionalProperties": false
            }),
        );
        required.push("sections");
    }
    json!({
        "type": "object",
        "description": "The report, as callers with the details permission see it.",
        "required": required,
        "properties": properties,
        "additionalProperties": false
    })
}

fn caller_schema(facts: &Facts<'_>) -> Value {
    let mut properties = Map::new();
    properties.insert("name".into(), json!({ "type": "string" }));
    if facts.config.access.counter.is_some() {
        properties.insert(
            "requests_in_window".into(),
            json!({ "type": "integer", "minimum": 0, "description": "Requests with this caller's key in the current window." }),
        );
        properties.insert("window_ends".into(), timestamp());
    }
    json!({
        "type": "object",
        "description": "Who asked: the key's identity, its attributes (any JSON, set in code) beside `name`.",
        "required": ["name"],
        "properties": properties,
        "additionalProperties": true
    })
}

fn schemas(facts: &Facts<'_>) -> Value {
    let report = match (facts.details, facts.redacted) {
        (true, true) => json!({
            "description": "The full report for callers with the details permission, else the minimal one.",
            "oneOf": [schema_ref("FullReport"), schema_ref("MinimalReport")]
        }),
        (true, false) => schema_ref("FullReport"),
        _ => schema_ref("MinimalReport"),
    };
    json!({
        "Status": {
            "type": "string",
            "enum": status_words(&ALL_STATUSES),
            "description": "Overall or component health, best to worst; maintenance is set by the operator."
        },
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": { "type": "string", "description": "Human-readable message." },
                "code": { "type": "string", "enum": ErrorCode::ALL.map(ErrorCode::as_str), "description": "Machine-readable code." }
            },
            "additionalProperties": false
        },
        "Live": {
            "type": "object",
            "required": ["status", "timestamp"],
            "properties": {
                "status": { "type": "string", "const": "ok" },
                "timestamp": timestamp()
            },
            "additionalProperties": false
        },
        "Ready": {
            "type": "object",
            "required": ["status", "timestamp"],
            "properties": {
                "status": schema_ref("Status"),
                "timestamp": timestamp(),
                "reason": { "type": "string", "description": "Why not ready (maintenance, draining, starting), for callers with details." },
                "components": {
                    "type": "object",
                    "description": "The critical components, with `verbose` and details.",
                    "additionalProperties": schema_ref("Component")
                }
            },
            "additionalProperties": false
        },
        "Component": component_schema(false),
        "NamedComponent": component_schema(true),
        "Report": report,
        "MinimalReport": {
            "type": "object",
            "description": "The report as callers without the details permission see it.",
            "required": ["status", "timestamp"],
            "properties": { "status": schema_ref("Status"), "timestamp": timestamp() },
            "additionalProperties": false
        },
        "FullReport": full_report_schema(facts),
        "Memory": {
            "type": "object",
            "required": ["rss_bytes", "virtual_bytes"],
            "properties": { "rss_bytes": count(), "virtual_bytes": count() },
            "additionalProperties": false
        },
        "Traffic": {
            "type": "object",
            "description": "Requests of the wrapped service: counts since start, rates over the recent window.",
            "required": ["total", "in_flight", "errors", "aborted", "by_class", "window_seconds", "window_total", "rate_per_second", "error_rate"],
            "properties": {
                "total": count(),
                "in_flight": count(),
                "errors": count(),
                "aborted": count(),
                "by_class": {
                    "type": "object",
                    "propertyNames": { "enum": ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] },
                    "additionalProperties": count()
                },
                "window_seconds": number(),
                "window_total": count(),
                "rate_per_second": number(),
                "error_rate": { "type": "number", "minimum": 0, "maximum": 1 }
            },
            "additionalProperties": false
        },
        "Latency": {
            "type": "object",
            "description": "Response times over the recent window, in milliseconds.",
            "required": ["count", "mean", "p50", "p90", "p99", "max"],
            "properties": {
                "count": count(),
                "mean": number(),
                "p50": number(),
                "p90": number(),
                "p99": number(),
                "max": number()
            },
            "additionalProperties": false
        },
        "Notice": {
            "type": "object",
            "required": ["message"],
            "properties": { "message": { "type": "string" }, "estimated_completion": timestamp() },
            "additionalProperties": false
        },
        "Caller": caller_schema(facts),
        "StatusChange": {
            "type": "object",
            "description": "The `data` of a watch event.",
            "required": ["status"],
            "properties": {
                "status": schema_ref("Status"),
                "components": { "type": "object", "additionalProperties": schema_ref("Status") }
            },
            "additionalProperties": false
        },
        "HealthResponse": {
            "type": "object",
            "description": "application/health+json (draft-inadarei-api-health-check); callers without details get only `status`.",
            "required": ["status"],
            "properties": {
                "status": { "type": "string", "enum": ["pass", "warn", "fail"] },
                "version": { "type": "string" },
                "releaseId": { "type": "string" },
                "notes": { "type": "array", "items": { "type": "string" } },
                "output": { "type": "string" },
                "serviceId": { "type": "string" },
                "description": { "type": "string" },
                "checks": {
                    "type": "object",
                    "additionalProperties": { "type": "array", "items": schema_ref("HealthCheckItem") }
                }
            },
            "additionalProperties": false
        },
        "HealthCheckItem": {
            "type": "object",
            "required": ["status", "time"],
            "properties": {
                "componentId": { "type": "string" },
                "componentType": { "type": "string" },
                "observedValue": {},
                "observedUnit": { "type": "string" },
                "status": { "type": "string", "enum": ["pass", "warn", "fail"] },
                "time": timestamp(),
                "output": { "type": "string" }
            },
            "additionalProperties": false
        }
    })
}

/// Builds the document for `config`.
pub(crate) fn document(config: &Config) -> Value {
    let facts = Facts::new(config);
    let mut paths = Map::new();
    for (path, route) in routes(&facts) {
        paths.insert(path, path_item(&facts, &route));
    }
    let mut components = Map::new();
    components.insert("schemas".into(), schemas(&facts));
    components.insert(
        "responses".into(),
        json!({
            "MethodNotAllowed": {
                "description": "Any method but GET and HEAD, on every path of the endpoint.",
                "headers": {
                    "Allow": { "required": true, "schema": { "type": "string", "const": ALLOWED_METHODS } },
                    "Cache-Control": { "required": true, "schema": no_store() }
                },
                "content": { JSON: { "schema": error_schema("method_not_allowed") } }
            }
        }),
    );
    let schemes = facts.security_schemes();
    if !schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(schemes));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} status", config.service.as_deref().unwrap_or("service")),
            "version": config.version.as_deref().unwrap_or("0.0.0"),
            "description": "The status endpoints of the service (tower-status), as configured."
        },
        "tags": [{ "name": "status", "description": "Health and status of the service." }],
        "paths": paths,
        "components": components
    })
}

/// A string in RFC 3339, as [`Timestamp`](crate::report::Timestamp) serializes.
impl schemars::JsonSchema for crate::report::Timestamp {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339, UTC, milliseconds."
        })
    }
}
