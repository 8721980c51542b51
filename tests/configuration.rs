//! A `StatusLayer` is a configuration; `build()` makes the `StatusHandle`
//! that serves it, and everything that reads a status (the endpoint, a
//! subscriber, the gRPC bridge, `report()`) reads the state of the
//! configuration that is served.
//!
//! These tests pin the issues of the redesign: whatever order the builder
//! calls, clones, `build()`, `subscribe()`, `report()`, the served layer and
//! the gRPC bridge come in, every consumer agrees; unchanged clones share
//! one state and changed ones keep their own; misconfiguration fails at the
//! builder call, naming the setting; `Accept` weights are honoured over a
//! real request; reports work off a tokio runtime; a 405 with a key counts
//! against the key; a full caller table degrades gracefully.
//!
//! Servers bind 127.0.0.1 port 0; every wait has a deadline.

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::panic::UnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use common::service::Got;
use common::{bounded, http1_client, serve_health_service, start_axum, wait_until, STEP};
use http::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::Value;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tower::{Layer, ServiceExt};
use tower_status::auth::{ApiKeys, Identity, MAX_TRACKED_CALLERS};
use tower_status::check::{CheckResult, Freshness, HealthCheck, TcpCheck};
use tower_status::format::JsonFormat;
use tower_status::grpc::HealthBridge;
use tower_status::report::Notice;
use tower_status::{Status, StatusChange, StatusHandle, StatusLayer, StatusWatch};

/// How often the status is evaluated for watchers here.
const WATCH: Duration = Duration::from_millis(50);
/// How long the db check's result is cached.
const TTL: Duration = Duration::from_millis(20);
/// How far apart the consumers may see a change: one watch interval (the
/// watcher's next tick) after the check's cache expired, plus slack for
/// scheduling and polling on a loaded 2-core machine (CI runs test
/// binaries side by side). Under a second: the bug this guards against kept
/// gRPC `SERVING` for seconds, and a consumer reading another state never
/// agrees at all.
const AGREE_WITHIN: Duration = Duration::from_millis(50 + 20 + 900);
/// How often the HTTP and gRPC observers poll.
const POLL: Duration = Duration::from_millis(2);
/// Upper bound of a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(14);

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Extra request headers: `(name, value)` pairs.
type Headers<'a> = [(&'a str, &'a str)];

/// Runs a whole test body, failing it after [`TEST_LIMIT`].
async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TEST_LIMIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: the test took longer than {TEST_LIMIT:?}"),
    }
}

/// `method path` to a real server at `addr`, with extra headers (repeated
/// names make several fields), read whole.
async fn fetch_with(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &Headers<'_>,
) -> Got {
    let mut req = Request::builder()
        .method(method.clone())
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::default()).expect("a valid request");
    let res = bounded(&format!("{method} {path}"), client.request(req))
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let (parts, body) = res.into_parts();
    let body = bounded("a response body", body.collect())
        .await
        .expect("a whole body")
        .to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET path` from a real server.
async fn get_from(client: &HttpClient, addr: SocketAddr, path: &str) -> Got {
    fetch_with(client, addr, Method::GET, path, &[]).await
}

/// A router with one route, `/` ("hello"), for a layer to wrap.
fn hello_app() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

/// A `grpc.health.v1` client of the server at `addr`.
async fn grpc_client(addr: SocketAddr) -> HealthClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .expect("a valid URI")
        .connect_timeout(STEP);
    HealthClient::new(
        bounded("gRPC connect", channel.connect())
            .await
            .expect("connected"),
    )
}

/// What `Health/Check` answers for `service`, as the protocol's number;
/// `None` while it is unknown (the bridge has published nothing yet).
async fn grpc_status(client: &mut HealthClient<Channel>, service: &str) -> Option<i32> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    bounded("Health/Check", client.check(request))
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

/// The db check: up while `db` is set, its result cached for [`TTL`].
fn db_check(db: &Arc<AtomicBool>) -> HealthCheck {
    let db = Arc::clone(db);
    HealthCheck::new("db", move || {
        let up = db.load(SeqCst);
        async move {
            if up {
                CheckResult::ok()
            } else {
                CheckResult::down("connection refused")
            }
        }
    })
    .freshness(Freshness::OnDemand { ttl: TTL })
}

// ---------------------------------------------------------------------------
// 1. Every consumer answers from the configuration that is served
// ---------------------------------------------------------------------------

/// In which order the layer is configured, built, served, subscribed to and
/// bridged to gRPC.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// `build()` first; the handle is served, subscribed to and bridged.
    BuildThenServe,
    /// The unbuilt layer is served (axum builds its state when layering
    /// the routes); `build()` comes afterwards, from the same layer.
    ServeLayerThenBuild,
    /// Every consumer from an unchanged clone of its own, bridge,
    /// subscription and a report first, the servers last.
    ConsumersBeforeServing,
}

/// A served configuration with every kind of consumer.
struct Rig {
    db: Arc<AtomicBool>,
    handle: StatusHandle,
    http: SocketAddr,
    client: HttpClient,
    grpc: HealthClient<Channel>,
    grpc_server: JoinHandle<()>,
    watch: StatusWatch,
}

impl Rig {
    async fn new(order: Order) -> Self {
        let db = Arc::new(AtomicBool::new(true));
        let layer = StatusLayer::new()
            .check(db_check(&db))
            .watch_interval(WATCH);
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let (handle, http, watch, grpc_addr, grpc_server) = match order {
            Order::BuildThenServe => {
                let status = layer.build();
                let http = start_axum(hello_app().layer(status.clone())).await;
                let watch = status.subscribe();
                HealthBridge::new(reporter).spawn(&status);
                let (grpc, server) = serve_health_service(&status, health_service).await;
                (status, http, watch, grpc, server)
            }
            Order::ServeLayerThenBuild => {
                let http = start_axum(hello_app().layer(layer.clone())).await;
                let (grpc, server) =
                    serve_health_service(&layer.clone().build(), health_service).await;
                let status = layer.build();
                HealthBridge::new(reporter).spawn(&status);
                let watch = status.subscribe();
                (status, http, watch, grpc, server)
            }
            Order::ConsumersBeforeServing => {
                HealthBridge::new(reporter).spawn(&layer.clone().build());
                let watch = layer.clone().build().subscribe();
                let first = layer.clone().build().report().await;
                assert_eq!(first.status, Status::Ok, "{first:?}");
                let (grpc, server) =
                    serve_health_service(&layer.clone().build(), health_service).await;
                let http = start_axum(hello_app().layer(layer.clone())).await;
                (layer.build(), http, watch, grpc, server)
            }
        };
        Rig {
            db,
            handle,
            http,
            client: http1_client(),
            grpc: grpc_client(grpc_addr).await,
            grpc_server,
            watch,
        }
    }

    /// Sets the db flag to `up` and waits (with a deadline) until `GET
    /// /status`, the subscriber and gRPC `Health/Check` all say so; returns
    /// when each first did, counted from the flip.
    async fn converge(&mut self, up: bool, what: &str) -> [Duration; 3] {
        let (want, code, serving) = if up {
            (Status::Ok, StatusCode::OK, ServingStatus::Serving as i32)
        } else {
            (
                Status::Down,
                StatusCode::SERVICE_UNAVAILABLE,
                ServingStatus::NotServing as i32,
            )
        };
        self.db.store(up, SeqCst);
        let flipped = Instant::now();
        let Rig {
            client,
            http,
            grpc,
            watch,
            ..
        } = self;
        let (client, http) = (&*client, *http);
        let by_http = async {
            loop {
                let got = get_from(client, http, "/status").await;
                if got.status == code && got.json()["status"] == want.as_str() {
                    return flipped.elapsed();
                }
                tokio::time::sleep(POLL).await;
            }
        };
        let by_watch = async {
            // The subscriber has seen the other status last: its next
            // change must be this one, nothing in between.
            let change = watch.changed().await.expect("the layer is alive");
            assert_eq!(change.status, want, "{what}: the subscriber saw {change:?}");
            assert_eq!(
                change.components.get("db"),
                Some(&want),
                "{what}: {change:?}"
            );
            flipped.elapsed()
        };
        let by_grpc = async {
            loop {
                if grpc_status(grpc, "").await == Some(serving) {
                    return flipped.elapsed();
                }
                tokio::time::sleep(POLL).await;
            }
        };
        let (h, w, g) = bounded(what, async { tokio::join!(by_http, by_watch, by_grpc) }).await;
        println!("{what}: /status after {h:?}, subscriber after {w:?}, gRPC after {g:?}");

        // Now they agree, and so does everything else read from the handle.
        let got = get_from(&self.client, self.http, "/status").await;
        assert_eq!(got.status, code, "{what}: {}", got.text());
        assert_eq!(got.json()["components"]["db"]["status"], want.as_str());
        let report = self.handle.report().await;
        assert_eq!(report.status, want, "{what}: {report:?}");
        assert_eq!(
            grpc_status(&mut self.grpc, "").await,
            Some(serving),
            "{what}"
        );
        assert_eq!(
            grpc_status(&mut self.grpc, "db").await,
            Some(serving),
            "{what}"
        );
        // And the subscriber stays put: nothing changed since.
        let extra = tokio::time::timeout(3 * WATCH, self.watch.changed()).await;
        assert!(extra.is_err(), "{what}: a further change {extra:?}");
        [h, w, g]
    }
}

/// Brings a rig up (all ok), takes the db down and back, and checks that
/// the three consumers agree each time, within [`AGREE_WITHIN`] of each other.
async fn every_consumer_agrees(order: Order) {
    let mut rig = Rig::new(order).await;
    rig.converge(true, &format!("{order:?}: start")).await;
    for (up, step) in [(false, "db down"), (true, "db recovered")] {
        let what = format!("{order:?}: {step}");
        let seen = rig.converge(up, &what).await;
        let first = seen.iter().min().copied().unwrap_or_default();
        let last = seen.iter().max().copied().unwrap_or_default();
        assert!(
            last - first <= AGREE_WITHIN,
            "{what}: consumers {:?} apart (/status, subscriber, gRPC: {seen:?})",
            last - first
        );
    }
    rig.grpc_server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_agree_when_built_then_served() {
    within(
        "built then served",
        every_consumer_agrees(Order::BuildThenServe),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_agree_when_the_layer_is_served_before_build() {
    within(
        "served then built",
        every_consumer_agrees(Order::ServeLayerThenBuild),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_agree_when_they_come_before_the_servers() {
    within(
        "consumers first",
        every_consumer_agrees(Order::ConsumersBeforeServing),
    )
    .await;
}

// ---------------------------------------------------------------------------
// 2. Unchanged clones share one state
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_clones_share_one_state() {
    within("shared state", async {
        let layer = StatusLayer::new()
            .service_name("shared")
            .check(HealthCheck::new("db", || async { true }))
            .check(HealthCheck::pushed("search").critical(false));
        // axum clones the layer for every route, the nested ones and the fallback.
        let app = Router::new()
            .route("/a", get(|| async { "a" }))
            .route("/b", post(|| async { "b" }))
            .nest("/api", Router::new().route("/x", get(|| async { "x" })))
            .layer(layer.clone());
        let addr = start_axum(app).await;
        // Built after serving, from two more clones: the state axum serves.
        let handle = layer.clone().build();
        let again = layer.build();
        let client = http1_client();

        let traffic = [
            (Method::GET, "/a"),
            (Method::POST, "/b"),
            (Method::GET, "/api/x"),
            (Method::GET, "/a"),
            (Method::POST, "/b"),
        ];
        for (method, path) in &traffic {
            let got = fetch_with(&client, addr, method.clone(), path, &[]).await;
            assert_eq!(got.status, StatusCode::OK, "{method} {path}");
        }
        wait_until("the handle's report counts every route's requests", || {
            let handle = handle.clone();
            async move { handle.report().await.requests.total == 5 }
        })
        .await;
        for h in [&handle, &again] {
            let report = h.report().await;
            assert_eq!(report.requests.total, 5, "{:?}", report.requests);
            assert_eq!(report.requests.by_class.get("2xx"), Some(&5));
            assert_eq!(report.service.as_deref(), Some("shared"));
        }

        // The served /status reports the same traffic.
        let status = get_from(&client, addr, "/status").await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text());
        let report = status.json();
        assert_eq!(report["requests"]["total"], 5, "{report}");
        assert_eq!(report["requests"]["by_class"]["2xx"], 5, "{report}");

        // Components pushed on the handle show in the served /status.
        handle.set_component("queue", CheckResult::down("broker gone"));
        let status = get_from(&client, addr, "/status").await;
        assert_eq!(
            status.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            status.text()
        );
        let report = status.json();
        assert_eq!(report["status"], "down", "{report}");
        assert_eq!(report["components"]["queue"]["status"], "down", "{report}");
        assert_eq!(report["components"]["queue"]["error"], "broker gone");
        assert_eq!(report["components"]["db"]["status"], "ok", "{report}");

        // Removed through the other handle: gone from the served /status.
        again.remove_component("queue");
        again.set_component("search", CheckResult::degraded("reindexing"));
        let status = get_from(&client, addr, "/status").await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text());
        let report = status.json();
        assert_eq!(report["status"], "degraded", "{report}");
        assert!(report["components"].get("queue").is_none(), "{report}");

        // Maintenance and draining set on a handle are the served layer's.
        handle.set_maintenance(Notice::new("database upgrade"));
        let status = get_from(&client, addr, "/status").await;
        assert_eq!(status.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status.json()["status"], "maintenance");
        assert!(again.maintenance().is_some());
        handle.clear_maintenance();
        again.start_draining();
        assert!(handle.is_draining());
        let ready = get_from(&client, addr, "/status/ready").await;
        assert_eq!(
            ready.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            ready.text()
        );
        handle.stop_draining();
        let ready = get_from(&client, addr, "/status/ready").await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());

        // Every status request went to the one recorder.
        assert_eq!(handle.report().await.status_requests, 6);
        // Status requests are not traffic of the wrapped service.
        assert_eq!(again.report().await.requests.total, 5);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 3. Clones with other settings keep their own status
// ---------------------------------------------------------------------------

/// The next change of `watch`, bounded; each one is checked by `valid`.
async fn next_change(
    watch: &mut StatusWatch,
    what: &str,
    valid: fn(&StatusChange) -> bool,
) -> StatusChange {
    let change = bounded(what, watch.changed())
        .await
        .expect("the layer is alive");
    assert!(valid(&change), "{what}: saw {change:?}");
    change
}

/// Every change of layer `a`: down (its `x` check is), never a component of `b`.
fn a_change(change: &StatusChange) -> bool {
    change.status == Status::Down
        && change.components.get("x") == Some(&Status::Down)
        && !change.components.contains_key("b-only")
}

/// Every change of layer `b`: never down, never a component of `a`.
fn b_change(change: &StatusChange) -> bool {
    change.status != Status::Down
        && change.components.get("db") == Some(&Status::Ok)
        && !change.components.contains_key("x")
        && !change.components.contains_key("a-only")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_with_other_settings_keep_their_own_status() {
    within("separate states", async {
        let base = StatusLayer::new()
            .check(HealthCheck::new("db", || async { true }))
            .watch_interval(WATCH);
        let a = base
            .clone()
            .check(HealthCheck::new("x", || async {
                CheckResult::down("x is down")
            }))
            .build();
        let b = base
            .clone()
            .check(HealthCheck::pushed("b-only").critical(false))
            .build();
        let a_addr = start_axum(hello_app().layer(a.clone())).await;
        let b_addr = start_axum(hello_app().layer(b.clone())).await;
        let client = http1_client();
        let mut wa = a.subscribe();
        let mut wb = b.subscribe();

        // /status: a down, b ok.
        let got = get_from(&client, a_addr, "/status").await;
        assert_eq!(
            got.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            got.text()
        );
        let report = got.json();
        assert_eq!(report["status"], "down");
        assert_eq!(report["components"]["x"]["error"], "x is down", "{report}");
        let got = get_from(&client, b_addr, "/status").await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text());
        let report = got.json();
        assert_eq!(report["status"], "ok");
        assert!(report["components"].get("x").is_none(), "{report}");

        // Subscribers: each its own.
        let first = next_change(&mut wa, "a's first status", a_change).await;
        assert_eq!(first.components.len(), 2, "{first:?}");
        let first = next_change(&mut wb, "b's first status", b_change).await;
        assert_eq!(first.status, Status::Ok);
        assert_eq!(first.components.len(), 1, "{first:?}");

        // Changes pushed to each: each subscriber sees its own, only.
        a.set_component("a-only", CheckResult::ok());
        b.set_component("b-only", CheckResult::down("slow"));
        let seen = next_change(&mut wa, "a-only pushed", a_change).await;
        assert_eq!(seen.components.get("a-only"), Some(&Status::Ok), "{seen:?}");
        let seen = next_change(&mut wb, "b-only pushed", b_change).await;
        assert_eq!(seen.status, Status::Degraded, "{seen:?}");
        assert_eq!(seen.components.get("b-only"), Some(&Status::Down));

        a.set_component("a-only", CheckResult::degraded("busy"));
        b.remove_component("b-only");
        let seen = next_change(&mut wa, "a-only degraded", a_change).await;
        assert_eq!(seen.components.get("a-only"), Some(&Status::Degraded));
        let seen = next_change(&mut wb, "b-only removed", b_change).await;
        assert_eq!(seen.status, Status::Ok, "{seen:?}");
        assert!(!seen.components.contains_key("b-only"));

        // Nothing else reaches either subscriber for a while.
        for _ in 0..2 {
            if let Ok(change) = tokio::time::timeout(3 * WATCH, wa.changed()).await {
                let change = change.expect("alive");
                assert!(a_change(&change), "a saw {change:?}");
            }
            if let Ok(change) = tokio::time::timeout(3 * WATCH, wb.changed()).await {
                let change = change.expect("alive");
                assert!(b_change(&change), "b saw {change:?}");
            }
        }

        // Traffic is kept apart too.
        for _ in 0..3 {
            let got = get_from(&client, a_addr, "/").await;
            assert_eq!(got.status, StatusCode::OK);
        }
        wait_until("a counts its own requests", || {
            let a = a.clone();
            async move { a.report().await.requests.total == 3 }
        })
        .await;
        assert_eq!(b.report().await.requests.total, 0);

        // The base, built on its own, is a third state: none of the above.
        let base = base.build();
        let report = base.report().await;
        assert_eq!(report.status, Status::Ok, "{report:?}");
        assert_eq!(
            report.components.keys().collect::<Vec<_>>(),
            ["db"],
            "{report:?}"
        );
        assert_eq!(report.requests.total, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_with_other_checks_do_not_share_check_slots() {
    within("check slots", async {
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let slow = {
            let (started, release) = (Arc::clone(&started), Arc::clone(&release));
            move || {
                let (started, release) = (Arc::clone(&started), Arc::clone(&release));
                async move {
                    started.store(true, SeqCst);
                    while !release.load(SeqCst) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    true
                }
            }
        };
        let base = StatusLayer::new()
            .max_concurrent_checks(1)
            .report_deadline(Duration::from_millis(500));
        let a = base
            .clone()
            .check(HealthCheck::new("slow", slow).timeout(Duration::from_secs(5)))
            .build();
        let b = base
            .clone()
            .check(HealthCheck::new("fast", || async { true }))
            .build();

        // a's slow check takes a's only slot ...
        let a_report = tokio::spawn({
            let a = a.clone();
            async move { a.report().await }
        });
        wait_until("a's slow check runs", || {
            let started = Arc::clone(&started);
            async move { started.load(SeqCst) }
        })
        .await;
        // ... which must not be b's.
        let b_report = bounded("b's report", b.report()).await;
        release.store(true, SeqCst);
        let _ = bounded("a's report", a_report).await;
        assert_eq!(
            b_report.status,
            Status::Ok,
            "b's fast check: {:?}",
            b_report.components.get("fast")
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// 4. Misconfiguration fails loudly at the builder call; long durations work
// ---------------------------------------------------------------------------

/// The message of the panic `f` makes, failing when it does not panic.
fn panic_message(what: &str, f: impl FnOnce() + UnwindSafe) -> String {
    let payload = std::panic::catch_unwind(f)
        .err()
        .unwrap_or_else(|| panic!("{what} was accepted"));
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| panic!("{what}: a panic without a message"))
}

#[test]
fn misconfiguration_fails_at_the_builder_call_naming_the_setting() {
    type Case = (&'static str, &'static str, fn());
    let cases: [Case; 11] = [
        (".path(\"\")", "StatusLayer::path", || {
            let _ = StatusLayer::new().path("");
        }),
        (".path(\"/a?b\")", "StatusLayer::path", || {
            let _ = StatusLayer::new().path("/a?b");
        }),
        (
            ".watch_interval(Duration::ZERO)",
            "StatusLayer::watch_interval",
            || {
                let _ = StatusLayer::new().watch_interval(Duration::ZERO);
            },
        ),
        (
            ".max_concurrent_checks(0)",
            "StatusLayer::max_concurrent_checks",
            || {
                let _ = StatusLayer::new().max_concurrent_checks(0);
            },
        ),
        (
            ".report_deadline(Duration::ZERO)",
            "StatusLayer::report_deadline",
            || {
                let _ = StatusLayer::new().report_deadline(Duration::ZERO);
            },
        ),
        (
            ".count_requests_per_key(10 ms)",
            "StatusLayer::count_requests_per_key",
            || {
                let _ = StatusLayer::new().count_requests_per_key(Duration::from_millis(10));
            },
        ),
        (
            "HealthCheck::timeout(Duration::ZERO)",
            "HealthCheck::timeout",
            || {
                let _ = HealthCheck::new("db", || async { true }).timeout(Duration::ZERO);
            },
        ),
        (
            ".watch_keepalive(Duration::ZERO)",
            "StatusLayer::watch_keepalive",
            || {
                let _ = StatusLayer::new().watch_keepalive(Duration::ZERO);
            },
        ),
        (
            "Freshness::Background { every: Duration::ZERO }",
            "HealthCheck::freshness",
            || {
                let _ =
                    HealthCheck::new("db", || async { true }).freshness(Freshness::Background {
                        every: Duration::ZERO,
                    });
            },
        ),
        (
            "TcpCheck::timeout(Duration::ZERO)",
            "TcpCheck::timeout",
            || {
                let _ = TcpCheck::new("127.0.0.1:1").timeout(Duration::ZERO);
            },
        ),
        (
            ".format(.., Some(\"json\"), ..)",
            "StatusLayer::format",
            || {
                let _ = StatusLayer::new().format("x", Some("json"), JsonFormat);
            },
        ),
    ];
    for (what, setting, make) in cases {
        let message = panic_message(what, make);
        assert!(
            message.contains(setting),
            "{what}: the panic does not name {setting}: {message:?}"
        );
        println!("{what}: {message}");
    }
    // The check is named too.
    let message = panic_message("a zero timeout", || {
        let _ = HealthCheck::new("orders-db", || async { true }).timeout(Duration::ZERO);
    });
    assert!(message.contains("orders-db"), "{message:?}");
    // Valid neighbours of each are accepted.
    let _ = StatusLayer::new()
        .path("/")
        .path("health/")
        .watch_interval(Duration::from_millis(10))
        .max_concurrent_checks(1)
        .report_deadline(Duration::from_nanos(1))
        .count_requests_per_key(Duration::from_secs(1));
}

/// A check that needs tokio's timers.
fn sleepy(name: &str) -> HealthCheck {
    HealthCheck::new(name, || async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        true
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_durations_serve_the_status() {
    within("Duration::MAX", async {
        let never_expires = || {
            sleepy("db")
                .freshness(Freshness::OnDemand { ttl: Duration::MAX })
                .serve_stale(Duration::MAX)
        };
        let layers = [
            (
                "report_deadline(Duration::MAX)",
                StatusLayer::new()
                    .check(sleepy("db"))
                    .report_deadline(Duration::MAX),
            ),
            (
                "OnDemand { ttl: MAX } with serve_stale(MAX)",
                StatusLayer::new().check(never_expires()),
            ),
            (
                "all of them, timeout(MAX) and watch_interval(MAX) too",
                StatusLayer::new()
                    .check(never_expires().timeout(Duration::MAX))
                    .check(sleepy("queue").freshness(Freshness::Background {
                        every: Duration::MAX,
                    }))
                    .report_deadline(Duration::MAX)
                    .watch_interval(Duration::MAX)
                    .watch_keepalive(Duration::MAX),
            ),
        ];
        let client = http1_client();
        for (what, layer) in layers {
            let handle = layer.build();
            let addr = start_axum(hello_app().layer(handle.clone())).await;
            for round in 1..=2 {
                let got = get_from(&client, addr, "/status").await;
                assert_eq!(
                    got.status,
                    StatusCode::OK,
                    "{what}, #{round}: {}",
                    got.text()
                );
                let report = got.json();
                assert_eq!(report["status"], "ok", "{what}, #{round}: {report}");
                assert_eq!(report["components"]["db"]["status"], "ok", "{report}");
            }
            // The watcher's first evaluation comes at once, whatever its interval.
            let mut watch = handle.subscribe();
            let first = bounded(what, watch.changed()).await.expect("alive");
            assert_eq!(first.status, Status::Ok, "{what}: {first:?}");
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// 5. Accept weights over a real request
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_weights_choose_the_format() {
    within("Accept", async {
        let layer = StatusLayer::new()
            .service_name("orders")
            .check(HealthCheck::new("db", || async { true }))
            .check(HealthCheck::pushed("search").critical(false));
        let addr = start_axum(hello_app().layer(layer)).await;
        let client = http1_client();

        // The crate's JSON: the report with its own fields.
        let json = |got: &Got| {
            assert_eq!(got.status, StatusCode::OK, "{}", got.text());
            assert_eq!(got.header(CONTENT_TYPE), "application/json");
            let body = got.json();
            assert_eq!(body["status"], "ok", "{body}");
            assert!(body.get("uptime_seconds").is_some(), "{body}");
            assert_eq!(body["components"]["db"]["status"], "ok", "{body}");
        };
        // The IETF format: pass/warn/fail and `checks`.
        let ietf = |got: &Got| {
            assert_eq!(got.status, StatusCode::OK, "{}", got.text());
            assert_eq!(got.header(CONTENT_TYPE), "application/health+json");
            let body = got.json();
            assert_eq!(body["status"], "pass", "{body}");
            assert!(body.get("uptime_seconds").is_none(), "{body}");
            assert!(body.get("checks").is_some(), "{body}");
        };
        type Expect<'a> = &'a dyn Fn(&Got);
        let cases: [(&[&str], Expect<'_>); 8] = [
            (&["application/health+json;q=0, application/json"], &json),
            (&["application/health+json"], &ietf),
            (
                &["application/json;q=0.5, application/health+json;q=0.9"],
                &ietf,
            ),
            (
                &["application/json;q=0.9, application/health+json;q=0.5"],
                &json,
            ),
            (
                &["application/json;q=0, application/health+json;q=0.1"],
                &ietf,
            ),
            // Two fields make one list.
            (
                &["application/json;q=0.2", "application/health+json"],
                &ietf,
            ),
            // Wildcards and nothing acceptable: the default, never 406.
            (&["*/*"], &json),
            (&["application/xml"], &json),
        ];
        for (accept, expect) in cases {
            let headers: Vec<(&str, &str)> = accept.iter().map(|a| (ACCEPT.as_str(), *a)).collect();
            let got = fetch_with(&client, addr, Method::GET, "/status", &headers).await;
            println!("Accept {accept:?}: {}", got.header(CONTENT_TYPE));
            expect(&got);
        }
        // No Accept at all: the default.
        json(&get_from(&client, addr, "/status").await);
    })
    .await;
}

// ---------------------------------------------------------------------------
// 6. Reports off a tokio runtime
// ---------------------------------------------------------------------------

/// Runs `f` on a thread of its own, failing when it panics or takes longer than [`STEP`].
fn on_plain_thread<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(STEP) {
        Ok(out) => {
            thread.join().expect("the thread ends");
            out
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for {STEP:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("{what}: no answer"),
        },
    }
}

#[test]
fn report_outside_a_runtime_runs_checks_that_need_tokio() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let handle = StatusLayer::new()
        .check(HealthCheck::new("sleepy", || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            true
        }))
        .check(sleepy("timed").timeout(Duration::from_secs(5)))
        .check(sleepy("polled").freshness(Freshness::Background {
            every: Duration::from_secs(60),
        }))
        .report_deadline(Duration::from_secs(5))
        .section("jobs", || async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            7
        })
        .build();
    let in_thread = handle.clone();
    let reports = on_plain_thread("block_on(report())", move || {
        assert!(tokio::runtime::Handle::try_current().is_err());
        // Twice: the second is served from the cache filled by the first.
        let first = futures_executor::block_on(in_thread.report());
        let second = futures_executor::block_on(in_thread.report());
        // A subscription made here neither panics nor evaluates anything.
        let _watch = in_thread.subscribe();
        (first, second)
    });
    for report in [reports.0, reports.1] {
        assert_eq!(report.status, Status::Ok, "{report:?}");
        for name in ["sleepy", "timed", "polled"] {
            let component = &report.components[name];
            assert_eq!(component.status, Status::Ok, "{name}: {component:?}");
        }
        assert_eq!(report.sections["jobs"], 7, "{report:?}");
    }
    // The same handle on a runtime afterwards.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let report = rt.block_on(async { bounded("report on a runtime", handle.report()).await });
    assert_eq!(report.status, Status::Ok, "{report:?}");
}

// ---------------------------------------------------------------------------
// 7. A 405 with a valid key counts against the key
// ---------------------------------------------------------------------------

const OPS_KEY: &str = "ops-key-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_405_with_a_valid_key_counts_against_it() {
    within("405 counted", async {
        let handle = StatusLayer::new()
            .api_keys(ApiKeys::new().key(OPS_KEY, Identity::new("ops")))
            // Long windows: no window ends during the test.
            .count_requests_per_key(Duration::from_secs(400 * 24 * 3600))
            .build();
        let addr = start_axum(hello_app().layer(handle.clone())).await;
        let client = http1_client();
        let count = |h: &StatusHandle| h.requests_of("ops").expect("counting is on").count;
        assert_eq!(count(&handle), 0);

        let key = [("x-api-key", OPS_KEY)];
        let bearer = format!("Bearer {OPS_KEY}");
        let bearer = [("authorization", bearer.as_str())];
        let refused: [(Method, &str, &Headers<'_>); 3] = [
            (Method::POST, "/status", &key),
            (Method::DELETE, "/status", &bearer),
            (Method::PUT, "/status/", &key),
        ];
        for (i, (method, path, headers)) in refused.iter().enumerate() {
            let got = fetch_with(&client, addr, method.clone(), path, headers).await;
            assert_eq!(
                got.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                got.text()
            );
            assert_eq!(got.header(ALLOW), "GET, HEAD");
            assert_eq!(count(&handle), i as u64 + 1, "after {method} {path}");
        }
        // Without a key, or with an unknown one, a 405 counts against nobody.
        for headers in [&[][..], &[("x-api-key", "not-a-key")][..]] {
            let got = fetch_with(&client, addr, Method::POST, "/status", headers).await;
            assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED);
        }
        assert_eq!(count(&handle), 3);
        assert_eq!(handle.requests_of("nobody").map(|r| r.count), Some(0));

        // The report shows the same count, this request included.
        let got = fetch_with(&client, addr, Method::GET, "/status", &key).await;
        assert_eq!(got.status, StatusCode::OK, "{}", got.text());
        let report = got.json();
        assert_eq!(report["caller"]["name"], "ops", "{report}");
        assert_eq!(report["caller"]["requests_in_window"], 4, "{report}");
        assert!(report["caller"]["window_ends"].is_string(), "{report}");
        assert_eq!(count(&handle), 4);
        let window_ends = handle.requests_of("ops").expect("counted").window_ends;
        assert!(window_ends > SystemTime::now());
    })
    .await;
}

// ---------------------------------------------------------------------------
// 8. A full caller table degrades gracefully
// ---------------------------------------------------------------------------

/// `GET /status` with key `k{i}` through `svc`, read whole.
async fn ask<S, B>(svc: &S, i: usize) -> Got
where
    S: tower::Service<Request<Full<Bytes>>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let req = Request::get("/status")
        .header("x-api-key", format!("k{i}"))
        .body(Full::default())
        .expect("a valid request");
    let res = bounded("a status request", svc.clone().oneshot(req))
        .await
        .expect("the service answers");
    let (parts, body) = res.into_parts();
    let body = bounded("its body", body.collect())
        .await
        .expect("a whole body")
        .to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// The `caller` section of an answer to [`ask`], which must be a 200 for `acct-{i}`.
fn caller_of(got: &Got, i: usize) -> Value {
    assert_eq!(got.status, StatusCode::OK, "k{i}: {}", got.text());
    let caller = got.json()["caller"].clone();
    assert_eq!(caller["name"], format!("acct-{i}"), "{caller}");
    caller
}

/// The Unix second of `t`.
fn second_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_caller_table_degrades_gracefully() {
    within("caller table", async {
        let handle = StatusLayer::new()
            .api_keys(ApiKeys::new().lookup(|key: String| async move {
                key.strip_prefix('k')
                    .map(|i| Identity::new(format!("acct-{i}")))
            }))
            .count_requests_per_key(Duration::from_secs(1))
            .build();
        let svc = handle.layer(common::hello_service());
        // More distinct callers than the table holds, asking all at once
        // (on both worker threads), to fill it within one window.
        let batch = MAX_TRACKED_CALLERS + 8;
        let mut next = 0;

        // From the start of a second: when the window ends before the batch
        // is through (callers of an ended window give way, so the table is
        // never full), try again in the next one.
        let (untracked, window) = loop {
            let now = second_of(SystemTime::now());
            wait_until("the next second", || async move {
                second_of(SystemTime::now()) > now
            })
            .await;
            let started = Instant::now();
            let window = second_of(SystemTime::now());
            let mut tasks = tokio::task::JoinSet::new();
            for i in next..next + batch {
                let svc = svc.clone();
                tasks.spawn(async move { (i, ask(&svc, i).await) });
            }
            next += batch;
            let mut untracked = Vec::new();
            while let Some(done) = tasks.join_next().await {
                let (i, got) = done.expect("no request panicked");
                // Every caller is served: 200 with its own caller section.
                let caller = caller_of(&got, i);
                if caller.get("requests_in_window").is_none() {
                    // Untracked: neither a count nor a window end.
                    assert!(caller.get("window_ends").is_none(), "{caller}");
                    untracked.push(i);
                } else {
                    assert_eq!(caller["requests_in_window"], 1, "{caller}");
                    assert!(caller["window_ends"].is_string(), "{caller}");
                }
            }
            if second_of(SystemTime::now()) == window {
                // All in one window: the table holds exactly its size.
                assert_eq!(
                    untracked.len(),
                    batch - MAX_TRACKED_CALLERS,
                    "{batch} callers in one window, untracked: {untracked:?}"
                );
                println!(
                    "{batch} callers in {:?}: {} untracked",
                    started.elapsed(),
                    untracked.len()
                );
                break (untracked, window);
            }
            println!(
                "the window ended after {:?}, before the batch was through: again",
                started.elapsed()
            );
        };
        for &i in &untracked {
            let counted = handle.requests_of(&format!("acct-{i}"));
            assert_eq!(
                counted.map(|c| c.count),
                Some(0),
                "untracked caller {i} has no count"
            );
        }
        // Asking again within the window: still served, still untracked.
        let again = caller_of(&ask(&svc, untracked[0]).await, untracked[0]);
        if second_of(SystemTime::now()) == window {
            assert!(again.get("requests_in_window").is_none(), "{again}");
        }
        // The report in code is unaffected.
        assert_eq!(handle.report().await.status, Status::Ok);

        // Once the window has ended, new callers are counted again, and so
        // are those that were not.
        wait_until("the window ends", || async move {
            second_of(SystemTime::now()) > window
        })
        .await;
        let newcomers = next..next + 3;
        for i in newcomers.chain(untracked.iter().copied()) {
            let caller = caller_of(&ask(&svc, i).await, i);
            assert_eq!(caller["requests_in_window"], 1, "k{i}: {caller}");
            assert!(caller["window_ends"].is_string(), "{caller}");
            let counted = handle
                .requests_of(&format!("acct-{i}"))
                .expect("counting is on");
            // 0 only if yet another window began meanwhile.
            assert!(counted.count <= 1, "{counted:?}");
            assert!(counted.window_ends > SystemTime::now() - Duration::from_secs(1));
        }
    })
    .await;
}
