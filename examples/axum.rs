//! An axum app with the status endpoint: a dependency check, the probes
//! and Prometheus metrics.
//!
//! ```sh
//! cargo run --example axum
//! curl localhost:3000/users/7
//! curl localhost:3000/status          # the JSON report, with the `database` check
//! curl localhost:3000/status/live     # liveness: the process answers
//! curl localhost:3000/status/ready    # readiness: the critical checks pass
//! curl localhost:3000/status/metrics  # Prometheus metrics
//! ```
//!
//! Listens on `STATUS_ADDR` (default `127.0.0.1:3000`); stops on ctrl-c.
//! The `database` check connects to `DATABASE_ADDR` (`host:port`); without
//! it, to a stand-in listener the example opens itself, so the check passes
//! out of the box. No API keys: everything is open to everyone.

use axum::{extract::Path, routing::get, Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_status::check::{HealthCheck, TcpCheck};
use tower_status::StatusLayer;

async fn hello() -> &'static str {
    "hello\n"
}

async fn user(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({ "id": id, "name": format!("user-{id}") }))
}

/// A local listener standing in for the database: accepts and hangs up.
async fn stand_in_database() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database = match std::env::var("DATABASE_ADDR") {
        Ok(addr) => addr,
        Err(_) => stand_in_database().await?,
    };
    let database = TcpCheck::parse(&database).unwrap_or_else(|e| {
        eprintln!("axum: invalid DATABASE_ADDR: {e}");
        std::process::exit(2)
    });

    let app = Router::new()
        .route("/", get(hello))
        .route("/users/{id}", get(user))
        .layer(
            StatusLayer::new()
                .service_name(tower_status::app_name!())
                .version(tower_status::app_version!())
                .check(HealthCheck::new("database", database).component_type("tcp"))
                .serve_metrics(true),
        );

    let addr = std::env::var("STATUS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on http://{}/status", listener.local_addr()?);

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
