//! [`NatsCheck`]: a NATS server, its JetStream streams and KV buckets
//! (feature `nats`).
//!
//! The check connects once and keeps the client: async-nats reconnects it in
//! the background whenever the server goes away, and the check reports the
//! component down for as long as the client is not connected. Each run then
//! proves a round trip through the server (a message published to the
//! check's own inbox must come back within the timeout) and reads the
//! statistics of JetStream streams and key-value buckets.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_status::check::{HealthCheck, NatsCheck};
//! use tower_status::StatusLayer;
//!
//! let nats = NatsCheck::new("nats://127.0.0.1:4222")
//!     .streams(["JOBS"])
//!     .kv_buckets(["job-queue"])
//!     .connect_timeout(Duration::from_millis(500))
//!     .timeout(Duration::from_secs(1));
//! let layer = StatusLayer::new()
//!     .check(HealthCheck::new("nats", nats).component_type("messaging"));
//! # let _ = layer;
//! ```
//!
//! A healthy run has details like:
//!
//! ```json
//! {
//!   "url": "nats://127.0.0.1:4222",
//!   "version": "2.10.0",
//!   "streams": [{ "name": "JOBS", "messages": 42, "bytes": 1024, "consumers": 1 }],
//!   "kv_buckets": [{ "name": "job-queue", "keys": 10, "bytes": 2048 }]
//! }
//! ```
//!
//! and the round trip in milliseconds as its observed value. An unreachable
//! or disconnected server is `down` with the error text; a connected server
//! whose JetStream statistics cannot be read (JetStream off, a configured
//! stream missing) is `degraded`, with the statistics that could be read.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::jetstream::{self, stream};
use async_nats::{Client, ConnectOptions, Subscriber};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use super::{redact, BoxFuture, Check, CheckResult};

/// Makes the connect options the check starts from (credentials, TLS, ...).
type OptionsFn = Box<dyn Fn() -> ConnectOptions + Send + Sync>;

/// Checks a NATS server: connected, a round trip within the timeout, and
/// the statistics of JetStream streams and KV buckets.
///
/// By default every stream and every KV bucket of the account is reported
/// (the `KV_*` and `OBJ_*` streams that back KV buckets and object stores
/// are not listed among `streams`); [`streams`](Self::streams) and
/// [`kv_buckets`](Self::kv_buckets) narrow that to the ones named, and a
/// named one that is missing makes the check `degraded`. `keys` of a bucket
/// is the number of keys holding a value or a delete marker (the backing
/// stream's subject count), read without scanning the bucket.
///
/// The first run connects, with a bounded attempt (no background retry of
/// the initial connect); a failed connect is reported `down` with the
/// error, and the next run tries again. Once connected, the client is kept
/// and reconnects on its own.
///
/// ```
/// use std::time::Duration;
/// use tower_status::check::NatsCheck;
///
/// let check = NatsCheck::new("nats://user:secret@127.0.0.1:4222").timeout(Duration::from_millis(800));
/// assert_eq!(check.url(), "nats://user:secret@127.0.0.1:4222");
/// // Credentials never reach the report.
/// assert_eq!(check.shown_url(), "nats://***@127.0.0.1:4222");
/// ```
pub struct NatsCheck {
    url: String,
    shown_url: String,
    connect_timeout: Duration,
    timeout: Duration,
    jetstream: bool,
    streams: Option<Vec<String>>,
    kv_buckets: Option<Vec<String>>,
    options: Option<OptionsFn>,
    conn: tokio::sync::OnceCell<Connection>,
}

impl fmt::Debug for NatsCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsCheck")
            .field("url", &self.shown_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("jetstream", &self.jetstream)
            .field("streams", &self.streams)
            .field("kv_buckets", &self.kv_buckets)
            .field("connected", &self.conn.initialized())
            .finish_non_exhaustive()
    }
}

/// The kept client, and the inbox the round trip goes through.
struct Connection {
    client: Client,
    inbox: String,
    echo: tokio::sync::Mutex<Subscriber>,
    seq: AtomicU64,
    /// The last connection event, for the error text while disconnected.
    last_event: Arc<Mutex<Option<String>>>,
}

impl NatsCheck {
    /// Checks the server at `url` (`nats://host:port`, or a comma-separated
    /// list), with a 1 s connect timeout and a 1 s timeout for the round
    /// trip and for the statistics; every stream and KV bucket is reported.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            shown_url: redact(&url),
            url,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            jetstream: true,
            streams: None,
            kv_buckets: None,
            options: None,
            conn: tokio::sync::OnceCell::new(),
        }
    }

    /// How long one connect attempt may take.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "NatsCheck::connect_timeout must be greater than zero"
        );
        self.connect_timeout = timeout;
        self
    }

    /// How long the round trip, and then the statistics, may each take.
    /// Keep it below the [`HealthCheck`](super::HealthCheck) timeout
    /// (2 s by default) to get this check's own error text.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "NatsCheck::timeout must be greater than zero"
        );
        self.timeout = timeout;
        self
    }

    /// Reports only these streams (a missing one makes the check degraded).
    #[must_use]
    pub fn streams<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.streams = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Reports only these KV buckets (a missing one makes the check degraded).
    #[must_use]
    pub fn kv_buckets<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.kv_buckets = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Whether to read JetStream statistics (default `true`); turn it off
    /// for a server without JetStream, where only the connection counts.
    #[must_use]
    pub fn jetstream(mut self, read: bool) -> Self {
        self.jetstream = read;
        self
    }

    /// Starts each connect from these options (credentials, TLS, a
    /// connection name). The check then sets its own connect timeout, turns
    /// off the background retry of the initial connect and installs its
    /// event callback.
    #[must_use]
    pub fn connect_options<F>(mut self, options: F) -> Self
    where
        F: Fn() -> ConnectOptions + Send + Sync + 'static,
    {
        self.options = Some(Box::new(options));
        self
    }

    /// The URL connected to, as given.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as the report shows it: any user and password replaced by `***`.
    #[must_use]
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// One bounded connect attempt.
    async fn connect(&self) -> Result<Connection, String> {
        let last_event = Arc::new(Mutex::new(None::<String>));
        let events = Arc::clone(&last_event);
        let options = match &self.options {
            Some(make) => make(),
            None => ConnectOptions::new(),
        };
        // `retry_on_initial_connect` stays off: a failed connect returns its
        // error instead of retrying forever in the background.
        let options = options
            .connection_timeout(self.connect_timeout)
            .event_callback(move |event| {
                let events = Arc::clone(&events);
                async move {
                    *events.lock().unwrap_or_else(|e| e.into_inner()) = Some(event.to_string());
                }
            });
        // The connect timeout bounds the TCP connect; this bounds the whole
        // attempt (DNS, handshake, every server of a list).
        let bound = self.connect_timeout.saturating_mul(2);
        let client = match tokio::time::timeout(bound, options.connect(self.url.as_str())).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(format!("connect to {}: {e}", self.shown_url)),
            Err(_) => {
                return Err(format!(
                    "connect to {} timed out after {} ms",
                    self.shown_url,
                    bound.as_millis()
                ))
            }
        };
        let inbox = client.new_inbox();
        let echo = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| format!("subscribe on {}: {e}", self.shown_url))?;
        Ok(Connection {
            client,
            inbox,
            echo: tokio::sync::Mutex::new(echo),
            seq: AtomicU64::new(0),
            last_event,
        })
    }

    async fn run(&self) -> CheckResult {
        let url = self.shown_url.as_str();
        let conn = match self.conn.get_or_try_init(|| self.connect()).await {
            Ok(conn) => conn,
            Err(error) => return CheckResult::down(error).with_details(json!({ "url": url })),
        };
        let state = conn.client.connection_state();
        if state != State::Connected {
            let last = conn
                .last_event
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_else(|| "not connected yet".to_owned());
            return CheckResult::down(format!(
                "not connected to {url} (last event: {last}); reconnecting"
            ))
            .with_details(json!({ "url": url }));
        }
        let started = Instant::now();
        if let Err(error) = self.round_trip(conn).await {
            return CheckResult::down(error).with_details(json!({ "url": url }));
        }
        let rtt_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;

        let mut details = Map::new();
        details.insert("url".into(), url.into());
        details.insert("version".into(), conn.client.server_info().version.into());
        let mut problems = Vec::new();
        if self.jetstream {
            let stats = self.statistics(&conn.client);
            match tokio::time::timeout(self.timeout, stats).await {
                Ok(stats) => {
                    details.insert("streams".into(), Value::Array(stats.streams));
                    details.insert("kv_buckets".into(), Value::Array(stats.kv_buckets));
                    problems = stats.problems;
                }
                Err(_) => problems.push(format!(
                    "JetStream statistics not received within {} ms",
                    self.timeout.as_millis()
                )),
            }
        }
        let result = if problems.is_empty() {
            CheckResult::ok()
        } else {
            CheckResult::degraded(problems.join("; "))
        };
        result
            .with_details(Value::Object(details))
            .with_observed(rtt_ms, "ms")
    }

    /// Publishes to the check's own inbox and waits for the message to come
    /// back through the server.
    async fn round_trip(&self, conn: &Connection) -> Result<(), String> {
        let url = self.shown_url.as_str();
        let run = async {
            let mut echo = conn.echo.lock().await;
            let token = conn.seq.fetch_add(1, Ordering::Relaxed).to_string();
            conn.client
                .publish(conn.inbox.clone(), token.clone().into())
                .await
                .map_err(|e| format!("publish to {url}: {e}"))?;
            conn.client
                .flush()
                .await
                .map_err(|e| format!("flush to {url}: {e}"))?;
            // Earlier runs that timed out may have left their echo behind.
            while let Some(msg) = echo.next().await {
                if msg.payload.as_ref() == token.as_bytes() {
                    return Ok(());
                }
            }
            Err(format!("the connection to {url} was closed"))
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no round trip through {url} within {} ms",
                self.timeout.as_millis()
            )),
        }
    }

    /// Stream and bucket statistics; what cannot be read is in `problems`.
    async fn statistics(&self, client: &Client) -> Stats {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(self.timeout);
        let mut stats = Stats::default();
        let listed: Vec<stream::Info> = if self.streams.is_none() || self.kv_buckets.is_none() {
            match js.streams().try_collect().await {
                Ok(all) => all,
                Err(e) => {
                    stats
                        .problems
                        .push(format!("listing JetStream streams: {e}"));
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };

        match &self.streams {
            Some(names) => {
                for name in names {
                    match js.get_stream(name).await {
                        Ok(s) => stats.streams.push(stream_json(s.cached_info())),
                        Err(e) => stats.problems.push(format!("stream {name}: {e}")),
                    }
                }
            }
            None => {
                let mut own: Vec<&stream::Info> = listed
                    .iter()
                    .filter(|i| !is_backing_stream(&i.config.name))
                    .collect();
                own.sort_by(|a, b| a.config.name.cmp(&b.config.name));
                stats.streams = own.into_iter().map(stream_json).collect();
            }
        }

        match &self.kv_buckets {
            Some(names) => {
                for name in names {
                    match js.get_stream(format!("KV_{name}")).await {
                        Ok(s) => stats.kv_buckets.push(bucket_json(name, s.cached_info())),
                        Err(e) => stats.problems.push(format!("KV bucket {name}: {e}")),
                    }
                }
            }
            None => {
                let mut buckets: Vec<(&str, &stream::Info)> = listed
                    .iter()
                    .filter_map(|i| i.config.name.strip_prefix("KV_").map(|b| (b, i)))
                    .collect();
                buckets.sort_by(|a, b| a.0.cmp(b.0));
                stats.kv_buckets = buckets
                    .into_iter()
                    .map(|(name, info)| bucket_json(name, info))
                    .collect();
            }
        }
        stats
    }
}

#[derive(Default)]
struct Stats {
    streams: Vec<Value>,
    kv_buckets: Vec<Value>,
    problems: Vec<String>,
}

/// Streams that back KV buckets and object stores.
fn is_backing_stream(name: &str) -> bool {
    name.starts_with("KV_") || name.starts_with("OBJ_")
}

fn stream_json(info: &stream::Info) -> Value {
    json!({
        "name": info.config.name,
        "messages": info.state.messages,
        "bytes": info.state.bytes,
        "consumers": info.state.consumer_count,
    })
}

fn bucket_json(name: &str, info: &stream::Info) -> Value {
    json!({
        "name": name,
        "keys": info.state.subjects_count,
        "bytes": info.state.bytes,
    })
}

impl Check for NatsCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_is_down_with_the_error() {
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let url = format!("nats://127.0.0.1:{port}");
        let check = NatsCheck::new(url.clone()).connect_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let result = check.check().await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(result.status, crate::Status::Down);
        let error = result.error.unwrap_or_default();
        assert!(error.starts_with(&format!("connect to {url}")), "{error}");
        assert_eq!(result.details, Some(json!({ "url": url })));
    }
}
