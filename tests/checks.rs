//! Health checks through the real layer: single flight, caching, stale
//! serving, timeouts, report deadline, panics, aggregation, concurrency
//! limit, background polling, component fields, closure forms, TCP and HTTP
//! checks, traffic rules.
//!
//! Every wait is bounded; timing assertions leave generous margins.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use common::service::{call_get, call_json};
use common::{bounded, component, counter, error_of, flag_fn, request, wait_until};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tower::{service_fn, Layer, ServiceExt};
use tower_status::check::{
    Check, CheckResult, Freshness, HealthCheck, TcpCheck, TrafficRule, MAX_ERROR_LEN,
};
use tower_status::report::Timestamp;
use tower_status::{Status, StatusLayer};

// ---------------------------------------------------------------- helpers

type App = tower_status::StatusService<
    tower::util::ServiceFn<
        fn(Request<Full<Bytes>>) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>,
    >,
>;

/// The inner service: `/fail` answers 500 with an empty body, everything
/// else 200 `hello`.
fn inner(
    req: Request<Full<Bytes>>,
) -> std::future::Ready<Result<Response<Full<Bytes>>, Infallible>> {
    let res = if req.uri().path() == "/fail" {
        let mut res = Response::new(Full::default());
        *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        res
    } else {
        Response::new(Full::new(Bytes::from_static(b"hello")))
    };
    std::future::ready(Ok(res))
}

fn app(layer: &StatusLayer) -> App {
    layer.layer(service_fn(inner as fn(_) -> _))
}

fn on_demand(ttl_ms: u64) -> Freshness {
    Freshness::OnDemand {
        ttl: Duration::from_millis(ttl_ms),
    }
}

/// A check that counts its runs, sleeps `sleep`, then passes.
fn counting(runs: &Arc<AtomicUsize>, sleep: Duration) -> impl Check {
    let runs = Arc::clone(runs);
    move || {
        let runs = Arc::clone(&runs);
        async move {
            runs.fetch_add(1, SeqCst);
            tokio::time::sleep(sleep).await;
            true
        }
    }
}

/// A check that passes while `flag` is set and fails otherwise.
fn passes_while(flag: &Arc<AtomicBool>, failure: &'static str) -> impl Check {
    flag_fn(flag, &counter(), failure)
}

/// `2026-11-23T10:30:00.000Z`: RFC 3339, UTC, milliseconds.
fn is_rfc3339_utc_millis(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

// ---------------------------------------------------------------- single flight, cache

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_status_requests_share_one_run() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new().check(HealthCheck::new(
        "slow",
        counting(&runs, Duration::from_millis(200)),
    ));
    let svc = app(&layer);

    let started = Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let res = svc.oneshot(request(Method::GET, "/status")).await.unwrap();
                let status = res.status();
                let body = res.into_body().collect().await.unwrap().to_bytes();
                (status, body)
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        let (status, body) = bounded("a concurrent status request", task).await.unwrap();
        let report: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(report["components"]["slow"]["status"], "ok");
        statuses.push(status);
    }
    let took = started.elapsed();

    assert_eq!(runs.load(SeqCst), 1, "the check ran once for 100 requests");
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 100);
    // One run is 200 ms; 100 serial runs would be 20 s. The margin is for a
    // loaded 2-core machine.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        took >= Duration::from_millis(190),
        "took {took:?}: did not wait for the check"
    );
}

#[tokio::test]
async fn results_are_cached_for_the_ttl() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new()
        .check(HealthCheck::new("db", counting(&runs, Duration::ZERO)).freshness(on_demand(100)));
    let svc = app(&layer);

    let (code, first) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK);
    let (_, second) = call_json(&svc, "/status").await;
    assert_eq!(
        runs.load(SeqCst),
        1,
        "second request within the TTL used the cache"
    );
    assert_eq!(
        first["components"]["db"]["last_checked"],
        second["components"]["db"]["last_checked"]
    );

    tokio::time::sleep(Duration::from_millis(150)).await;
    let (code, _) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(runs.load(SeqCst), 2, "after the TTL the check ran again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_answers_at_once_with_the_last_result() {
    let runs = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let (r, d) = (Arc::clone(&runs), Arc::clone(&done));
    let check = move || {
        let run = r.fetch_add(1, SeqCst) + 1;
        let done = Arc::clone(&d);
        async move {
            if run >= 2 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            done.fetch_add(1, SeqCst);
            CheckResult::ok().with_details(json!({ "run": run }))
        }
    };
    let layer = StatusLayer::new().check(
        HealthCheck::new("db", check)
            .freshness(on_demand(50))
            .serve_stale(Duration::from_secs(10)),
    );
    let svc = app(&layer);

    let (_, report) = call_json(&svc, "/status").await;
    assert_eq!(report["components"]["db"]["details"]["run"], 1);

    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let (code, report) = call_json(&svc, "/status").await;
    let took = started.elapsed();
    assert_eq!(code, StatusCode::OK);
    assert!(
        took < Duration::from_millis(150),
        "stale answer took {took:?}"
    );
    assert_eq!(report["components"]["db"]["details"]["run"], 1, "{report}");

    // The refresh goes on without the request and fills the cache.
    wait_until("the refresh to finish", || async { done.load(SeqCst) == 2 }).await;
    assert_eq!(runs.load(SeqCst), 2, "one refresh");
    let started = Instant::now();
    let (_, report) = call_json(&svc, "/status").await;
    assert!(started.elapsed() < Duration::from_millis(150));
    assert_eq!(report["components"]["db"]["details"]["run"], 2, "{report}");
}

// ---------------------------------------------------------------- timeouts, deadline, panics

#[tokio::test]
async fn a_check_that_never_completes_times_out() {
    let layer = StatusLayer::new().check(
        HealthCheck::new("hang", std::future::pending::<bool>).timeout(Duration::from_millis(100)),
    );
    let svc = app(&layer);

    let started = Instant::now();
    let (code, report) = call_json(&svc, "/status").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(95), "took {took:?}");
    assert!(took < Duration::from_millis(600), "took {took:?}");
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(report["status"], "down");
    assert_eq!(report["components"]["hang"]["status"], "down");
    let error = error_of(&report, "hang");
    assert!(error.contains("timed out after 100 ms"), "{error}");
}

#[tokio::test]
async fn the_report_deadline_bounds_the_answer() {
    let layer = StatusLayer::new()
        .report_deadline(Duration::from_millis(150))
        .check(HealthCheck::new("fast", || async { true }))
        .check(
            HealthCheck::new("hang", std::future::pending::<bool>).timeout(Duration::from_secs(10)),
        );
    let svc = app(&layer);

    let started = Instant::now();
    let (code, report) = call_json(&svc, "/status").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(140), "took {took:?}");
    assert!(took < Duration::from_millis(650), "took {took:?}");
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(report["components"]["fast"]["status"], "ok");
    assert_eq!(report["components"]["hang"]["status"], "down");
    let error = error_of(&report, "hang");
    assert!(error.contains("report deadline"), "{error}");
    assert!(error.contains("150 ms"), "{error}");
}

/// Panics synchronously in `check()`, before any future exists, on its first call.
struct PanicsBeforeItsFuture {
    calls: AtomicUsize,
}

impl Check for PanicsBeforeItsFuture {
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = CheckResult> + Send + '_>> {
        if self.calls.fetch_add(1, SeqCst) == 0 {
            panic!("early boom");
        }
        Box::pin(async { CheckResult::ok() })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_check_is_down_with_its_message_and_breaks_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let async_panic = move || {
        let n = c.fetch_add(1, SeqCst);
        async move {
            if n == 0 {
                panic!("boom");
            }
            CheckResult::ok()
        }
    };
    let layer = StatusLayer::new()
        .check(HealthCheck::new("async_panic", async_panic).freshness(on_demand(200)))
        .check(
            HealthCheck::new(
                "sync_panic",
                PanicsBeforeItsFuture {
                    calls: AtomicUsize::new(0),
                },
            )
            .freshness(on_demand(200)),
        );
    let svc = app(&layer);

    let (code, report) = call_json(&svc, "/status").await;
    let answered = Instant::now();
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "down");
    assert_eq!(report["components"]["async_panic"]["status"], "down");
    assert!(
        error_of(&report, "async_panic").contains("boom"),
        "{report}"
    );
    assert_eq!(report["components"]["sync_panic"]["status"], "down");
    assert!(
        error_of(&report, "sync_panic").contains("early boom"),
        "{report}"
    );

    // Within the TTL the failure is served again, and traffic still flows.
    let (code, _) = call_json(&svc, "/status").await;
    if answered.elapsed() < Duration::from_millis(200) {
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    }
    let hello = call_get(&svc, "/hello").await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.body, "hello");

    // Once the TTL is over the checks run again, and pass.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["components"]["async_panic"]["status"], "ok");
    assert_eq!(report["components"]["sync_panic"]["status"], "ok");
    assert_eq!(calls.load(SeqCst), 2);
}

// ---------------------------------------------------------------- aggregation

#[tokio::test]
async fn criticality_decides_between_degraded_and_down() {
    let core_ok = Arc::new(AtomicBool::new(true));
    let extra_ok = Arc::new(AtomicBool::new(true));
    let layer = StatusLayer::new()
        .check(
            HealthCheck::new("core", passes_while(&core_ok, "core is gone"))
                .freshness(on_demand(30)),
        )
        .check(
            HealthCheck::new("extra", passes_while(&extra_ok, "extra is gone"))
                .critical(false)
                .freshness(on_demand(30)),
        );
    let svc = app(&layer);
    let pause = || tokio::time::sleep(Duration::from_millis(60));

    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(
        (code, report["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    assert_eq!(report["components"]["core"]["critical"], true);
    assert_eq!(report["components"]["extra"]["critical"], false);

    extra_ok.store(false, SeqCst);
    pause().await;
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(
        (code, report["status"].as_str()),
        (StatusCode::OK, Some("degraded")),
        "{report}"
    );
    assert_eq!(report["components"]["extra"]["status"], "down");
    assert_eq!(report["components"]["extra"]["error"], "extra is gone");

    core_ok.store(false, SeqCst);
    pause().await;
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(
        (code, report["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("down")),
        "{report}"
    );
    assert_eq!(report["components"]["core"]["error"], "core is gone");

    core_ok.store(true, SeqCst);
    extra_ok.store(true, SeqCst);
    pause().await;
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(
        (code, report["status"].as_str()),
        (StatusCode::OK, Some("ok")),
        "{report}"
    );
    assert!(report["components"]["core"].get("error").is_none());
}

// ---------------------------------------------------------------- concurrency limit, background

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrent_checks_limits_running_checks() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut layer = StatusLayer::new().max_concurrent_checks(2);
    for i in 0..6 {
        let running = Arc::clone(&running);
        let peak = Arc::clone(&peak);
        layer = layer.check(HealthCheck::new(format!("c{i}"), move || {
            let running = Arc::clone(&running);
            let peak = Arc::clone(&peak);
            async move {
                let now = running.fetch_add(1, SeqCst) + 1;
                peak.fetch_max(now, SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                running.fetch_sub(1, SeqCst);
                true
            }
        }));
    }
    let svc = app(&layer);

    let started = Instant::now();
    let (code, report) = call_json(&svc, "/status").await;
    let took = started.elapsed();
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["components"].as_object().unwrap().len(), 6);
    assert_eq!(
        peak.load(SeqCst),
        2,
        "at most two checks ran at once, and two did"
    );
    assert!(
        took >= Duration::from_millis(280),
        "three waves of 100 ms, took {took:?}"
    );
    assert_eq!(running.load(SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_checks_run_on_an_interval_not_per_request() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new().check(
        HealthCheck::new("polled", counting(&runs, Duration::ZERO)).freshness(
            Freshness::Background {
                every: Duration::from_millis(100),
            },
        ),
    );
    let svc = app(&layer);

    let started = Instant::now();
    let (code, _) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(550)).await;
    let before_rapid = runs.load(SeqCst);
    let rapid_started = Instant::now();
    for _ in 0..20 {
        let (code, report) = call_json(&svc, "/status").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(report["components"]["polled"]["status"], "ok");
    }
    let rapid = rapid_started.elapsed();
    let n = runs.load(SeqCst);
    // One run at start, then one per tick: about 6 or 7 in 550 ms. A loaded
    // machine stretches the sleep, so the upper bound follows the real time.
    let ticks = (started.elapsed().as_millis() / 100) as usize;
    assert!(
        n >= 4 && n <= 8.max(ticks + 2),
        "{n} runs in {:?} at a 100 ms interval",
        started.elapsed()
    );
    let ticks_during_rapid = (rapid.as_millis() / 100) as usize;
    assert!(
        n - before_rapid <= ticks_during_rapid + 1,
        "20 requests in {rapid:?} ran the check {} times",
        n - before_rapid
    );
}

// ---------------------------------------------------------------- component fields

#[tokio::test]
async fn components_carry_their_fields() {
    let long = "é".repeat(2000); // 4000 bytes of two-byte characters
    let layer = StatusLayer::new()
        .check(
            HealthCheck::new("db", || async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                CheckResult::ok()
                    .with_details(json!({ "pool": { "idle": 3 } }))
                    .with_observed(12, "connections")
            })
            .component_type("datastore"),
        )
        .check(HealthCheck::new("plain", || async { true }))
        .check(
            HealthCheck::new("noisy", move || {
                let long = long.clone();
                async move { CheckResult::down(long) }
            })
            .critical(false),
        );
    let svc = app(&layer);

    let before = SystemTime::now() - Duration::from_secs(1);
    let (code, report) = call_json(&svc, "/status").await;
    let after = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "degraded");

    let db = component(&report, "db");
    assert_eq!(db["status"], "ok");
    assert_eq!(db["type"], "datastore");
    assert_eq!(db["critical"], true);
    assert_eq!(db["details"], json!({ "pool": { "idle": 3 } }));
    assert_eq!(db["observed_value"], 12);
    assert_eq!(db["observed_unit"], "connections");
    assert!(db.get("error").is_none());
    let ms = db["duration_ms"].as_f64().expect("duration_ms is a number");
    assert!((25.0..2000.0).contains(&ms), "duration_ms {ms}");
    let at = db["last_checked"]
        .as_str()
        .expect("last_checked is a string");
    assert!(is_rfc3339_utc_millis(at), "{at}");
    let at: Timestamp = serde_json::from_value(db["last_checked"].clone()).unwrap();
    assert!(at.0 >= before && at.0 <= after, "{at}");

    let plain = component(&report, "plain");
    assert_eq!(plain["status"], "ok");
    for absent in [
        "type",
        "details",
        "observed_value",
        "observed_unit",
        "error",
    ] {
        assert!(plain.get(absent).is_none(), "{absent} in {plain}");
    }
    assert!(plain["duration_ms"].as_f64().unwrap() >= 0.0);
    assert!(is_rfc3339_utc_millis(
        plain["last_checked"].as_str().unwrap()
    ));

    let noisy = error_of(&report, "noisy");
    assert!(noisy.len() <= MAX_ERROR_LEN, "{} bytes", noisy.len());
    assert!(
        noisy.len() > MAX_ERROR_LEN - 8,
        "cut too short: {} bytes",
        noisy.len()
    );
    assert!(noisy.starts_with("éé"));
    assert!(noisy.ends_with('…'), "truncation is marked");
    assert_eq!(component(&report, "noisy")["critical"], false);
}

#[tokio::test]
async fn every_closure_form_is_a_check() {
    let layer = StatusLayer::new()
        .check(HealthCheck::new("bool_true", || async { true }))
        .check(HealthCheck::new("bool_false", || async { false }))
        .check(HealthCheck::new("unit_ok", || async {
            Ok::<(), String>(())
        }))
        .check(HealthCheck::new("unit_err", || async {
            Err::<(), String>("nope".to_owned())
        }))
        .check(HealthCheck::new("result_ok", || async {
            Ok::<CheckResult, std::io::Error>(CheckResult::degraded("slow disk"))
        }))
        .check(HealthCheck::new("result_err", || async {
            Err::<CheckResult, std::io::Error>(std::io::Error::other("disk on fire"))
        }))
        .check(HealthCheck::new("plain_result", || async {
            CheckResult::ok().with_observed(0.5, "ratio")
        }));
    let svc = app(&layer);

    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    let expect = [
        ("bool_true", "ok", None),
        ("bool_false", "down", Some("check failed")),
        ("unit_ok", "ok", None),
        ("unit_err", "down", Some("nope")),
        ("result_ok", "degraded", Some("slow disk")),
        ("result_err", "down", Some("disk on fire")),
        ("plain_result", "ok", None),
    ];
    for (name, status, error) in expect {
        let c = component(&report, name);
        assert_eq!(c["status"], status, "{name}: {c}");
        assert_eq!(c["error"].as_str(), error, "{name}: {c}");
    }
    assert_eq!(report["components"]["plain_result"]["observed_value"], 0.5);
}

// ---------------------------------------------------------------- TCP

#[tokio::test]
async fn tcp_check_follows_a_real_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = StatusLayer::new().check(
        HealthCheck::new(
            "db",
            TcpCheck::new(addr.to_string()).timeout(Duration::from_millis(500)),
        )
        .freshness(on_demand(0)),
    );
    let svc = app(&layer);

    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    let db = component(&report, "db");
    assert_eq!(db["status"], "ok");
    assert_eq!(db["observed_unit"], "ms");
    assert!(db["observed_value"].as_f64().unwrap() >= 0.0);

    drop(listener);
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["components"]["db"]["status"], "down");
    let error = error_of(&report, "db");
    assert!(error.contains(&addr.to_string()), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
}

// ---------------------------------------------------------------- HTTP

#[cfg(feature = "http-check")]
mod http_check {
    use super::*;
    use tower_status::check::HttpCheck;

    /// An upstream axum server with this layer: a critical `core` check
    /// and a non-critical `extra` check, each following a flag.
    struct Upstream {
        addr: std::net::SocketAddr,
        core_ok: Arc<AtomicBool>,
        extra_ok: Arc<AtomicBool>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        server: tokio::task::JoinHandle<()>,
    }

    impl Upstream {
        async fn start() -> Self {
            let core_ok = Arc::new(AtomicBool::new(true));
            let extra_ok = Arc::new(AtomicBool::new(true));
            let layer = StatusLayer::new()
                .check(
                    HealthCheck::new("core", passes_while(&core_ok, "core failing"))
                        .freshness(on_demand(0)),
                )
                .check(
                    HealthCheck::new("extra", passes_while(&extra_ok, "extra failing"))
                        .critical(false)
                        .freshness(on_demand(0)),
                );
            let app = axum::Router::new()
                .route("/", axum::routing::get(|| async { "upstream" }))
                .layer(layer);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("upstream server");
            });
            Self {
                addr,
                core_ok,
                extra_ok,
                stop: Some(stop),
                server,
            }
        }

        async fn stop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            bounded("upstream shutdown", &mut self.server)
                .await
                .expect("upstream task");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn http_check_follows_a_real_upstream() {
        let mut upstream = Upstream::start().await;
        let url = format!("http://{}/status", upstream.addr);
        let gateway = StatusLayer::new().check(
            HealthCheck::new(
                "users",
                HttpCheck::new(url.clone()).timeout(Duration::from_secs(2)),
            )
            .freshness(on_demand(0)),
        );
        let svc = app(&gateway);

        // Upstream ok.
        let (code, report) = call_json(&svc, "/status").await;
        assert_eq!(code, StatusCode::OK, "{report}");
        let users = component(&report, "users");
        assert_eq!(users["status"], "ok", "{users}");
        assert_eq!(users["details"]["upstream_status"], "ok");
        assert_eq!(users["details"]["http_status"], 200);
        assert_eq!(users["details"]["url"], url.as_str());
        assert_eq!(users["observed_unit"], "ms");

        // Upstream down: 503 with status "down".
        upstream.core_ok.store(false, SeqCst);
        let (code, report) = call_json(&svc, "/status").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
        let users = component(&report, "users");
        assert_eq!(users["status"], "down", "{users}");
        assert_eq!(users["details"]["http_status"], 503);
        assert_eq!(users["details"]["upstream_status"], "down");
        assert!(error_of(&report, "users").contains("503"), "{users}");

        // Upstream degraded by its non-critical check: 200 with status "degraded".
        upstream.core_ok.store(true, SeqCst);
        upstream.extra_ok.store(false, SeqCst);
        let (code, report) = call_json(&svc, "/status").await;
        assert_eq!(code, StatusCode::OK, "{report}");
        assert_eq!(report["status"], "degraded");
        let users = component(&report, "users");
        assert_eq!(users["status"], "degraded", "{users}");
        assert_eq!(users["details"]["http_status"], 200);
        assert_eq!(users["details"]["upstream_status"], "degraded");
        assert!(error_of(&report, "users").contains("degraded"), "{users}");

        // Upstream gone.
        upstream.stop().await;
        let (code, report) = call_json(&svc, "/status").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
        assert_eq!(report["components"]["users"]["status"], "down");
        let error = error_of(&report, "users");
        assert!(error.contains("connect to"), "{error}");
        assert!(error.contains(&upstream.addr.to_string()), "{error}");
        assert!(error.to_lowercase().contains("refused"), "{error}");
    }

    /// Credentials in the URL go to the upstream as `Authorization: Basic`
    /// and nowhere else: not in the report, an error or `Debug`.
    #[tokio::test]
    async fn http_check_sends_url_credentials_and_never_shows_them() {
        const SECRET: &str = "Pw-7f3a9c-never-shown";
        let expected = format!("Basic {}", base64_of(format!("probe:{SECRET}").as_bytes()));
        let upstream = axum::Router::new().route(
            "/status",
            axum::routing::get(move |headers: http::HeaderMap| {
                let expected = expected.clone();
                async move {
                    let host_ok = headers
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .is_some_and(|h| !h.contains('@'));
                    let auth_ok = headers.get(http::header::AUTHORIZATION)
                        == Some(&http::HeaderValue::from_str(&expected).unwrap());
                    if host_ok && auth_ok {
                        (StatusCode::OK, r#"{"status":"ok","version":"4.2.0"}"#)
                    } else {
                        (StatusCode::UNAUTHORIZED, r#"{"status":"down"}"#)
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, upstream).await;
        });

        let good = HttpCheck::new(format!(
            "http://probe:{SECRET}@{addr}/status?token={SECRET}"
        ));
        let bad = HttpCheck::new(format!("http://probe:wrong-{SECRET}@{addr}/status"));
        assert!(!format!("{good:?}{bad:?}").contains(SECRET));
        let gateway = StatusLayer::new()
            .check(HealthCheck::new("good", good).freshness(on_demand(0)))
            .check(HealthCheck::new("bad", bad).freshness(on_demand(0)));
        let svc = app(&gateway);
        let (code, report) = call_json(&svc, "/status").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
        let good = component(&report, "good");
        assert_eq!(good["status"], "ok", "{good}");
        assert_eq!(good["details"]["upstream_version"], "4.2.0", "{good}");
        assert_eq!(
            good["details"]["url"],
            format!("http://***@{addr}/status?token=***")
        );
        assert!(error_of(&report, "bad").contains("401"), "{report}");
        assert!(!report.to_string().contains(SECRET), "{report}");
        server.abort();
    }

    fn base64_of(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

// ---------------------------------------------------------------- traffic rules

#[tokio::test]
async fn traffic_rules_turn_errors_into_a_component() {
    let layer = StatusLayer::new()
        .traffic_rule(TrafficRule::error_rate_above(0.5, Status::Down).min_requests(10));
    let svc = app(&layer);

    // Below min_requests the rule does not apply.
    for _ in 0..9 {
        assert_eq!(
            call_get(&svc, "/fail").await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["components"]["traffic"]["status"], "ok");
    assert_eq!(report["components"]["traffic"]["critical"], true);

    assert_eq!(
        call_get(&svc, "/fail").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["status"], "down");
    let traffic = component(&report, "traffic");
    assert_eq!(traffic["status"], "down", "{traffic}");
    assert_eq!(traffic["details"]["requests"], 10);
    assert_eq!(traffic["details"]["error_rate"], 1.0);
    assert!(
        error_of(&report, "traffic").contains("error rate"),
        "{traffic}"
    );

    // The component is also reachable by name.
    let (code, one) = call_json(&svc, "/status/traffic").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(one["name"], "traffic");
    assert_eq!(one["status"], "down");
}

#[tokio::test]
async fn without_traffic_rules_there_is_no_traffic_component() {
    let layer = StatusLayer::new();
    let svc = app(&layer);
    for _ in 0..10 {
        assert_eq!(
            call_get(&svc, "/fail").await.status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    let (code, report) = call_json(&svc, "/status").await;
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["requests"]["errors"], 10);
    assert!(
        report
            .get("components")
            .and_then(|c| c.get("traffic"))
            .is_none(),
        "{report}"
    );
    assert_eq!(
        call_get(&svc, "/status/traffic").await.status,
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------- runtime restarts

/// A layer may outlive the runtime that started a check run: a `static` app
/// shared by `#[tokio::test]`s, a server restarted in-process.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_check_runs_again_after_the_runtime_that_ran_it_is_gone() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new().check(
        HealthCheck::new("slow", counting(&runs, Duration::from_millis(200)))
            .freshness(on_demand(10)),
    );
    runtime().block_on(async {
        // Gives up while the run is in progress; the runtime then drops it.
        let _ =
            tokio::time::timeout(Duration::from_millis(50), layer.clone().build().report()).await;
    });
    assert_eq!(runs.load(SeqCst), 1);

    let second = runtime();
    // The first answer may report the cancelled run; a later one must not.
    let _ = second.block_on(bounded("report", layer.clone().build().report()));
    std::thread::sleep(Duration::from_millis(30));
    let report = second.block_on(bounded("report", layer.clone().build().report()));
    let slow = &report.components["slow"];
    assert_eq!(slow.status, Status::Ok, "{:?}", slow.error);
    assert!(runs.load(SeqCst) >= 2);
}

#[test]
fn background_polling_resumes_on_a_new_runtime() {
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = StatusLayer::new().check(
        HealthCheck::new("polled", counting(&runs, Duration::ZERO)).freshness(
            Freshness::Background {
                every: Duration::from_millis(20),
            },
        ),
    );
    runtime().block_on(async {
        layer.clone().build().report().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let before = runs.load(SeqCst);
    assert!(before >= 2, "{before}");

    runtime().block_on(async {
        layer.clone().build().report().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let after = runs.load(SeqCst);
    assert!(
        after >= before + 3,
        "no polling on the new runtime: {before} -> {after}"
    );
}
