//! [`PostgresCheck`] and [`MySqlCheck`]: a SQL server through the
//! application's own sqlx pool (features `postgres-check`, `mysql-check`).
//!
//! Both are [`SqlCheck`], one implementation generic over the sqlx
//! [`Database`]: each run takes a connection from the pool the application
//! already has, proves a round trip on it (`SELECT 1`, or the
//! [query](SqlCheck::query) given), asks the server about itself in one
//! more query on the same connection, and gives the connection back.
//!
//! ```
//! # #[cfg(feature = "postgres-check")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sqlx::Error> {
//! use std::time::Duration;
//! use sqlx::postgres::PgPoolOptions;
//! use tower_status::check::{Freshness, HealthCheck, PostgresCheck};
//! use tower_status::StatusLayer;
//!
//! // The pool the application queries through (connected lazily here).
//! let pool = PgPoolOptions::new()
//!     .max_connections(10)
//!     .connect_lazy("postgres://app:s3cret@127.0.0.1:5432/app")?;
//! let layer = StatusLayer::new().check(
//!     HealthCheck::new("postgres", PostgresCheck::new(pool.clone()).timeout(Duration::from_secs(1)))
//!         .component_type("datastore")
//!         .freshness(Freshness::Background { every: Duration::from_secs(5) }),
//! );
//! # let _ = layer;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "postgres-check"))]
//! # fn main() {}
//! ```

#[cfg(feature = "mysql-check")]
mod mysql;
#[cfg(feature = "postgres-check")]
mod postgres;

use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use sqlx::pool::PoolConnection;
use sqlx::{ColumnIndex, ConnectOptions, Database, Decode, Executor, Pool, Row};
use tokio::time::timeout_at;

use super::{redact, CheckResult};

#[cfg(feature = "mysql-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql-check")))]
pub use mysql::MySqlCheck;
#[cfg(feature = "postgres-check")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres-check")))]
pub use postgres::PostgresCheck;

/// The round trip of a run unless [`SqlCheck::query`] says otherwise.
const DEFAULT_QUERY: &str = "SELECT 1";

/// The default [`SqlCheck::timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// A SQL server through a sqlx pool: [`PostgresCheck`] for PostgreSQL,
/// [`MySqlCheck`] for MySQL and MariaDB.
///
/// Each run takes a connection from the pool the application already has,
/// proves a round trip on it (`SELECT 1`, or the [query](Self::query)
/// given), asks the server about itself in one more query on the same
/// connection, and gives the connection back.
///
/// A healthy run observes the round trip in milliseconds and has details
/// like (PostgreSQL; MySQL and MariaDB say `read_only` instead of
/// `in_recovery`):
///
/// ```json
/// {
///   "target": "postgres://127.0.0.1:5432/app",
///   "version": "15.8 (Debian 15.8-0+deb12u1)",
///   "in_recovery": false,
///   "pool": { "size": 3, "idle": 2, "in_use": 1, "max": 10 },
///   "acquire_ms": 0.041
/// }
/// ```
///
/// The pool figures are those the check found before taking a connection.
///
/// - A **saturated** pool (as many connections as its maximum, none idle)
///   is `degraded`: the check does not queue behind the application for a
///   connection, it only takes one that is idle at that very moment.
/// - A server that **refuses** connections, or that the pool cannot
///   connect to, is `down` with the connect error; a server that **does
///   not answer** is `down` when the check's timeout (1 s by default) is
///   up: no step of a run, waiting for a connection included, goes past it.
/// - The connection is never kept past the run: given back to the pool
///   after a complete exchange, closed (in the background, as sqlx closes
///   connections) when the run failed or was dropped mid-exchange (by the
///   runner's timeout, say), as its state is then unknown.
///
/// Error texts, the details and `Debug` never show the password: the
/// target is built from the pool's connect options without its user
/// information or parameters, and every error text goes through
/// [`redact`](crate::check::redact).
pub struct SqlCheck<DB: Database> {
    pool: Pool<DB>,
    timeout: Duration,
    query: String,
}

/// What differs from one server to another.
struct Server {
    /// The check's name in messages.
    check: &'static str,
    /// One row: the version, then the flag.
    about: &'static str,
    /// The flag's name in the details.
    flag: &'static str,
}

impl<DB: Database> SqlCheck<DB> {
    /// Checks the server behind `pool` (a clone of the application's pool:
    /// clones share the connections) with `SELECT 1`, within 1 s.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            timeout: DEFAULT_TIMEOUT,
            query: DEFAULT_QUERY.to_owned(),
        }
    }

    /// How long a run may take in all, waiting for a connection included.
    /// Keep it below the [`HealthCheck`](super::HealthCheck) timeout (2 s
    /// by default) to get this check's own error text. A zero timeout is a
    /// mistake that every run reports, `down`.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The round trip of each run, instead of `SELECT 1`: one or more
    /// statements without parameters, sent as they are (the simple query
    /// protocol: nothing is prepared), whose rows are read and dropped.
    /// Its time is the observed value. An empty query is a mistake that
    /// every run reports, `down`.
    #[must_use]
    pub fn query(mut self, sql: impl Into<String>) -> Self {
        self.query = sql.into();
        self
    }

    /// The pool checked.
    #[must_use]
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The server as errors, details and `Debug` show it: scheme, host,
    /// port and database from the pool's connect options, without user,
    /// password or parameters.
    #[must_use]
    pub fn target(&self) -> String {
        let url = self.pool.connect_options().to_url_lossy();
        let host = url.host_str().unwrap_or_default();
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let path = match url.path() {
            "" | "/" => "",
            path => path,
        };
        redact(&format!("{}://{host}{port}{path}", url.scheme()))
    }

    /// Reads the pool's figures.
    fn figures(&self) -> Figures {
        Figures {
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// One run, within the timeout.
    async fn run(&self, server: &Server) -> CheckResult
    where
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        for<'r> String: Decode<'r, DB>,
        usize: ColumnIndex<DB::Row>,
    {
        let started = Instant::now();
        let target = self.target();
        let figures = self.figures();
        let mut details = Map::new();
        details.insert("target".into(), target.clone().into());
        details.insert("pool".into(), figures.to_json());
        let down = |error: String, details: Map<String, Value>| {
            CheckResult::down(redact(&error)).with_details(Value::Object(details))
        };
        if self.timeout.is_zero() {
            return down(
                format!("{}: the timeout is zero: no run can finish", server.check),
                details,
            );
        }
        if self.query.trim().is_empty() {
            return down(
                format!("{}: the query to run is empty", server.check),
                details,
            );
        }
        if self.pool.is_closed() {
            return down(format!("the pool of {target} is closed"), details);
        }
        let deadline = after(started, self.timeout);
        let budget = self.timeout.as_millis();

        let conn = if figures.saturated() {
            // Queueing would take a connection from the application as soon
            // as one is free: only one idle at this very moment will do.
            match self.pool.try_acquire() {
                Some(conn) => conn,
                None => {
                    return CheckResult::degraded(format!(
                        "the pool of {target} is saturated: all {} connections in use, \
                         none idle",
                        figures.max
                    ))
                    .with_details(Value::Object(details))
                }
            }
        } else {
            // A quarter of the time is kept to tell why no connection came.
            let acquire_by = after(started, self.timeout - self.timeout / 4);
            match timeout_at(acquire_by, self.pool.acquire()).await {
                Ok(Ok(conn)) => conn,
                // The pool's own acquire timeout, shorter than the check's.
                Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => {
                    return self.no_connection(deadline, &target, details).await
                }
                Ok(Err(e)) => return down(format!("no connection to {target}: {e}"), details),
            }
        };
        let acquire_ms = millis(started.elapsed());
        details.insert("acquire_ms".into(), acquire_ms.into());

        let mut lease = Lease(Some(conn));
        let probe_started = Instant::now();
        match timeout_at(deadline, lease.conn().execute(self.query.as_str())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                lease.finish(&e);
                return down(format!("`{}` on {target}: {e}", self.query), details);
            }
            Err(_) => {
                return down(
                    format!(
                        "no answer from {target} to `{}` within {budget} ms",
                        self.query
                    ),
                    details,
                )
            }
        }
        let latency_ms = millis(probe_started.elapsed());

        let about = match timeout_at(deadline, lease.conn().fetch_one(server.about)).await {
            Ok(Ok(row)) => read_about(&row, server),
            // The server's refusal leaves the connection usable; anything
            // else (I/O, protocol) means it is gone.
            Ok(Err(e @ sqlx::Error::Database(_))) => {
                Err(format!("asking {target} about itself: {e}"))
            }
            Ok(Err(e)) => return down(format!("asking {target} about itself: {e}"), details),
            Err(_) => {
                return down(
                    format!(
                        "{target} answered `{}`, then nothing within {budget} ms",
                        self.query
                    ),
                    details,
                )
            }
        };
        lease.give_back();
        let result = match about {
            Ok(about) => {
                details.extend(about);
                CheckResult::ok()
            }
            // It answered the round trip: working, but not as expected.
            Err(error) => CheckResult::degraded(redact(&error)),
        };
        result
            .with_details(Value::Object(details))
            .with_observed(latency_ms, "ms")
    }

    /// The pool gave no connection in time: saturated meanwhile (degraded),
    /// or why a connection of the check's own cannot be had (down).
    async fn no_connection(
        &self,
        deadline: tokio::time::Instant,
        target: &str,
        details: Map<String, Value>,
    ) -> CheckResult {
        let now = self.figures();
        let budget = self.timeout.as_millis();
        if now.saturated() {
            return CheckResult::degraded(format!(
                "the pool of {target} is saturated: all {} connections in use, none \
                 idle within {budget} ms",
                now.max
            ))
            .with_details(Value::Object(details));
        }
        // The pool retries refused connections quietly until its own
        // acquire timeout: one attempt outside it says what happens.
        let options = self.pool.connect_options();
        let error = match timeout_at(deadline, options.connect()).await {
            Ok(Err(e)) => format!("no connection to {target} within {budget} ms: {e}"),
            Ok(Ok(conn)) => {
                drop(conn);
                format!(
                    "the pool gave no connection to {target} within {budget} ms, though \
                     the server accepts new ones"
                )
            }
            Err(_) => format!("no connection to {target} within {budget} ms: no answer"),
        };
        CheckResult::down(redact(&error)).with_details(Value::Object(details))
    }
}

/// The version and the flag, as details.
fn read_about<R: Row>(row: &R, server: &Server) -> Result<Map<String, Value>, String>
where
    for<'r> String: Decode<'r, R::Database>,
    usize: ColumnIndex<R>,
{
    // The simple protocol returns text whatever the column's type.
    let text = |i: usize| {
        row.try_get_unchecked::<Option<String>, usize>(i)
            .map_err(|e| format!("reading `{}`: {e}", server.about))
    };
    let version = text(0)?;
    let flag = text(1)?;
    let mut about = Map::new();
    about.insert("version".into(), version.map_or(Value::Null, Value::String));
    about.insert(
        server.flag.into(),
        flag.map_or(Value::Null, |f| flag_json(&f)),
    );
    Ok(about)
}

/// A boolean as servers spell it (`t`, `1`, `ON`, ...); anything else as it is.
fn flag_json(text: &str) -> Value {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "1" | "on" | "yes" => Value::Bool(true),
        "f" | "false" | "0" | "off" | "no" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

/// `d` after `start`; a `d` too long to reach is a year (no overflow).
fn after(start: Instant, d: Duration) -> tokio::time::Instant {
    let start = tokio::time::Instant::from_std(start);
    start
        .checked_add(d)
        .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600))
}

/// Milliseconds, to the microsecond.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The pool's figures at one moment.
#[derive(Clone, Copy, Debug)]
struct Figures {
    size: u32,
    idle: usize,
    max: u32,
}

impl Figures {
    fn in_use(self) -> u64 {
        u64::from(self.size).saturating_sub(self.idle as u64)
    }

    /// Every connection the pool may have is open and none is idle.
    fn saturated(self) -> bool {
        self.size >= self.max && self.idle == 0
    }

    fn to_json(self) -> Value {
        json!({
            "size": self.size,
            "idle": self.idle,
            "in_use": self.in_use(),
            "max": self.max,
        })
    }
}

/// The connection of one run. Given back to the pool only after a complete
/// exchange; dropped otherwise (an error, a timeout, the run's future
/// dropped), it is closed, as it may still be in the middle of one.
struct Lease<DB: Database>(Option<PoolConnection<DB>>);

impl<DB: Database> Lease<DB> {
    fn conn(&mut self) -> &mut DB::Connection {
        self.0
            .as_mut()
            .expect("the connection is leased until the run ends")
    }

    /// After `error`: a server's answer leaves the connection usable,
    /// anything else (I/O, protocol) does not.
    fn finish(&mut self, error: &sqlx::Error) {
        if matches!(error, sqlx::Error::Database(_)) {
            self.give_back();
        }
    }

    /// Back to the pool, now.
    fn give_back(&mut self) {
        drop(self.0.take());
    }
}

impl<DB: Database> Drop for Lease<DB> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.0.take() {
            conn.close_on_drop();
        }
    }
}

impl<DB: Database> fmt::Debug for SqlCheck<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figures = self.figures();
        f.debug_struct("SqlCheck")
            .field("database", &DB::NAME)
            .field("target", &self.target())
            .field("timeout", &self.timeout)
            .field("query", &self.query)
            .field("pool_size", &figures.size)
            .field("pool_idle", &figures.idle)
            .field("pool_max", &figures.max)
            .finish()
    }
}

impl<DB: Database> Clone for SqlCheck<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            timeout: self.timeout,
            query: self.query.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_as_servers_spell_them() {
        for (text, shown) in [
            ("t", json!(true)),
            ("f", json!(false)),
            ("1", json!(true)),
            ("0", json!(false)),
            ("ON", json!(true)),
            ("OFF", json!(false)),
            ("NO_LOCK", json!("NO_LOCK")),
        ] {
            assert_eq!(flag_json(text), shown, "{text}");
        }
    }

    #[test]
    fn any_timeout_makes_a_deadline() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > tokio::time::Instant::from_std(now));
        assert_eq!(
            after(now, Duration::from_secs(1)),
            tokio::time::Instant::from_std(now) + Duration::from_secs(1)
        );
    }

    #[test]
    fn saturation_needs_every_connection_open_and_none_idle() {
        let f = |size, idle, max| Figures { size, idle, max };
        assert!(f(2, 0, 2).saturated());
        assert!(!f(2, 1, 2).saturated());
        assert!(!f(1, 0, 2).saturated());
        assert!(!f(0, 0, 2).saturated());
        assert_eq!(f(3, 1, 5).in_use(), 2);
        assert_eq!(f(0, 1, 5).in_use(), 0);
    }
}
