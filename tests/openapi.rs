//! The OpenAPI document of the status endpoint: its shape for several
//! configurations, real answers of the endpoint checked against it in
//! process (including maintenance, draining and refusals that a fuzzer does
//! not reach), and schemathesis run against a live axum server.
//!
//! The schemathesis test needs the `schemathesis` CLI (`st`, `schemathesis`
//! or `python3 -m schemathesis.cli`); `scripts/test.sh` installs it, and
//! the test fails, not skips, without it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::service::Got;
use common::{hello_service, STEP};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tower::{Layer, ServiceExt};
use tower_status::auth::{ApiKeys, Endpoint, Identity, Permissions, Visibility};
use tower_status::check::{CheckResult, HealthCheck, TrafficRule};
use tower_status::report::Notice;
use tower_status::{Status, StatusLayer};

const FULL_KEY: &str = "ops-key-0123456789";
const STATUS_KEY: &str = "lb-key-0123456789";
const NONE_KEY: &str = "no-key-0123456789";
const SCRAPE_KEY: &str = "scrape-key-0123456789";

// ---------------------------------------------------------------------------
// Document checks
// ---------------------------------------------------------------------------

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The value `pointer` (`#/a/b`) names in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` under `value`, with where it was found.
fn refs<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push((at.clone(), r));
                    }
                } else {
                    refs(v, format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A JSON Schema 2020-12 validator of `schema`, whose `$ref`s point into `doc`.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    match jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
    {
        Ok(v) => v,
        Err(e) => panic!("schema does not compile: {e}\n{schema:#}"),
    }
}

/// Errors of `instance` against `schema`, one line each.
fn errors(doc: &Value, schema: &Value, instance: &Value) -> Vec<String> {
    validator(doc, schema)
        .iter_errors(instance)
        .map(|e| format!("{e} (at {})", e.instance_path))
        .collect()
}

/// Asserts that `doc` has the shape of an OpenAPI 3.1 document: required
/// fields, operations with unique ids and documented responses, declared
/// path parameters, known security schemes, resolvable `$ref`s and
/// compilable schemas.
fn assert_openapi_31(doc: &Value) {
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string(), "info.title");
    assert!(doc["info"]["version"].is_string(), "info.version");
    let paths = doc["paths"].as_object().expect("paths is an object");
    assert!(!paths.is_empty());
    let schemes = doc["components"]["securitySchemes"].as_object();
    for (name, scheme) in schemes.into_iter().flatten() {
        match scheme["type"].as_str() {
            Some("apiKey") => {
                assert!(scheme["name"].is_string(), "{name}: name");
                assert!(
                    ["header", "query", "cookie"].contains(&scheme["in"].as_str().unwrap_or("")),
                    "{name}: in"
                );
            }
            Some("http") => assert!(scheme["scheme"].is_string(), "{name}: scheme"),
            other => panic!("{name}: unexpected scheme type {other:?}"),
        }
    }
    let mut ids = BTreeSet::new();
    for (path, item) in paths {
        assert!(path.starts_with('/'), "{path} must start with /");
        let item = item.as_object().expect("path item is an object");
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for key in item.keys() {
            assert!(
                METHODS.contains(&key.as_str())
                    || ["summary", "description", "parameters", "servers"].contains(&key.as_str()),
                "{path}: unexpected key {key}"
            );
        }
        for method in METHODS.iter().filter(|m| item.contains_key(**m)) {
            let op = &item[*method];
            let at = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().expect("operationId");
            assert!(
                ids.insert(id.to_owned()),
                "{at}: duplicate operationId {id}"
            );
            let mut declared = BTreeSet::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().expect("parameter name");
                let location = p["in"].as_str().expect("parameter in");
                assert!(
                    ["query", "header", "path", "cookie"].contains(&location),
                    "{at}: {name} in {location}"
                );
                assert!(p["schema"].is_object(), "{at}: {name} has no schema");
                validator(doc, &p["schema"]);
                if location == "path" {
                    assert_eq!(p["required"], true, "{at}: path parameter {name}");
                    declared.insert(name);
                }
            }
            assert_eq!(declared, templated, "{at}: path parameters");
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{at}: no responses");
            for (code, response) in responses {
                assert!(
                    code.len() == 3 && code.parse::<u16>().is_ok_and(|c| (100..600).contains(&c)),
                    "{at}: status code {code}"
                );
                assert!(
                    response["description"].is_string(),
                    "{at} {code}: description"
                );
                for (name, header) in response["headers"].as_object().into_iter().flatten() {
                    assert!(header["schema"].is_object(), "{at} {code}: header {name}");
                    validator(doc, &header["schema"]);
                }
                for (media_type, media) in response["content"].as_object().into_iter().flatten() {
                    assert!(
                        media_type.contains('/'),
                        "{at} {code}: media type {media_type}"
                    );
                    validator(doc, &media["schema"]);
                }
                if *method == "head" {
                    assert!(
                        response.get("content").is_none(),
                        "{at} {code}: HEAD has no body"
                    );
                }
            }
            for requirement in op["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().expect("requirement").keys() {
                    assert!(
                        schemes.is_some_and(|s| s.contains_key(name)),
                        "{at}: unknown security scheme {name}"
                    );
                }
            }
        }
    }
    let mut found = Vec::new();
    refs(doc, String::new(), &mut found);
    assert!(!found.is_empty());
    for (at, reference) in found {
        assert!(
            resolve(doc, reference).is_some(),
            "{at}: $ref {reference} does not resolve"
        );
    }
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        assert!(schema.is_object(), "schema {name}");
        validator(doc, schema);
    }
}

fn paths(doc: &Value) -> BTreeSet<&str> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

fn codes(op: &Value) -> BTreeSet<&str> {
    op["responses"]
        .as_object()
        .expect("responses")
        .keys()
        .map(String::as_str)
        .collect()
}

fn keys_layer() -> StatusLayer {
    StatusLayer::new().api_keys(
        ApiKeys::new()
            .key(FULL_KEY, Identity::new("ops").attribute("tier", "gold"))
            .key(
                STATUS_KEY,
                Identity::new("lb").permissions(Permissions::STATUS),
            )
            .key(
                NONE_KEY,
                Identity::new("none").permissions(Permissions::NONE),
            )
            .key(
                SCRAPE_KEY,
                Identity::new("prometheus").permissions(Permissions::METRICS),
            ),
    )
}

#[test]
fn without_keys_everything_is_open() {
    let doc = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    assert_eq!(
        paths(&doc),
        set(&[
            "/status",
            "/status/live",
            "/status/ready",
            "/status/watch",
            "/status/transitions",
            "/status/history",
            "/status/badge.svg",
            "/status/badge/uptime.svg",
            "/status/{component}"
        ])
    );
    assert!(doc["components"].get("securitySchemes").is_none());
    for item in doc["paths"].as_object().unwrap().values() {
        let methods: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|k| METHODS.contains(k))
            .collect();
        assert_eq!(methods, set(&["get", "head"]));
        for op in [&item["get"], &item["head"]] {
            assert!(op.get("security").is_none());
            let codes = codes(op);
            assert!(
                !codes.contains("401") && !codes.contains("403"),
                "{codes:?}"
            );
        }
    }
    let report = &doc["paths"]["/status"]["get"];
    assert_eq!(codes(report), set(&["200", "400", "503"]));
    let content = report["responses"]["200"]["content"].as_object().unwrap();
    assert_eq!(
        content.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        set(&["application/json", "application/health+json"])
    );
    let names: Vec<&str> = report["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["exclude", "format"]);
    assert_eq!(
        report["parameters"][1]["schema"]["enum"],
        json!(["ietf", "json"])
    );
    // Without keys everyone sees details: the full report only.
    assert_eq!(
        doc["components"]["schemas"]["Report"],
        json!({ "$ref": "#/components/schemas/FullReport" })
    );
    let ready = &doc["paths"]["/status/ready"]["get"];
    let names: BTreeSet<&str> = ready["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, set(&["exclude", "verbose"]));
    assert_eq!(codes(&doc["paths"]["/status/live"]["get"]), set(&["200"]));
    assert_eq!(
        codes(&doc["paths"]["/status/{component}"]["get"]),
        set(&["200", "404", "503"])
    );
    let watch = &doc["paths"]["/status/watch"]["get"]["responses"]["200"];
    assert!(watch["content"]["text/event-stream"].is_object());
    assert!(doc["paths"]["/status/watch"]["head"]["responses"]["200"]
        .get("content")
        .is_none());
    // The component parameter names the real checks and not the other resources.
    let name = &doc["paths"]["/status/{component}"]["get"]["parameters"][0]["schema"];
    assert_eq!(name["examples"], json!(["db"]));
    assert!(name["not"]["enum"]
        .as_array()
        .unwrap()
        .contains(&json!("live")));
    // 405 for anything else, with Allow.
    let not_allowed = &doc["components"]["responses"]["MethodNotAllowed"];
    assert_eq!(
        not_allowed["headers"]["Allow"]["schema"]["const"],
        "GET, HEAD"
    );
    // Retry-After on 503 of the report (maintenance).
    assert!(report["responses"]["503"]["headers"]["Retry-After"].is_object());
}

#[test]
fn keys_required_for_the_report_not_the_probes() {
    let doc = keys_layer().clone().build().openapi();
    assert_openapi_31(&doc);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["apiKey"],
        json!({ "type": "apiKey", "in": "header", "name": "x-api-key", "description": schemes["apiKey"]["description"] })
    );
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let required = json!([{ "apiKey": [] }, { "bearer": [] }]);
    for path in [
        "/status",
        "/status/watch",
        "/status/transitions",
        "/status/history",
        "/status/badge.svg",
        "/status/badge/uptime.svg",
        "/status/{component}",
    ] {
        for method in ["get", "head"] {
            let op = &doc["paths"][path][method];
            assert_eq!(op["security"], required, "{method} {path}");
            let unauthorized = &op["responses"]["401"];
            assert_eq!(
                unauthorized["headers"]["WWW-Authenticate"]["required"], true,
                "{method} {path}"
            );
            assert!(codes(op).contains("403"), "{method} {path}");
        }
    }
    for path in ["/status/live", "/status/ready"] {
        let op = &doc["paths"][path]["get"];
        assert!(op.get("security").is_none(), "{path} is open");
        // Open probes answer everyone: unusable or permission-less keys are
        // served as anonymous, so neither 401 nor 403.
        assert!(!codes(op).contains("401"), "{path}");
        assert!(!codes(op).contains("403"), "{path}");
    }
    // Some callers see details, some do not.
    assert_eq!(
        doc["components"]["schemas"]["Report"]["oneOf"],
        json!([
            { "$ref": "#/components/schemas/FullReport" },
            { "$ref": "#/components/schemas/MinimalReport" }
        ])
    );
    // Every detail caller has a key: `caller` is always there.
    let full = &doc["components"]["schemas"]["FullReport"];
    assert!(full["required"]
        .as_array()
        .unwrap()
        .contains(&json!("caller")));
    assert_eq!(full["additionalProperties"], false);
    assert_eq!(
        doc["components"]["schemas"]["Caller"]["additionalProperties"],
        true
    );
}

#[test]
fn probes_can_require_a_key_too() {
    let doc = keys_layer()
        .require_key(Endpoint::Probes, true)
        .require_key(Endpoint::Report, false)
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    assert!(doc["paths"]["/status/live"]["get"]["security"].is_array());
    assert!(codes(&doc["paths"]["/status/live"]["get"]).contains("401"));
    assert!(doc["paths"]["/status"]["get"].get("security").is_none());
    // An optional key: anonymous callers get 401 only for details.
    assert!(codes(&doc["paths"]["/status/{component}"]["get"]).contains("401"));
}

#[test]
fn custom_path_prefixes_every_path() {
    let doc = StatusLayer::new()
        .path("/health/status")
        .serve_metrics(true)
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    assert_eq!(
        paths(&doc),
        set(&[
            "/health/status",
            "/health/status/live",
            "/health/status/ready",
            "/health/status/watch",
            "/health/status/transitions",
            "/health/status/history",
            "/health/status/badge.svg",
            "/health/status/badge/uptime.svg",
            "/health/status/metrics",
            "/health/status/{component}"
        ])
    );
}

#[test]
fn metrics_and_openapi_when_enabled() {
    let doc = keys_layer()
        .serve_metrics(true)
        .serve_openapi(true)
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    assert!(paths(&doc).contains("/status/metrics"));
    assert!(paths(&doc).contains("/status/openapi.json"));
    let metrics = &doc["paths"]["/status/metrics"]["get"];
    let content = metrics["responses"]["200"]["content"].as_object().unwrap();
    assert!(
        content.keys().all(|k| k.starts_with("text/plain")),
        "{content:?}"
    );
    assert!(metrics["security"].is_array());
    let openapi = &doc["paths"]["/status/openapi.json"]["get"];
    assert!(openapi.get("security").is_none(), "the document is open");
    assert_eq!(codes(openapi), set(&["200"]));
    let reserved =
        &doc["paths"]["/status/{component}"]["get"]["parameters"][0]["schema"]["not"]["enum"];
    for name in ["live", "ready", "watch", "metrics", "openapi.json"] {
        assert!(
            reserved.as_array().unwrap().contains(&json!(name)),
            "{name}"
        );
    }
    let off = StatusLayer::new().clone().build().openapi();
    assert!(!paths(&off).contains("/status/metrics"));
    assert!(!paths(&off).contains("/status/openapi.json"));
}

#[test]
fn a_root_status_path_has_only_the_report() {
    let doc = StatusLayer::new()
        .path("/")
        .serve_openapi(true)
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    assert_eq!(paths(&doc), set(&["/"]));
}

#[test]
fn configured_http_statuses_are_the_documented_ones() {
    let doc = StatusLayer::new()
        .http_status(Status::Degraded, StatusCode::MULTI_STATUS)
        .http_status(Status::Maintenance, StatusCode::OK)
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    let report = &doc["paths"]["/status"]["get"];
    assert_eq!(codes(report), set(&["200", "207", "400", "503"]));
    let ok = &report["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        ok["allOf"][1]["properties"]["status"]["enum"],
        json!(["ok", "maintenance"])
    );
    // Maintenance is not answered 503 here: no Retry-After.
    assert!(report["responses"]["503"]["headers"]
        .get("Retry-After")
        .is_none());
}

#[test]
fn custom_formats_get_their_media_type() {
    let doc = StatusLayer::new()
        .format(
            "prometheus",
            Some(tower_status::format::PROMETHEUS_MEDIA_TYPE),
            tower_status::format::PrometheusFormat,
        )
        .clone()
        .build()
        .openapi();
    assert_openapi_31(&doc);
    let report = &doc["paths"]["/status"]["get"];
    assert_eq!(
        report["parameters"][1]["schema"]["enum"],
        json!(["ietf", "json", "prometheus"])
    );
    assert!(
        report["responses"]["200"]["content"][tower_status::format::PROMETHEUS_MEDIA_TYPE]
            .is_object()
    );
}

// ---------------------------------------------------------------------------
// Real answers against the document, in process
// ---------------------------------------------------------------------------

async fn call(layer: &StatusLayer, method: Method, uri: &str, headers: &[(&str, &str)]) -> Got {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::default()).expect("request");
    let response =
        match tokio::time::timeout(STEP, layer.layer(hello_service()).oneshot(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => match e {},
            Err(_) => panic!("{uri}: no answer within {STEP:?}"),
        };
    let (parts, body) = response.into_parts();
    let stream = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    // An event stream never ends: its first event is what is checked (a
    // HEAD answer has none).
    let body = if stream {
        let mut body = body;
        match tokio::time::timeout(STEP, body.frame()).await {
            Ok(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
            Ok(None) => Bytes::new(),
            Ok(Some(Err(_))) => panic!("{uri}: event stream error"),
            Err(_) => panic!("{uri}: no event within {STEP:?}"),
        }
    } else {
        match tokio::time::timeout(STEP, body.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(_)) => panic!("{uri}: body error"),
            Err(_) => panic!("{uri}: body not finished within {STEP:?}"),
        }
    };
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// A header value as the schema types it (`Retry-After` is an integer).
fn header_value(text: &str, schema: &Value) -> Value {
    if schema["type"] == "integer" {
        text.parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_owned()))
    } else {
        Value::String(text.to_owned())
    }
}

/// Checks `answer` to `method uri` against the Response Object the
/// document has for its status code: required headers there and valid,
/// content type documented, body valid against its schema.
fn check_response(doc: &Value, at: &str, response: &Value, method: &Method, answer: &Got) {
    let body_text = String::from_utf8_lossy(&answer.body);
    let context = || format!("{at}: {} {body_text}", answer.status);
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        match answer.headers.get(name.as_str()) {
            None => assert!(
                header["required"] != true,
                "{}: required header {name} missing",
                context()
            ),
            Some(value) => {
                let text = value.to_str().expect("header text");
                let errs = errors(
                    doc,
                    &header["schema"],
                    &header_value(text, &header["schema"]),
                );
                assert!(
                    errs.is_empty(),
                    "{}: header {name}: {text}: {errs:#?}",
                    context()
                );
            }
        }
    }
    let Some(content) = response["content"].as_object() else {
        assert!(answer.body.is_empty(), "{}: undocumented body", context());
        return;
    };
    let content_type = answer
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{}: no content type", context()));
    let essence = |m: &str| {
        m.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let (_, media) = content
        .iter()
        .find(|(m, _)| essence(m) == essence(content_type))
        .unwrap_or_else(|| {
            panic!(
                "{}: content type {content_type} not among {:?}",
                context(),
                content.keys().collect::<Vec<_>>()
            )
        });
    if *method == Method::HEAD {
        return;
    }
    if essence(content_type) == "text/event-stream" {
        // `event: status` and a `StatusChange` as `data`.
        let change = &json!({ "$ref": "#/components/schemas/StatusChange" });
        let mut events = 0;
        for line in body_text.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                let data: Value = serde_json::from_str(data)
                    .unwrap_or_else(|e| panic!("{}: event data is not JSON: {e}", context()));
                let errs = errors(doc, change, &data);
                assert!(errs.is_empty(), "{}: event data: {errs:#?}", context());
                events += 1;
            } else {
                assert!(
                    line.is_empty() || line == "event: status" || line.starts_with(':'),
                    "{}: unexpected line {line:?}",
                    context()
                );
            }
        }
        assert_eq!(events, 1, "{}: one event first", context());
    }
    let instance = if essence(content_type).ends_with("json") {
        serde_json::from_slice(&answer.body)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", context()))
    } else {
        Value::String(body_text.to_string())
    };
    let errs = errors(doc, &media["schema"], &instance);
    assert!(
        errs.is_empty(),
        "{}: body does not match: {errs:#?}",
        context()
    );
}

/// Sends `method uri` through `layer` and checks the answer against the
/// operation documented at `template`; returns the answer.
async fn conforms(
    layer: &StatusLayer,
    template: &str,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> Got {
    let doc = layer.clone().build().openapi();
    let answer = call(layer, method.clone(), uri, headers).await;
    let at = format!("{method} {uri} (as {template})");
    let item = &doc["paths"][template];
    assert!(item.is_object(), "{at}: path not documented");
    let op = &item[method.as_str().to_ascii_lowercase()];
    let response = if op.is_object() {
        let response = &op["responses"][answer.status.as_str()];
        assert!(
            response.is_object(),
            "{at}: {} not documented (documented: {:?}); body {}",
            answer.status,
            codes(op),
            String::from_utf8_lossy(&answer.body)
        );
        response
    } else {
        // Methods a path does not offer: the documented 405.
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{at}");
        &doc["components"]["responses"]["MethodNotAllowed"]
    };
    let method_for_body = if method == Method::HEAD {
        Method::HEAD
    } else {
        Method::GET
    };
    check_response(&doc, &at, response, &method_for_body, &answer);
    answer
}

/// The `billing` service at `version` in `environment`: a `db` check up
/// (observed `db_ms` ms), a non-critical `cache` check down, a traffic rule
/// and a `build` section.
fn billing_layer(version: &str, environment: &str, db_ms: u64) -> StatusLayer {
    StatusLayer::new()
        .service_name("billing")
        .version(version)
        .environment(environment)
        .check(HealthCheck::new("db", move || async move {
            CheckResult::ok().with_observed(db_ms, "ms")
        }))
        .check(
            HealthCheck::new("cache", || async {
                CheckResult::down("connection refused")
            })
            .critical(false)
            .component_type("cache"),
        )
        .traffic_rule(TrafficRule::error_rate_above(0.5, Status::Degraded))
        .section("build", || async { json!({ "commit": "abc123" }) })
}

fn detailed_layer() -> StatusLayer {
    billing_layer("1.2.3", "test", 3)
        .serve_metrics(true)
        .serve_openapi(true)
}

#[tokio::test]
async fn open_layer_answers_as_documented() {
    let layer = detailed_layer();
    let s = "/status";
    let c = "/status/{component}";
    for method in [Method::GET, Method::HEAD] {
        let report = conforms(&layer, s, method.clone(), "/status", &[]).await;
        assert_eq!(report.status, StatusCode::OK, "degraded is 200");
        for uri in [
            "/status/",
            "/status?format=ietf",
            "/status?exclude=cache,db&exclude=x",
        ] {
            conforms(&layer, s, method.clone(), uri, &[]).await;
        }
        let bad = conforms(&layer, s, method.clone(), "/status?format=nope", &[]).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        conforms(
            &layer,
            s,
            method.clone(),
            "/status",
            &[("accept", "application/health+json")],
        )
        .await;
        for (template, uri) in [
            ("/status/live", "/status/live"),
            ("/status/ready", "/status/ready"),
            ("/status/ready", "/status/ready?verbose"),
            ("/status/ready", "/status/ready?verbose=0&exclude=db"),
        ] {
            conforms(&layer, template, method.clone(), uri, &[]).await;
        }
        let db = conforms(&layer, c, method.clone(), "/status/db", &[]).await;
        assert_eq!(db.status, StatusCode::OK);
        let cache = conforms(&layer, c, method.clone(), "/status/cache", &[]).await;
        assert_eq!(cache.status, StatusCode::SERVICE_UNAVAILABLE);
        conforms(&layer, c, method.clone(), "/status/traffic", &[]).await;
        let missing = conforms(&layer, c, method.clone(), "/status/no%20such", &[]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        for path in ["/status/watch", "/status/metrics"] {
            conforms(&layer, path, method.clone(), path, &[]).await;
        }
        let doc = conforms(
            &layer,
            "/status/openapi.json",
            method.clone(),
            "/status/openapi.json",
            &[],
        )
        .await;
        if method == Method::GET {
            let served: Value = serde_json::from_slice(&doc.body).unwrap();
            assert_eq!(served, layer.clone().build().openapi());
        }
    }
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "QUERY",
    ] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for (template, uri) in [
            (s, "/status"),
            ("/status/live", "/status/live"),
            (c, "/status/db"),
        ] {
            let answer = conforms(&layer, template, method.clone(), uri, &[]).await;
            assert_eq!(answer.headers["allow"], "GET, HEAD");
        }
    }
}

#[tokio::test]
async fn maintenance_and_draining_answer_as_documented() {
    let layer = detailed_layer().check(HealthCheck::new("down", || async { false }));
    let down = conforms(&layer, "/status", Method::GET, "/status", &[]).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers.get(RETRY_AFTER).is_none());
    let handle = layer.clone().build();
    handle.set_maintenance(
        Notice::new("upgrading").estimated_completion(SystemTime::now() + Duration::from_secs(90)),
    );
    for (template, uri) in [
        ("/status", "/status"),
        ("/status", "/status?format=ietf"),
        ("/status/ready", "/status/ready?verbose=1"),
    ] {
        let answer = conforms(&layer, template, Method::GET, uri, &[]).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(answer.headers.get(RETRY_AFTER).is_some(), "{uri}");
    }
    handle.clear_maintenance();
    handle.start_draining();
    let ready = conforms(&layer, "/status/ready", Method::GET, "/status/ready", &[]).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let report = conforms(&layer, "/status", Method::GET, "/status", &[]).await;
    assert_eq!(report.status, StatusCode::SERVICE_UNAVAILABLE);
    // Pushed components count like checks.
    handle.set_component("queue", CheckResult::degraded("slow"));
    conforms(
        &layer,
        "/status/{component}",
        Method::GET,
        "/status/queue",
        &[],
    )
    .await;
}

#[tokio::test]
async fn keyed_layer_answers_as_documented() {
    let layer = keys_layer()
        .service_name("billing")
        .check(HealthCheck::new("db", || async { true }))
        .caller_section("quota", |caller: tower_status::auth::Caller| async move {
            json!({ "who": caller.identity().map(|i| i.name.clone()) })
        })
        .count_requests_per_key(Duration::from_secs(3600))
        .serve_metrics(true)
        .serve_openapi(true);
    let full: &[(&str, &str)] = &[("x-api-key", FULL_KEY)];
    let bearer = format!("Bearer {FULL_KEY}");
    let status_only: &[(&str, &str)] = &[("x-api-key", STATUS_KEY)];
    let none: &[(&str, &str)] = &[("x-api-key", NONE_KEY)];
    let scraper: &[(&str, &str)] = &[("x-api-key", SCRAPE_KEY)];
    let unknown: &[(&str, &str)] = &[("x-api-key", "nope")];
    let basic: &[(&str, &str)] = &[("authorization", "Basic Zm9vOmJhcg==")];
    let c = "/status/{component}";
    for method in [Method::GET, Method::HEAD] {
        let m = || method.clone();
        let anonymous = conforms(&layer, "/status", m(), "/status", &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        assert!(anonymous.headers.contains_key("www-authenticate"));
        let ok = conforms(&layer, "/status", m(), "/status", full).await;
        assert_eq!(ok.status, StatusCode::OK);
        conforms(
            &layer,
            "/status",
            m(),
            "/status",
            &[("authorization", &bearer)],
        )
        .await;
        conforms(&layer, "/status", m(), "/status?format=ietf", full).await;
        let minimal = conforms(&layer, "/status", m(), "/status", status_only).await;
        assert_eq!(minimal.status, StatusCode::OK);
        conforms(&layer, "/status", m(), "/status?format=ietf", status_only).await;
        let forbidden = conforms(&layer, "/status", m(), "/status", none).await;
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
        conforms(&layer, "/status", m(), "/status", unknown).await;
        conforms(&layer, "/status", m(), "/status", basic).await;
        conforms(&layer, "/status", m(), "/status?format=nope", full).await;
        for probe in ["/status/live", "/status/ready"] {
            for headers in [&[][..], full, status_only, none, scraper, unknown, basic] {
                conforms(&layer, probe, m(), probe, headers).await;
            }
            conforms(&layer, probe, m(), &format!("{probe}?verbose=true"), full).await;
        }
        for headers in [&[][..], full, status_only, none, scraper, unknown] {
            conforms(&layer, c, m(), "/status/db", headers).await;
            conforms(&layer, c, m(), "/status/nope", headers).await;
            conforms(&layer, "/status/metrics", m(), "/status/metrics", headers).await;
            conforms(&layer, "/status/watch", m(), "/status/watch", headers).await;
            conforms(
                &layer,
                "/status/openapi.json",
                m(),
                "/status/openapi.json",
                headers,
            )
            .await;
        }
        let refused = conforms(&layer, c, m(), "/status/db", status_only).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        // A scraper's key: the metrics, and 403 on the report.
        let scraped = conforms(&layer, "/status/metrics", m(), "/status/metrics", scraper).await;
        assert_eq!(scraped.status, StatusCode::OK);
        let refused = conforms(&layer, "/status", m(), "/status", scraper).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn details_never_shown_answer_as_documented() {
    // Without keys and without details, components are refused 401.
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .show_details(Visibility::Never)
        .serve_metrics(true);
    let report = conforms(&layer, "/status", Method::GET, "/status", &[]).await;
    let body: Value = serde_json::from_slice(&report.body).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let db = conforms(
        &layer,
        "/status/{component}",
        Method::GET,
        "/status/db",
        &[],
    )
    .await;
    // No key could unlock details: 403, not a challenge.
    assert_eq!(db.status, StatusCode::FORBIDDEN);
    conforms(
        &layer,
        "/status/metrics",
        Method::GET,
        "/status/metrics",
        &[],
    )
    .await;
    conforms(
        &layer,
        "/status/ready",
        Method::GET,
        "/status/ready?verbose",
        &[],
    )
    .await;
}

#[tokio::test]
async fn custom_statuses_and_root_path_answer_as_documented() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("cache", || async { false }).critical(false))
        .http_status(Status::Degraded, StatusCode::MULTI_STATUS);
    let report = conforms(&layer, "/status", Method::GET, "/status", &[]).await;
    assert_eq!(report.status, StatusCode::MULTI_STATUS);
    conforms(&layer, "/status/ready", Method::GET, "/status/ready", &[]).await;

    let root = StatusLayer::new().path("/");
    conforms(&root, "/", Method::GET, "/", &[]).await;
    conforms(&root, "/", Method::DELETE, "/", &[]).await;
}

// ---------------------------------------------------------------------------
// schemathesis against a live server
// ---------------------------------------------------------------------------

/// How long schemathesis may run before the test fails.
const SCHEMATHESIS_LIMIT: Duration = Duration::from_secs(150);

/// The schemathesis command line: `$SCHEMATHESIS` (a command, split on
/// spaces) when set, else the first of `st`, `schemathesis` and
/// `python3 -m schemathesis.cli` that answers `--version`.
fn schemathesis() -> (Vec<String>, String) {
    let mut candidates: Vec<Vec<String>> = Vec::new();
    if let Ok(custom) = std::env::var("SCHEMATHESIS") {
        candidates.push(custom.split_whitespace().map(str::to_owned).collect());
    }
    candidates.push(vec!["st".into()]);
    candidates.push(vec!["schemathesis".into()]);
    candidates.push(vec![
        "python3".into(),
        "-m".into(),
        "schemathesis.cli".into(),
    ]);
    for candidate in candidates {
        let Some((program, args)) = candidate.split_first() else {
            continue;
        };
        let Ok(out) = std::process::Command::new(program)
            .args(args)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
        else {
            continue;
        };
        if out.status.success() {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            return (candidate, version);
        }
    }
    panic!(
        "schemathesis is not installed: install it with `python3 -m pip install schemathesis` \
         (scripts/test.sh does), or set SCHEMATHESIS to its command"
    );
}

/// Serves `layer` around a small axum app on a loopback port, runs
/// schemathesis against its served document with the conformance checks,
/// and fails with schemathesis' whole output when it finds anything.
async fn run_schemathesis(layer: StatusLayer, headers: &[&str]) {
    let (command, version) = schemathesis();
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("axum server");
    });

    let url = format!("http://{addr}/status/openapi.json");
    let workdir = std::env::temp_dir().join(format!(
        "tower-status-schemathesis-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&workdir).expect("work directory");
    // Component names are generated only as the schema allows them: a
    // negative value there ("live", "metrics", "", "..") names another
    // resource of the endpoint (or the report itself), which answers as
    // that resource, not as a component.
    let config = workdir.join("schemathesis.toml");
    std::fs::write(
        &config,
        "[[operations]]\n\
         include-operation-id = [\"getComponent\", \"headComponent\"]\n\
         generation = { mode = \"positive\" }\n",
    )
    .expect("schemathesis.toml");
    let checks = [
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        // 405 with `Allow` for the methods the document does not list.
        "unsupported_method",
        "allow_header_conformance",
        // The operations that declare `security` refuse requests without a key.
        "ignored_auth",
    ]
    .join(",");
    let (program, first) = command.split_first().expect("a command");
    let mut child = tokio::process::Command::new(program);
    child
        .args(first)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&url)
        .args(["--checks", &checks])
        .args(["--max-examples", "20"])
        .args(["--seed", "20240611"])
        // GET /status/watch is an event stream that never ends: a fuzzer
        // would wait on it until its request timeout and report the cut as
        // a failure. Its HEAD and the 405s of its path are still tested;
        // its events are checked by the watch tests.
        .args(["--exclude-operation-id", "getWatch"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        // One worker: with two threads, CPython before 3.11.8 (python/cpython#106905)
        // can fail Hypothesis's own AST work with "AST constructor recursion
        // depth mismatch", an error of the tool, not of the contract.
        .args(["--workers", "1"])
        .arg("--no-color")
        .current_dir(&workdir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for header in headers {
        child.args(["--header", header]);
    }
    let started = std::time::Instant::now();
    let output = match tokio::time::timeout(SCHEMATHESIS_LIMIT, child.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("could not run {command:?}: {e}"),
        Err(_) => panic!("schemathesis did not finish within {SCHEMATHESIS_LIMIT:?}"),
    };
    server.abort();
    let _ = std::fs::remove_dir_all(&workdir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis ({version}) found contract violations (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    let summary = stdout
        .find("SUMMARY")
        .and_then(|at| stdout[..at].rfind('\n'))
        .map_or(&*stdout, |at| &stdout[at + 1..]);
    eprintln!(
        "{version}, {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        summary.trim_end()
    );
}

/// The realistic setup: checks (one non-critical and failing), a traffic
/// rule, a section, API keys required for the report (the key given to
/// schemathesis sees details), per-key counting, metrics and the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation() {
    let layer = billing_layer("2.4.1", "ci", 2)
        .api_keys(
            ApiKeys::new()
                .key(
                    FULL_KEY,
                    Identity::new("schemathesis").attribute("tier", "ci"),
                )
                .key(
                    STATUS_KEY,
                    Identity::new("lb").permissions(Permissions::STATUS),
                ),
        )
        .count_requests_per_key(Duration::from_secs(3600))
        .serve_metrics(true)
        .serve_openapi(true);
    // The scheme's own (lowercase) header name: schemathesis matches it
    // exactly to know that the key is given, for `ignored_auth`.
    run_schemathesis(layer, &[&format!("x-api-key: {FULL_KEY}")]).await;
}

/// Without keys, in maintenance with an estimated end (503 with
/// `Retry-After`), a custom format with its own media type, and a
/// non-default HTTP status for `degraded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation_in_maintenance() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .check(HealthCheck::new("search", || async { false }).critical(false))
        .http_status(Status::Degraded, StatusCode::MULTI_STATUS)
        .format(
            "prometheus",
            Some(tower_status::format::PROMETHEUS_MEDIA_TYPE),
            tower_status::format::PrometheusFormat,
        )
        .serve_openapi(true);
    layer.clone().build().set_maintenance(
        Notice::new("upgrading the database")
            .estimated_completion(SystemTime::now() + Duration::from_secs(600)),
    );
    run_schemathesis(layer, &[]).await;
}

/// Every status word of the report is one the document lists.
#[test]
fn status_words_are_the_documented_ones() {
    let doc = StatusLayer::new().clone().build().openapi();
    // Derived from the enum: one `const` for each variant, with its docs.
    let documented: Vec<&str> = doc["components"]["schemas"]["Status"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["const"].as_str().unwrap())
        .collect();
    let words: Vec<&str> = [
        Status::Ok,
        Status::Degraded,
        Status::Down,
        Status::Maintenance,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(documented, words);
    let by_code: BTreeMap<&str, &Value> = doc["paths"]["/status"]["get"]["responses"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    assert!(by_code.contains_key("200") && by_code.contains_key("503"));
}

/// Consumer signals: `429` for `degraded` where turned on, and the
/// `x-envoy-degraded` and weight headers, answered as documented.
#[tokio::test]
async fn consumer_signals_answer_as_documented() {
    use tower_status::format::{ConsumerSignals, Probe};
    let weight = ConsumerSignals::new().load_balancing_weight(true);
    let layer = StatusLayer::new()
        .check(HealthCheck::pushed("queue"))
        .consumer_signals(
            [Probe::Report, Probe::Component],
            weight.degraded_as_429(true),
        )
        .consumer_signals(
            [Probe::Live, Probe::Ready],
            weight.envoy_degraded_header(true),
        )
        .serve_openapi(true);
    let handle = layer.clone().build();
    let doc = handle.openapi();
    let responses = |path: &str| doc["paths"][path]["get"]["responses"].clone();
    let report = responses("/status");
    assert_eq!(codes_of(&report), ["200", "400", "429", "503"]);
    let degraded = &report["429"]["content"]["application/json"]["schema"]["allOf"][1];
    assert_eq!(
        degraded["properties"]["status"]["enum"],
        json!(["degraded"])
    );
    let component = responses("/status/{component}");
    assert_eq!(codes_of(&component), ["200", "404", "429", "503"]);
    for code in ["200", "429", "503"] {
        let header = &component[code]["headers"]["x-load-balancing-endpoint-weight"];
        assert_eq!(header["required"], true, "{code}");
        assert_eq!(header["schema"]["maximum"], 1000, "{code}");
        assert!(component[code]["headers"].get("x-envoy-degraded").is_none());
    }
    let ready = responses("/status/ready");
    assert_eq!(codes_of(&ready), ["200", "503"]);
    // Sent with degraded, one of the statuses answered 200.
    assert_eq!(
        ready["200"]["headers"]["x-envoy-degraded"]["required"],
        false
    );
    assert!(ready["503"]["headers"].get("x-envoy-degraded").is_none());
    assert!(responses("/status/live")["200"]["headers"]
        .get("x-load-balancing-endpoint-weight")
        .is_some());

    let probes = [
        ("/status", "/status"),
        ("/status", "/status?format=ietf"),
        ("/status/live", "/status/live"),
        ("/status/ready", "/status/ready?verbose"),
        ("/status/{component}", "/status/queue"),
    ];
    for result in [
        CheckResult::ok(),
        CheckResult::degraded("slow"),
        CheckResult::down("gone"),
    ] {
        handle.set_component("queue", result);
        for method in [Method::GET, Method::HEAD] {
            for (template, uri) in probes {
                conforms(&layer, template, method.clone(), uri, &[]).await;
            }
        }
    }
    handle.set_component("queue", CheckResult::degraded("slow"));
    let answer = conforms(&layer, "/status", Method::GET, "/status", &[]).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    handle.start_draining();
    handle.set_maintenance(
        Notice::new("upgrading").estimated_completion(SystemTime::now() + Duration::from_secs(90)),
    );
    for (template, uri) in probes {
        let answer = conforms(&layer, template, Method::GET, uri, &[]).await;
        assert_eq!(
            answer.headers["x-load-balancing-endpoint-weight"], "0",
            "{uri}"
        );
    }
}

/// The status codes of a Responses Object, in order.
fn codes_of(responses: &Value) -> Vec<&str> {
    responses
        .as_object()
        .map(|r| r.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Every consumer signal on every probe, while degraded: `429`,
/// `x-envoy-degraded` and the weight header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation_with_consumer_signals() {
    use tower_status::format::{ConsumerSignals, Probe};
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }))
        .check(HealthCheck::new("search", || async {
            CheckResult::degraded("reindexing")
        }))
        .consumer_signals(
            Probe::ALL,
            ConsumerSignals::new()
                .degraded_as_429(true)
                .envoy_degraded_header(true)
                .load_balancing_weight(true),
        )
        .serve_openapi(true);
    run_schemathesis(layer, &[]).await;
}
