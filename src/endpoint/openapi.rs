//! The OpenAPI 3.1 document of the status endpoints a layer serves, as
//! configured: [`StatusHandle::openapi`](crate::StatusHandle::openapi),
//! and `PATH/openapi.json` with
//! [`serve_openapi`](crate::StatusLayer::serve_openapi).
//!
//! Nothing in it is written twice. The paths are the rows of the route
//! table that `Resource::served` keeps (`GET` and `HEAD`; other methods get
//! `#/components/responses/MethodNotAllowed`); security and refusals come
//! from `Resource::access` and the layer's `Access`, as `endpoint::respond`
//! decides them; body schemas are derived from the serde types with
//! `schemars` (see [`as_serialized`]). Written here is only how the layer
//! narrows them: the statuses each HTTP status carries, the minimal report
//! for callers without details, component-name examples only when everyone
//! sees details, an open schema for formats registered with a media type of
//! their own, `application/health+json`, whose types are private to its
//! format, and the codes and headers each probe's consumer signals add. A
//! replaced default format cannot be seen from here: `application/json`
//! keeps the built-in report's schema.

use std::borrow::Cow;
use std::collections::BTreeMap;

use http::StatusCode;
use schemars::generate::SchemaSettings;
use schemars::transform::transform_subschemas;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::handlers::Probe;
use super::responses::{ErrorBody, ErrorCode, BEARER_CHALLENGE};
use super::routes::{Resource, ResourceRoute, ALLOWED_METHODS, RESOURCES};
use super::signals;
use crate::auth::{Endpoint, Visibility};
use crate::format::{
    ietf_word, Probe as Answer, ENVOY_DEGRADED_HEADER, IETF_MEDIA_TYPE, MAX_WEIGHT,
    PROMETHEUS_MEDIA_TYPE, WEIGHT_HEADER,
};
use crate::report::{Status, Timestamp, Wire, TRAFFIC_COMPONENT};
use crate::state::{Config, StatusChange};

const JSON: &str = "application/json";
const ALL_STATUSES: [Status; 4] = [
    Status::Ok,
    Status::Degraded,
    Status::Down,
    Status::Maintenance,
];

/// Builds the document for `config`.
pub(crate) fn document(config: &Config) -> Value {
    let doc = Doc::new(config);
    let base = config.path.as_str();
    let mut paths = Map::new();
    for route in RESOURCES.iter().filter(|r| r.resource.served(config)) {
        let path = match (route.resource, route.segment) {
            (Resource::Report, _) => base.to_owned(),
            (_, Some(segment)) => format!("{base}/{segment}"),
            (_, None) => format!("{base}/{{component}}"),
        };
        paths.insert(path, doc.path_item(route));
    }
    let mut components = json!({
        "schemas": doc.schemas(),
        "responses": {
            "MethodNotAllowed": {
                "description": "Any method but GET and HEAD, on every path of the endpoint.",
                "headers": {
                    "Allow": { "required": true, "schema": { "type": "string", "const": ALLOWED_METHODS } },
                    "Cache-Control": { "required": true, "schema": no_store() }
                },
                "content": { JSON: { "schema": error_schema(ErrorCode::MethodNotAllowed) } }
            }
        }
    });
    let schemes = doc.security_schemes();
    if !schemes.is_empty() {
        components["securitySchemes"] = Value::Object(schemes);
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

// ---------------------------------------------------------------------------
// Body schemas
// ---------------------------------------------------------------------------

/// A string in RFC 3339, as [`Timestamp`] serializes.
impl JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339, UTC, milliseconds."
        })
    }
}

/// Makes a derived schema say what serde writes: an object has no other
/// properties unless it says so (a flattened map does); a property serde
/// may leave out (`skip_serializing_if`, here `Option::is_none` and empty
/// collections) is never `null`; a description is the first paragraph of
/// the Rust docs, without rustdoc link targets.
fn as_serialized(schema: &mut Schema) {
    transform_subschemas(&mut as_serialized, schema);
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::String(text)) = object.get_mut("description") {
        *text = first_paragraph(text);
    }
    let required = object.get("required").cloned().unwrap_or(json!([]));
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        if !required
            .as_array()
            .is_some_and(|r| r.contains(&json!(name)))
        {
            never_null(property);
        }
    }
    object
        .entry("additionalProperties")
        .or_insert(Value::Bool(false));
}

/// `schema` without its `null` alternative.
fn never_null(schema: &mut Value) {
    let Some(schema) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(alternatives)) = schema.get_mut("anyOf") {
        alternatives.retain(|s| s["type"] != "null");
        if let [Value::Object(only)] = alternatives.as_slice() {
            let only = only.clone();
            schema.remove("anyOf");
            for (key, value) in only {
                schema.entry(key).or_insert(value);
            }
        }
    }
}

/// The first paragraph of Rust docs on one line, ``[`Name`](crate::path)``
/// links as `` `Name` ``.
fn first_paragraph(docs: &str) -> String {
    let mut text = docs
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .replace('\n', " ");
    while let Some(start) = text.find("](crate::") {
        let end = text[start..]
            .find(')')
            .map_or(text.len(), |e| start + e + 1);
        text.replace_range(start..end, "");
        if let Some(open) = text[..start].rfind('[') {
            text.remove(open);
        }
    }
    text
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `schema` with its `status` property limited to the `word`s of `statuses`.
fn with_status(schema: Value, statuses: &[Status], word: fn(Status) -> &'static str) -> Value {
    let mut words: Vec<&str> = Vec::new();
    for status in statuses {
        if !words.contains(&word(*status)) {
            words.push(word(*status));
        }
    }
    json!({ "allOf": [schema, { "properties": { "status": { "enum": words } } }] })
}

fn error_schema(code: ErrorCode) -> Value {
    json!({ "allOf": [schema_ref("ErrorBody"), { "properties": { "code": { "const": code.as_str() } } }] })
}

fn no_store() -> Value {
    json!({ "type": "string", "const": "no-store" })
}

/// `application/health+json` (draft-inadarei-api-health-check).
fn health_response() -> Value {
    let word = json!({ "type": "string", "enum": ["pass", "warn", "fail"] });
    let string = json!({ "type": "string" });
    json!({
        "HealthResponse": {
            "type": "object",
            "description": "application/health+json (draft-inadarei-api-health-check); callers without details get only `status`.",
            "required": ["status"],
            "properties": {
                "status": word, "version": string, "releaseId": string,
                "notes": { "type": "array", "items": string },
                "output": string, "serviceId": string, "description": string,
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
                "componentId": string, "componentType": string, "observedValue": {},
                "observedUnit": string, "status": word,
                "time": Timestamp::json_schema(&mut SchemaGenerator::default()), "output": string
            },
            "additionalProperties": false
        }
    })
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// A body of a status answer: its media type, the name of its schema, and
/// how it writes a status.
type Body = (&'static str, &'static str, fn(Status) -> &'static str);

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

    fn error(code: StatusCode, error: ErrorCode, description: &str) -> Self {
        Self::new(code, description).content(JSON, error_schema(error))
    }
}

/// The Responses Object of `outcomes`, those with the same status code
/// merged into one; `body` is false for `HEAD`.
fn responses(outcomes: &[Outcome], cache_control: &Value, body: bool) -> Value {
    let mut out = Map::new();
    for outcome in outcomes {
        let code = outcome.code.as_str();
        if out.contains_key(code) {
            continue;
        }
        let same: Vec<&Outcome> = outcomes.iter().filter(|o| o.code == outcome.code).collect();
        let mut descriptions: Vec<&str> = Vec::new();
        let mut headers = json!({
            "Cache-Control": { "description": "Status responses are never cached.", "required": true, "schema": cache_control }
        });
        let mut content: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for o in &same {
            if !descriptions.contains(&o.description.as_str()) {
                descriptions.push(&o.description);
            }
            for (name, header) in &o.headers {
                // Required when every answer with this code sends it.
                let always = same.iter().all(|s| {
                    s.headers
                        .iter()
                        .any(|(n, h)| n == name && h["required"] == true)
                });
                headers[name] = header.clone();
                headers[name]["required"] = Value::Bool(always);
            }
            for (media_type, schema) in &o.content {
                let schemas = content.entry(media_type).or_default();
                if !schemas.contains(&schema) {
                    schemas.push(schema);
                }
            }
        }
        let mut response = json!({ "description": descriptions.join(" "), "headers": headers });
        if body && !content.is_empty() {
            let content = content.into_iter().map(|(media_type, schemas)| {
                let schema = match schemas.as_slice() {
                    [one] => (*one).clone(),
                    many => json!({ "oneOf": many }),
                };
                (media_type.to_owned(), json!({ "schema": schema }))
            });
            response["content"] = Value::Object(content.collect());
        }
        out.insert(code.to_owned(), response);
    }
    Value::Object(out)
}

fn retry_after() -> Value {
    json!({
        "description": "In maintenance with an estimated completion: whole seconds until then (at least 1).",
        "required": false,
        "schema": { "type": "integer", "minimum": 1 }
    })
}

/// A parameter in the query string.
fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": schema })
}

/// Strings, repeated or comma-separated in the query.
fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

/// Comma-separated status words, the last after `or`.
fn list(statuses: &[Status]) -> String {
    let words: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
    match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// The configuration, and what follows from it for the document.
struct Doc<'a> {
    config: &'a Config,
    /// Some callers see details.
    details: bool,
    /// Some callers do not.
    redacted: bool,
    /// Whether formats besides the built-in ones are registered, and the
    /// media types of those that have one.
    custom_formats: bool,
    custom_media_types: Vec<&'a str>,
}

impl<'a> Doc<'a> {
    fn new(config: &'a Config) -> Self {
        let access = &config.access;
        let everyone = access.visibility() == Visibility::Always;
        let custom: Vec<_> = config
            .formats
            .by_name
            .iter()
            .filter(|(name, _)| *name != crate::format::DEFAULT && *name != "ietf")
            .collect();
        let mut custom_media_types: Vec<&str> = custom
            .iter()
            .filter_map(|(_, r)| r.media_type.as_deref())
            .collect();
        custom_media_types.sort_unstable();
        custom_media_types.dedup();
        Self {
            config,
            details: everyone || access.details_need_key(),
            redacted: !everyone,
            custom_formats: !custom.is_empty(),
            custom_media_types,
        }
    }

    fn path_item(&self, route: &ResourceRoute) -> Value {
        let resource = route.resource;
        let endpoint = resource.access();
        let (parameters, mut outcomes) = self.operation(resource);
        if resource.details() {
            outcomes.extend(self.details_refusals(endpoint));
        }
        outcomes.extend(self.refusals(endpoint));
        let cache_control = if resource == Resource::Report && self.custom_formats {
            json!({ "type": "string", "description": "`no-store` unless a custom format sets its own." })
        } else if matches!(resource, Resource::StatusBadge | Resource::UptimeBadge) {
            json!({ "type": "string", "description": "`max-age=N, s-maxage=N` on a badge (60 s for the status, 300 s for the uptime), for badge proxies; `no-store` on a refusal." })
        } else {
            no_store()
        };
        let security = self.security(endpoint);
        let operation = |method: &str, body: bool| {
            let mut op = json!({
                "operationId": format!("{method}{}", route.operation),
                "summary": if body { route.summary.to_owned() } else { format!("{} (headers only)", route.summary) },
                "description": route.description,
                "tags": ["status"],
                "responses": responses(&outcomes, &cache_control, body),
            });
            if !parameters.is_empty() {
                op["parameters"] = json!(parameters);
            }
            if let Some(security) = &security {
                op["security"] = security.clone();
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

    /// The parameters and answers of `resource`, before refusals.
    fn operation(&self, resource: Resource) -> (Vec<Value>, Vec<Outcome>) {
        let config = self.config;
        let ok = |description: &str, media_type: &str, schema: Value| {
            Outcome::new(StatusCode::OK, description).content(media_type, schema)
        };
        match resource {
            Resource::Report => {
                let bodies: [Body; 2] = [
                    (JSON, "Report", Status::as_str),
                    (IETF_MEDIA_TYPE, "HealthResponse", ietf_word),
                ];
                let mut outcomes =
                    self.by_code(Answer::Report, "The report; overall status", &bodies);
                for outcome in &mut outcomes {
                    // A registered format's body is its own: any schema.
                    let custom = &self.custom_media_types;
                    outcome
                        .content
                        .retain(|(m, _)| !custom.contains(&m.as_str()));
                    outcome
                        .content
                        .extend(custom.iter().map(|m| ((*m).to_owned(), json!({}))));
                }
                outcomes.push(Outcome::error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::UnknownFormat,
                    "No format of the name given in `format`.",
                ));
                let formats: Vec<&String> = config.formats.by_name.keys().collect();
                let parameters = vec![
                    query("exclude", "Components to leave out (neither run nor counted); repeated, or comma-separated.", strings()),
                    query("format", "A registered format by name; `json` is the default format. Without it, `Accept` picks a format by media type.", json!({ "type": "string", "enum": formats })),
                ];
                (parameters, outcomes)
            }
            Resource::Live => {
                let ok = with_status(schema_ref("Probe"), &[Status::Ok], Status::as_str);
                let live = Outcome::new(
                    signals::code(config, Answer::Live, Status::Ok),
                    "The process answers.",
                );
                let live = self.signalled(Answer::Live, &[Status::Ok], live.content(JSON, ok));
                (Vec::new(), vec![live])
            }
            Resource::Ready => {
                let parameters = vec![
                    query("exclude", "Critical components to leave out; repeated, or comma-separated.", strings()),
                    query("verbose", "Adds the critical components (callers with details only). Any value but `0` or `false` turns it on, an empty one too.", json!({ "type": "boolean" })),
                ];
                (
                    parameters,
                    self.by_code(
                        Answer::Ready,
                        "Readiness",
                        &[(JSON, "Probe", Status::as_str)],
                    ),
                )
            }
            Resource::Watch => {
                let events = ok(
                    "Server-Sent Events, without end: `event: status` with a `StatusChange` as `data`, first the current status, then one on every change the caller may see; a `: keep-alive` comment line after a quiet period.",
                    "text/event-stream",
                    json!({ "type": "string", "description": "`event: status` / `data: <StatusChange as JSON>` events and `: keep-alive` comments." }),
                );
                (Vec::new(), vec![events])
            }
            Resource::Metrics => {
                let metrics = ok(
                    "The report in Prometheus text format (0.0.4), whatever the health.",
                    PROMETHEUS_MEDIA_TYPE,
                    json!({ "type": "string" }),
                );
                (
                    Vec::new(),
                    self.details.then_some(metrics).into_iter().collect(),
                )
            }
            Resource::Transitions => {
                let log = ok(
                    "The transition log, oldest first, with flap counts and delivery figures.",
                    JSON,
                    schema_ref("TransitionLog"),
                );
                (
                    Vec::new(),
                    self.details.then_some(log).into_iter().collect(),
                )
            }
            Resource::History => {
                let history = ok(
                    "The last day, minute by minute, with uptime and the objectives' figures.",
                    JSON,
                    schema_ref("HistoryReport"),
                );
                (
                    Vec::new(),
                    self.details.then_some(history).into_iter().collect(),
                )
            }
            Resource::StatusBadge | Resource::UptimeBadge => {
                let badge = ok(
                    "An SVG badge (`Cache-Control: max-age`, for badge proxies).",
                    crate::format::badge::MEDIA_TYPE,
                    json!({ "type": "string" }),
                );
                (Vec::new(), vec![badge])
            }
            Resource::OpenApi => {
                let document = ok(
                    "This document (open to everyone).",
                    JSON,
                    json!({ "type": "object", "required": ["openapi", "info", "paths"] }),
                );
                (Vec::new(), vec![document])
            }
            Resource::Component => {
                let mut outcomes = Vec::new();
                if self.details {
                    // `handlers::component`: down is 503, the rest 200,
                    // unless the signals answer degraded with 429.
                    let degraded_429 = config
                        .consumer_signals
                        .get(Answer::Component)
                        .degraded_as_429;
                    let (degraded, up): (Vec<Status>, Vec<Status>) =
                        [Status::Ok, Status::Degraded, Status::Maintenance]
                            .into_iter()
                            .partition(|s| degraded_429 && *s == Status::Degraded);
                    let named =
                        |s: &[Status]| with_status(schema_ref("NamedComponent"), s, Status::as_str);
                    let signalled = |statuses: &[Status], outcome: Outcome| {
                        self.signalled(Answer::Component, statuses, outcome)
                    };
                    outcomes.push(signalled(
                        &up,
                        ok(
                            &format!("The component; its status {}.", list(&up)),
                            JSON,
                            named(&up),
                        ),
                    ));
                    if !degraded.is_empty() {
                        outcomes.push(signalled(
                            &degraded,
                            Outcome::new(
                                StatusCode::TOO_MANY_REQUESTS,
                                "The component is degraded.",
                            )
                            .content(JSON, named(&degraded)),
                        ));
                    }
                    outcomes.push(signalled(
                        &[Status::Down],
                        Outcome::new(StatusCode::SERVICE_UNAVAILABLE, "The component is down.")
                            .content(JSON, named(&[Status::Down])),
                    ));
                    outcomes.push(Outcome::error(
                        StatusCode::NOT_FOUND,
                        ErrorCode::NotFound,
                        "No component of that name.",
                    ));
                }
                // Not the segments of other resources, nor dot segments
                // (clients resolve them away before sending).
                let reserved: Vec<&str> = RESOURCES
                    .iter()
                    .filter(|r| r.resource.served(config))
                    .filter_map(|r| r.segment)
                    .chain([".", ".."])
                    .collect();
                let mut name =
                    json!({ "type": "string", "minLength": 1, "not": { "enum": reserved } });
                let mut examples: Vec<&str> = config
                    .checks
                    .entries
                    .iter()
                    .map(|e| e.spec.name.as_str())
                    .collect();
                if !config.traffic_rules.is_empty() {
                    examples.push(TRAFFIC_COMPONENT);
                }
                // The document is public: names are details unless everyone sees them.
                if !self.redacted && !examples.is_empty() {
                    name["examples"] = json!(examples);
                }
                let mut parameter = query(
                    "component",
                    "The component's name, percent-encoded. The names of the other resources below the status path reach those.",
                    name,
                );
                parameter["in"] = json!("path");
                parameter["required"] = json!(true);
                (vec![parameter], outcomes)
            }
        }
    }

    /// One outcome for each HTTP status the overall statuses are answered
    /// with: a body of each named schema, its `status` limited to the
    /// statuses that HTTP status carries (as `word` writes them).
    fn by_code(&self, probe: Answer, description: &str, bodies: &[Body]) -> Vec<Outcome> {
        let mut codes: BTreeMap<u16, (StatusCode, Vec<Status>)> = BTreeMap::new();
        for status in ALL_STATUSES {
            let code = signals::code(self.config, probe, status);
            codes
                .entry(code.as_u16())
                .or_insert((code, Vec::new()))
                .1
                .push(status);
        }
        let mut out = Vec::new();
        for (code, statuses) in codes.into_values() {
            let mut outcome = Outcome::new(code, format!("{description} {}.", list(&statuses)));
            for (media_type, name, word) in bodies {
                let schema = if statuses.len() < ALL_STATUSES.len() {
                    with_status(schema_ref(name), &statuses, *word)
                } else {
                    schema_ref(name)
                };
                outcome = outcome.content(media_type, schema);
            }
            if code == StatusCode::SERVICE_UNAVAILABLE && statuses.contains(&Status::Maintenance) {
                outcome = outcome.header("Retry-After", retry_after());
            }
            out.push(self.signalled(probe, &statuses, outcome));
        }
        out
    }

    /// `outcome`, an answer of `probe` carrying one of `statuses`, with the
    /// headers the probe's consumer signals add (`signals::apply`).
    fn signalled(&self, probe: Answer, statuses: &[Status], mut outcome: Outcome) -> Outcome {
        let signals = self.config.consumer_signals.get(probe);
        if signals.envoy_degraded_header && statuses.contains(&Status::Degraded) {
            outcome = outcome.header(
                ENVOY_DEGRADED_HEADER,
                json!({
                    "description": "Sent when the status is `degraded`, and only then: Envoy's active health checking marks the host degraded.",
                    "required": statuses == [Status::Degraded],
                    "schema": { "type": "string", "const": "true" }
                }),
            );
        }
        if signals.load_balancing_weight {
            outcome = outcome.header(
                WEIGHT_HEADER,
                json!({
                    "description": format!(
                        "The endpoint's weight for weighted load balancing (Google Cloud): 0 when down, in maintenance or draining, else round({MAX_WEIGHT} / ((1 + requests in flight / {}) * (1 + p90 latency over the last minute / {:?}))), at least 1.",
                        signals.half_weight_in_flight, signals.half_weight_latency
                    ),
                    "required": true,
                    "schema": { "type": "integer", "minimum": 0, "maximum": MAX_WEIGHT }
                }),
            );
        }
        outcome
    }

    fn unauthorized(&self, description: &str) -> Outcome {
        let outcome = Outcome::error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            description,
        );
        if !self.config.access.bearer() {
            return outcome;
        }
        let challenge = json!({ "type": "string", "const": BEARER_CHALLENGE });
        outcome.header(
            "WWW-Authenticate",
            json!({ "description": "The Bearer challenge.", "required": true, "schema": challenge }),
        )
    }

    /// What `Access::authorize` can refuse for `endpoint`, before any work.
    fn refusals(&self, endpoint: Option<Endpoint>) -> Vec<Outcome> {
        let access = &self.config.access;
        let Some(endpoint) = endpoint.filter(|e| access.keys.is_some() && !access.open(*e)) else {
            return Vec::new();
        };
        vec![
            self.unauthorized(if access.required(endpoint) {
                "The API key is missing, unknown or malformed."
            } else {
                "The API key is unknown or malformed (a request without one is answered)."
            }),
            Outcome::error(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "The API key may not see the status.",
            ),
            Outcome::error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::AuthUnavailable,
                "The API key lookup failed or timed out.",
            ),
        ]
    }

    /// The refusals of a resource made of details to callers who may not
    /// see them, as `handlers::details_refusal` words them.
    fn details_refusals(&self, endpoint: Option<Endpoint>) -> Vec<Outcome> {
        if !self.redacted {
            return Vec::new();
        }
        let access = &self.config.access;
        let key_unlocks = access.details_need_key();
        let mut out = Vec::new();
        if key_unlocks && !endpoint.is_some_and(|e| access.required(e)) {
            out.push(self.unauthorized("Details need an API key with the details permission."));
        }
        let why = if key_unlocks {
            "The API key may not see details."
        } else {
            "Details are not shown to anyone."
        };
        out.push(Outcome::error(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            why,
        ));
        out
    }

    /// Where keys are read: one security scheme each.
    fn security_schemes(&self) -> Map<String, Value> {
        let mut schemes = Map::new();
        let Some(keys) = &self.config.access.keys else {
            return schemes;
        };
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
        schemes
    }

    /// When `endpoint` needs a key: any of the schemes.
    fn security(&self, endpoint: Option<Endpoint>) -> Option<Value> {
        let schemes = self.security_schemes();
        let needed = !schemes.is_empty() && self.config.access.required(endpoint?);
        needed.then(|| {
            schemes
                .keys()
                .map(|name| json!({ name.as_str(): [] }))
                .collect()
        })
    }

    /// The body schemas: derived from the types, then narrowed.
    fn schemas(&self) -> Value {
        let mut generator = SchemaSettings::draft2020_12()
            .for_serialize()
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .with_transform(as_serialized)
            .into_generator();
        generator.subschema_for::<Wire<'static>>();
        generator.subschema_for::<Probe<'static>>();
        generator.subschema_for::<StatusChange>();
        generator.subschema_for::<crate::state::TransitionLog>();
        generator.subschema_for::<crate::state::HistoryReport>();
        generator.subschema_for::<ErrorBody<'static>>();
        let mut schemas = Value::Object(generator.take_definitions(true));

        schemas["ErrorBody"]["properties"]["code"]["enum"] =
            json!(ErrorCode::ALL.map(ErrorCode::as_str));
        let access = &self.config.access;
        let full = &mut schemas["FullReport"];
        if access.keys.is_some() && access.required(Endpoint::Report) {
            // Every caller has a key: the report names it.
            if let Some(required) = full["required"].as_array_mut() {
                required.push(json!("caller"));
            }
        }
        // As `format::json::minimal` writes it.
        let minimal: Map<String, Value> = ["status", "timestamp"]
            .into_iter()
            .map(|name| (name.to_owned(), full["properties"][name].clone()))
            .collect();
        schemas["MinimalReport"] = json!({
            "type": "object",
            "description": "The report as callers without the details permission see it.",
            "required": ["status", "timestamp"],
            "properties": minimal,
            "additionalProperties": false
        });
        // A component as `handlers::component` answers it: its name first.
        let mut named = schemas["Component"].clone();
        named["properties"]["name"] = json!({ "type": "string" });
        if let Some(required) = named["required"].as_array_mut() {
            required.insert(0, json!("name"));
        }
        schemas["NamedComponent"] = named;
        schemas["Report"] = match (self.details, self.redacted) {
            (true, true) => json!({
                "description": "The full report for callers with the details permission, else the minimal one.",
                "oneOf": [schema_ref("FullReport"), schema_ref("MinimalReport")]
            }),
            (true, false) => schema_ref("FullReport"),
            _ => schema_ref("MinimalReport"),
        };
        if let (Value::Object(schemas), Value::Object(health)) = (&mut schemas, health_response()) {
            schemas.extend(health);
        }
        schemas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_schemas_describe_the_serialized_bodies() {
        let doc = document(&Config::new("test".into()));
        let schemas = &doc["components"]["schemas"];
        let full = &schemas["FullReport"];
        assert_eq!(full["additionalProperties"], false);
        assert!(
            full["properties"].get("histogram").is_none(),
            "serde skips it"
        );
        // Left out when empty, never null.
        assert_eq!(full["properties"]["version"]["type"], "string");
        assert_eq!(
            full["properties"]["notice"]["$ref"],
            "#/components/schemas/Notice"
        );
        assert_eq!(full["properties"]["timestamp"]["format"], "date-time");
        let error = &schemas["Component"]["properties"]["error"];
        assert_eq!(
            error,
            &json!({ "type": "string", "maxLength": crate::report::MAX_ERROR_LEN, "description": error["description"] })
        );
        assert_eq!(schemas["Traffic"]["properties"]["error_rate"]["maximum"], 1);
        // A flattened map: any other property.
        assert_eq!(schemas["Caller"]["additionalProperties"], true);
        let text = doc.to_string();
        assert!(!text.contains("crate::") && !text.contains("```"), "{text}");
    }
}
