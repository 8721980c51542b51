//! The `GET /status` contract of a Node.js service documentation (seed 000,
//! "API Status Check"), served by `StatusLayer` with a custom format.
//!
//! ```sh
//! DEPENDENCY_ADDR=127.0.0.1:5432 cargo run --release --example service_status
//! curl -i localhost:3000/status
//! ```
//!
//! ```json
//! {"status":"healthy","service":"all-services","timestamp":"2026-11-23T10:30:00.000Z",
//!  "environment":"development","version":"0.1.0","uptime":3600,"memory":{"used":4,"total":16}}
//! ```
//!
//! - `STATUS_ADDR`: listen address (default `127.0.0.1:3000`; port 0: any
//!   free port). Once bound, prints `listening on http://ADDR/status`.
//! - `APP_ENV`: the `environment` field (default `development`; read by the crate).
//! - `DEPENDENCY_ADDR`: optional `host:port` of a TCP dependency. When a
//!   connection to it is refused or times out (1 s), `status` is
//!   `unhealthy` and the answer is `503` with the same object; the check is
//!   rerun at most every 500 ms, so the service recovers as soon as the
//!   dependency is back. `GET /status/dependency` shows the error text. An
//!   address that is not `host:port` (checked by `TcpCheck::parse`) stops
//!   the example at start with a one-line message (exit status 2).
//!
//! `HEAD /status` answers the same headers without a body; any other method
//! gets `405` with `Allow: GET, HEAD` (both done by the crate). The only
//! code here is the check and the two formats: there is no handler for
//! `/status`.
//!
//! Errors of the endpoint (`405`, `404` for an unknown resource below
//! `/status`, `400` for `?format=`) are the seed's "Error Response Example",
//! `{"error", "timestamp", "service"}`, shaped by the layer's error format.
//! The seed's body is the only one served: the crate's own formats are off,
//! so `?format=json` is a `400` in that error shape too.

use std::io::Write;
use std::time::Duration;

use axum::{routing::get, Router};
use serde::Serialize;
use tower_status::check::{Freshness, HealthCheck, TcpCheck};
use tower_status::format::{FormatContext, Rendered, StatusError};
use tower_status::report::Timestamp;
use tower_status::{Report, Status, StatusLayer};

/// The seed's service identifier.
const SERVICE: &str = "all-services";

/// Bytes in the seed's "MB": Node's `Math.round(bytes / 1024 / 1024)`.
const MB: u64 = 1024 * 1024;

fn mb(bytes: u64) -> u64 {
    (bytes + MB / 2) / MB
}

/// The seed's body, fields in the seed's order.
#[derive(Serialize)]
struct Body<'a> {
    status: &'static str,
    service: Option<&'a str>,
    timestamp: Timestamp,
    environment: &'a str,
    version: Option<&'a str>,
    uptime: u64,
    memory: MemoryMb,
}

/// Memory in whole MB (MiB, as Node's `bytes / 1024 / 1024`).
#[derive(Serialize)]
struct MemoryMb {
    used: u64,
    total: u64,
}

/// The seed's body, from the crate's report.
fn seed_000(report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    // Degraded still serves (200), so it is "healthy" in a two-word contract.
    let status = match report.status {
        Status::Ok | Status::Degraded => "healthy",
        Status::Down | Status::Maintenance => "unhealthy",
    };
    // `used` is the resident set size (physical memory the process occupies);
    // `total` is its virtual size (address space mapped, resident or not):
    // the two figures the crate reads from the OS. The seed's Node service
    // reported heapUsed/heapTotal, which a Rust process does not have.
    // `memory` is absent only on platforms that report nothing: 0 then.
    let (used, total) = report
        .memory
        .map_or((0, 0), |m| (mb(m.rss_bytes), mb(m.virtual_bytes)));
    Rendered::json(
        ctx.status_code(),
        &Body {
            status,
            service: report.service.as_deref(),
            timestamp: report.timestamp,
            environment: &report.environment,
            version: report.version.as_deref(),
            uptime: report.uptime_seconds,
            memory: MemoryMb { used, total },
        },
    )
}

/// The seed's "Error Response Example", fields in its order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    timestamp: Timestamp,
    service: &'static str,
}

/// The endpoint's errors in the seed's shape; the status code and the
/// endpoint's headers (`Allow`) stay the crate's.
fn seed_000_error(err: &StatusError) -> Rendered {
    Rendered::json(
        err.status,
        &ErrorBody {
            error: &err.message,
            timestamp: Timestamp::now(),
            service: SERVICE,
        },
    )
}

#[tokio::main]
async fn main() {
    let mut layer = StatusLayer::new()
        .service_name(SERVICE)
        .version(tower_status::app_version!())
        .default_format(seed_000)
        .serve_builtin_formats(false)
        .error_format(seed_000_error);

    if let Some(addr) = std::env::var("DEPENDENCY_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
    {
        let tcp = match TcpCheck::parse(addr.trim()) {
            Ok(tcp) => tcp,
            Err(e) => {
                eprintln!("service_status: invalid DEPENDENCY_ADDR: {e}");
                std::process::exit(2);
            }
        };
        layer = layer.check(
            HealthCheck::new("dependency", tcp.timeout(Duration::from_secs(1)))
                .component_type("tcp")
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
            eprintln!("service_status: cannot listen on {addr}: {e}");
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
            eprintln!("service_status: cannot read the address bound for {addr}: {e}");
            std::process::exit(1);
        }
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    if let Err(e) = served {
        eprintln!("service_status: {e}");
        std::process::exit(1);
    }
}
