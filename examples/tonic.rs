//! A tonic gRPC server (the standard `grpc.health.v1.Health` service) with
//! the status endpoint in front of it.
//!
//! ```sh
//! cargo run --example tonic
//! curl localhost:3000/status                          # HTTP/1.1
//! curl --http2-prior-knowledge localhost:3000/status  # h2, like gRPC
//!
//! # a gRPC Check call without grpcurl: an empty HealthCheckRequest,
//! # framed (5-byte header, zero length)
//! printf '\0\0\0\0\0' | curl -s --http2-prior-knowledge -o /dev/null -D - \
//!   -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
//!   localhost:3000/grpc.health.v1.Health/Check
//! ```
//!
//! gRPC calls go through the layer and are counted in `requests`; a call
//! answered with a non-zero `grpc-status` counts as an error. Listens on
//! `STATUS_ADDR` (default `127.0.0.1:3000`; port 0: any free port) and prints
//! the bound address; stops on ctrl-c.

use std::io::Write;

use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tower_status::StatusLayer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    // The empty service name "" is the whole server; add a named one too.
    reporter
        .set_service_status("example.Greeter", tonic_health::ServingStatus::Serving)
        .await;

    let addr = std::env::var("STATUS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()?;
    // Bound here, so the address printed is the real one (port 0: any free
    // port); `TCP_NODELAY` as `serve` would set it.
    let incoming = TcpIncoming::bind(addr)?.with_nodelay(Some(true));
    println!(
        "listening on http://{}/status (gRPC on the same port)",
        incoming.local_addr()?
    );
    std::io::stdout().flush()?;

    Server::builder()
        // `GET /status` from curl or a load balancer speaks HTTP/1.1.
        .accept_http1(true)
        .layer(
            StatusLayer::new()
                .service_name(tower_status::app_name!())
                .version(tower_status::app_version!()),
        )
        .add_service(health_service)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
