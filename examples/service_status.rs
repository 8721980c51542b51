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
//! - `STATUS_ADDR`: listen address (default `127.0.0.1:3000`).
//! - `APP_ENV`: the `environment` field (default `development`; read by the crate).
//! - `DEPENDENCY_ADDR`: optional `host:port` of a TCP dependency. When a
//!   connection to it is refused or times out (1 s), `status` is
//!   `unhealthy` and the answer is `503` with the same object; the check is
//!   rerun at most every 500 ms, so the service recovers as soon as the
//!   dependency is back. `GET /status/dependency` shows the error text.
//!
//! `HEAD /status` answers the same headers without a body; any other method
//! gets `405` with `Allow: GET, HEAD` (both done by the crate). The only
//! code here is the check and the format: there is no handler for `/status`.

use std::time::Duration;

use axum::{routing::get, Router};
use serde::Serialize;
use tower_status::check::{Freshness, HealthCheck, TcpCheck};
use tower_status::format::{FormatContext, Rendered};
use tower_status::{Report, Status, StatusLayer};

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
    timestamp: tower_status::report::Timestamp,
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

/// `host:port` (or `[v6]:port`) with a port from 1 to 65535.
fn check_addr(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("`{addr}` is not host:port"))?;
    let bracketed = host.starts_with('[') && host.ends_with(']') && host.len() > 2;
    if host.is_empty() || host.contains(char::is_whitespace) || (host.contains(':') && !bracketed) {
        return Err(format!("`{addr}`: `{host}` is not a host name or address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(()),
        _ => Err(format!("`{addr}`: `{port}` is not a port number (1-65535)")),
    }
}

#[tokio::main]
async fn main() {
    let mut layer = StatusLayer::new()
        .service_name("all-services")
        .version(tower_status::app_version!())
        .default_format(seed_000);

    if let Some(addr) = std::env::var("DEPENDENCY_ADDR")
        .ok()
        .filter(|a| !a.trim().is_empty())
    {
        let addr = addr.trim().to_owned();
        if let Err(e) = check_addr(&addr) {
            eprintln!("service_status: invalid DEPENDENCY_ADDR: {e}");
            std::process::exit(2);
        }
        layer = layer.health_check(
            HealthCheck::new(
                "dependency",
                TcpCheck::new(addr).connect_timeout(Duration::from_secs(1)),
            )
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
    match listener.local_addr() {
        Ok(a) => println!("listening on http://{a}/status"),
        Err(_) => println!("listening on http://{addr}/status"),
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
