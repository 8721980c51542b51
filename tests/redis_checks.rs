//! `RedisCheck` against real redis-servers started here (a password each,
//! no persistence, ports outside the ephemeral range): a primary, a replica
//! that loses its primary and gets it back, a killed and restarted server
//! seen through a real `StatusLayer` over HTTP, a frozen one (SIGSTOP).
//! No password ever shows in a result, a report, a `Debug` or a log line.
//!
//! Every wait is bounded.

mod common;
#[path = "support/logs.rs"]
mod logs;
#[path = "support/ports.rs"]
mod ports;
#[path = "support/process.rs"]
mod process;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use common::{component, serve_hello, status_until};
use logs::Logged;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis_server::{secret, RedisServer};
use serde_json::Value;
use tower_status::check::{Check, CheckResult, Freshness, HealthCheck, RedisCheck};
use tower_status::{Status, StatusLayer};

/// The checks' own timeout.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Slack on top of a bound, for a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(750);
/// Bound of the waits for a replica's sync and for reconnections.
const SETTLE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------ captured logs

/// The log of the whole binary.
fn logged() -> &'static Logged {
    Logged::global()
}

/// Fails when `password` is in any of `texts` or in the log.
fn assert_no_secret(password: &str, texts: &[&str]) {
    for text in texts {
        assert!(!text.contains(password), "the password shows in: {text}");
    }
    let log = logged().text();
    assert!(
        !log.contains(password),
        "the password shows in the log:\n{log}"
    );
}

/// Everything a result shows, as text.
fn shown(result: &CheckResult) -> String {
    format!(
        "{result:?} {}",
        serde_json::to_string(&result.details).unwrap()
    )
}

// ------------------------------------------------------------ helpers

async fn connect(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .expect("the server's URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connecting to the server")
}

/// Runs `check` until `done` holds for its result (at most `within`);
/// returns that result.
async fn until(
    check: &RedisCheck,
    what: &str,
    within: Duration,
    done: impl Fn(&CheckResult) -> bool,
) -> CheckResult {
    let deadline = Instant::now() + within;
    loop {
        let result = check.check().await;
        if done(&result) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "not {what} within {within:?}; last result: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is(status: Status) -> impl Fn(&CheckResult) -> bool {
    move |r| r.status == status
}

fn details(result: &CheckResult) -> &Value {
    result.details.as_ref().expect("details")
}

async fn config_set(conn: &mut MultiplexedConnection, key: &str, value: &str) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(key)
        .arg(value)
        .query_async::<()>(conn)
        .await
        .unwrap_or_else(|e| panic!("CONFIG SET {key} {value}: {e}"));
}

// ------------------------------------------------------------ a primary

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_reports_latency_version_role_and_memory() {
    logged();
    let pw = secret();
    let server = RedisServer::start("primary", &pw, &[]);
    let mut conn = connect(&server).await;

    let check = RedisCheck::new(conn.clone()).with_target(&server.url());
    let ok = check.check().await;
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert_eq!(ok.observed_unit.as_deref(), Some("ms"));
    let rtt = ok.observed_value.as_ref().and_then(Value::as_f64).unwrap();
    assert!(
        (0.0..TIMEOUT.as_secs_f64() * 1000.0).contains(&rtt),
        "{ok:?}"
    );
    let d = details(&ok);
    assert_eq!(
        d["redis_version"],
        redis_server::binary_version().as_str(),
        "{d}"
    );
    assert_eq!(d["redis_mode"], "standalone", "{d}");
    assert_eq!(d["role"], "master", "{d}");
    assert!(d["connected_clients"].as_u64().unwrap() >= 1, "{d}");
    assert!(d["used_memory"].as_u64().unwrap() > 0, "{d}");
    assert_eq!(d["maxmemory"], 0, "{d}");
    assert!(d.get("used_memory_share").is_none(), "{d}");
    assert_eq!(d["connected_replicas"], 0, "{d}");
    assert_eq!(
        d["target"],
        format!("redis://***@127.0.0.1:{}/", server.port()),
        "{d}"
    );

    // maxmemory far below the used memory: above any share.
    config_set(&mut conn, "maxmemory", "1").await;
    let full = RedisCheck::new(conn.clone())
        .with_target(&server.url())
        .degraded_above_memory_share(0.5)
        .check()
        .await;
    assert_eq!(full.status, Status::Degraded, "{full:?}");
    let error = full.error.clone().unwrap();
    assert!(error.contains("above the threshold of 50.0 %"), "{error}");
    assert!(details(&full)["used_memory_share"].as_f64().unwrap() > 1.0);
    // And far above it.
    config_set(&mut conn, "maxmemory", "4gb").await;
    let roomy = RedisCheck::new(conn.clone())
        .degraded_above_memory_share(0.5)
        .check()
        .await;
    assert_eq!(roomy.status, Status::Ok, "{roomy:?}");
    let share = details(&roomy)["used_memory_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 0.5, "{roomy:?}");
    assert_eq!(details(&roomy)["maxmemory"], 4u64 << 30);

    // The check's own connection, from the URL.
    let own = RedisCheck::from_url(&server.url()).unwrap();
    let own_ok = own.check().await;
    assert_eq!(own_ok.status, Status::Ok, "{own_ok:?}");
    assert_eq!(details(&own_ok)["target"], details(&ok)["target"]);

    // A wrong password: down, and neither password shows.
    let wrong = RedisCheck::from_url(&format!("redis://:x{pw}x@127.0.0.1:{}/", server.port()))
        .unwrap()
        .timeout(TIMEOUT);
    let denied = wrong.check().await;
    assert_eq!(denied.status, Status::Down, "{denied:?}");
    let error = denied.error.clone().unwrap();
    assert!(
        error.contains("WRONGPASS") || error.contains("uthentication"),
        "{error}"
    );

    let texts = [
        shown(&ok),
        shown(&full),
        shown(&own_ok),
        shown(&denied),
        format!("{check:?} {own:?} {wrong:?}"),
    ];
    assert_no_secret(&pw, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

// ------------------------------------------------------------ a replica

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_degrades_while_its_primary_is_gone() {
    logged();
    let pw = secret();
    let mut primary = RedisServer::start("primary", &pw, &[]);
    let port = primary.port().to_string();
    let replica = RedisServer::start(
        "replica",
        &pw,
        &["--replicaof", "127.0.0.1", &port, "--masterauth", &pw],
    );
    let check = RedisCheck::new(connect(&replica).await).timeout(TIMEOUT);

    let ok = until(&check, "ok once its link is up", SETTLE, is(Status::Ok)).await;
    let d = details(&ok);
    assert_eq!(d["role"], "replica", "{d}");
    assert_eq!(d["master"], format!("127.0.0.1:{port}"), "{d}");
    assert_eq!(d["master_link_status"], "up", "{d}");
    assert!(
        d["master_last_io_seconds_ago"].as_u64().unwrap() <= 5,
        "{d}"
    );

    primary.kill();
    let lost = until(&check, "degraded", SETTLE, is(Status::Degraded)).await;
    let error = lost.error.clone().unwrap();
    assert!(
        error.starts_with(&format!("replica lost its primary 127.0.0.1:{port} for ")),
        "{error}"
    );
    assert!(error.ends_with(" s"), "{error}");
    assert_eq!(details(&lost)["master_link_status"], "down");

    primary.restart();
    let back = until(&check, "ok again", SETTLE, is(Status::Ok)).await;
    assert_eq!(details(&back)["master_link_status"], "up");

    assert_no_secret(
        &pw,
        &[&shown(&ok), &shown(&lost), &shown(&back), &replica.log()],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serving_no_stale_data_answers_masterdown() {
    logged();
    let pw = secret();
    // A primary that never comes: a port nothing listens on.
    let nowhere = ports::port_outside_ephemeral_range().to_string();
    let replica = RedisServer::start(
        "stale-replica",
        &pw,
        &[
            "--replicaof",
            "127.0.0.1",
            &nowhere,
            "--masterauth",
            &pw,
            "--replica-serve-stale-data",
            "no",
        ],
    );
    let check = RedisCheck::from_url(&replica.url()).unwrap();
    let result = check.check().await;
    assert_eq!(result.status, Status::Degraded, "{result:?}");
    let error = result.error.clone().unwrap();
    assert!(error.contains("MASTERDOWN"), "{error}");
    assert!(
        error.contains(&format!(
            "replica has not reached its primary 127.0.0.1:{nowhere} yet"
        )),
        "{error}"
    );
    assert_eq!(details(&result)["role"], "replica");
    assert_no_secret(&pw, &[&shown(&result)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_loading_its_dataset_is_degraded_until_loaded() {
    logged();
    let pw = secret();
    // Hidden settings of redis' own tests: 100 ms per key loaded, and
    // clients answered (LOADING) between keys.
    let mut server = RedisServer::start(
        "loading",
        &pw,
        &[
            "--key-load-delay",
            "100000",
            "--loading-process-events-interval-bytes",
            "1024",
        ],
    );
    let mut conn = connect(&server).await;
    for i in 0..30 {
        // Random hex: the dump stays larger than the events interval.
        let value: String = (0..256)
            .map(|_| format!("{:016x}", fastrand::u64(..)))
            .collect();
        redis::cmd("SET")
            .arg(format!("key-{i}"))
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .expect("SET");
    }
    redis::cmd("SAVE")
        .query_async::<()>(&mut conn)
        .await
        .expect("SAVE");
    server.kill();
    // Answers (LOADING) as soon as the load starts; it takes about 3 s.
    server.restart();

    let check = RedisCheck::from_url(&server.url())
        .unwrap()
        .timeout(TIMEOUT);
    let loading = check.check().await;
    assert_eq!(loading.status, Status::Degraded, "{loading:?}");
    let error = loading.error.clone().unwrap();
    assert!(error.contains("(LOADING)"), "{error}");
    assert_eq!(details(&loading)["loading"], true, "{loading:?}");

    let loaded = until(&check, "ok once loaded", SETTLE, is(Status::Ok)).await;
    assert!(details(&loaded).get("loading").is_none(), "{loaded:?}");
    assert_no_secret(&pw, &[&shown(&loading), &shown(&loaded)]);
}

// ------------------------------------------------------------ through a layer

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_primary_is_down_then_ok_again_through_the_layer() {
    logged();
    let pw = secret();
    let mut server = RedisServer::start("layer", &pw, &[]);
    let every = Duration::from_millis(300);
    let layer = StatusLayer::new()
        .check(
            HealthCheck::new(
                "redis-layer",
                RedisCheck::from_url(&server.url())
                    .unwrap()
                    .timeout(TIMEOUT),
            )
            .component_type("datastore")
            .timeout(TIMEOUT * 2)
            .freshness(Freshness::Background { every }),
        )
        // Transitions are logged by the evaluator, at this pace.
        .watch_interval(Duration::from_millis(50));
    let addr = serve_hello(&layer).await;
    let mut seen = Vec::new();
    let (report, _) = status_until(addr, "redis-layer", "ok", SETTLE).await;
    let cache = component(&report, "redis-layer");
    assert_eq!(cache["observed_unit"], "ms", "{cache}");
    assert_eq!(cache["details"]["role"], "master", "{cache}");
    seen.push(report.to_string());

    let bound = TIMEOUT + every + MARGIN;
    server.kill();
    let (report, took) = status_until(addr, "redis-layer", "down", bound).await;
    let error = component(&report, "redis-layer")["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains(&format!("redis://***@127.0.0.1:{}/", server.port())),
        "{error}"
    );
    eprintln!("down {took:?} after the kill: {error}");
    seen.push(report.to_string());
    // The transition is logged (so the log is really captured).
    let logged_down = |log: &str| {
        log.lines()
            .any(|l| l.contains("redis-layer") && l.contains("down") && l.contains("WARN"))
    };
    let deadline = Instant::now() + common::STEP;
    while !logged_down(&logged().text()) {
        assert!(
            Instant::now() < deadline,
            "no transition logged:\n{}",
            logged().text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    server.restart();
    let (report, took) = status_until(addr, "redis-layer", "ok", bound).await;
    eprintln!("ok {took:?} after the restart");
    seen.push(report.to_string());

    seen.push(format!("{layer:?}"));
    assert_no_secret(&pw, &seen.iter().map(String::as_str).collect::<Vec<_>>());
}

// ------------------------------------------------------------ a frozen server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_is_down_within_the_timeout_then_recovers() {
    logged();
    let pw = secret();
    let server = RedisServer::start("frozen", &pw, &[]);
    let given = RedisCheck::new(connect(&server).await).timeout(TIMEOUT);
    let own = RedisCheck::from_url(&server.url())
        .unwrap()
        .timeout(TIMEOUT);
    for check in [&given, &own] {
        let ok = check.check().await;
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
    }

    server.freeze();
    let mut texts = Vec::new();
    for check in [&given, &own] {
        let started = Instant::now();
        let result = check.check().await;
        let took = started.elapsed();
        assert_eq!(result.status, Status::Down, "{result:?}");
        assert!(took < TIMEOUT + MARGIN, "took {took:?}: {result:?}");
        texts.push(shown(&result));
    }
    // A run of the check's own connection says what it waited for.
    let waited = format!(
        "no answer from redis://***@127.0.0.1:{}/ to PING within 1000 ms",
        server.port()
    );
    assert!(texts[1].contains(&waited), "{}", texts[1]);

    server.thaw();
    for check in [&given, &own] {
        let back = until(check, "ok after SIGCONT", SETTLE, is(Status::Ok)).await;
        texts.push(shown(&back));
    }
    assert_no_secret(&pw, &texts.iter().map(String::as_str).collect::<Vec<_>>());
}

// ------------------------------------------------------------ the app's ConnectionManager

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_connection_manager_goes_down_and_comes_back() {
    logged();
    let pw = secret();
    let mut server = RedisServer::start("manager", &pw, &[]);
    let client = redis::Client::open(server.url()).unwrap();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(200));
    let manager = ConnectionManager::new_with_config(client, config)
        .await
        .expect("the app's ConnectionManager");
    let check = RedisCheck::new(manager).timeout(TIMEOUT);
    let ok = check.check().await;
    assert_eq!(ok.status, Status::Ok, "{ok:?}");

    server.kill();
    let down = until(&check, "down", SETTLE, is(Status::Down)).await;
    server.restart();
    let back = until(&check, "ok again", SETTLE, is(Status::Ok)).await;
    assert_no_secret(
        &pw,
        &[
            &shown(&ok),
            &shown(&down),
            &shown(&back),
            &format!("{check:?}"),
        ],
    );
}
