//! The gRPC health bridge against a real tonic server and a real
//! `grpc.health.v1` client: Check and Watch answer what `/status` answers.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, serve_health_service, STEP};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_status::check::{Freshness, HealthCheck};
use tower_status::grpc::HealthBridge;
use tower_status::StatusLayer;

fn request(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_owned(),
    }
}

/// A check that passes while `up` is set, re-run on every evaluation.
fn flag(name: &str, up: &Arc<AtomicBool>, critical: bool) -> HealthCheck {
    let up = Arc::clone(up);
    HealthCheck::new(name, move || {
        let ok = up.load(SeqCst);
        async move { ok }
    })
    .critical(critical)
    .freshness(Freshness::OnDemand {
        ttl: Duration::ZERO,
    })
}

async fn status_of(client: &mut HealthClient<tonic::transport::Channel>, service: &str) -> i32 {
    bounded("Check", client.check(request(service)))
        .await
        .expect("Check answered")
        .into_inner()
        .status
}

/// Fails unless Check answers `want` for `service` now.
async fn assert_status(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
    want: ServingStatus,
) {
    assert_eq!(status_of(client, service).await, want as i32, "{service:?}");
}

/// The next message of a Watch stream, bounded.
async fn next_message(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
    what: &str,
) -> tonic_health::pb::HealthCheckResponse {
    bounded(what, watch.message()).await.unwrap().unwrap()
}

/// Polls until `service` reports `want` (the bridge follows a 50 ms watch interval).
async fn wait_for(
    client: &mut HealthClient<tonic::transport::Channel>,
    service: &str,
    want: ServingStatus,
) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let got = client
            .check(request(service))
            .await
            .map(|r| r.into_inner().status);
        if got.as_ref().ok() == Some(&(want as i32)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{service:?} never became {want:?} (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_watch_follow_the_status() {
    let db = Arc::new(AtomicBool::new(true));
    let cache = Arc::new(AtomicBool::new(true));
    let layer = StatusLayer::new()
        .check(flag("db", &db, true))
        .check(flag("cache", &cache, false))
        .watch_interval(Duration::from_millis(50))
        .build();
    let (reporter, health_service) = tonic_health::server::health_reporter();
    HealthBridge::new(reporter)
        .overall_as("test.Orders")
        .spawn(&layer);

    let (addr, server) = serve_health_service(&layer, health_service).await;

    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(STEP);
    let channel = bounded("connect", channel.connect()).await.unwrap();
    let mut client = HealthClient::new(channel);

    // Every component and the overall status are published.
    wait_for(&mut client, "db", ServingStatus::Serving).await;
    wait_for(&mut client, "cache", ServingStatus::Serving).await;
    assert_status(&mut client, "", ServingStatus::Serving).await;
    assert_status(&mut client, "test.Orders", ServingStatus::Serving).await;

    let mut watch = bounded("Watch", client.watch(request("")))
        .await
        .unwrap()
        .into_inner();
    let first = next_message(&mut watch, "first Watch message").await;
    assert_eq!(first.status, ServingStatus::Serving as i32);

    // A non-critical failure degrades: /status still 200, so still SERVING overall.
    cache.store(false, SeqCst);
    wait_for(&mut client, "cache", ServingStatus::NotServing).await;
    assert_status(&mut client, "", ServingStatus::Serving).await;

    // A critical failure: /status answers 503, and so gRPC says NOT_SERVING, also on Watch.
    db.store(false, SeqCst);
    let next = next_message(&mut watch, "Watch update").await;
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    assert_status(&mut client, "db", ServingStatus::NotServing).await;
    assert_status(&mut client, "test.Orders", ServingStatus::NotServing).await;
    let report = layer.report().await;
    assert_eq!(report.status, tower_status::Status::Down);

    // Recovery reaches both.
    db.store(true, SeqCst);
    cache.store(true, SeqCst);
    let back = next_message(&mut watch, "Watch recovery").await;
    assert_eq!(back.status, ServingStatus::Serving as i32);
    wait_for(&mut client, "cache", ServingStatus::Serving).await;
    server.abort();
}
