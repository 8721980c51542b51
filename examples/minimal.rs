//! The `GET /status` contract of the Decentraland Badges API (seed 002, its
//! OpenAPI 3.1 document), served by `StatusLayer` with a custom format.
//!
//! ```sh
//! DEPENDENCY_ADDR=127.0.0.1:5432 cargo run --release --example minimal
//! curl -i localhost:3000/status
//! ```
//!
//! ```json
//! {"status":"ok","timestamp":"2026-11-23T10:30:00.000Z"}
//! ```
//!
//! - `STATUS_ADDR`: listen address (default `127.0.0.1:3000`; port 0: any
//!   free port). Once bound, prints `listening on http://ADDR/status`.
//! - `APP_ENV`: environment (default `development`; not in this body).
//! - `DEPENDENCY_ADDR`: optional `host:port` of a critical TCP dependency.
//!   Refused or timed out (1 s) gives `{"status":"down"}` with `503`.
//! - `OPTIONAL_DEPENDENCY_ADDR`: optional `host:port` of a non-critical TCP
//!   dependency. Down gives `{"status":"degraded"}` with `200`: still
//!   operational, as the document's enum allows.
//!
//! Both are rerun at most every 500 ms, so the status recovers as soon as the
//! dependency is back. An address that is not `host:port` (checked by
//! `TcpCheck::parse`) stops the example at start with a one-line message
//! (exit status 2).
//!
//! Why `503` for `down`: the document says "A 200 response indicates the
//! service is operational and ready to serve requests", and the endpoint is
//! meant for load balancer health checks, which take any 2xx as healthy. A
//! `down` service answering 200 would keep receiving traffic, so `down` is
//! answered 503 with the same body (which still validates against the 200
//! schema); the document lists no 503, which is an omission of the document
//! rather than a code a client can rely on being absent.
//!
//! Errors are the document's `{"error", "code"}` object, which is the
//! crate's own error body: `?format=nope` is a 400 (`unknown_format`), a
//! method other than GET/HEAD a 405 with `Allow: GET, HEAD`, all produced by
//! the crate. The document's body is the only one served: the crate's own
//! formats are off, so `?format=json` is a 400 (`unknown_format`) as well.

use std::io::Write;
use std::time::Duration;

use axum::{routing::get, Router};
use serde::Serialize;
use tower_status::check::{Freshness, HealthCheck, TcpCheck};
use tower_status::format::{FormatContext, Rendered};
use tower_status::{Report, Status, StatusLayer};

/// The document's 200 body, fields in its order.
#[derive(Serialize)]
struct Body {
    status: &'static str,
    timestamp: tower_status::report::Timestamp,
}

/// A TCP check of the address in `var`, when set; exits on a malformed one.
fn dependency(var: &str, name: &str, critical: bool) -> Option<HealthCheck> {
    let addr = std::env::var(var).ok()?.trim().to_owned();
    if addr.is_empty() {
        return None;
    }
    let tcp = match TcpCheck::parse(&addr) {
        Ok(tcp) => tcp,
        Err(e) => {
            eprintln!("minimal: invalid {var}: {e}");
            std::process::exit(2);
        }
    };
    Some(
        HealthCheck::new(name, tcp.timeout(Duration::from_secs(1)))
            .component_type("tcp")
            .critical(critical)
            .freshness(Freshness::OnDemand {
                ttl: Duration::from_millis(500),
            }),
    )
}

#[tokio::main]
async fn main() {
    let mut layer = StatusLayer::new()
        .service_name("badges")
        .version(tower_status::app_version!())
        .default_format(|report: &Report, ctx: &FormatContext<'_>| {
            // The document's enum has no `maintenance`: out of service is `down`.
            let status = match report.status {
                Status::Ok => "ok",
                Status::Degraded => "degraded",
                Status::Down | Status::Maintenance => "down",
            };
            Rendered::json(
                ctx.status_code(),
                &Body {
                    status,
                    timestamp: report.timestamp,
                },
            )
        })
        // The document's body is the only one served: `?format=json` and
        // `?format=ietf` are a 400 like any unknown format.
        .serve_builtin_formats(false);
    if let Some(check) = dependency("DEPENDENCY_ADDR", "dependency", true) {
        layer = layer.check(check);
    }
    if let Some(check) = dependency("OPTIONAL_DEPENDENCY_ADDR", "optional_dependency", false) {
        layer = layer.check(check);
    }

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .layer(layer);

    let addr = std::env::var("STATUS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("minimal: cannot listen on {addr}: {e}");
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
            eprintln!("minimal: cannot read the address bound for {addr}: {e}");
            std::process::exit(1);
        }
    }
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    if let Err(e) = served {
        eprintln!("minimal: {e}");
        std::process::exit(1);
    }
}
