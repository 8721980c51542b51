//! Lifecycle through the real layer: draining, maintenance, startup gating,
//! pushed components, `?exclude`, liveness and readiness, component routes.
//!
//! Every wait is bounded.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::service::{call, call_get, call_json};
use common::{bounded, flag_fn, request};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{service_fn, Layer, ServiceExt};
use tower_status::check::{Check, CheckResult, Freshness, HealthCheck};
use tower_status::report::Notice;
use tower_status::{Status, StatusLayer};

// ---------------------------------------------------------------- helpers

type Inner =
    fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;
type App = tower_status::StatusService<tower::util::ServiceFn<Inner>>;

fn hello(
    _req: Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"hello")))))
}

fn app(layer: &StatusLayer) -> App {
    layer.layer(service_fn(hello as Inner))
}

/// Checks run on every request.
fn always() -> Freshness {
    Freshness::OnDemand {
        ttl: Duration::ZERO,
    }
}

/// A check that counts its runs and always fails.
fn failing(runs: &Arc<AtomicUsize>, failure: &'static str) -> impl Check {
    flag_fn(&Arc::new(AtomicBool::new(false)), runs, failure)
}

fn components(report: &Value) -> Vec<String> {
    report
        .get("components")
        .and_then(Value::as_object)
        .map(|c| c.keys().cloned().collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------- draining

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_fails_readiness_but_not_liveness() {
    let layer = StatusLayer::new().check(HealthCheck::new("db", || async { true }));
    let handle = layer.clone().build();
    // The inner service holds `/slow` until a permit is added.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = Arc::clone(&gate);
    let svc = layer.layer(service_fn(move |req: Request<Full<Bytes>>| {
        let gate = Arc::clone(&g);
        async move {
            if req.uri().path() == "/slow" {
                gate.acquire().await.expect("gate open").forget();
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"done"))))
        }
    }));

    let slow = tokio::spawn({
        let svc = svc.clone();
        async move {
            let res = svc.oneshot(request(Method::GET, "/slow")).await.unwrap();
            res.into_body().collect().await.unwrap().to_bytes()
        }
    });
    bounded("the slow request to be in flight", async {
        loop {
            let (_, report) = call_json(&svc, "/status").await;
            if report["requests"]["in_flight"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;

    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::OK, "{ready}");
    assert!(ready.get("reason").is_none());
    assert!(!handle.is_draining());

    handle.start_draining();
    assert!(handle.is_draining());
    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["status"], "down");
    assert_eq!(ready["reason"], "draining");
    let (code, live) = call_json(&svc, "/status/live").await;
    assert_eq!(code, StatusCode::OK, "{live}");
    assert_eq!(live["status"], "ok");
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(
        code,
        StatusCode::OK,
        "draining is a readiness matter: {report}"
    );
    assert_eq!(report["draining"], true);
    assert_eq!(report["requests"]["in_flight"], 1, "{report}");

    // In-flight requests still complete while draining.
    gate.add_permits(1);
    assert_eq!(bounded("the slow request", slow).await.unwrap(), "done");
    let (_, report) = call_json(&svc, "/status").await;
    assert_eq!(report["requests"]["in_flight"], 0, "{report}");
    assert_eq!(report["requests"]["total"], 1, "{report}");

    handle.stop_draining();
    assert!(!handle.is_draining());
    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ok");
    assert!(ready.get("reason").is_none());
    let (_, report) = call_json(&svc, "/status").await;
    assert!(report.get("draining").is_none(), "{report}");
}

// ---------------------------------------------------------------- maintenance

#[tokio::test]
async fn maintenance_answers_503_with_retry_after() {
    let layer = StatusLayer::new().check(HealthCheck::new("db", || async { true }));
    let handle = layer.clone().build();
    let svc = app(&layer);

    handle.set_maintenance(
        Notice::new("upgrade").estimated_completion(SystemTime::now() + Duration::from_secs(120)),
    );
    assert_eq!(handle.maintenance().unwrap().message, "upgrade");

    let got = call_get(&svc, "/status").await;
    let report = got.json();
    assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "maintenance");
    assert_eq!(report["notice"]["message"], "upgrade");
    assert!(
        report["notice"]["estimated_completion"].is_string(),
        "{report}"
    );
    let secs = got.retry_after().expect("Retry-After on /status");
    assert!((110..=121).contains(&secs), "Retry-After {secs}");

    let ready = call_get(&svc, "/status/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "maintenance");
    assert_eq!(ready.json()["reason"], "maintenance");
    let secs = ready.retry_after().expect("Retry-After on /status/ready");
    assert!((110..=121).contains(&secs), "Retry-After {secs}");

    let live = call_get(&svc, "/status/live").await;
    assert_eq!(live.status, StatusCode::OK);

    handle.clear_maintenance();
    assert!(handle.maintenance().is_none());
    let got = call_get(&svc, "/status").await;
    let report = got.json();
    assert_eq!(got.status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "ok");
    assert!(report.get("notice").is_none(), "{report}");
    assert!(got.retry_after().is_none());

    // Without an estimated completion there is nothing to retry after.
    handle.set_maintenance(Notice::new("no idea how long"));
    let got = call_get(&svc, "/status").await;
    assert_eq!(got.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(got.json()["notice"]["message"], "no idea how long");
    assert!(got.json()["notice"].get("estimated_completion").is_none());
    assert!(got.retry_after().is_none());
}

#[tokio::test]
async fn maintenance_http_status_is_configurable() {
    let layer = StatusLayer::new().http_status(Status::Maintenance, StatusCode::OK);
    let handle = layer.clone().build();
    let svc = app(&layer);

    handle.set_maintenance(
        Notice::new("upgrade").estimated_completion(SystemTime::now() + Duration::from_secs(120)),
    );
    let got = call_get(&svc, "/status").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["status"], "maintenance");
    assert!(got.retry_after().is_none(), "{:?}", got.headers);
    let ready = call_get(&svc, "/status/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.retry_after().is_none());
}

// ---------------------------------------------------------------- startup gating

#[tokio::test]
async fn readiness_waits_for_startup_checks() {
    let up = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new().ready_after_startup_checks(true).check(
        HealthCheck::new("db", flag_fn(&up, &runs, "not yet")).freshness(Freshness::OnDemand {
            ttl: Duration::from_millis(50),
        }),
    );
    let svc = app(&layer);

    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["status"], "down");
    let reason = ready["reason"].as_str().expect("a reason");
    assert!(reason.contains("starting"), "{reason}");
    assert_eq!(call_get(&svc, "/status/live").await.status, StatusCode::OK);

    up.store(true, SeqCst);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ok");
    assert!(ready.get("reason").is_none());

    // Once started, a later failure is an ordinary failure, not "starting".
    up.store(false, SeqCst);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert!(ready.get("reason").is_none(), "{ready}");
}

// ---------------------------------------------------------------- pushed components

#[tokio::test]
async fn pushed_components_count_like_checks() {
    let layer = StatusLayer::new();
    let handle = layer.clone().build();
    let svc = app(&layer);

    handle.set_component("broker", CheckResult::down("lost"));
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "down");
    assert_eq!(report["components"]["broker"]["status"], "down");
    assert_eq!(report["components"]["broker"]["error"], "lost");
    assert_eq!(report["components"]["broker"]["critical"], true);
    let (code, one) = call_json(&svc, "/status/broker").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(one["name"], "broker");
    assert_eq!(one["error"], "lost");
    assert_eq!(
        call_get(&svc, "/status/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    handle.set_component("broker", CheckResult::ok());
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["components"]["broker"]["status"], "ok");
    assert!(report["components"]["broker"].get("error").is_none());

    // A component declared as pushed takes its declared settings.
    let layer = StatusLayer::new().check(
        HealthCheck::pushed("broker")
            .critical(false)
            .component_type("queue"),
    );
    let handle = layer.clone().build();
    let svc = app(&layer);
    handle.set_component("broker", CheckResult::down("lost again"));
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "degraded");
    assert_eq!(report["components"]["broker"]["status"], "down");
    assert_eq!(report["components"]["broker"]["critical"], false);
    assert_eq!(report["components"]["broker"]["type"], "queue");
    // Readiness looks at critical components only.
    assert_eq!(call_get(&svc, "/status/ready").await.status, StatusCode::OK);

    handle.remove_component("broker");
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "ok");
    assert!(components(&report).is_empty(), "{report}");
    assert_eq!(
        call_get(&svc, "/status/broker").await.status,
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------- exclude, ready, live

#[tokio::test]
async fn exclude_leaves_components_out_of_body_and_status() {
    let db_runs = Arc::new(AtomicUsize::new(0));
    let cache_runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", failing(&db_runs, "db down")).freshness(always()))
        .check(
            HealthCheck::new("cache", failing(&cache_runs, "cache down"))
                .critical(false)
                .freshness(always()),
        )
        .check(HealthCheck::new("queue", || async { true }).freshness(always()));
    let svc = app(&layer);

    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(components(&report), ["cache", "db", "queue"]);
    assert_eq!(db_runs.load(SeqCst), 1);

    let (code, report) = call_json(&svc, "/status?exclude=db").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "degraded");
    assert_eq!(components(&report), ["cache", "queue"]);
    assert_eq!(db_runs.load(SeqCst), 1, "an excluded check does not run");

    for query in ["exclude=db&exclude=cache", "exclude=db,cache"] {
        let (code, report) = call_json(&svc, &format!("/status?{query}")).await;
        assert_eq!(code, StatusCode::OK, "{query}: {report}");
        assert_eq!(report["status"], "ok", "{query}");
        assert_eq!(components(&report), ["queue"], "{query}");
    }
    assert_eq!(db_runs.load(SeqCst), 1);
    assert_eq!(cache_runs.load(SeqCst), 2);

    // Readiness honours it too.
    assert_eq!(
        call_get(&svc, "/status/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call_get(&svc, "/status/ready?exclude=db").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn readiness_runs_only_critical_checks() {
    let db_runs = Arc::new(AtomicUsize::new(0));
    let search_runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(
            HealthCheck::new(
                "db",
                flag_fn(&Arc::new(AtomicBool::new(true)), &db_runs, "-"),
            )
            .freshness(always()),
        )
        .check(
            HealthCheck::new("search", failing(&search_runs, "index gone"))
                .critical(false)
                .freshness(always()),
        );
    let svc = app(&layer);

    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "degraded");
    assert_eq!(search_runs.load(SeqCst), 1);

    let (code, ready) = call_json(&svc, "/status/ready").await;
    assert_eq!(code, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ok");
    assert!(ready.get("components").is_none(), "{ready}");
    assert!(ready["timestamp"].is_string());
    assert_eq!(db_runs.load(SeqCst), 2);
    assert_eq!(
        search_runs.load(SeqCst),
        1,
        "readiness skips non-critical checks"
    );

    let (code, ready) = call_json(&svc, "/status/ready?verbose").await;
    assert_eq!(code, StatusCode::OK, "{ready}");
    assert_eq!(components(&ready), ["db"], "{ready}");
    assert_eq!(ready["components"]["db"]["status"], "ok");

    let (_, ready) = call_json(&svc, "/status/ready?verbose=false").await;
    assert!(ready.get("components").is_none(), "{ready}");
}

#[tokio::test]
async fn liveness_never_runs_checks() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", failing(&runs, "db down")).freshness(always()));
    let svc = app(&layer);

    for uri in ["/status/live", "/status/live/", "/status/live?verbose"] {
        let (code, live) = call_json(&svc, uri).await;
        assert_eq!(code, StatusCode::OK, "{uri}: {live}");
        assert_eq!(live["status"], "ok", "{uri}");
    }
    assert_eq!(runs.load(SeqCst), 0, "liveness ran a check");

    let (code, _) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(runs.load(SeqCst), 1);
}

// ---------------------------------------------------------------- component routes, HEAD

#[tokio::test]
async fn component_routes_and_not_found() {
    let cache_runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", || async { true }).component_type("datastore"))
        .check(HealthCheck::new(
            "cache",
            failing(&cache_runs, "cache down"),
        ));
    let svc = app(&layer);

    let (code, db) = call_json(&svc, "/status/db").await;
    assert_eq!(code, StatusCode::OK, "{db}");
    assert_eq!(db["name"], "db");
    assert_eq!(db["status"], "ok");
    assert_eq!(db["type"], "datastore");
    assert!(db["last_checked"].is_string());
    assert_eq!(cache_runs.load(SeqCst), 0, "only the named check runs");

    let (code, cache) = call_json(&svc, "/status/cache").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{cache}");
    assert_eq!(cache["name"], "cache");
    assert_eq!(cache["status"], "down");
    assert_eq!(cache["error"], "cache down");

    for uri in ["/status/nope", "/status/a/b"] {
        let got = call_get(&svc, uri).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(got.headers[CONTENT_TYPE], "application/json");
        let body = got.json();
        assert!(body["error"].is_string(), "{uri}: {body}");
        assert_eq!(body["code"], "not_found", "{uri}: {body}");
    }
}

#[tokio::test]
async fn head_has_no_body() {
    let layer = StatusLayer::new().check(HealthCheck::new("db", || async { true }));
    let svc = app(&layer);

    for uri in ["/status/ready", "/status", "/status/live", "/status/db"] {
        let full = call_get(&svc, uri).await;
        let head = call(&svc, Method::HEAD, uri).await;
        assert_eq!(head.status, StatusCode::OK, "{uri}");
        assert!(head.body.is_empty(), "{uri}: {:?}", head.body);
        assert_eq!(head.headers[CONTENT_TYPE], "application/json", "{uri}");
        let len: usize = head.headers[CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(len > 0, "{uri}");
        if uri == "/status/ready" || uri == "/status/live" {
            // Same shape as GET: only the timestamp may differ, not its length.
            assert_eq!(len, full.body.len(), "{uri}");
        }
    }
}

/// A pushed value and a check of the same name: the report and the
/// component route agree (the pushed value wins in both).
#[tokio::test]
async fn pushed_value_overrides_a_check_of_the_same_name_everywhere() {
    let runs = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicBool::new(true));
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", flag_fn(&ok, &runs, "db down")).freshness(always()));
    layer
        .clone()
        .build()
        .set_component("db", CheckResult::down("pushed: connection lost"));
    let svc = app(&layer);
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(
        report["components"]["db"]["error"],
        "pushed: connection lost"
    );
    let (code, one) = call_json(&svc, "/status/db").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{one}");
    assert_eq!(one["error"], "pushed: connection lost");
}

/// `/status/traffic` evaluates the traffic rules without running any check.
#[tokio::test]
async fn traffic_component_route_runs_no_check() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", failing(&runs, "db down")).freshness(always()))
        .traffic_rule(tower_status::check::TrafficRule::error_rate_above(
            0.5,
            Status::Down,
        ));
    let svc = app(&layer);
    let (code, traffic) = call_json(&svc, "/status/traffic").await;
    assert_eq!(code, StatusCode::OK, "{traffic}");
    assert_eq!(traffic["name"], "traffic");
    assert_eq!(traffic["status"], "ok");
    assert_eq!(runs.load(SeqCst), 0, "no check may run for /status/traffic");
}
