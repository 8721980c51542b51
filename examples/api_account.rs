//! An API's account-aware status with the contract of seed 004:
//! `GET /v1/status` with `X-Api-Key`, the system status, its components,
//! the caller's tier and hourly rate limit, the response time and a
//! maintenance notice.
//!
//! ```sh
//! cargo run --example api_account
//! curl -H 'X-Api-Key: dev-key' localhost:3000/v1/status
//! curl -H 'X-Api-Key: dev-key' localhost:3000/v1/ping   # counts too
//! echo '{"message": "Scheduled maintenance in progress",
//!        "estimated_completion": "2026-12-19T14:00:00Z"}' > /tmp/maintenance.json
//! ```
//!
//! Environment:
//!
//! - `STATUS_ADDR` (default `127.0.0.1:3000`): where to listen;
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
//! How the seed's words come from the crate's report:
//!
//! - `storage` and `search` are non-critical checks, so one of them down
//!   only degrades the report. Both down is `critical` with 503: the crate
//!   has no "all of these" rule, so the format maps it (see `seed_status`);
//! - `api` is the `traffic` component, from rules on the API's own recorded
//!   traffic (error rate above 5 %, p99 above 1 s: degraded);
//! - `maintenance` is answered 200, as the seed's client reads the notice
//!   from a 200 body (`.http_status(Status::Maintenance, 200)`);
//! - every request carrying a key counts against its hourly window, the
//!   status call included (`count_requests_per_key`); `remaining` is the
//!   limit less that count, `reset_time` the end of the window;
//! - `performance.response_time_ms` is the mean response time of the API's
//!   requests over the recorder's last minute (status calls excluded).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use axum::{routing::get, Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tower_status::auth::ApiKeys;
use tower_status::auth::Identity;
use tower_status::check::{HealthCheck, TcpCheck, TrafficRule};
use tower_status::format::{FormatContext, Rendered};
use tower_status::report::{Component, Notice, TRAFFIC_COMPONENT};
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
    let keys = parse_keys(&var("API_KEYS", "dev-key:standard:1000"))?;
    let datacenter = var("DATACENTER", "local");

    let check = |name: &str, addr: String| {
        HealthCheck::new(
            name,
            TcpCheck::new(addr).connect_timeout(Duration::from_millis(500)),
        )
        .component_type("datastore")
        .critical(false)
    };
    let layer = StatusLayer::new()
        .path(STATUS_PATH)
        .service_name("api")
        .version(tower_status::app_version!())
        // `X-Api-Key` only: no `Authorization: Bearer`.
        .api_keys(keys.bearer(false))
        .count_requests_per_key(Duration::from_secs(3600))
        .health_check(check("storage", var("STORAGE_ADDR", "127.0.0.1:9000")))
        .health_check(check("search", var("SEARCH_ADDR", "127.0.0.1:9200")))
        .traffic_rule(TrafficRule::error_rate_above(0.05, Status::Degraded))
        .traffic_rule(TrafficRule::p99_above(
            Duration::from_secs(1),
            Status::Degraded,
        ))
        .http_status(Status::Maintenance, StatusCode::OK)
        .default_format(move |report: &Report, ctx: &FormatContext<'_>| {
            seed_body(report, ctx, &datacenter)
        });

    if let Ok(path) = std::env::var("MAINTENANCE_FILE") {
        if !path.trim().is_empty() {
            tokio::spawn(watch_maintenance(PathBuf::from(path), layer.handle()));
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
    println!(
        "listening on http://{}{STATUS_PATH}",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
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
            return Err(format!("API_KEYS entry {} is not key:tier:limit", i + 1));
        };
        let limit: u64 = limit
            .parse()
            .map_err(|_| format!("API_KEYS entry {}: limit {limit:?} is not a number", i + 1))?;
        if key.is_empty() || tier.is_empty() {
            return Err(format!("API_KEYS entry {}: empty key or tier", i + 1));
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

/// The seed's 500 body.
fn internal_error() -> Rendered {
    Rendered::json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!({
            "success": false,
            "message": "Unable to retrieve system status",
            "code": "internal_error",
            "status_code": 500,
            "suggestion": "The API is experiencing temporary issues. Please try again in a few minutes or contact support if the problem persists."
        }),
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

/// The overall word and HTTP status. The crate's own aggregation says
/// `degraded` when every dependency is down (they are non-critical);
/// the seed calls that `critical`, with 503.
fn seed_status(report: &Report, code: StatusCode) -> (&'static str, StatusCode) {
    let all_down = DEPENDENCIES
        .iter()
        .all(|name| report.components.get(*name).map(|c| c.status) == Some(Status::Down));
    match report.status {
        Status::Maintenance => ("maintenance", code),
        Status::Down => ("critical", code),
        _ if all_down => ("critical", StatusCode::SERVICE_UNAVAILABLE),
        Status::Degraded => ("degraded", code),
        Status::Ok => ("operational", code),
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
    let (status, code) = seed_status(report, ctx.status_code());
    let get = |name: &str| report.components.get(name);
    let body = Envelope {
        success: true,
        message: "System status retrieved successfully",
        data: Data {
            status,
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
                response_time_ms: report.response_time_ms.mean,
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
        Ok(bytes) => Rendered::new(code, "application/json", bytes),
        Err(_) => internal_error(),
    }
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
