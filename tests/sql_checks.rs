//! `PostgresCheck` and `MySqlCheck` against real servers: a throwaway
//! PostgreSQL cluster and MariaDB data dir per test (tests/support/
//! databases.rs), reached through sqlx pools with a real password, which
//! must appear in no answer, error, `Debug` or log line.
//!
//! Each scenario is written once, generic over the database, and run for
//! both. Every wait is bounded.

mod common;
#[path = "support/databases.rs"]
mod databases;
#[path = "support/logs.rs"]
mod logs;
#[path = "support/ports.rs"]
mod ports;
#[path = "support/process.rs"]
mod process;

use std::time::{Duration, Instant};

use common::{component, serve_hello, status_until};
use databases::Server;
use serde_json::Value;
use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, Database, MySql, Pool, Postgres};
use tower_status::check::{Check, CheckResult, Freshness, HealthCheck, SqlCheck};
use tower_status::{Status, StatusLayer};

/// What differs between the two servers in these tests.
trait Db: Database
where
    SqlCheck<Self>: Check,
{
    fn start() -> Server;
    /// Options for user `app` with `password`.
    fn options(server: &Server, password: &str) -> <Self::Connection as Connection>::Options;
    /// `scheme://127.0.0.1:PORT/DATABASE`.
    fn target(server: &Server) -> String;
    /// What the version must contain.
    const VERSION: &'static str;
    /// The detail saying whether the server only reads.
    const FLAG: &'static str;
    /// A query that takes 5 s.
    const SLOW: &'static str;
}

impl Db for Postgres {
    fn start() -> Server {
        Server::postgres()
    }
    fn options(server: &Server, password: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(server.port())
            .username("app")
            .password(password)
            .database("postgres")
            .ssl_mode(PgSslMode::Disable)
    }
    fn target(server: &Server) -> String {
        format!("postgres://127.0.0.1:{}/postgres", server.port())
    }
    const VERSION: &'static str = "15";
    const FLAG: &'static str = "in_recovery";
    const SLOW: &'static str = "SELECT pg_sleep(5)";
}

impl Db for MySql {
    fn start() -> Server {
        Server::mariadb()
    }
    fn options(server: &Server, password: &str) -> MySqlConnectOptions {
        MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(server.port())
            .username("app")
            .password(password)
            .database("app")
            .ssl_mode(MySqlSslMode::Disabled)
    }
    fn target(server: &Server) -> String {
        format!("mysql://127.0.0.1:{}/app", server.port())
    }
    const VERSION: &'static str = "MariaDB";
    const FLAG: &'static str = "read_only";
    const SLOW: &'static str = "SELECT SLEEP(5)";
}

/// A lazy pool of at most `max` connections to `server`.
fn pool<DB: Db>(server: &Server, max: u32) -> Pool<DB>
where
    SqlCheck<DB>: Check,
{
    PoolOptions::<DB>::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(DB::options(server, server.password()))
}

/// Starts a server, off the runtime's threads.
async fn start<DB: Db>() -> Server
where
    SqlCheck<DB>: Check,
{
    tokio::task::spawn_blocking(DB::start)
        .await
        .expect("starting the server")
}

// ---------------------------------------------------------------- secrets

/// Everything logged through `tracing` by this test binary.
fn logged() -> String {
    logs::Logged::global().text()
}

/// Fails when `text` (shown as `what`) holds `secret`.
fn assert_no_secret(what: &str, text: &str, secret: &str) {
    assert!(!text.contains(secret), "{what} shows the password: {text}");
}

fn assert_clean(result: &CheckResult, secret: &str) {
    assert_no_secret("a result", &format!("{result:?}"), secret);
    if let Some(details) = &result.details {
        assert_no_secret("the details", &details.to_string(), secret);
    }
}

fn details(result: &CheckResult) -> &Value {
    result.details.as_ref().expect("details")
}

fn error(result: &CheckResult) -> &str {
    result.error.as_deref().unwrap_or_default()
}

/// Runs `check` once, timed.
async fn timed<C: Check>(check: &C) -> (CheckResult, Duration) {
    let started = Instant::now();
    let result = common::bounded("a check run", check.check()).await;
    (result, started.elapsed())
}

/// Polls `cond` on the pool (the return of a connection is a spawned task).
async fn pool_settles<DB: Database>(pool: &Pool<DB>, what: &str, cond: impl Fn(&Pool<DB>) -> bool) {
    common::wait_until(what, || {
        let ok = cond(pool);
        async move { ok }
    })
    .await;
}

// ---------------------------------------------------------------- scenarios

/// Ok with latency, version and pool figures; a saturated pool is
/// degraded at once and taken nothing from; bad settings and a wrong
/// password are down with a clear message.
async fn ok_saturated_and_misconfigured<DB: Db>()
where
    SqlCheck<DB>: Check,
{
    let _ = logs::Logged::global();
    let server = start::<DB>().await;
    let secret = server.password().to_owned();
    let pool = pool::<DB>(&server, 2);
    let check = SqlCheck::new(pool.clone()).timeout(Duration::from_secs(2));
    assert_eq!(check.target(), DB::target(&server));
    assert_no_secret("Debug", &format!("{check:?}"), &secret);

    let (first, took) = timed(&check).await;
    assert_eq!(first.status, Status::Ok, "{first:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(first.observed_unit.as_deref(), Some("ms"));
    let ms = first
        .observed_value
        .as_ref()
        .and_then(Value::as_f64)
        .unwrap();
    assert!(ms > 0.0 && ms < 2000.0, "{first:?}");
    let d = details(&first);
    assert!(d["version"].as_str().unwrap().contains(DB::VERSION), "{d}");
    assert_eq!(d[DB::FLAG], false, "{d}");
    assert_eq!(d["target"], DB::target(&server), "{d}");
    assert!(d["acquire_ms"].as_f64().unwrap() >= 0.0, "{d}");
    // The pool as the check found it: lazy, nothing open yet.
    assert_eq!(
        d["pool"],
        serde_json::json!({"size": 0, "idle": 0, "in_use": 0, "max": 2})
    );
    assert_clean(&first, &secret);
    // The connection went back to the pool.
    pool_settles(&pool, "the connection back in the pool", |p| {
        p.size() == 1 && p.num_idle() == 1
    })
    .await;
    let again = check.check().await;
    assert_eq!(again.status, Status::Ok, "{again:?}");
    assert_eq!(
        details(&again)["pool"],
        serde_json::json!({"size": 1, "idle": 1, "in_use": 0, "max": 2})
    );

    // The application holds every connection.
    let held = (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
    let (saturated, took) = timed(&check).await;
    assert_eq!(saturated.status, Status::Degraded, "{saturated:?}");
    assert!(took < Duration::from_millis(500), "took {took:?}");
    assert!(error(&saturated).contains("saturated"), "{saturated:?}");
    assert_eq!(
        details(&saturated)["pool"],
        serde_json::json!({"size": 2, "idle": 0, "in_use": 2, "max": 2})
    );
    assert!(saturated.observed_value.is_none());
    assert_eq!((pool.size(), pool.num_idle()), (2, 0));
    // One given back: the check takes it, and gives it back.
    drop(held.0);
    pool_settles(&pool, "one connection idle", |p| p.num_idle() == 1).await;
    let freed = check.check().await;
    assert_eq!(freed.status, Status::Ok, "{freed:?}");
    drop(held.1);
    pool_settles(&pool, "both connections idle", |p| p.num_idle() == 2).await;

    // A query of the caller's, and one the server refuses: the connection
    // survives a server's error.
    let custom = check.clone().query("SELECT 2").check().await;
    assert_eq!(custom.status, Status::Ok, "{custom:?}");
    let refused = check.clone().query("SELECT no_such_column").check().await;
    assert_eq!(refused.status, Status::Down, "{refused:?}");
    assert!(error(&refused).contains("no_such_column"), "{refused:?}");
    pool_settles(&pool, "the connection back after an error", |p| {
        p.num_idle() == 2
    })
    .await;

    // Settings no run can work with.
    let zero = check.clone().timeout(Duration::ZERO).check().await;
    assert_eq!(zero.status, Status::Down);
    assert!(error(&zero).contains("the timeout is zero"), "{zero:?}");
    let unbounded = check.clone().timeout(Duration::MAX).check().await;
    assert_eq!(unbounded.status, Status::Ok, "{unbounded:?}");
    let empty = check.clone().query("  ").check().await;
    assert_eq!(empty.status, Status::Down);
    assert!(
        error(&empty).contains("the query to run is empty"),
        "{empty:?}"
    );

    // A wrong password: down with the server's word, neither password shown.
    let wrong = format!("Wq{}", fastrand::u64(..));
    let bad_pool = PoolOptions::<DB>::new()
        .max_connections(1)
        .connect_lazy_with(DB::options(&server, &wrong));
    let bad = SqlCheck::new(bad_pool).timeout(Duration::from_secs(2));
    let (denied, took) = timed(&bad).await;
    assert_eq!(denied.status, Status::Down, "{denied:?}");
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(
        error(&denied).contains("password") || error(&denied).contains("denied"),
        "{denied:?}"
    );
    assert_no_secret("Debug", &format!("{bad:?}"), &wrong);
    assert_clean(&denied, &wrong);
    assert_clean(&denied, &secret);
    assert_no_secret("the logs", &logged(), &wrong);

    // A closed pool.
    pool.close().await;
    let closed = check.check().await;
    assert_eq!(closed.status, Status::Down);
    assert!(error(&closed).contains("closed"), "{closed:?}");
    // The capture works: sqlx logs every statement.
    let logs = logged();
    assert!(
        logs.contains("sqlx::query") && logs.contains("SELECT 1"),
        "{logs}"
    );
    assert_no_secret("the logs", &logs, &secret);
}

/// Through a layer served over HTTP, checked in the background: ok, down
/// once the server is gone, ok once it is back, each within the check's
/// timeout plus one interval.
async fn ok_down_ok_through_a_layer<DB: Db>()
where
    SqlCheck<DB>: Check,
{
    let _ = logs::Logged::global();
    let mut server = start::<DB>().await;
    let secret = server.password().to_owned();
    let timeout = Duration::from_secs(1);
    let every = Duration::from_millis(300);
    // Scheduling on a busy 2-core machine, and the polling.
    let slack = Duration::from_millis(700);
    let pool = pool::<DB>(&server, 4);
    let layer = StatusLayer::new().check(
        HealthCheck::new("db", SqlCheck::new(pool.clone()).timeout(timeout))
            .component_type("datastore")
            .timeout(Duration::from_secs(3))
            .freshness(Freshness::Background { every }),
    );
    let addr = serve_hello(&layer).await;
    let (up, _) = status_until(addr, "db", "ok", Duration::from_secs(10)).await;
    let db = component(&up, "db");
    assert_eq!(db["observed_unit"], "ms", "{db}");
    assert!(
        db["details"]["version"]
            .as_str()
            .unwrap()
            .contains(DB::VERSION),
        "{db}"
    );
    assert_no_secret("the report", &up.to_string(), &secret);

    tokio::task::block_in_place(|| server.stop());
    let (gone, _) = status_until(addr, "db", "down", timeout + every + slack).await;
    let error = component(&gone, "db")["error"].as_str().unwrap().to_owned();
    assert!(error.contains("refused"), "{gone}");
    assert!(error.contains(&DB::target(&server)), "{gone}");
    assert_no_secret("the report", &gone.to_string(), &secret);

    tokio::task::block_in_place(|| server.restart());
    let (back, _) = status_until(addr, "db", "ok", timeout + every + slack).await;
    assert_no_secret("the report", &back.to_string(), &secret);
    let logs = logged();
    assert!(logs.contains("sqlx::query"), "{logs}");
    assert_no_secret("the logs", &logs, &secret);
}

/// A frozen server is down within the check's timeout; a run dropped
/// mid-query (as the runner's timeout drops it) closes its connection; the
/// check is ok again once the server is thawed.
async fn hung_server_and_dropped_run<DB: Db>()
where
    SqlCheck<DB>: Check,
{
    let _ = logs::Logged::global();
    let server = start::<DB>().await;
    let secret = server.password().to_owned();
    let timeout = Duration::from_secs(1);
    let pool = pool::<DB>(&server, 3);
    let check = SqlCheck::new(pool.clone()).timeout(timeout);
    assert_eq!(check.check().await.status, Status::Ok);

    // Dropped in the middle of a slow query: the connection is closed,
    // not kept, nor given back while the server is still busy with it.
    let slow = check
        .clone()
        .query(DB::SLOW)
        .timeout(Duration::from_secs(30));
    pool_settles(&pool, "the first connection idle", |p| p.num_idle() == 1).await;
    let dropped = tokio::time::timeout(Duration::from_millis(400), slow.check()).await;
    assert!(dropped.is_err(), "the slow query ended early: {dropped:?}");
    pool_settles(&pool, "the dropped run's connection closed", |p| {
        p.size() == 0 && p.num_idle() == 0
    })
    .await;

    assert_eq!(check.check().await.status, Status::Ok);
    pool_settles(&pool, "a connection idle again", |p| p.num_idle() == 1).await;
    server.pause();
    let (hung, took) = timed(&check).await;
    server.resume();
    assert_eq!(hung.status, Status::Down, "{hung:?}");
    assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
    assert!(error(&hung).contains("within 1000 ms"), "{hung:?}");
    assert_clean(&hung, &secret);

    let started = Instant::now();
    loop {
        let result = check.check().await;
        if result.status == Status::Ok {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ok after the server was thawed: {result:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing held: whatever the pool has is idle.
    pool_settles(&pool, "every connection idle", |p| {
        p.size() as usize == p.num_idle()
    })
    .await;
    assert_no_secret("the logs", &logged(), &secret);
}

// ---------------------------------------------------------------- PostgreSQL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ok_saturated_and_misconfigured() {
    ok_saturated_and_misconfigured::<Postgres>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ok_down_ok_through_a_layer() {
    ok_down_ok_through_a_layer::<Postgres>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hung_server_and_dropped_run() {
    hung_server_and_dropped_run::<Postgres>().await;
}

// ---------------------------------------------------------------- MariaDB

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_ok_saturated_and_misconfigured() {
    ok_saturated_and_misconfigured::<MySql>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_ok_down_ok_through_a_layer() {
    ok_down_ok_through_a_layer::<MySql>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_hung_server_and_dropped_run() {
    hung_server_and_dropped_run::<MySql>().await;
}
