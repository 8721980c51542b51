//! An OpenAPI 3.1 document of the status endpoints a layer serves.
//!
//! [`StatusLayer::openapi`](crate::StatusLayer::openapi) returns it as a
//! value to merge into an API's own document; with
//! [`serve_openapi`](crate::StatusLayer::serve_openapi) it is also served at
//! `PATH/openapi.json`.

use serde_json::{json, Map, Value};

use crate::layer::Config;

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn schemas() -> Value {
    let status = json!({ "type": "string", "enum": ["ok", "degraded", "down", "maintenance"] });
    let timestamp = json!({ "type": "string", "format": "date-time" });
    json!({
        "Status": status,
        "Error": {
            "type": "object",
            "required": ["error", "code"],
            "properties": {
                "error": { "type": "string", "description": "Human-readable message." },
                "code": { "type": "string", "description": "Machine-readable code." }
            }
        },
        "Probe": {
            "type": "object",
            "required": ["status", "timestamp"],
            "properties": {
                "status": { "$ref": "#/components/schemas/Status" },
                "timestamp": timestamp,
                "reason": { "type": "string" },
                "components": { "type": "object", "additionalProperties": { "$ref": "#/components/schemas/Component" } }
            }
        },
        "Component": {
            "type": "object",
            "required": ["status", "critical", "duration_ms", "last_checked"],
            "properties": {
                "name": { "type": "string" },
                "status": { "$ref": "#/components/schemas/Status" },
                "type": { "type": "string" },
                "critical": { "type": "boolean" },
                "error": { "type": "string", "maxLength": 1024 },
                "duration_ms": { "type": "number", "minimum": 0 },
                "last_checked": timestamp,
                "details": {},
                "observed_value": {},
                "observed_unit": { "type": "string" }
            }
        },
        "Report": {
            "description": "The full report; callers without the details permission get a Probe.",
            "oneOf": [
                { "$ref": "#/components/schemas/FullReport" },
                { "$ref": "#/components/schemas/Probe" }
            ]
        },
        "FullReport": {
            "type": "object",
            "required": ["status", "environment", "timestamp", "uptime_seconds", "requests", "response_time_ms", "status_requests"],
            "properties": {
                "status": { "$ref": "#/components/schemas/Status" },
                "service": { "type": "string" },
                "version": { "type": "string" },
                "environment": { "type": "string" },
                "timestamp": timestamp,
                "uptime_seconds": { "type": "integer", "minimum": 0 },
                "memory": {
                    "type": "object",
                    "required": ["rss_bytes", "virtual_bytes"],
                    "properties": {
                        "rss_bytes": { "type": "integer", "minimum": 0 },
                        "virtual_bytes": { "type": "integer", "minimum": 0 }
                    }
                },
                "requests": {
                    "type": "object",
                    "required": ["total", "in_flight", "errors", "aborted", "by_class", "window_seconds", "window_total", "rate_per_second", "error_rate"],
                    "properties": {
                        "total": { "type": "integer", "minimum": 0 },
                        "in_flight": { "type": "integer", "minimum": 0 },
                        "errors": { "type": "integer", "minimum": 0 },
                        "aborted": { "type": "integer", "minimum": 0 },
                        "by_class": { "type": "object", "additionalProperties": { "type": "integer", "minimum": 0 } },
                        "window_seconds": { "type": "number", "minimum": 0 },
                        "window_total": { "type": "integer", "minimum": 0 },
                        "rate_per_second": { "type": "number", "minimum": 0 },
                        "error_rate": { "type": "number", "minimum": 0, "maximum": 1 }
                    }
                },
                "response_time_ms": {
                    "type": "object",
                    "required": ["count", "mean", "p50", "p90", "p99", "max"],
                    "properties": {
                        "count": { "type": "integer", "minimum": 0 },
                        "mean": { "type": "number", "minimum": 0 },
                        "p50": { "type": "number", "minimum": 0 },
                        "p90": { "type": "number", "minimum": 0 },
                        "p99": { "type": "number", "minimum": 0 },
                        "max": { "type": "number", "minimum": 0 }
                    }
                },
                "status_requests": { "type": "integer", "minimum": 0 },
                "components": { "type": "object", "additionalProperties": { "$ref": "#/components/schemas/Component" } },
                "notice": {
                    "type": "object",
                    "required": ["message"],
                    "properties": { "message": { "type": "string" }, "estimated_completion": timestamp }
                },
                "draining": { "type": "boolean" },
                "caller": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" } } },
                "sections": { "type": "object" }
            }
        }
    })
}

/// Builds the document for `config`.
pub(crate) fn document(config: &Config) -> Value {
    let base = if config.path == "/" {
        ""
    } else {
        config.path.as_str()
    };
    let keys = config.access.keys.as_ref();
    let mut security_schemes = Map::new();
    let mut security = Vec::new();
    if let Some(keys) = keys {
        if let Some(header) = &keys.header {
            security_schemes.insert(
                "apiKey".into(),
                json!({ "type": "apiKey", "in": "header", "name": header.as_str() }),
            );
            security.push(json!({ "apiKey": [] }));
        }
        if keys.bearer {
            security_schemes.insert(
                "bearer".into(),
                json!({ "type": "http", "scheme": "bearer" }),
            );
            security.push(json!({ "bearer": [] }));
        }
    }
    let guarded = |endpoint, mut op: Value| {
        if keys.is_some() {
            if let Some(responses) = op["responses"].as_object_mut() {
                responses.insert(
                    "401".into(),
                    error_response("Missing, unknown or malformed API key."),
                );
                responses.insert(
                    "403".into(),
                    error_response("The API key lacks the permission."),
                );
            }
            if config.access.required(endpoint) {
                op["security"] = Value::Array(security.clone());
            }
        }
        op
    };
    let not_allowed = error_response("Only GET and HEAD are allowed.");
    let with_405 = |get: Value| json!({ "get": get, "post": { "summary": "Not allowed", "responses": { "405": not_allowed } } });
    let report_op = guarded(
        crate::auth::Endpoint::Report,
        json!({
            "summary": "Status report",
            "operationId": "getStatus",
            "parameters": [
                { "name": "exclude", "in": "query", "schema": { "type": "string" }, "description": "Components to leave out, comma-separated or repeated." },
                { "name": "format", "in": "query", "schema": { "type": "string", "enum": config.formats.by_name.keys().collect::<Vec<_>>() } }
            ],
            "responses": {
                "200": json_response("Ok or degraded.", "Report"),
                "400": error_response("Unknown format."),
                "503": json_response("Down or in maintenance.", "Report")
            }
        }),
    );
    let probe_op = |id: &str, summary: &str| {
        guarded(
            crate::auth::Endpoint::Probes,
            json!({
                "summary": summary,
                "operationId": id,
                "parameters": [
                    { "name": "verbose", "in": "query", "schema": { "type": "string" } },
                    { "name": "exclude", "in": "query", "schema": { "type": "string" } }
                ],
                "responses": {
                    "200": json_response("Up.", "Probe"),
                    "503": json_response("Not ready.", "Probe")
                }
            }),
        )
    };
    let component_op = guarded(
        crate::auth::Endpoint::Report,
        json!({
            "summary": "One component",
            "operationId": "getComponent",
            "parameters": [{ "name": "component", "in": "path", "required": true, "schema": { "type": "string" } }],
            "responses": {
                "200": json_response("Ok or degraded.", "Component"),
                "404": error_response("No such component."),
                "503": json_response("Down.", "Component")
            }
        }),
    );
    let mut paths = Map::new();
    paths.insert(
        format!("{}", if base.is_empty() { "/" } else { base }),
        with_405(report_op),
    );
    if !base.is_empty() {
        paths.insert(
            format!("{base}/live"),
            with_405(probe_op("getLive", "Liveness")),
        );
        paths.insert(
            format!("{base}/ready"),
            with_405(probe_op("getReady", "Readiness")),
        );
        paths.insert(format!("{base}/{{component}}"), with_405(component_op));
    }
    let mut components = Map::new();
    components.insert("schemas".into(), schemas());
    if !security_schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(security_schemes));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} status", config.service.as_deref().unwrap_or("service")),
            "version": config.version.as_deref().unwrap_or("0.0.0")
        },
        "paths": paths,
        "components": components
    })
}
