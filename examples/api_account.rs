//! An API's account-aware status with the contract of seed 004:
//! `GET /v1/status` with `X-Api-Key`, the system status, its components,
//! the caller's tier and hourly rate limit, the response time and a
//! maintenance notice.
//!
//! ```sh
//! cargo run --release --example api_account
//! curl -H 'X-Api-Key: dev-key' localhost:3000/v1/status
//! curl -H 'X-Api-Key: dev-key' localhost:3000/v1/ping   # counts too
//! echo '{"message": "Scheduled maintenance in progress",
//!        "estimated_completion": "2026-12-19T14:00:00Z"}' > /tmp/maintenance.json
//! ```
//!
//! Environment:
//!
//! - `STATUS_ADDR` (default `127.0.0.1:3000`): where to listen (port 0: any
//!   free port; the bound address is printed: `listening on http://ADDR/...`);
//! - `API_KEYS` (default `dev-key:standard:1000`): comma-separated
//!   `key:tier:limit`, the limit being requests per hour;
//! - `STORAGE_ADDR` (default `127.0.0.1:9000`), `SEARCH_ADDR` (default
//!   `127.0.0.1:9200`): `host:port` of the two dependencies, checked by
//!   opening a TCP connection;
//! - `MAINTENANCE_FILE` (unset: no maintenance): while this file exists the
//!   API is in maintenance, with the notice read from its JSON
//!   `{"message", "estimated_completion"}` (polled every 500 ms);
//! - `DATACENTER` (default `local`), `APP_ENV` (default `development`).
//!
//! A malformed `API_KEYS` entry or an address that is not `host:port`
//! (checked by `TcpCheck::parse`) stops the example at start with a
//! one-line message (exit status 2).
//!
//! How the seed's words come from the crate's report:
//!
//! - `storage` and `search` are non-critical checks, so one of them down
//!   only degrades the report. Both down is `critical` with 503: that rule
//!   is the layer's aggregation (`both_dependencies_down_is_down`), so the
//!   report, readiness (`/v1/status/ready`) and `/v1/status/watch` agree,
//!   and the format only maps the overall status to the seed's words
//!   (`seed_word`) and answers the layer's HTTP status;
//! - `api` is the `traffic` component, from rules on the API's own recorded
//!   traffic (error rate above 5 %, p99 above 1 s: degraded);
//! - `maintenance` is answered 200, as the seed's client reads the notice
//!   from a 200 body (`.http_status(Status::Maintenance, 200)`);
//! - every request carrying a key counts against its hourly window, the
//!   status call included (`count_requests_per_key`); `remaining` is the
//!   limit less that count, `reset_time` the end of the window;
//! - `performance.response_time_ms` is the mean response time of the API's
//!   requests over the recorder's last minute (status calls excluded); with
//!   no such request in that window, it is this status call's own time;
//! - errors of the endpoint (401 without a valid key, 405 for another
//!   method, 400 for `?format=`, 404 below the status path) have the shape
//!   of the seed's error response, `{"success": false, "message", "code",
//!   "status_code", "suggestion"}` (`seed_error`). The seed's body is the
//!   only one served: the crate's own formats are off, so `?format=json` is
//!   such a 400.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use axum::{routing::get, Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower_status::auth::ApiKeys;
use tower_status::auth::Identity;
use tower_status::check::{HealthCheck, TcpCheck, TrafficRule};
use tower_status::format::{FormatContext, Rendered, StatusError};
use tower_status::report::{aggregate, Component, Notice, TRAFFIC_COMPONENT};
use tower_status::{Report, Status, StatusHandle, StatusLayer};

const STATUS_PATH: &str = "/v1/status";
/// The dependencies; the system is critical when all of them are down.
const DEPENDENCIES: [&str; 2] = ["storage", "search"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let keys = parse_keys(&var("API_KEYS", "dev-key:standard:1000"))
        .unwrap_or_else(|e| invalid("API_KEYS", e));
    let datacenter = var("DATACENTER", "local");

    let check = |name: &str, var_name: &str, default: &str| {
        let tcp =
            TcpCheck::parse(var(var_name, default).trim()).unwrap_or_else(|e| invalid(var_name, e));
        HealthCheck::new(name, tcp.timeout(Duration::from_millis(500)))
            .component_type("datastore")
            .critical(false)
    };
    let storage = check("storage", "STORAGE_ADDR", "127.0.0.1:9000");
    let search = check("search", "SEARCH_ADDR", "127.0.0.1:9200");
    let layer = StatusLayer::new()
        .path(STATUS_PATH)
        .service_name("api")
        .version(tower_status::app_version!())
        // `X-Api-Key` only: no `Authorization: Bearer`.
        .api_keys(keys.bearer(false))
        .count_requests_per_key(Duration::from_secs(3600))
        .check(storage)
        .check(search)
        .aggregation(both_dependencies_down_is_down)
        .traffic_rule(TrafficRule::error_rate_above(0.05, Status::Degraded))
        .traffic_rule(TrafficRule::p99_above(
            Duration::from_secs(1),
            Status::Degraded,
        ))
        .http_status(Status::Maintenance, StatusCode::OK)
        .default_format(move |report: &Report, ctx: &FormatContext<'_>| {
            seed_body(report, ctx, &datacenter)
        })
        .serve_builtin_formats(false)
        .error_format(seed_error)
        .build();

    if let Ok(path) = std::env::var("MAINTENANCE_FILE") {
        if !path.trim().is_empty() {
            tokio::spawn(watch_maintenance(PathBuf::from(path), layer.clone()));
        }
    }

    let app = Router::new()
        .route(
            "/v1/ping",
            get(|| async { Json(json!({ "success": true, "message": "pong" })) }),
        )
        .layer(layer);

    let addr = var("STATUS_ADDR", "127.0.0.1:3000");
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The bound address (the port is the system's choice with port 0),
    // flushed at once: a test reads this line to know where to connect.
    println!(
        "listening on http://{}{STATUS_PATH}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Stops the example on bad configuration: one line, exit status 2.
fn invalid(name: &str, why: impl std::fmt::Display) -> ! {
    eprintln!("api_account: invalid {name}: {why}");
    std::process::exit(2)
}

/// `key:tier:limit,...` as API keys; each key is its own account, with its
/// tier and hourly limit as identity attributes.
fn parse_keys(spec: &str) -> Result<ApiKeys, String> {
    let mut keys = ApiKeys::new();
    for (i, entry) in spec.split(',').map(str::trim).enumerate() {
        let mut parts = entry.split(':');
        let (Some(key), Some(tier), Some(limit), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("entry {} is not key:tier:limit", i + 1));
        };
        let limit: u64 = limit
            .parse()
            .map_err(|_| format!("entry {}: limit {limit:?} is not a number", i + 1))?;
        if key.is_empty() || tier.is_empty() {
            return Err(format!("entry {}: empty key or tier", i + 1));
        }
        // Counted per identity name: one name per key, never the key itself.
        let identity = Identity::new(format!("account-{}", i + 1))
            .attribute("tier", tier)
            .attribute("limit", limit);
        keys = keys.key(key, identity);
    }
    Ok(keys)
}

// ---------------------------------------------------------------------------
// The seed's body.

#[derive(Serialize)]
struct Envelope<'a> {
    success: bool,
    message: &'static str,
    data: Data<'a>,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    status: &'static str,
    version: &'a str,
    timestamp: String,
    components: Components,
    account: Account<'a>,
    performance: Performance,
    #[serde(skip_serializing_if = "Option::is_none")]
    notice: Option<SeedNotice<'a>>,
}

/// Fields in the seed's order.
#[derive(Serialize)]
struct Components {
    api: &'static str,
    storage: &'static str,
    search: &'static str,
}

#[derive(Serialize)]
struct Account<'a> {
    tier: &'a Value,
    rate_limits: RateLimits,
}

#[derive(Serialize)]
struct RateLimits {
    remaining: u64,
    reset_time: String,
    limit: u64,
}

#[derive(Serialize)]
struct Performance {
    response_time_ms: f64,
}

#[derive(Serialize)]
struct SeedNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
    estimated_completion: Option<String>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    environment: &'a str,
    datacenter: &'a str,
}

/// The seed's error response, fields in the seed's order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    success: bool,
    message: &'a str,
    code: &'a str,
    status_code: u16,
    suggestion: &'a str,
}

/// The seed's 500 body.
fn internal_error() -> Rendered {
    Rendered::json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &ErrorBody {
            success: false,
            message: "Unable to retrieve system status",
            code: "internal_error",
            status_code: 500,
            suggestion: "The API is experiencing temporary issues. Please try again in a few minutes or contact support if the problem persists.",
        },
    )
}

fn seconds(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A component's word in the seed.
fn component_word(c: Option<&Component>) -> &'static str {
    match c.map(|c| c.status) {
        Some(Status::Ok) => "operational",
        Some(Status::Degraded) => "degraded",
        Some(Status::Down | Status::Maintenance) => "unavailable",
        // Not in the report (left out with `?exclude=`): nothing is known.
        None => "unavailable",
    }
}

/// The seed's rule as the layer's aggregation: the system is `down`
/// (the seed's `critical`) when every dependency is down, else the crate's
/// rule (the dependencies are non-critical: one down only degrades; the
/// `traffic` component is critical).
fn both_dependencies_down_is_down(components: &BTreeMap<String, Component>) -> Status {
    let all_down = DEPENDENCIES
        .iter()
        .all(|name| components.get(*name).map(|c| c.status) == Some(Status::Down));
    if all_down {
        Status::Down
    } else {
        aggregate(components.values())
    }
}

/// The seed's word for the overall status.
fn seed_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "operational",
        Status::Degraded => "degraded",
        Status::Down => "critical",
        Status::Maintenance => "maintenance",
    }
}

fn seed_body(report: &Report, ctx: &FormatContext<'_>, datacenter: &str) -> Rendered {
    // A key is required and every key may see details, so the caller is
    // always there; a caller the counter could not track (its table full)
    // has no rate limit to show: that is the seed's internal error.
    let Some(caller) = report.caller.as_ref() else {
        return internal_error();
    };
    let (Some(used), Some(window_ends), Some(limit)) = (
        caller.requests_in_window,
        caller.window_ends,
        caller.attributes.get("limit").and_then(Value::as_u64),
    ) else {
        return internal_error();
    };
    let get = |name: &str| report.components.get(name);
    let body = Envelope {
        success: true,
        message: "System status retrieved successfully",
        data: Data {
            status: seed_word(report.status),
            version: report.version.as_deref().unwrap_or("unknown"),
            timestamp: seconds(report.timestamp.0),
            components: Components {
                api: component_word(get(TRAFFIC_COMPONENT)),
                storage: component_word(get("storage")),
                search: component_word(get("search")),
            },
            account: Account {
                tier: caller.attributes.get("tier").unwrap_or(&Value::Null),
                rate_limits: RateLimits {
                    remaining: limit.saturating_sub(used),
                    reset_time: seconds(window_ends.0),
                    limit,
                },
            },
            performance: Performance {
                response_time_ms: response_time_ms(report, ctx),
            },
            notice: report.notice.as_ref().map(|n: &Notice| SeedNotice {
                kind: "maintenance",
                message: &n.message,
                estimated_completion: n.estimated_completion.map(|t| seconds(t.0)),
            }),
        },
        metadata: Metadata {
            environment: &report.environment,
            datacenter,
        },
    };
    match serde_json::to_vec(&body) {
        // 503 for `critical` (down), 200 otherwise, maintenance included.
        Ok(bytes) => Rendered::new(ctx.status_code(), "application/json", bytes),
        Err(_) => internal_error(),
    }
}

/// `performance.response_time_ms`. The rule: the mean response time of the
/// API's own requests over the recorder's window (`report.response_time_ms`,
/// status calls excluded) while there are any; with none in the window (a
/// fresh start, an idle API) there is no mean to show, and it is this status
/// call's own time so far (`ctx.elapsed()`, checks included), which is the
/// only response time measured. Milliseconds to the microsecond, as the
/// recorder's figures.
fn response_time_ms(report: &Report, ctx: &FormatContext<'_>) -> f64 {
    if report.response_time_ms.count > 0 {
        report.response_time_ms.mean
    } else {
        (ctx.elapsed().as_secs_f64() * 1_000_000.0).round() / 1_000.0
    }
}

/// The seed's error response (documented for 500), for the endpoint's own
/// errors: the crate's message and code, the HTTP status, and what to do.
fn seed_error(err: &StatusError) -> Rendered {
    let suggestion = match err.status {
        StatusCode::UNAUTHORIZED => "Send a valid API key in the X-Api-Key header.",
        StatusCode::FORBIDDEN => "This API key may not see the system status.",
        StatusCode::METHOD_NOT_ALLOWED => "Use GET (or HEAD) on this endpoint.",
        StatusCode::BAD_REQUEST => "Leave out the query parameters and try again.",
        StatusCode::NOT_FOUND => "The status is served at /v1/status.",
        _ => "The API is experiencing temporary issues. Please try again in a few minutes or contact support if the problem persists.",
    };
    Rendered::json(
        err.status,
        &ErrorBody {
            success: false,
            message: &err.message,
            code: &err.code,
            status_code: err.status.as_u16(),
            suggestion,
        },
    )
}

// ---------------------------------------------------------------------------
// Maintenance from a file.

/// The maintenance file's content.
#[derive(Deserialize)]
struct MaintenanceFile {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    estimated_completion: Option<String>,
}

const DEFAULT_MESSAGE: &str = "Scheduled maintenance in progress";

/// The notice a maintenance file stands for. A file that cannot be read as
/// JSON still means maintenance, with the default message.
fn notice_from(bytes: &[u8], path: &std::path::Path) -> Notice {
    let file: MaintenanceFile = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        eprintln!(
            "{}: not JSON ({e}); using the default notice",
            path.display()
        );
        MaintenanceFile {
            message: None,
            estimated_completion: None,
        }
    });
    let mut notice = Notice::new(
        file.message
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_MESSAGE.to_owned()),
    );
    if let Some(text) = file.estimated_completion {
        match humantime::parse_rfc3339_weak(text.trim()) {
            Ok(at) => notice = notice.estimated_completion(at),
            Err(e) => eprintln!(
                "{}: estimated_completion {text:?} is not an RFC 3339 time: {e}",
                path.display()
            ),
        }
    }
    notice
}

/// Polls the maintenance file every 500 ms and keeps the layer's
/// maintenance notice in step with it.
async fn watch_maintenance(path: PathBuf, handle: StatusHandle) {
    let mut current: Option<Notice> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let next = match tokio::fs::read(&path).await {
            Ok(bytes) => Some(notice_from(&bytes, &path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                // There but unreadable: still maintenance.
                eprintln!("{}: {e}; using the default notice", path.display());
                Some(Notice::new(DEFAULT_MESSAGE))
            }
        };
        if next != current {
            match &next {
                Some(notice) => handle.set_maintenance(notice.clone()),
                None => handle.clear_maintenance(),
            }
            current = next;
        }
    }
}
