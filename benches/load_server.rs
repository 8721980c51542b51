//! A hello-world axum server for `scripts/load.sh`, bare or behind
//! `StatusLayer`.
//!
//! ```text
//! cargo bench --no-run --bench load_server
//! load_server <bare|layered> <ADDR> [WORKERS]
//! ```
//!
//! - `GET /` answers `Hello, World!`;
//! - `layered` wraps the router in `StatusLayer` with 20 checks
//!   (`|| async { true }`, `Freshness::OnDemand { ttl: 1 h }`), so `/status`
//!   answers from cached results after its first request;
//! - `WORKERS` is the number of tokio worker threads: 1 (the default) runs
//!   a current-thread runtime, so the server uses one core.
//!
//! It prints `listening on ADDR` once bound and serves until killed.
//! (A `[[bench]]` target with `harness = false`: it is not a benchmark by
//! itself, `cargo bench` runs it with `--bench` and it returns at once.)

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tower_status::check::{Freshness, HealthCheck};
use tower_status::StatusLayer;

/// Checks registered in `layered` mode.
const CHECKS: usize = 20;

fn usage() -> ! {
    eprintln!("usage: load_server <bare|layered> <ADDR> [WORKERS]");
    std::process::exit(2);
}

fn app(layered: bool) -> Router {
    let router = Router::new().route("/", get(|| async { "Hello, World!" }));
    if !layered {
        return router;
    }
    let layer = (0..CHECKS).fold(
        StatusLayer::new().service_name("load-server"),
        |layer, i| {
            layer.health_check(
                HealthCheck::new(format!("check-{i:02}"), || async { true }).freshness(
                    Freshness::OnDemand {
                        ttl: Duration::from_secs(3600),
                    },
                ),
            )
        },
    );
    router.layer(layer)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to do here.
    if args.is_empty() || args.iter().any(|a| a == "--bench" || a == "--test") {
        return;
    }
    let layered = match args[0].as_str() {
        "bare" => false,
        "layered" => true,
        _ => usage(),
    };
    let addr: SocketAddr = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let workers: usize = args
        .get(2)
        .map_or(1, |w| w.parse().unwrap_or_else(|_| usage()));

    let runtime = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"));
        println!(
            "listening on {} ({}, {workers} worker thread{})",
            listener.local_addr().expect("bound address"),
            if layered { "layered" } else { "bare" },
            if workers == 1 { "" } else { "s" }
        );
        axum::serve(listener, app(layered)).await.expect("server");
    });
}
