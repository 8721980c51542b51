//! The gRPC health bridge against a real tonic server and a real
//! `grpc.health.v1` client: Check and Watch answer what `/status` answers,
//! mapped services follow their components, and draining stops every
//! service the bridge publishes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, loopback, serve_health_service, STEP};
use tokio::task::JoinHandle;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower_status::check::{CheckResult, Freshness, HealthCheck, TcpCheck};
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
        let got = bounded("Check", client.check(request(service)))
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

/// Polls until every one of `services` reports `want`.
async fn wait_for_all(
    client: &mut HealthClient<tonic::transport::Channel>,
    services: &[&str],
    want: ServingStatus,
) {
    for service in services {
        wait_for(client, service, want).await;
    }
}

/// A real gRPC health client of the server at `addr`.
async fn connect(addr: std::net::SocketAddr) -> HealthClient<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(STEP);
    HealthClient::new(bounded("connect", channel.connect()).await.unwrap())
}

/// A real TCP dependency on a loopback port: accepts (and closes) every
/// connection until the task is aborted, which closes the listener.
async fn tcp_dependency() -> (String, JoinHandle<()>) {
    let (listener, addr) = loopback().await;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    (addr.to_string(), task)
}

/// A critical TCP check on `addr`, run on every evaluation.
fn tcp(name: &str, addr: &str) -> HealthCheck {
    HealthCheck::new(name, TcpCheck::new(addr).timeout(Duration::from_secs(1))).freshness(
        Freshness::OnDemand {
            ttl: Duration::ZERO,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_stops_every_service_until_it_ends() {
    let db = Arc::new(AtomicBool::new(true));
    let (search_addr, search) = tcp_dependency().await;
    let layer = StatusLayer::new()
        .check(flag("db", &db, true))
        .check(tcp("search", &search_addr))
        .check(HealthCheck::pushed("payments").critical(false))
        .watch_interval(Duration::from_millis(50))
        .build();
    layer.set_component("payments", CheckResult::ok());
    let (reporter, health_service) = tonic_health::server::health_reporter();
    HealthBridge::new(reporter)
        .overall_as("test.Orders")
        .service("test.Search", ["search", "db"])
        .spawn(&layer);
    let (addr, server) = serve_health_service(&layer, health_service).await;
    let mut client = connect(addr).await;

    // The overall, an overall_as name, the components and a mapped service.
    let every = ["", "test.Orders", "db", "search", "payments", "test.Search"];
    wait_for_all(&mut client, &every, ServingStatus::Serving).await;
    let mut watch = bounded("Watch", client.watch(request("test.Search")))
        .await
        .unwrap()
        .into_inner();
    let first = next_message(&mut watch, "first Watch message").await;
    assert_eq!(first.status, ServingStatus::Serving as i32);

    layer.start_draining();
    let next = next_message(&mut watch, "Watch while draining").await;
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    wait_for_all(&mut client, &every, ServingStatus::NotServing).await;
    // Every dependency is still up: draining alone stopped them.
    assert_eq!(layer.report().await.status, tower_status::Status::Ok);

    // Changes while draining bring nothing back, and a component that
    // appears is published NOT_SERVING. Clearing `payments` comes after
    // every other update of the same change, so once it is gone the bridge
    // has published that change.
    layer.set_component("late", CheckResult::ok());
    layer.remove_component("payments");
    wait_gone(&mut client, "payments").await;
    for service in ["", "test.Orders", "db", "search", "test.Search", "late"] {
        assert_status(&mut client, service, ServingStatus::NotServing).await;
    }
    layer.set_component("payments", CheckResult::ok());

    layer.stop_draining();
    let back = next_message(&mut watch, "Watch after draining").await;
    assert_eq!(back.status, ServingStatus::Serving as i32);
    wait_for_all(&mut client, &every, ServingStatus::Serving).await;
    wait_for(&mut client, "late", ServingStatus::Serving).await;

    // Back to what each status says: a component that went down while
    // draining stays down after it.
    layer.start_draining();
    wait_for_all(&mut client, &every, ServingStatus::NotServing).await;
    db.store(false, SeqCst);
    // Once a draining change with `db` down is out, every later one (the
    // evaluator runs one at a time) has `db` down too.
    let mut changes = layer.subscribe();
    loop {
        let change = bounded("a change", changes.changed()).await.unwrap();
        if change.draining && change.components["db"] == tower_status::Status::Down {
            break;
        }
    }
    layer.stop_draining();
    wait_for(&mut client, "search", ServingStatus::Serving).await;
    wait_for(&mut client, "payments", ServingStatus::Serving).await;
    for service in ["", "test.Orders", "db", "test.Search"] {
        assert_status(&mut client, service, ServingStatus::NotServing).await;
    }
    search.abort();
    server.abort();
}

/// Polls until Check answers that `service` is not registered (any more).
async fn wait_gone(client: &mut HealthClient<tonic::transport::Channel>, service: &str) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let got = bounded("Check", client.check(request(service))).await;
        match got {
            Err(status) if status.code() == tonic::Code::NotFound => return,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "{service:?} is still published ({got:?})"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_service_follows_its_components() {
    let (search_addr, search) = tcp_dependency().await;
    let layer = StatusLayer::new()
        .check(tcp("search", &search_addr))
        .check(HealthCheck::pushed("cache").critical(false))
        .watch_interval(Duration::from_millis(50))
        .build();
    let (reporter, health_service) = tonic_health::server::health_reporter();
    HealthBridge::new(reporter)
        .service("test.Search", ["search"])
        .service("test.Cart", ["cache"])
        .service("test.Both", ["search", "cache"])
        .spawn(&layer);
    let (addr, server) = serve_health_service(&layer, health_service).await;
    let mut client = connect(addr).await;

    // `cache` is not pushed yet: what needs it does not serve.
    wait_for(&mut client, "test.Search", ServingStatus::Serving).await;
    let unknown = bounded("Check", client.check(request("cache"))).await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
    wait_for(&mut client, "test.Cart", ServingStatus::NotServing).await;
    wait_for(&mut client, "test.Both", ServingStatus::NotServing).await;

    layer.set_component("cache", CheckResult::ok());
    wait_for(&mut client, "test.Cart", ServingStatus::Serving).await;
    wait_for(&mut client, "test.Both", ServingStatus::Serving).await;

    let mut cart = bounded("Watch", client.watch(request("test.Cart")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        next_message(&mut cart, "first Watch message").await.status,
        ServingStatus::Serving as i32
    );

    // The search dependency goes away: its services stop, the overall too
    // (it is critical), but a service that does not need it goes on.
    search.abort();
    wait_for(&mut client, "test.Search", ServingStatus::NotServing).await;
    wait_for(&mut client, "test.Both", ServingStatus::NotServing).await;
    wait_for(&mut client, "", ServingStatus::NotServing).await;
    assert_status(&mut client, "search", ServingStatus::NotServing).await;
    assert_status(&mut client, "test.Cart", ServingStatus::Serving).await;

    // Degraded serves; down does not, and Watch sees it. Removing a pushed
    // `barrier` is the last update of a change: once it is gone, the bridge
    // has published the degraded cache.
    layer.set_component("barrier", CheckResult::ok());
    wait_for(&mut client, "barrier", ServingStatus::Serving).await;
    layer.set_component("cache", CheckResult::degraded("evicting"));
    layer.remove_component("barrier");
    wait_gone(&mut client, "barrier").await;
    assert_status(&mut client, "test.Cart", ServingStatus::Serving).await;
    assert_status(&mut client, "cache", ServingStatus::Serving).await;
    layer.set_component("cache", CheckResult::down("connection lost"));
    let next = next_message(&mut cart, "Watch update").await;
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    assert_status(&mut client, "cache", ServingStatus::NotServing).await;

    layer.set_component("cache", CheckResult::ok());
    let back = next_message(&mut cart, "Watch recovery").await;
    assert_eq!(back.status, ServingStatus::Serving as i32);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_can_be_left_unpublished() {
    let db = Arc::new(AtomicBool::new(true));
    let layer = StatusLayer::new()
        .check(flag("db", &db, true))
        .watch_interval(Duration::from_millis(50))
        .build();
    let (reporter, health_service) = tonic_health::server::health_reporter();
    HealthBridge::new(reporter)
        .service("test.Db", ["db"])
        .publish_components(false)
        .spawn(&layer);
    let (addr, server) = serve_health_service(&layer, health_service).await;
    let mut client = connect(addr).await;

    wait_for(&mut client, "test.Db", ServingStatus::Serving).await;
    let unknown = bounded("Check", client.check(request("db")))
        .await
        .expect_err("components are not published");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    db.store(false, SeqCst);
    wait_for(&mut client, "test.Db", ServingStatus::NotServing).await;
    assert_status(&mut client, "", ServingStatus::NotServing).await;
    server.abort();
}
