//! The `GET /status` contract of an image-generation API's integrations
//! (seed 001, ImagineAPI's "New /status Endpoint"), served by `StatusLayer`
//! with one TCP check per integration and a custom format.
//!
//! ```sh
//! INTEGRATIONS='1=MJ@127.0.0.1:7001,2=DALL-E@127.0.0.1:7002' \
//!     cargo run --release --example integrations
//! curl -H "Authorization: Bearer dev-token" localhost:3000/status
//! ```
//!
//! ```json
//! {"status":"ok","data":{"integrations":[{"id":"1","status":"healthy","type":"MJ"},
//!  {"id":"2","status":"healthy","type":"DALL-E"}],"healthy_integrations_count":2,
//!  "total_integrations_count":2,"healthy_percentage":100.0,"stats_by_integration_type":{
//!  "MJ":{"total_count":1,"healthy_count":1,"healthy_percentage":100.0,"status":"ok"},
//!  "DALL-E":{"total_count":1,"healthy_count":1,"healthy_percentage":100.0,"status":"ok"}}}}
//! ```
//!
//! - `STATUS_ADDR`: listen address (default `127.0.0.1:3000`; port 0: any
//!   free port). Once bound, prints `listening on http://ADDR/status`.
//! - `STATUS_API_KEY`: the key, sent as `Authorization: Bearer KEY` (default
//!   `dev-token`; an empty value counts as unset). Without it: `401` with a
//!   JSON body `{"error", "code"}` and `WWW-Authenticate: Bearer`.
//! - `INTEGRATIONS`: comma-separated `id=TYPE@host:port`. Each is a TCP check
//!   named `id` of component type `TYPE`: healthy while a connection to
//!   `host:port` opens within 1 s (rerun at most every 500 ms). A malformed
//!   entry (the address is checked by `TcpCheck::parse`) or a repeated id
//!   stops the example at start with a one-line message (exit status 2).
//!   Unset or empty: no integrations.
//!
//! Aggregation, as the seed words it: `ok` when all integrations are healthy
//! (200), `degraded` when some are not (200), `unhealthy` when none is (503).
//! That rule is the layer's own (`.aggregation(..)`): every integration is a
//! non-critical check, so one down only degrades, and all of them down is
//! `down`. The format maps the overall status to the seed's words and
//! answers the layer's HTTP status, so `/status`, readiness
//! (`/status/ready`, 503 when all are down) and `/status/watch` agree. The
//! same words give each type's `status`. With no integrations nothing is
//! failing: `ok`, counts 0 and `healthy_percentage` 100.0 (so that
//! `healthy_percentage < 100` always means something is down).
//! Percentages are rounded to two decimals (2 of 3 is 66.67). Integrations
//! and types are listed in the order `INTEGRATIONS` gives them.
//!
//! An integration id must not contain `/`, `=`, `@` or spaces: the crate
//! also serves each one alone at `/status/{id}` (with its error text).
//!
//! The seed's body is the only one served: the crate's own formats are off,
//! so `?format=json` is a `400` (`{"error", "code": "unknown_format"}`).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::Duration;

use axum::{routing::get, Router};
use serde::Serialize;
use tower_status::auth::{ApiKeys, Identity};
use tower_status::check::{Freshness, HealthCheck, TcpCheck};
use tower_status::format::{FormatContext, Rendered};
use tower_status::report::{aggregate, Component};
use tower_status::{Report, Status, StatusLayer};

/// One configured integration.
#[derive(Debug)]
struct Integration {
    id: String,
    kind: String,
    check: TcpCheck,
}

/// Parses `INTEGRATIONS`: `id=TYPE@host:port`, comma-separated.
fn parse_integrations(spec: &str) -> Result<Vec<Integration>, String> {
    if spec.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, entry) in spec.split(',').map(str::trim).enumerate() {
        let at = |why: String| format!("entry {} `{entry}`: {why}", n + 1);
        if entry.is_empty() {
            return Err(at("empty entry (expected id=TYPE@host:port)".into()));
        }
        let (id, rest) = entry
            .split_once('=')
            .ok_or_else(|| at("missing `=` (expected id=TYPE@host:port)".into()))?;
        let (kind, addr) = rest
            .split_once('@')
            .ok_or_else(|| at("missing `@` (expected id=TYPE@host:port)".into()))?;
        let (id, kind, addr) = (id.trim(), kind.trim(), addr.trim());
        if id.is_empty() || id.contains(['/', '@', '=']) || id.contains(char::is_whitespace) {
            return Err(at(format!(
                "`{id}` is not an id (non-empty, no spaces, `/`, `=` or `@`)"
            )));
        }
        if kind.is_empty() || kind.contains(char::is_whitespace) {
            return Err(at(format!("`{kind}` is not a type (non-empty, no spaces)")));
        }
        let check = TcpCheck::parse(addr).map_err(|e| at(e.to_string()))?;
        if !seen.insert(id.to_owned()) {
            return Err(at(format!("id `{id}` is given twice")));
        }
        out.push(Integration {
            id: id.to_owned(),
            kind: kind.to_owned(),
            check,
        });
    }
    Ok(out)
}

/// The seed's rule as the layer's aggregation: `down` when every
/// integration is down, else the crate's rule (all checks are non-critical,
/// so any down only degrades).
fn all_down_is_down(components: &BTreeMap<String, Component>) -> Status {
    if !components.is_empty() && components.values().all(|c| c.status == Status::Down) {
        Status::Down
    } else {
        aggregate(components.values())
    }
}

/// The seed's word for the overall status. Nothing here sets maintenance;
/// were it set, the service would be out of service: `unhealthy`.
fn overall_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Degraded => "degraded",
        Status::Down | Status::Maintenance => "unhealthy",
    }
}

/// The seed's status word for `healthy` of `total` of one type.
fn word(healthy: usize, total: usize) -> &'static str {
    if healthy == total {
        "ok"
    } else if healthy == 0 {
        "unhealthy"
    } else {
        "degraded"
    }
}

/// Share of healthy ones in percent, two decimals; 100.0 when there are none.
fn percentage(healthy: usize, total: usize) -> f64 {
    if total == 0 {
        return 100.0;
    }
    (healthy as f64 * 10_000.0 / total as f64).round() / 100.0
}

/// The seed's body, fields in the seed's order.
#[derive(Serialize)]
struct Body<'a> {
    status: &'static str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    integrations: Vec<IntegrationStatus<'a>>,
    healthy_integrations_count: usize,
    total_integrations_count: usize,
    healthy_percentage: f64,
    stats_by_integration_type: InOrder<'a>,
}

#[derive(Serialize)]
struct IntegrationStatus<'a> {
    id: &'a str,
    status: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct TypeStats {
    total_count: usize,
    healthy_count: usize,
    healthy_percentage: f64,
    status: &'static str,
}

/// Types in the order they are first configured (the seed lists MJ before
/// DALL-E), serialized as a JSON object.
struct InOrder<'a>(Vec<(&'a str, TypeStats)>);

impl Serialize for InOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// The seed's body, from the report's components in configured order.
fn seed_001(order: &[String], report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    let mut integrations = Vec::new();
    // (type, total, healthy), in order of first appearance.
    let mut by_type: Vec<(&str, usize, usize)> = Vec::new();
    // Components left out with `?exclude=` are not in the report: skipped.
    for (id, c) in order
        .iter()
        .filter_map(|id| report.components.get(id).map(|c| (id, c)))
    {
        let healthy = c.status == Status::Ok;
        let kind = c.component_type.as_deref().unwrap_or("unknown");
        let at = match by_type.iter().position(|(k, _, _)| *k == kind) {
            Some(at) => at,
            None => {
                by_type.push((kind, 0, 0));
                by_type.len() - 1
            }
        };
        by_type[at].1 += 1;
        by_type[at].2 += usize::from(healthy);
        integrations.push(IntegrationStatus {
            id,
            status: if healthy { "healthy" } else { "unhealthy" },
            kind,
        });
    }
    let total = integrations.len();
    let healthy = integrations
        .iter()
        .filter(|i| i.status == "healthy")
        .count();
    let stats = by_type
        .iter()
        .map(|&(kind, t, h)| {
            let stats = TypeStats {
                total_count: t,
                healthy_count: h,
                healthy_percentage: percentage(h, t),
                status: word(h, t),
            };
            (kind, stats)
        })
        .collect();
    // The overall status is the layer's (`all_down_is_down`), over the same
    // components as the list, and so is the HTTP status: 503 for `down`.
    Rendered::json(
        ctx.status_code(),
        &Body {
            status: overall_word(report.status),
            data: Data {
                integrations,
                healthy_integrations_count: healthy,
                total_integrations_count: total,
                healthy_percentage: percentage(healthy, total),
                stats_by_integration_type: InOrder(stats),
            },
        },
    )
}

#[tokio::main]
async fn main() {
    let spec = std::env::var("INTEGRATIONS").unwrap_or_default();
    let integrations = match parse_integrations(&spec) {
        Ok(list) => list,
        Err(e) => {
            eprintln!("integrations: invalid INTEGRATIONS: {e}");
            std::process::exit(2);
        }
    };
    let key = std::env::var("STATUS_API_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "dev-token".to_owned());

    let order: Vec<String> = integrations.iter().map(|i| i.id.clone()).collect();
    let mut layer = StatusLayer::new()
        .service_name("integrations")
        .version(tower_status::app_version!())
        .api_keys(
            ApiKeys::new()
                .no_header()
                .key(key, Identity::new("status-client")),
        )
        .aggregation(all_down_is_down)
        .default_format(move |report: &Report, ctx: &FormatContext<'_>| {
            seed_001(&order, report, ctx)
        })
        .serve_builtin_formats(false);
    for i in integrations {
        layer = layer.check(
            HealthCheck::new(i.id, i.check.timeout(Duration::from_secs(1)))
                .component_type(i.kind)
                .critical(false)
                .freshness(Freshness::OnDemand {
                    ttl: Duration::from_millis(500),
                }),
        );
    }

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .layer(layer);

    let addr = std::env::var("STATUS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("integrations: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    // The bound address (the port is the system's choice with port 0),
    // flushed at once: a test reads this line to know where to connect.
    match listener.local_addr() {
        Ok(a) => {
            println!("listening on http://{a}/status");
            let _ = std::io::stdout().flush();
        }
        Err(e) => {
            eprintln!("integrations: cannot read the address bound for {addr}: {e}");
            std::process::exit(1);
        }
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    if let Err(e) = served {
        eprintln!("integrations: {e}");
        std::process::exit(1);
    }
}
