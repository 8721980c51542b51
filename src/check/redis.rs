//! [`RedisCheck`]: a Redis server answers `PING`, and what its `INFO` says
//! about itself (feature `redis-check`).
//!
//! The check works on the connection the application already has (a
//! [`MultiplexedConnection`](redis::aio::MultiplexedConnection), a
//! [`ConnectionManager`](redis::aio::ConnectionManager), anything
//! implementing [`redis::aio::ConnectionLike`] that is cheap to clone), or
//! on one it opens and keeps itself from a URL or a [`redis::Client`]:
//!
//! ```
//! use std::time::Duration;
//! use tower_status::check::{HealthCheck, RedisCheck};
//! use tower_status::StatusLayer;
//!
//! // Nothing connects before the first run.
//! let cache = RedisCheck::from_url("redis://:s3cret@127.0.0.1:6379/0")?
//!     .timeout(Duration::from_millis(500))
//!     .degraded_above_memory_share(0.9);
//! cache.validate()?;
//! assert_eq!(cache.target(), Some("redis://***@127.0.0.1:6379/0"));
//! let layer = StatusLayer::new()
//!     .check(HealthCheck::new("cache", cache).component_type("datastore").critical(false));
//! # let _ = layer;
//! # Ok::<(), tower_status::check::RedisCheckError>(())
//! ```
//!
//! With the application's own connection:
//!
//! ```no_run
//! use tower_status::check::{HealthCheck, RedisCheck};
//! use tower_status::StatusLayer;
//!
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! let client = redis::Client::open("redis://:s3cret@127.0.0.1:6379/")?;
//! let conn = client.get_multiplexed_async_connection().await?;
//! let layer = StatusLayer::new().check(HealthCheck::new(
//!     "cache",
//!     RedisCheck::new(conn.clone()).with_target("redis://cache:6379"),
//! ));
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! A healthy run has the `PING` round trip in milliseconds as its observed
//! value, and details like:
//!
//! ```json
//! {
//!   "target": "redis://***@127.0.0.1:6379/0",
//!   "ping_ms": 0.21,
//!   "redis_version": "7.0.15",
//!   "redis_mode": "standalone",
//!   "role": "replica",
//!   "connected_clients": 3,
//!   "used_memory": 1048576,
//!   "maxmemory": 104857600,
//!   "used_memory_share": 0.01,
//!   "master": "10.0.0.5:6379",
//!   "master_link_status": "up",
//!   "master_last_io_seconds_ago": 0,
//!   "master_sync_in_progress": false
//! }
//! ```
//!
//! (`master*` only on a replica, `connected_replicas` on a primary,
//! `used_memory_share` with a `maxmemory`, `loading` and
//! `loading_eta_seconds` while the dataset is loaded.) The `INFO` sections
//! are read in one call (Redis 7 and later), or with a plain `INFO` from
//! older servers.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, Cmd, ConnectionAddr, RedisError};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::{redact, BoxFuture, Check, CheckResult};

/// Default timeout of a run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The `INFO` sections read: one call on Redis 7 and later.
const SECTIONS: [&str; 5] = ["server", "clients", "memory", "persistence", "replication"];

/// A bad setting of a [`RedisCheck`]: returned by
/// [`from_url`](RedisCheck::from_url) and [`validate`](RedisCheck::validate),
/// and the error of every run of a check built with it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RedisCheckError {
    /// The URL is not one the redis crate can connect to.
    InvalidUrl {
        /// The URL, without its password.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A zero timeout: no run could finish within it.
    ZeroTimeout,
    /// A memory share that is not between 0 and 1.
    InvalidMemoryShare(f64),
}

impl fmt::Display for RedisCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl { url, reason } => {
                write!(f, "RedisCheck: `{url}` is not a usable redis URL: {reason}")
            }
            Self::ZeroTimeout => f.write_str("RedisCheck: the timeout must be greater than zero"),
            Self::InvalidMemoryShare(share) => write!(
                f,
                "RedisCheck: memory share {share} is not between 0 and 1 (90 % is 0.9)"
            ),
        }
    }
}

impl std::error::Error for RedisCheckError {}

/// Sends a command on a connection and reads a text answer.
trait Query: Send + Sync {
    fn query(&self, cmd: Cmd) -> BoxFuture<'static, Result<String, RedisError>>;
}

/// A connection given by the application; each run works on a clone.
struct Given<C>(C);

impl<C> Query for Given<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    fn query(&self, cmd: Cmd) -> BoxFuture<'static, Result<String, RedisError>> {
        let mut conn = self.0.clone();
        Box::pin(async move { cmd.query_async::<String>(&mut conn).await })
    }
}

enum Source {
    /// The application's connection: never replaced by the check.
    Given(Arc<dyn Query>),
    /// A connection the check opens, and opens again after it failed.
    Owned {
        client: Client,
        conn: tokio::sync::Mutex<Option<Arc<dyn Query>>>,
    },
}

/// Checks a Redis server: `PING` within the timeout, then one `INFO` for the
/// version, role, clients, memory and, on a replica, the link to its primary.
///
/// - No answer within the [timeout](Self::timeout) (default 1 s), a failed
///   connect or an error reply to `PING` is `down`.
/// - A `LOADING` reply (the dataset is being loaded) or a `MASTERDOWN` one
///   (a replica without its primary that serves no stale data) is `degraded`.
/// - A replica whose `master_link_status` is `down` is `degraded`:
///   "replica lost its primary 10.0.0.5:6379 for 12 s".
/// - With [`degraded_above_memory_share`](Self::degraded_above_memory_share),
///   used memory above that share of `maxmemory` is `degraded`.
///
/// A server that answers `PING` but refuses `INFO` (a renamed command, an
/// ACL user without the permission) stays `ok`; its details say why they
/// are short (`info_error`).
///
/// Passwords never reach what the check shows: the target is shown without
/// its credentials ([`redact`]), and `Debug` leaves the client out.
pub struct RedisCheck {
    source: Source,
    /// How the server is named in errors and details, without credentials.
    target: Option<String>,
    /// The password of an owned client: scrubbed from error texts.
    password: Option<String>,
    timeout: Duration,
    memory_share: Option<f64>,
    invalid: Option<RedisCheckError>,
    /// The server refused `INFO` with several sections (before Redis 7).
    plain_info: AtomicBool,
}

impl fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connection = match &self.source {
            Source::Given(_) => "given",
            Source::Owned { .. } => "owned",
        };
        f.debug_struct("RedisCheck")
            .field("target", &self.target)
            .field("connection", &connection)
            .field("timeout", &self.timeout)
            .field("memory_share", &self.memory_share)
            .field("invalid", &self.invalid)
            .finish_non_exhaustive()
    }
}

impl RedisCheck {
    /// Checks the server behind `conn`, the application's own connection (a
    /// `MultiplexedConnection` or a `ConnectionManager`: each run works on a
    /// clone). The check never reconnects it: a `MultiplexedConnection`
    /// that lost its server stays `down`, as it is for the application; a
    /// `ConnectionManager` reconnects by itself.
    #[must_use]
    pub fn new<C>(conn: C) -> Self
    where
        C: ConnectionLike + Clone + Send + Sync + 'static,
    {
        Self::with_source(Source::Given(Arc::new(Given(conn))))
    }

    /// Checks the server at `url` (`redis://[user][:password@]host[:port][/db]`)
    /// on a connection of the check's own, opened on the first run and
    /// opened again on the run after it failed or timed out. Nothing
    /// connects here.
    ///
    /// # Errors
    ///
    /// [`RedisCheckError::InvalidUrl`] when the redis crate refuses the URL
    /// (`rediss://` needs one of its TLS features).
    pub fn from_url(url: &str) -> Result<Self, RedisCheckError> {
        let shown = redact(url);
        let client = Client::open(url).map_err(|e| RedisCheckError::InvalidUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut check = Self::from_client(client);
        check.target = Some(shown);
        Ok(check)
    }

    /// Checks the server of `client` on a connection of the check's own, as
    /// [`from_url`](Self::from_url) does; the target is shown as
    /// `redis://host:port` (`rediss://` with TLS, `unix://PATH`).
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        let info = client.get_connection_info();
        let target = match info.addr() {
            ConnectionAddr::Tcp(..) => format!("redis://{}", info.addr()),
            ConnectionAddr::TcpTls { .. } => format!("rediss://{}", info.addr()),
            other => format!("unix://{other}"),
        };
        let password = info
            .redis_settings()
            .password()
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let mut check = Self::with_source(Source::Owned {
            client,
            conn: tokio::sync::Mutex::new(None),
        });
        check.target = Some(redact(&target));
        check.password = password;
        check
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            target: None,
            password: None,
            timeout: DEFAULT_TIMEOUT,
            memory_share: None,
            invalid: None,
            plain_info: AtomicBool::new(false),
        }
    }

    /// How the server is named in errors and details (a URL or
    /// `host:port`); any password in it is replaced by `***`.
    #[must_use]
    pub fn with_target(mut self, target: &str) -> Self {
        self.target = Some(redact(target));
        self
    }

    /// How long a whole run (connecting when needed, `PING`, `INFO`) may
    /// take; default 1 s. Keep it below the
    /// [`HealthCheck`](super::HealthCheck) timeout (2 s by default) to get
    /// this check's own error text. A zero timeout is refused: see
    /// [`validate`](Self::validate).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if timeout.is_zero() {
            self.invalid.get_or_insert(RedisCheckError::ZeroTimeout);
        } else {
            self.timeout = timeout;
        }
        self
    }

    /// Reports the server `degraded` when its used memory is above `share`
    /// (between 0 and 1: `0.9` is 90 %) of its `maxmemory`; a server without
    /// `maxmemory` is never degraded by this. A share out of range is
    /// refused: see [`validate`](Self::validate).
    #[must_use]
    pub fn degraded_above_memory_share(mut self, share: f64) -> Self {
        if (0.0..=1.0).contains(&share) {
            self.memory_share = Some(share);
        } else {
            self.invalid
                .get_or_insert(RedisCheckError::InvalidMemoryShare(share));
        }
        self
    }

    /// The first bad setting given to the builder methods, if any. A check
    /// with one is reported `down` with that error on every run; call this
    /// at start to fail early instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_status::check::{RedisCheck, RedisCheckError};
    ///
    /// let check = RedisCheck::from_url("redis://127.0.0.1:6379")?.timeout(Duration::ZERO);
    /// assert_eq!(check.validate(), Err(RedisCheckError::ZeroTimeout));
    /// # Ok::<(), RedisCheckError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first bad setting.
    pub fn validate(&self) -> Result<(), RedisCheckError> {
        match &self.invalid {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The server as errors and details name it, without credentials: the
    /// URL or client address, or what [`with_target`](Self::with_target)
    /// set.
    #[must_use]
    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// `" to TARGET"`, or nothing for a given connection without a target.
    fn shown_to(&self) -> String {
        self.target
            .as_deref()
            .map_or_else(String::new, |t| format!(" to {t}"))
    }

    /// `" from TARGET"`, or nothing.
    fn shown_from(&self) -> String {
        self.target
            .as_deref()
            .map_or_else(String::new, |t| format!(" from {t}"))
    }

    /// `text` without the known password (defence in depth: redis errors
    /// do not repeat it).
    fn scrub(&self, text: String) -> String {
        match &self.password {
            Some(p) if p.len() >= 3 && text.contains(p.as_str()) => text.replace(p.as_str(), "***"),
            _ => text,
        }
    }

    /// The connection for this run: the given one, or the owned one,
    /// opened when there is none.
    async fn connection(&self) -> Result<Arc<dyn Query>, String> {
        match &self.source {
            Source::Given(conn) => Ok(Arc::clone(conn)),
            Source::Owned { client, conn } => {
                let mut slot = conn.lock().await;
                if let Some(conn) = slot.as_ref() {
                    return Ok(Arc::clone(conn));
                }
                // The run's deadline bounds connect and replies: no
                // response timeout of the crate's own to race it.
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(None);
                let opened: MultiplexedConnection = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(|e| format!("connect{}: {e}", self.shown_to()))?;
                let opened: Arc<dyn Query> = Arc::new(Given(opened));
                *slot = Some(Arc::clone(&opened));
                Ok(opened)
            }
        }
    }

    /// Drops the owned connection: the next run opens a new one. Never
    /// waits: when another run holds the slot, it is opening one anyway.
    fn forget_connection(&self) {
        if let Source::Owned { conn, .. } = &self.source {
            if let Ok(mut slot) = conn.try_lock() {
                *slot = None;
            }
        }
    }

    async fn run(&self) -> CheckResult {
        if let Some(invalid) = &self.invalid {
            return CheckResult::down(invalid.to_string());
        }
        // A timeout too large to add is as good as none.
        let now = Instant::now();
        let deadline = now
            .checked_add(self.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
        let mut step = "connect";
        let outcome = tokio::time::timeout_at(deadline, self.probe(&mut step)).await;
        let mut result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => {
                self.forget_connection();
                CheckResult::down(error)
            }
            Err(_) => {
                // A connection that did not answer in time is not reused:
                // its late replies would be for requests long given up.
                self.forget_connection();
                let ms = self.timeout.as_millis();
                CheckResult::down(if step == "connect" {
                    format!("connect{} timed out after {ms} ms", self.shown_to())
                } else {
                    format!("no answer{} to {step} within {ms} ms", self.shown_from())
                })
            }
        };
        result.error = result.error.map(|e| self.scrub(e));
        if result.details.is_none() {
            if let Some(target) = &self.target {
                result = result.with_details(json!({ "target": target }));
            }
        }
        result
    }

    /// Connect, `PING`, `INFO`: `Err` is down with that text (and the owned
    /// connection dropped).
    async fn probe(&self, step: &mut &'static str) -> Result<CheckResult, String> {
        let conn = self.connection().await?;

        *step = "PING";
        let started = Instant::now();
        let mut problems = Vec::new();
        match conn.query(redis::cmd("PING")).await {
            Ok(_) => {}
            Err(e) => match busy(&e) {
                Some(problem) => problems.push(problem.to_owned()),
                None => return Err(format!("PING{}: {e}", self.shown_to())),
            },
        }
        let rtt_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;

        *step = "INFO";
        let mut details = Map::new();
        if let Some(target) = &self.target {
            details.insert("target".into(), target.as_str().into());
        }
        details.insert("ping_ms".into(), rtt_ms.into());
        match self.info(conn.as_ref()).await {
            Ok(text) => {
                let info = Info::parse(&text);
                problems.extend(info.describe(&mut details, self.memory_share));
            }
            Err(e) if e.is_unrecoverable_error() => {
                return Err(format!("INFO{}: {e}", self.shown_to()))
            }
            Err(e) => {
                details.insert("info_error".into(), self.scrub(e.to_string()).into());
            }
        }
        let result = if problems.is_empty() {
            CheckResult::ok()
        } else {
            CheckResult::degraded(problems.join("; "))
        };
        Ok(result
            .with_details(Value::Object(details))
            .with_observed(rtt_ms, "ms"))
    }

    /// One `INFO` with the sections needed, or a plain `INFO` (every default
    /// section) on a server that takes only one section.
    async fn info(&self, conn: &dyn Query) -> Result<String, RedisError> {
        if !self.plain_info.load(Ordering::Relaxed) {
            let mut cmd = redis::cmd("INFO");
            for section in SECTIONS {
                cmd.arg(section);
            }
            match conn.query(cmd).await {
                Err(e) if e.code() == Some("ERR") => {
                    tracing::debug!(
                        "redis refused INFO with several sections ({e}); using a plain INFO"
                    );
                    self.plain_info.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        conn.query(redis::cmd("INFO")).await
    }
}

/// What a `LOADING` or `MASTERDOWN` reply means: the server is there, but
/// not serving as it should.
fn busy(e: &RedisError) -> Option<&'static str> {
    match e.code() {
        Some("LOADING") => Some("the server is loading its dataset into memory (LOADING)"),
        Some("MASTERDOWN") => {
            Some("replica lost its primary and serves no stale data (MASTERDOWN)")
        }
        _ => None,
    }
}

/// The `field:value` lines of an `INFO` answer.
struct Info<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Info<'a> {
    fn parse(text: &'a str) -> Self {
        Info(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once(':'))
                .collect(),
        )
    }

    fn get(&self, field: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == field).map(|(_, v)| *v)
    }

    fn int(&self, field: &str) -> Option<i64> {
        self.get(field)?.parse().ok()
    }

    /// Fills `details`; returns what makes the server degraded.
    fn describe(&self, details: &mut Map<String, Value>, memory_share: Option<f64>) -> Vec<String> {
        let mut problems = Vec::new();
        for field in ["redis_version", "redis_mode"] {
            if let Some(v) = self.get(field) {
                details.insert(field.into(), v.into());
            }
        }
        let role = self.get("role");
        if let Some(role) = role {
            // Redis still says `slave`.
            let shown = if role == "slave" { "replica" } else { role };
            details.insert("role".into(), shown.into());
        }
        if let Some(n) = self.int("connected_clients") {
            details.insert("connected_clients".into(), n.into());
        }
        if self.int("loading") == Some(1) {
            details.insert("loading".into(), true.into());
            if let Some(n) = self.int("loading_eta_seconds").filter(|n| *n >= 0) {
                details.insert("loading_eta_seconds".into(), n.into());
            }
        }
        let used = self.int("used_memory");
        let max = self.int("maxmemory");
        if let Some(used) = used {
            details.insert("used_memory".into(), used.into());
        }
        if let Some(max) = max {
            details.insert("maxmemory".into(), max.into());
        }
        if let (Some(used), Some(max)) = (used, max.filter(|m| *m > 0)) {
            #[allow(clippy::cast_precision_loss)] // a share, not an exact count
            let share = used as f64 / max as f64;
            details.insert(
                "used_memory_share".into(),
                ((share * 10_000.0).round() / 10_000.0).into(),
            );
            if let Some(limit) = memory_share.filter(|limit| share > *limit) {
                problems.push(format!(
                    "used memory {used} bytes is {:.1} % of maxmemory {max} bytes, \
                     above the threshold of {:.1} %",
                    share * 100.0,
                    limit * 100.0
                ));
            }
        }
        if role == Some("master") {
            if let Some(n) = self.int("connected_slaves") {
                details.insert("connected_replicas".into(), n.into());
            }
        }
        // `replica` from servers (Valkey, a renamed field) that say so.
        if matches!(role, Some("slave" | "replica")) {
            problems.extend(self.replica(details));
        }
        problems
    }

    /// The replica's link to its primary; `Some` when it is down.
    fn replica(&self, details: &mut Map<String, Value>) -> Option<String> {
        let host = self.get("master_host").unwrap_or("?");
        let port = self.get("master_port").unwrap_or("?");
        // Not a secret, but shown through the same filter as every address.
        let primary = redact(&format!("{host}:{port}"));
        details.insert("master".into(), primary.as_str().into());
        let link = self.get("master_link_status").unwrap_or("unknown");
        details.insert("master_link_status".into(), link.into());
        let syncing = self.int("master_sync_in_progress") == Some(1);
        details.insert("master_sync_in_progress".into(), syncing.into());
        if let Some(n) = self.int("master_last_io_seconds_ago").filter(|n| *n >= 0) {
            details.insert("master_last_io_seconds_ago".into(), n.into());
        }
        if link == "up" {
            return None;
        }
        let down_for = self.int("master_link_down_since_seconds");
        if let Some(n) = down_for.filter(|n| *n >= 0) {
            details.insert("master_link_down_since_seconds".into(), n.into());
        }
        let mut problem = match down_for {
            Some(n) if n >= 0 => format!("replica lost its primary {primary} for {n} s"),
            _ => format!("replica has not reached its primary {primary} yet"),
        };
        if syncing {
            problem.push_str(" (a full sync is in progress)");
        }
        Some(problem)
    }
}

impl Check for RedisCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{ErrorKind, ServerErrorKind};

    fn described(text: &str, share: Option<f64>) -> (Value, Vec<String>) {
        let mut details = Map::new();
        let problems = Info::parse(text).describe(&mut details, share);
        (Value::Object(details), problems)
    }

    #[test]
    fn a_primary_with_maxmemory() {
        let text = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n\r\n\
                    # Clients\r\nconnected_clients:3\r\n# Memory\r\nused_memory:900\r\n\
                    maxmemory:1000\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\n";
        let (details, problems) = described(text, None);
        assert!(problems.is_empty());
        assert_eq!(
            details,
            json!({
                "redis_version": "7.0.15", "redis_mode": "standalone", "role": "master",
                "connected_clients": 3, "used_memory": 900, "maxmemory": 1000,
                "used_memory_share": 0.9, "connected_replicas": 1,
            })
        );
        let (_, problems) = described(text, Some(0.8));
        assert_eq!(
            problems,
            ["used memory 900 bytes is 90.0 % of maxmemory 1000 bytes, above the threshold of 80.0 %"]
        );
        // No maxmemory: never degraded by memory, no share.
        let (details, problems) = described("used_memory:900\r\nmaxmemory:0\r\n", Some(0.0));
        assert!(problems.is_empty());
        assert!(details.get("used_memory_share").is_none());
    }

    #[test]
    fn a_replica_and_its_link() {
        let up = "role:slave\nmaster_host:10.0.0.5\nmaster_port:6379\nmaster_link_status:up\n\
                  master_last_io_seconds_ago:1\nmaster_sync_in_progress:0\n";
        let (details, problems) = described(up, None);
        assert!(problems.is_empty());
        assert_eq!(details["role"], "replica");
        assert_eq!(details["master"], "10.0.0.5:6379");
        assert_eq!(details["master_last_io_seconds_ago"], 1);
        let down = "role:slave\nmaster_host:10.0.0.5\nmaster_port:6379\nmaster_link_status:down\n\
                    master_last_io_seconds_ago:-1\nmaster_sync_in_progress:0\n\
                    master_link_down_since_seconds:12\n";
        let (details, problems) = described(down, None);
        assert_eq!(
            problems,
            ["replica lost its primary 10.0.0.5:6379 for 12 s"]
        );
        assert_eq!(details["master_link_down_since_seconds"], 12);
        assert!(details.get("master_last_io_seconds_ago").is_none());
        let never = down
            .replace(":12", ":-1")
            .replace("progress:0", "progress:1");
        let (_, problems) = described(&never, None);
        assert_eq!(
            problems,
            ["replica has not reached its primary 10.0.0.5:6379 yet (a full sync is in progress)"]
        );
    }

    #[test]
    fn loading_and_masterdown_are_busy() {
        let loading =
            RedisError::from((ErrorKind::Server(ServerErrorKind::BusyLoading), "loading"));
        assert!(busy(&loading).unwrap().contains("LOADING"));
        let masterdown = RedisError::from((ErrorKind::Server(ServerErrorKind::MasterDown), "down"));
        assert!(busy(&masterdown).unwrap().contains("MASTERDOWN"));
        let other = RedisError::from((ErrorKind::Server(ServerErrorKind::ResponseError), "x"));
        assert_eq!(busy(&other), None);
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let check = RedisCheck::from_url("redis://127.0.0.1:6379")
            .unwrap()
            .timeout(Duration::ZERO)
            .degraded_above_memory_share(2.0);
        assert_eq!(check.validate(), Err(RedisCheckError::ZeroTimeout));
        assert_eq!(check.timeout, DEFAULT_TIMEOUT);
        let check = RedisCheck::from_url("redis://127.0.0.1:6379")
            .unwrap()
            .degraded_above_memory_share(f64::NAN);
        assert!(matches!(
            check.validate(),
            Err(RedisCheckError::InvalidMemoryShare(s)) if s.is_nan()
        ));
        let err = RedisCheck::from_url("http://u:pw-secret@h/").unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("RedisCheck: `http://***@h/` is not a usable redis URL"),
            "{text}"
        );
        assert!(!format!("{err:?}").contains("pw-secret"));
    }

    #[tokio::test]
    async fn a_bad_setting_is_down_at_once() {
        let check = RedisCheck::from_url("redis://127.0.0.1:1")
            .unwrap()
            .timeout(Duration::ZERO);
        let result = check.check().await;
        assert_eq!(result.status, crate::Status::Down);
        assert_eq!(
            result.error.as_deref(),
            Some("RedisCheck: the timeout must be greater than zero")
        );
    }

    #[test]
    fn debug_and_target_hide_the_password() {
        let check = RedisCheck::from_url("redis://user:pw-secret@127.0.0.1:6379/2").unwrap();
        assert_eq!(check.target(), Some("redis://***@127.0.0.1:6379/2"));
        let debug = format!("{check:?}");
        assert!(!debug.contains("pw-secret"), "{debug}");
        assert_eq!(check.scrub("a pw-secret b".into()), "a *** b");
        let client = Client::open("redis://:pw-secret@127.0.0.1:6379").unwrap();
        let check = RedisCheck::from_client(client);
        assert_eq!(check.target(), Some("redis://127.0.0.1:6379"));
        assert!(!format!("{check:?}").contains("pw-secret"));
    }
}
