//! An axum app with the status endpoint.
//!
//! ```sh
//! cargo run --example axum
//! curl localhost:3000/users/7
//! curl localhost:3000/status
//! ```
//!
//! Listens on `STATUS_ADDR` (default `127.0.0.1:3000`); stops on ctrl-c.

use axum::{extract::Path, routing::get, Json, Router};
use serde_json::{json, Value};
use tower_status::StatusLayer;

async fn hello() -> &'static str {
    "hello\n"
}

async fn user(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({ "id": id, "name": format!("user-{id}") }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = Router::new()
        .route("/", get(hello))
        .route("/users/{id}", get(user))
        .layer(
            StatusLayer::new()
                .service_name(tower_status::app_name!())
                .version(tower_status::app_version!()),
        );

    let addr = std::env::var("STATUS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}/status", listener.local_addr()?);

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
