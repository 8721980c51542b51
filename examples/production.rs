//! A service shaped like one in production: an axum API (`/`,
//! `/orders/{id}`) with the status endpoint, its dependencies checked in
//! the background with damping and a dependency between them, status
//! changes posted to a webhook, API keys for details, Prometheus metrics,
//! a server that idle or slow clients cannot starve, and a graceful
//! shutdown that drains first.
//!
//! ```sh
//! DATABASE_ADDR=127.0.0.1:5432 SEARCH_ADDR=127.0.0.1:9200 \
//! POSTGRES_URL=postgres://orders:secret@127.0.0.1:5432/orders REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo run --release --example production \
//!     --features webhook,signal,postgres-check,redis-check
//! curl localhost:3000/status                                   # {"status", "timestamp"}
//! curl -H 'X-Api-Key: dev-key' localhost:3000/status           # everything
//! curl -H 'Authorization: Bearer dev-key' localhost:3000/status/transitions
//! curl -N localhost:3000/status/watch                           # Server-Sent Events
//! ```
//!
//! # Environment
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `STATUS_ADDR` | `127.0.0.1:3000` | IP address and port to listen on (`127.0.0.1:0`: any free port) |
//! | `APP_ENV` | `development` | the report's `environment` (letters, digits, `.`, `_`, `-`) |
//! | `STATUS_API_KEY` | `dev-key` | the key that shows details, as `X-Api-Key: KEY` or `Authorization: Bearer KEY` (printable ASCII, no spaces) |
//! | `DATABASE_ADDR` | unset: no `db` | `host:port` of the database: TCP check `db`, critical |
//! | `CACHE_ADDR` | unset: no `cache` | `host:port` of the cache: TCP check `cache`, not critical (down only degrades) |
//! | `POSTGRES_URL` | unset: no `postgres` | `postgres://user:password@host:port/db` (or `postgresql://`, with sqlx's query parameters such as `sslmode`): check `postgres`, critical, through an sqlx pool of 10 connections (`POSTGRES_POOL_SIZE`), as the application's own would be; a saturated pool is `degraded` |
//! | `REDIS_URL` | unset: no `redis` | `redis://[:password@]host:port[/db]`: check `redis` (`PING` and `INFO`), not critical; a replica that lost its primary is `degraded` |
//! | `SEARCH_ADDR` | unset: no `search` | `host:port` of the search engine: TCP check `search`, critical, depends on `db` (when `db` is configured) |
//! | `CHECK_INTERVAL_MS` | `1000` | how often every check runs in the background (10 to 3600000), plus up to 10 % jitter |
//! | `FAILURE_THRESHOLD` | `3` | failed runs in a row before a component leaves `ok` (at least 1) |
//! | `SUCCESS_THRESHOLD` | `2` | passed runs in a row before it is `ok` again (at least 1) |
//! | `HISTORY_FILE` | unset: memory only | file the last day of history is kept in across restarts (written about once a minute and at shutdown) |
//! | `SLO_AVAILABILITY` | `0.999` | target share of API requests without error |
//! | `SLO_LATENCY_MS` | `300` | the latency objective: 99 % of API requests faster than this |
//! | `WEBHOOK_URL` | unset: none | `http://host[:port]/path` every status change is POSTed to as JSON (plain HTTP: the built-in notifier has no TLS) |
//!
//! A bad value of any of them (an empty one included: unset it instead)
//! stops the example before it binds or builds anything, with one line on
//! stderr naming the variable, and exit status 2. Once listening it prints
//! `listening on http://ADDR/status` on stdout (the real port when
//! `STATUS_ADDR` ends in `:0`); logs, including every transition, go to
//! stderr. An address it cannot listen on (in use, say) stops it with one
//! line on stderr and exit status 1. With `APP_ENV=production` and no
//! `STATUS_API_KEY`, a warning says the development key is in use.
//!
//! # What is served
//!
//! - `/status`: the JSON report; `/status/live`, `/status/ready` (probes);
//!   `/status/metrics` (Prometheus text); `/status/watch` (Server-Sent
//!   Events); `/status/history` (the last day per minute, uptime and the
//!   objectives); `/status/badge.svg` and `/status/badge/uptime.svg`; a
//!   browser asking for `/status` gets the status page;
//!   `/status/transitions` (the transition log, flap counts and
//!   webhook deliveries); `/status/{component}`.
//! - Callers with the key see everything. Anonymous callers (and callers
//!   of the probes with any other key) get only the overall status:
//!   `{"status", "timestamp"}` from `/status` and the probes, events
//!   without components from `/status/watch`, and `401` from the paths
//!   that are nothing but details (`/status/metrics`,
//!   `/status/transitions`, `/status/{component}`). A wrong key is `401`
//!   on every path but the probes, never served as anonymous.
//! - Every check runs in the background, so a status request or a probe
//!   never waits for a dependency (only the first run is waited for, at
//!   most `REPORT_DEADLINE`). A TCP check fails when the connection is
//!   refused or takes longer than 1 s; a component goes `down` after
//!   `FAILURE_THRESHOLD` failed runs in a row, within about
//!   `FAILURE_THRESHOLD` x `CHECK_INTERVAL_MS` plus that second, and comes
//!   back after `SUCCESS_THRESHOLD` passed runs. The `postgres` and `redis`
//!   checks have the same timeout and damping; their passwords never show
//!   (in the report, an error, a log line or a bad-value message). The report shows the
//!   damped status, and under `last_run` what the last run itself said.
//! - While `db` is down, a failing `search` is reported as
//!   `blocked_by: ["db"]` and the report's `root_causes` names `db` alone.
//! - Readiness fails until every critical check has passed once.
//! - The API's own traffic is a `traffic` component: `degraded` when more
//!   than 5 % of the last minute's requests failed or its p99 is over 1 s
//!   (once there were 20 requests).
//! - `WEBHOOK_URL`: every change (of the overall status, and of a
//!   component's) is POSTed as JSON, with the transition and its root
//!   cause, never holding up a request or a check: from a queue of 256
//!   (the oldest dropped, and counted, when full), 5 s per attempt, up to
//!   5 attempts with backoff from 200 ms to 30 s; how that went is under
//!   `notifiers` at `/status/transitions`.
//!   Receivers order and deduplicate by the notification's `sequence`.
//! - A request to the API may take 10 s (`REQUEST_TIMEOUT`), then it is
//!   answered 503.
//!
//! # Serving
//!
//! HTTP/1.1 only, with hyper's own connection builder (hyper-util's
//! `auto` builder reads the protocol preface with no timeout, and h2 has
//! no header-read timeout: terminate h2 at the proxy), and:
//!
//! - a header-read timeout of 5 s (`HEADER_READ_TIMEOUT`): a connection
//!   that has not sent a whole request head 5 s after it opened (or after
//!   its last response: it doubles as the keep-alive timeout) is closed,
//!   however slowly it trickles bytes;
//! - at most 512 connections (`MAX_CONNECTIONS`, nginx's default
//!   `worker_connections`; keep it under the process's open-file limit).
//!   At the cap a new connection is neither refused nor queued behind the
//!   idle ones: the oldest idle connection (waiting for its first or next
//!   request) is closed to make room, as nginx reuses keep-alive
//!   connections, else the oldest `/status/watch` stream (clients of
//!   Server-Sent Events reconnect). A connection that had a request is
//!   closed once its last response is written. Only when every connection
//!   is answering a request does a new one wait, in the kernel's accept
//!   queue (1024 long, `LISTEN_BACKLOG`), for one to finish. So however many idle or slow clients
//!   connect, a probe is answered at once.
//!
//! On SIGTERM or ctrl-c it starts draining (`/status/ready` fails with
//! reason `draining`, everything else is served as before) for 5 s
//! (`DRAIN_GRACE`), so load balancers stop sending traffic; then it stops
//! accepting, closes idle connections and watch streams at once, lets
//! requests in progress finish (at most 5 s, `CLOSE_TIMEOUT`) and exits 0.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Path;
use axum::{routing::get, Json, Router};
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;
use tower_http::timeout::TimeoutLayer;
use tower_status::auth::{ApiKeys, Endpoint, Identity, Visibility};
use tower_status::check::{
    redact, Check, Freshness, HealthCheck, PostgresCheck, RedisCheck, TcpCheck, TrafficRule,
};
use tower_status::history::Objective;
use tower_status::notify::{Delivery, WebhookNotifier};
use tower_status::{Status, StatusHandle, StatusLayer};

/// The service's name in the report and in notifications.
const SERVICE: &str = "orders";
/// A client must send a whole request head within this long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections open at once.
const MAX_CONNECTIONS: usize = 512;
/// Connections the kernel holds until they are accepted.
const LISTEN_BACKLOG: u32 = 1024;
/// How long readiness fails before the server stops.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long requests in progress may take to finish once the server stops.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request of the API may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A status request never waits longer for a check (only a check's first
/// run is ever waited for): under kubelet's default 1 s probe timeout.
const REPORT_DEADLINE: Duration = Duration::from_millis(800);
/// How long a check's run may take (a TCP connect, a database round trip).
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Connections of the PostgreSQL pool (the application's, in a real service).
const POSTGRES_POOL_SIZE: u32 = 10;

fn main() -> ExitCode {
    // Everything is checked before anything is built or bound.
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(invalid) => {
            eprintln!("production: {}: {}", invalid.var, invalid.why);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("production: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("production: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), String> {
    // The crate logs transitions, slow checks and failed deliveries
    // through `tracing`; this prints them on stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    if settings.default_key && settings.environment == "production" {
        tracing::warn!("STATUS_API_KEY is not set: details are shown for the development key");
    }
    let addr = settings.addr;
    let status = status_layer(settings);
    let app = Router::new()
        .route("/", get(index))
        .route("/orders/{id}", get(order))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(status.clone());

    let listener =
        listen(addr).map_err(|e| format!("cannot listen on {addr} (STATUS_ADDR): {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    // Polled once before anyone is told where to connect, so its signal
    // handlers are in place: a SIGTERM from then on drains.
    let history = status.clone();
    let mut drained = pin!(status.drain_on_signal(DRAIN_GRACE));
    std::future::poll_fn(|cx| {
        let _ = drained.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
    println!("listening on http://{local}/status");
    let _ = std::io::stdout().flush();

    serve(listener, app, drained).await;
    // The day so far, for the next start (nothing when HISTORY_FILE is unset).
    match tokio::task::spawn_blocking(move || history.save_history()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("could not save the history (HISTORY_FILE): {e}"),
        Err(e) => tracing::warn!("could not save the history: {e}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Configuration.

/// Everything read from the environment, checked.
struct Settings {
    addr: SocketAddr,
    environment: String,
    api_key: String,
    /// `STATUS_API_KEY` was not set.
    default_key: bool,
    database: Option<TcpCheck>,
    cache: Option<TcpCheck>,
    search: Option<TcpCheck>,
    /// The pool is made once the runtime runs (sqlx's pool needs it).
    postgres: Option<PgConnectOptions>,
    redis: Option<RedisCheck>,
    interval: Duration,
    failure_threshold: u32,
    success_threshold: u32,
    webhook: Option<WebhookNotifier>,
    history_file: Option<std::path::PathBuf>,
    slo_availability: f64,
    slo_latency: Duration,
}

/// A variable with a bad value, and why.
struct Invalid {
    var: &'static str,
    /// One line; values are quoted with `{:?}`, so a newline in one is `\n`.
    why: String,
}

impl Settings {
    fn from_env() -> Result<Self, Invalid> {
        let addr = match var("STATUS_ADDR")? {
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
            Some(v) => v.parse().map_err(|_| Invalid {
                var: "STATUS_ADDR",
                why: format!("{v:?} is not an IP address and port, such as 0.0.0.0:8080"),
            })?,
        };
        let environment = match var("APP_ENV")? {
            None => "development".to_owned(),
            Some(v)
                if v.len() <= 64
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
            {
                v
            }
            Some(v) => {
                return Err(Invalid {
                    var: "APP_ENV",
                    why: format!(
                        "{v:?} is not a name (letters, digits, `.`, `_`, `-`; at most 64)"
                    ),
                })
            }
        };
        let (api_key, default_key) = match var("STATUS_API_KEY")? {
            None => ("dev-key".to_owned(), true),
            Some(v) if v.bytes().all(|b| b.is_ascii_graphic()) => (v, false),
            // The key itself is never printed.
            Some(_) => {
                return Err(Invalid {
                    var: "STATUS_API_KEY",
                    why: "must be printable ASCII without spaces (it is sent in a header)".into(),
                })
            }
        };
        let tcp = |name: &'static str| -> Result<Option<TcpCheck>, Invalid> {
            var(name)?
                .map(|v| {
                    TcpCheck::parse(&v).map_err(|_| Invalid {
                        var: name,
                        why: format!("{v:?} is not host:port"),
                    })
                })
                .transpose()
        };
        let database = tcp("DATABASE_ADDR")?;
        let cache = tcp("CACHE_ADDR")?;
        let search = tcp("SEARCH_ADDR")?;
        // The value is never repeated: it holds a password.
        let postgres = var("POSTGRES_URL")?
            .map(|v| {
                if !(v.starts_with("postgres://") || v.starts_with("postgresql://")) {
                    return Err(Invalid {
                        var: "POSTGRES_URL",
                        why: "is not a postgres:// or postgresql:// URL".into(),
                    });
                }
                v.parse::<PgConnectOptions>().map_err(|e| Invalid {
                    var: "POSTGRES_URL",
                    why: format!(
                        "is not a PostgreSQL URL such as postgres://user:password@host:5432/db ({})",
                        redact(&e.to_string()).replace(['\n', '\r'], " ")
                    ),
                })
            })
            .transpose()?;
        let redis = var("REDIS_URL")?
            .map(|v| {
                RedisCheck::from_url(&v)
                    .and_then(|check| {
                        let check = check.timeout(CHECK_TIMEOUT);
                        check.validate().map(|()| check)
                    })
                    .map_err(|e| Invalid {
                        var: "REDIS_URL",
                        why: format!(
                            "is not a Redis URL such as redis://:password@host:6379/0 ({})",
                            redact(&e.to_string()).replace(['\n', '\r'], " ")
                        ),
                    })
            })
            .transpose()?;
        let interval = number("CHECK_INTERVAL_MS", 1000, 10, 3_600_000)?;
        let failure_threshold = number("FAILURE_THRESHOLD", 3, 1, u32::MAX.into())?;
        let success_threshold = number("SUCCESS_THRESHOLD", 2, 1, u32::MAX.into())?;
        let webhook = var("WEBHOOK_URL")?.map(|v| webhook(&v)).transpose()?;
        let history_file = var("HISTORY_FILE")?.map(std::path::PathBuf::from);
        let slo_availability = match var("SLO_AVAILABILITY")? {
            None => 0.999,
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x > 0.0 && x < 1.0 => x,
                _ => {
                    return Err(Invalid {
                        var: "SLO_AVAILABILITY",
                        why: format!("{v:?} is not a share between 0 and 1, such as 0.999"),
                    })
                }
            },
        };
        let slo_latency = number("SLO_LATENCY_MS", 300, 1, 3_600_000)?;
        Ok(Self {
            history_file,
            slo_availability,
            slo_latency: Duration::from_millis(slo_latency),
            addr,
            environment,
            api_key,
            default_key,
            database,
            cache,
            search,
            postgres,
            redis,
            interval: Duration::from_millis(interval),
            // Within the bounds given to `number`.
            failure_threshold: u32::try_from(failure_threshold).unwrap_or(u32::MAX),
            success_threshold: u32::try_from(success_threshold).unwrap_or(u32::MAX),
            webhook,
        })
    }
}

/// The value of `name`: `None` when unset. Set but empty, or not UTF-8,
/// is a bad value: an empty `DATABASE_ADDR` is more likely a mistake than
/// a wish to leave `db` out.
fn var(name: &'static str) -> Result<Option<String>, Invalid> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Invalid {
            var: name,
            why: "is not valid UTF-8".into(),
        }),
        Ok(v) if v.trim().is_empty() => Err(Invalid {
            var: name,
            why: "is empty; unset it for the default".into(),
        }),
        Ok(v) => Ok(Some(v)),
    }
}

/// A whole number from `min` to `max`, `default` when unset.
fn number(name: &'static str, default: u64, min: u64, max: u64) -> Result<u64, Invalid> {
    let Some(v) = var(name)? else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Invalid {
            var: name,
            why: format!("{v:?} is not a whole number from {min} to {max}"),
        }),
    }
}

/// The webhook notifier for `url` (`http://host[:port]/path`). The URL is
/// not repeated in the message: its query may hold a token.
fn webhook(url: &str) -> Result<WebhookNotifier, Invalid> {
    WebhookNotifier::new(url).map_err(|e| Invalid {
        var: "WEBHOOK_URL",
        why: e.to_string().replace(['\n', '\r'], " "),
    })
}

// ---------------------------------------------------------------------------
// The status layer.

fn status_layer(settings: Settings) -> StatusHandle {
    let Settings {
        environment,
        api_key,
        database,
        cache,
        search,
        postgres,
        redis,
        interval,
        failure_threshold,
        success_threshold,
        webhook,
        history_file,
        slo_availability,
        slo_latency,
        ..
    } = settings;
    let mut layer = StatusLayer::new()
        .service_name(SERVICE)
        .version(tower_status::app_version!())
        .environment(environment)
        // `X-Api-Key: KEY` or `Authorization: Bearer KEY`.
        .api_keys(ApiKeys::new().key(api_key, Identity::new("operator")))
        // Anyone gets the overall status; only the key shows details.
        .require_key(Endpoint::Report, false)
        .require_key(Endpoint::Probes, false)
        .show_details(Visibility::WhenAuthorized)
        .serve_metrics(true)
        .ready_after_startup_checks(true)
        .report_deadline(REPORT_DEADLINE)
        // Transitions, watchers and the webhook see a change as soon as a
        // check's run makes it.
        .watch_interval(interval)
        .traffic_rule(TrafficRule::error_rate_above(0.05, Status::Degraded))
        .traffic_rule(TrafficRule::p99_above(
            Duration::from_secs(1),
            Status::Degraded,
        ));
    let background = Background {
        interval,
        failure_threshold,
        success_threshold,
    };
    let has_database = database.is_some();
    let tcp = |tcp: TcpCheck| tcp.timeout(CHECK_TIMEOUT);
    if let Some(addr) = database {
        layer = layer.check(background.check("db", tcp(addr), "datastore", true));
    }
    if let Some(addr) = cache {
        layer = layer.check(background.check("cache", tcp(addr), "cache", false));
    }
    if let Some(options) = postgres {
        // Lazy: the service starts (and reports `postgres` down) while the
        // database is away. The application would query through `pool`.
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_POOL_SIZE)
            .acquire_timeout(CHECK_TIMEOUT * 3)
            .connect_lazy_with(options);
        let postgres = PostgresCheck::new(pool).timeout(CHECK_TIMEOUT);
        layer = layer.check(background.check("postgres", postgres, "datastore", true));
    }
    if let Some(redis) = redis {
        layer = layer.check(background.check("redis", redis, "cache", false));
    }
    if let Some(addr) = search {
        let search = background.check("search", tcp(addr), "search", true);
        layer = layer.check(if has_database {
            search.depends_on(["db"])
        } else {
            search
        });
    }
    // Objectives on the API's own traffic, in `/status/history` and the page.
    layer = layer
        .objective(Objective::availability(slo_availability))
        .objective(Objective::latency(slo_latency, 0.99));
    if let Some(path) = history_file {
        layer = layer.history_file(path);
    }
    if let Some(webhook) = webhook {
        layer = layer.notify(
            Delivery::to("webhook", webhook)
                .attempt_timeout(Duration::from_secs(5))
                .max_attempts(5)
                .backoff(Duration::from_millis(200), Duration::from_secs(30))
                .queue_capacity(256),
        );
    }
    layer.build()
}

/// How every dependency is checked: in the background, damped.
struct Background {
    interval: Duration,
    failure_threshold: u32,
    success_threshold: u32,
}

impl Background {
    fn check(&self, name: &str, check: impl Check, kind: &str, critical: bool) -> HealthCheck {
        HealthCheck::new(name, check)
            .component_type(kind)
            .critical(critical)
            .freshness(Freshness::Background {
                every: self.interval,
            })
            // A fleet of instances does not probe a dependency in lockstep.
            .jitter(self.interval / 10)
            .failure_threshold(self.failure_threshold)
            .success_threshold(self.success_threshold)
    }
}

// ---------------------------------------------------------------------------
// The API.

async fn index() -> Json<Value> {
    Json(json!({
        "service": SERVICE,
        "version": tower_status::app_version!(),
        "status": "/status",
    }))
}

/// `/orders/{id}`: a number, else axum answers 400.
async fn order(Path(id): Path<u64>) -> Json<Value> {
    Json(json!({ "id": id, "state": "shipped" }))
}

// ---------------------------------------------------------------------------
// Serving: a header-read timeout and a cap on connections.

/// What a connection is doing, for choosing one to close at the cap:
/// waiting for a request (its first, or its next one)...
const IDLE: u8 = 0;
/// ... answering one...
const BUSY: u8 = 1;
/// ... or streaming `/status/watch` events.
const STREAMING: u8 = 2;

/// One open connection.
struct Conn {
    state: AtomicU8,
    /// It has had a request: when idle, hyper may still be writing the
    /// last response.
    served: AtomicBool,
    /// Chosen to make room: not chosen again.
    chosen: AtomicBool,
    /// Asks the connection to close, at once unless a response is under way.
    close: Notify,
}

/// The open connections, by when they were accepted.
struct Connections {
    slots: Arc<Semaphore>,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            open: Mutex::default(),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the oldest idle connection (else the oldest watch stream) to
    /// close; `false` when every connection is answering a request.
    fn close_one(&self) -> bool {
        let open = self.open();
        for wanted in [IDLE, STREAMING] {
            let found = open.values().find(|conn| {
                conn.state.load(Ordering::SeqCst) == wanted
                    && !conn.chosen.swap(true, Ordering::SeqCst)
            });
            if let Some(conn) = found {
                conn.close.notify_one();
                return true;
            }
        }
        false
    }

    /// Asks every connection to close.
    fn close_all(&self) -> usize {
        let open = self.open();
        for conn in open.values() {
            conn.close.notify_one();
        }
        open.len()
    }
}

/// Listens on `addr` with room for `LISTEN_BACKLOG` connections not yet
/// accepted (`TcpListener::bind` leaves 128, as the standard library does:
/// a burst over the cap would overflow it while room is made, and
/// clients' connects would stall for a second per SYN retry).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections until `stop` completes, then closes them.
async fn serve(listener: TcpListener, app: Router, stop: impl Future<Output = ()>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        // Bounds the memory of a connection's request head.
        .max_buf_size(64 * 1024);
    let conns = Arc::new(Connections::new(MAX_CONNECTIONS));
    let mut stop = pin!(stop);
    let mut next_id = 0u64;
    'accept: loop {
        let stream = tokio::select! {
            biased;
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: let some close.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match Arc::clone(&conns.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => loop {
                // At the cap: make room. A closed idle connection frees its
                // slot at once; when every one is busy, wait for one to
                // finish, choosing again now and then (one may go idle).
                conns.close_one();
                let slot = Arc::clone(&conns.slots).acquire_owned();
                tokio::select! {
                    biased;
                    () = &mut stop => break 'accept,
                    slot = tokio::time::timeout(Duration::from_millis(100), slot) => {
                        if let Ok(Ok(permit)) = slot {
                            break permit;
                        }
                    }
                }
            },
        };
        let conn = Arc::new(Conn {
            state: AtomicU8::new(IDLE),
            served: AtomicBool::new(false),
            chosen: AtomicBool::new(false),
            close: Notify::new(),
        });
        let id = next_id;
        next_id += 1;
        conns.open().insert(id, Arc::clone(&conn));
        tokio::spawn(connection(
            stream,
            http.clone(),
            app.clone(),
            conn,
            permit,
            Arc::clone(&conns),
            id,
        ));
    }
    drop(listener);
    let open = conns.close_all();
    tracing::info!("stopped accepting; closing {open} connections");
    // Every slot back: every connection closed.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(CLOSE_TIMEOUT, conns.slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress after {CLOSE_TIMEOUT:?}: closing them");
    }
}

/// Serves one connection until it ends or is asked to close.
async fn connection(
    stream: TcpStream,
    http: http1::Builder,
    app: Router,
    conn: Arc<Conn>,
    _slot: OwnedSemaphorePermit,
    conns: Arc<Connections>,
    id: u64,
) {
    let service = {
        let conn = Arc::clone(&conn);
        hyper::service::service_fn(move |req| tracked(app.clone(), Arc::clone(&conn), req))
    };
    let mut serving = pin!(http.serve_connection(TokioIo::new(stream), service));
    let mut finishing = false;
    loop {
        tokio::select! {
            // Timeouts and clients going away are routine: not logged.
            _ = serving.as_mut() => break,
            () = conn.close.notified(), if !finishing => {
                // Only this task calls the service, so no request starts
                // while this runs. A connection that never had a request,
                // or streams events, has nothing to finish: dropping it
                // here closes it.
                let state = conn.state.load(Ordering::SeqCst);
                let fresh = state == IDLE && !conn.served.load(Ordering::SeqCst);
                if fresh || state == STREAMING {
                    break;
                }
                // A request in progress, or the last response maybe still
                // being written: hyper closes the connection once it is
                // (at once when it waits for the next request).
                serving.as_mut().graceful_shutdown();
                finishing = true;
            }
        }
    }
    conns.open().remove(&id);
}

/// Calls the app, marking the connection busy until the response body
/// ends (streaming when it is an event stream).
async fn tracked(
    app: Router,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    /// Marks the connection idle when the response body is dropped.
    struct Idle(Arc<Conn>);
    impl Drop for Idle {
        fn drop(&mut self) {
            self.0.state.store(IDLE, Ordering::SeqCst);
        }
    }

    conn.served.store(true, Ordering::SeqCst);
    conn.state.store(BUSY, Ordering::SeqCst);
    let idle = Idle(conn);
    let res = app.oneshot(req).await?;
    let events = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if events {
        idle.0.state.store(STREAMING, Ordering::SeqCst);
    }
    Ok(res.map(|body| {
        Body::new(body.map_frame(move |frame| {
            let _until_the_body_ends = &idle;
            frame
        }))
    }))
}
