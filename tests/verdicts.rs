//! The verdict engine over real loopback servers: damping (failure and
//! success thresholds, time in error), schedules (jitter, no overlap,
//! overrun), dependencies (blocked components, root causes), the
//! transition log with flap counts, `tracing` events and notifications.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;
use tower_status::check::{CheckResult, Freshness, HealthCheck, HttpCheck, TcpCheck};
use tower_status::notify::{Delivery, Notifier, NotifyFuture};
use tower_status::report::Notification;
use tower_status::{Status, StatusHandle, StatusLayer};

use common::{bounded, fetch, fetch_json, http1_client, loopback, serve_hello, start_axum};

/// Never longer than this for something that should happen.
const DEADLINE: Duration = Duration::from_secs(10);

/// A dependency with a health URL per name: each answers 200, or 503 for
/// its next `n` requests (`-1`: until told otherwise). Every request is
/// logged with when it came and what it got.
#[derive(Clone, Default)]
struct Upstream {
    modes: Arc<Mutex<BTreeMap<String, Arc<AtomicI64>>>>,
    log: Arc<Mutex<Vec<(String, Instant, bool)>>>,
}

impl Upstream {
    async fn start() -> (Self, SocketAddr) {
        let upstream = Upstream::default();
        let app = axum::Router::new()
            .route("/health/{name}", get(answer))
            .with_state(upstream.clone());
        let addr = start_axum(app).await;
        (upstream, addr)
    }

    fn mode(&self, name: &str) -> Arc<AtomicI64> {
        Arc::clone(
            self.modes
                .lock()
                .unwrap()
                .entry(name.to_owned())
                .or_default(),
        )
    }

    /// The next `n` requests of `name` fail (`-1`: all of them).
    fn fail(&self, name: &str, n: i64) {
        self.mode(name).store(n, Ordering::SeqCst);
    }

    /// `name`'s requests since `since`: (passed, failed).
    fn since(&self, name: &str, since: Instant) -> (usize, usize) {
        let log = self.log.lock().unwrap();
        let mine = log.iter().filter(|(n, at, _)| n == name && *at >= since);
        mine.fold((0, 0), |(ok, bad), (_, _, passed)| {
            if *passed {
                (ok + 1, bad)
            } else {
                (ok, bad + 1)
            }
        })
    }

    fn arrivals(&self, name: &str) -> Vec<Instant> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, at, _)| *at)
            .collect()
    }
}

async fn answer(State(up): State<Upstream>, Path(name): Path<String>) -> StatusCode {
    let mode = up.mode(&name);
    let left = mode.load(Ordering::SeqCst);
    let passed = match left {
        0 => true,
        n if n < 0 => false,
        _ => {
            mode.fetch_sub(1, Ordering::SeqCst);
            false
        }
    };
    up.log.lock().unwrap().push((name, Instant::now(), passed));
    if passed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A background HTTP check of `name` on `upstream`.
fn http_check(name: &str, upstream: SocketAddr, every: Duration) -> HealthCheck {
    HealthCheck::new(
        name,
        HttpCheck::new(format!("http://{upstream}/health/{name}")),
    )
    .timeout(Duration::from_millis(500))
    .freshness(Freshness::Background { every })
}

/// The report as a caller with details sees it (the layers here show details to everyone).
async fn report(addr: SocketAddr) -> Value {
    let res = fetch(&http1_client(), addr, http::Method::GET, "/status").await;
    res.json()
}

fn status_of(report: &Value, name: &str) -> String {
    report["components"][name]["status"]
        .as_str()
        .unwrap_or("absent")
        .to_owned()
}

/// Polls the report every 50 ms until `cond` holds on it; returns it.
async fn poll_until(addr: SocketAddr, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let r = report(addr).await;
        if cond(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "never happened: {what}; last report {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn open_layer() -> StatusLayer {
    StatusLayer::new()
        .show_details(tower_status::auth::Visibility::Always)
        .watch_interval(Duration::from_millis(50))
}

#[tokio::test]
async fn fewer_failures_than_the_threshold_never_change_the_status() {
    let (up, upstream) = Upstream::start().await;
    let every = Duration::from_millis(60);
    let layer = open_layer().check(http_check("db", upstream, every).failure_threshold(3));
    let addr = serve_hello(&layer).await;
    poll_until(addr, "db ok", |r| status_of(r, "db") == "ok").await;

    // Two failures in a row, twice: never three.
    for _ in 0..2 {
        let since = Instant::now();
        up.fail("db", 2);
        let deadline = Instant::now() + DEADLINE;
        loop {
            let r = report(addr).await;
            assert_eq!(r["status"], "ok", "below the threshold: {r}");
            assert_eq!(status_of(&r, "db"), "ok", "{r}");
            let (passed, failed) = up.since("db", since);
            if failed == 2 && passed >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the upstream was not probed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let log = fetch_json(&http1_client(), addr, "/status/transitions").await;
    assert_eq!(log["transitions"], serde_json::json!([]), "{log}");
}

#[tokio::test]
async fn a_dependency_that_stays_down_changes_it_after_the_threshold_and_recovery_needs_the_success_threshold(
) {
    let (up, upstream) = Upstream::start().await;
    let every = Duration::from_millis(100);
    let timeout = Duration::from_millis(500);
    let layer = open_layer().check(
        http_check("db", upstream, every)
            .failure_threshold(3)
            .success_threshold(2),
    );
    let addr = serve_hello(&layer).await;
    poll_until(addr, "db ok", |r| status_of(r, "db") == "ok").await;

    let since = Instant::now();
    up.fail("db", -1);
    let r = poll_until(addr, "db down", |r| status_of(r, "db") == "down").await;
    let took = since.elapsed();
    let (_, failed) = up.since("db", since);
    assert!(failed >= 3, "down after {failed} failed runs: {r}");
    // Within threshold x interval plus the timeout (and a busy machine's slack).
    assert!(
        took <= 3 * every + timeout + Duration::from_secs(1),
        "took {took:?}"
    );
    assert_eq!(r["status"], "down");
    let db = &r["components"]["db"];
    assert_eq!(db["last_run"]["status"], "down", "{db}");
    assert!(db["last_run"]["consecutive"].as_u64().unwrap() >= 3, "{db}");
    assert!(db["error"].as_str().unwrap().contains("503"), "{db}");

    let since = Instant::now();
    up.fail("db", 0);
    let r = poll_until(addr, "db ok again", |r| status_of(r, "db") == "ok").await;
    let (passed, _) = up.since("db", since);
    assert!(passed >= 2, "ok again after {passed} passed runs: {r}");
    assert_eq!(r["status"], "ok");

    // ok -> down -> ok, for the component and overall, in the log (the
    // evaluator sees the last change within its interval).
    let deadline = Instant::now() + DEADLINE;
    let log = loop {
        let log = fetch_json(&http1_client(), addr, "/status/transitions").await;
        if log["transitions"].as_array().unwrap().len() >= 4 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let seen: Vec<(Value, Value, Value)> = log["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["component"].clone(), t["from"].clone(), t["to"].clone()))
        .collect();
    let db = || Value::from("db");
    assert_eq!(
        seen,
        [
            (db(), "ok".into(), "down".into()),
            (Value::Null, "ok".into(), "down".into()),
            (db(), "down".into(), "ok".into()),
            (Value::Null, "down".into(), "ok".into()),
        ],
        "{log}"
    );
    let back = &log["transitions"][2];
    assert!(
        back["previous_lasted_ms"].as_u64().unwrap() >= 100,
        "{back}"
    );
    assert_eq!(log["flaps_last_hour"]["db"], 2, "{log}");
}

#[tokio::test]
async fn max_time_in_error_holds_the_failure_back_that_long() {
    let (up, upstream) = Upstream::start().await;
    let hold = Duration::from_millis(600);
    let layer = open_layer()
        .check(http_check("db", upstream, Duration::from_millis(50)).max_time_in_error(hold));
    let addr = serve_hello(&layer).await;
    poll_until(addr, "db ok", |r| status_of(r, "db") == "ok").await;
    let since = Instant::now();
    up.fail("db", -1);
    poll_until(addr, "db down", |r| status_of(r, "db") == "down").await;
    // Measured from the first failed run, which came after `since`.
    assert!(since.elapsed() >= hold, "down after {:?}", since.elapsed());
}

#[tokio::test]
async fn jitter_keeps_two_layers_runs_apart() {
    let (up, upstream) = Upstream::start().await;
    let every = Duration::from_millis(100);
    let layer = |name: &str| {
        open_layer()
            .check(
                http_check(name, upstream, every)
                    .jitter(Duration::from_millis(100))
                    .initial_delay(Duration::from_millis(10)),
            )
            .build()
    };
    // Built at the same moment: without jitter they would probe in lockstep.
    let (a, b) = (layer("a"), layer("b"));
    let deadline = Instant::now() + DEADLINE;
    while up.arrivals("a").len() < 12 || up.arrivals("b").len() < 12 {
        assert!(Instant::now() < deadline, "the checks did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (ra, rb) = (up.arrivals("a"), up.arrivals("b"));
    // Each run comes 100-200 ms after the one before: the intervals vary.
    let gaps: Vec<Duration> = ra.windows(2).map(|w| w[1] - w[0]).collect();
    let (min, max) = (gaps.iter().min().unwrap(), gaps.iter().max().unwrap());
    assert!(*min >= every - Duration::from_millis(5), "{gaps:?}");
    assert!(
        *max - *min >= Duration::from_millis(20),
        "no jitter: {gaps:?}"
    );
    // Most of a's runs are not within 3 ms of one of b's.
    let close = ra
        .iter()
        .filter(|t| {
            rb.iter().any(|u| {
                let (a, b) = (**t, *u);
                a.max(b).duration_since(a.min(b)) < Duration::from_millis(3)
            })
        })
        .count();
    assert!(
        close * 2 < ra.len(),
        "{close} of {} runs in lockstep",
        ra.len()
    );
    drop((a, b));
}

#[tokio::test]
async fn a_check_slower_than_its_interval_is_reported_and_never_overlaps() {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let runs = Arc::new(AtomicUsize::new(0));
    let (r, m, n) = (running.clone(), most.clone(), runs.clone());
    let layer = open_layer().check(
        HealthCheck::new("slow", move || {
            let (r, m, n) = (r.clone(), m.clone(), n.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(120)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                n.fetch_add(1, Ordering::SeqCst);
                true
            }
        })
        .freshness(Freshness::Background {
            every: Duration::from_millis(30),
        }),
    );
    let addr = serve_hello(&layer).await;
    let r = poll_until(addr, "overran", |r| {
        r["components"]["slow"]["last_run"]["overran_interval"] == true
    })
    .await;
    assert_eq!(status_of(&r, "slow"), "ok");
    let deadline = Instant::now() + DEADLINE;
    while runs.load(Ordering::SeqCst) < 4 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "two runs at once");
}

/// Notifications kept in memory, as a notifier sees them.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<Notification>>>);

impl Notifier for Kept {
    fn notify<'a>(&'a self, n: &'a Notification) -> NotifyFuture<'a> {
        self.0.lock().unwrap().push(n.clone());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn search_is_blocked_by_db_and_the_root_cause_is_named_once() {
    let (up, upstream) = Upstream::start().await;
    let (db_listener, db_addr) = loopback().await;
    let every = Duration::from_millis(50);
    let kept = Kept::default();
    let status = open_layer()
        .check(
            HealthCheck::new("db", TcpCheck::new(db_addr.to_string()))
                .freshness(Freshness::Background { every }),
        )
        .check(http_check("search", upstream, every).depends_on(["db"]))
        .check(http_check("cache", upstream, every).critical(false))
        .notify(Delivery::to("kept", kept.clone()))
        .build();
    let addr = start_axum(
        axum::Router::new()
            .route("/", get(|| async { "hello" }))
            .layer(status.clone()),
    )
    .await;
    poll_until(addr, "all ok", |r| {
        r["status"] == "ok" && status_of(r, "search") == "ok"
    })
    .await;

    // The database goes away, and search with it.
    drop(db_listener);
    up.fail("search", -1);
    let r = poll_until(addr, "both down", |r| {
        status_of(r, "db") == "down" && status_of(r, "search") == "down"
    })
    .await;
    assert_eq!(
        r["components"]["search"]["blocked_by"],
        serde_json::json!(["db"]),
        "{r}"
    );
    assert!(r["components"]["db"].get("blocked_by").is_none(), "{r}");
    assert_eq!(r["root_causes"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["root_causes"][0]["component"], "db", "{r}");
    // The component alone says so too.
    let one = fetch(&http1_client(), addr, http::Method::GET, "/status/search").await;
    assert_eq!(
        one.json()["blocked_by"],
        serde_json::json!(["db"]),
        "{one:?}"
    );

    // Every notification names root causes once; the change that took the
    // service down names only db, however many components followed it.
    let deadline = Instant::now() + DEADLINE;
    let down = loop {
        let found = kept
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|n| n.status == Status::Down)
            .cloned();
        if let Some(n) = found {
            break n;
        }
        assert!(Instant::now() < deadline, "no notification");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let causes: Vec<&str> = down
        .root_causes
        .iter()
        .map(|c| c.component.as_str())
        .collect();
    assert_eq!(causes, ["db"], "{down:?}");
    for n in kept.0.lock().unwrap().iter() {
        let named: Vec<_> = n.root_causes.iter().map(|c| &c.component).collect();
        let mut unique = named.clone();
        unique.dedup();
        assert_eq!(named, unique);
        assert!(
            !named.iter().any(|c| *c == "search"),
            "search is blocked, not a cause: {n:?}"
        );
    }
    // search's transition in the log says it was blocked.
    let deadline = Instant::now() + DEADLINE;
    let search = loop {
        let found = status
            .transitions()
            .transitions
            .into_iter()
            .find(|t| t.component.as_deref() == Some("search") && t.to == Status::Down);
        match found {
            Some(t) => break t,
            None => assert!(Instant::now() < deadline, "search's transition not logged"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(search.blocked_by, ["db"]);
}

#[tokio::test]
async fn the_log_keeps_the_latest_and_counts_flaps() {
    let status = open_layer()
        .check(HealthCheck::pushed("queue").critical(false))
        .transition_log_capacity(4)
        .build();
    let flip = |ok: bool| {
        if ok {
            CheckResult::ok()
        } else {
            CheckResult::down("broker unreachable")
        }
    };
    status.set_component("queue", flip(true));
    // Seen ok by the evaluator (it observes before it publishes).
    let first = bounded("first", status.subscribe().changed())
        .await
        .unwrap();
    assert_eq!(first.status, Status::Ok);
    let settled = |status: &StatusHandle, n: usize| {
        status.transitions().flaps_last_hour.get("queue").copied() == Some(n as u64)
    };
    for i in 1..=5 {
        status.set_component("queue", flip(i % 2 == 0));
        let deadline = Instant::now() + DEADLINE;
        while !settled(&status, i) {
            assert!(
                Instant::now() < deadline,
                "flap {i} not seen: {:?}",
                status.transitions()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let log = status.transitions();
    assert_eq!(log.capacity, 4);
    assert_eq!(log.transitions.len(), 4);
    // 5 component and 5 overall transitions (ok <-> degraded), 6 pushed out.
    assert_eq!(log.evicted, 6, "{log:?}");
    let last = log.transitions.last().unwrap();
    assert_eq!((last.from, last.to), (Some(Status::Ok), Status::Degraded));
    let queue_down = log
        .transitions
        .iter()
        .find(|t| t.component.as_deref() == Some("queue") && t.to == Status::Down)
        .unwrap();
    assert_eq!(queue_down.error.as_deref(), Some("broker unreachable"));
    assert!(queue_down.previous_lasted_ms.is_some());
}

#[tokio::test]
async fn the_watch_carries_the_transitions() {
    let status = open_layer().check(HealthCheck::pushed("db")).build();
    status.set_component("db", CheckResult::ok());
    let mut watch = status.subscribe();
    let first = bounded("first", watch.changed()).await.unwrap();
    assert_eq!(first.status, Status::Ok);
    status.set_component("db", CheckResult::down("refused"));
    let change = bounded("down", watch.changed()).await.unwrap();
    assert_eq!(change.status, Status::Down);
    let names: Vec<_> = change
        .transitions
        .iter()
        .map(|t| (t.component.clone(), t.from, t.to))
        .collect();
    assert_eq!(
        names,
        [
            (Some("db".to_owned()), Some(Status::Ok), Status::Down),
            (None, Some(Status::Ok), Status::Down)
        ]
    );
}

/// Events written by the `tracing` subscriber installed for a test.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logged {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn transitions_and_slow_checks_are_tracing_events() {
    let logged = Logged::default();
    let writer = logged.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    // The test's runtime is current-thread: every task runs under it.
    let _guard = tracing::subscriber::set_default(subscriber);

    let status = open_layer()
        .check(HealthCheck::pushed("db"))
        .check(
            HealthCheck::new("slow", || async {
                tokio::time::sleep(Duration::from_millis(70)).await;
                true
            })
            .timeout(Duration::from_millis(100)),
        )
        .build();
    status.set_component("db", CheckResult::ok());
    let _ = status.report().await;
    status.set_component("db", CheckResult::down("refused"));
    let saw = |level: &str, text: &str| {
        logged
            .lines()
            .iter()
            .any(|l| l.contains(level) && l.contains(text))
    };
    let deadline = Instant::now() + DEADLINE;
    while !(saw("WARN", "to=\"down\"") || saw("WARN", "to=down")) {
        assert!(Instant::now() < deadline, "{:?}", logged.lines());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    status.set_component("db", CheckResult::ok());
    while !(saw("INFO", "to=\"ok\"") || saw("INFO", "to=ok")) {
        assert!(Instant::now() < deadline, "{:?}", logged.lines());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        saw("WARN", "more than half of its timeout"),
        "{:?}",
        logged.lines()
    );
}

#[test]
#[should_panic(
    expected = "`search` depends on `dbx`, which is not a registered check or pushed component"
)]
fn an_unknown_dependency_is_refused_at_build() {
    let _ = StatusLayer::new()
        .check(HealthCheck::new("search", || async { true }).depends_on(["dbx"]))
        .build();
}

#[test]
#[should_panic(expected = "a cycle: a -> b -> a")]
fn a_dependency_cycle_is_refused_at_build() {
    let _ = StatusLayer::new()
        .check(HealthCheck::new("a", || async { true }).depends_on(["b"]))
        .check(HealthCheck::new("b", || async { true }).depends_on(["a"]))
        .build();
}

#[test]
#[should_panic(expected = "HealthCheck::failure_threshold for check `db` must be at least 1")]
fn a_zero_threshold_is_refused() {
    let _ = HealthCheck::new("db", || async { true }).failure_threshold(0);
}

#[tokio::test]
async fn a_service_that_starts_with_a_dependency_down_announces_none_to_down() {
    let status = open_layer()
        .check(
            HealthCheck::new("db", || async { CheckResult::down("refused") })
                .freshness(Freshness::Background {
                    every: Duration::from_millis(50),
                })
                // The evaluator looks before the first run: no result yet.
                .initial_delay(Duration::from_millis(150)),
        )
        .build();
    let deadline = Instant::now() + DEADLINE;
    let overall = loop {
        let found = status
            .transitions()
            .transitions
            .into_iter()
            .find(|t| t.component.is_none());
        match found {
            Some(t) => break t,
            None => assert!(Instant::now() < deadline, "no overall transition"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (overall.from, overall.to),
        (None, Status::Down),
        "{overall:?}"
    );
    assert_eq!(overall.previous_lasted_ms, None);
}
