//! A job queue on NATS JetStream with the status contract of seed 003:
//! `GET /health/status`, behind an API key, with per-component health, the
//! NATS server, JetStream stream and KV statistics and job counts.
//!
//! ```sh
//! nats-server -js &
//! cargo run --release --example job_queue
//! curl -H 'X-API-Key: dev-key' localhost:3000/health/status
//! curl -H 'Authorization: Bearer dev-key' localhost:3000/health/status
//! ```
//!
//! Environment:
//!
//! - `STATUS_ADDR` (default `127.0.0.1:3000`): where to listen (port 0: any
//!   free port; the bound address is printed: `listening on http://ADDR/...`);
//! - `NATS_URL` (default `nats://127.0.0.1:4222`): the NATS server, with JetStream;
//! - `STATUS_API_KEY` (default `dev-key`): a key that may see the status;
//! - `STATUS_LIMITED_KEY` (default `limited-key`): a valid key without the
//!   permission (answered 403).
//!
//! At start (and, while NATS is unreachable, once it is there) the example
//! **resets** stream `JOBS` and KV bucket `job-queue` on that server, then
//! enqueues 24 jobs and runs a worker for the `email` queue:
//!
//! - every job has a record in `job-queue` (`job-001` ...) with its state:
//!   `pending`, `processing`, `completed`, `failed` or `dlq`;
//! - 20 jobs go to `jobs.email`, which the worker consumes (durable pull
//!   consumer `email-worker`, at most 3 deliveries); 4 go to `jobs.report`,
//!   which has no worker in this demo and stays unprocessed;
//! - job 7 runs for ever (the worker keeps extending its ack deadline), jobs 5
//!   and 15 fail for good, job 12 fails once and then succeeds, job 10 fails
//!   every attempt and goes to the dead-letter subject `jobs.dlq`.
//!
//! Every figure in the body is read from JetStream when the status is asked
//! for: `nats`, `streams` and `kv_buckets` by the crate's `NatsCheck`,
//! `jobs` by the `jobs` section from the bucket's records.
//!
//! Error bodies follow the seed (`{"error", "details", "code": 401}`): the
//! layer answers 401/403 (and 400/404/405) itself, shaped by its error
//! format (`seed_error`), with its own headers (`WWW-Authenticate`,
//! `Allow`); `HEAD` gets the same status and headers, with the
//! `Content-Length` of that body. The seed's body is the only one served:
//! the crate's own formats are off, so `?format=json` is a 400 in the
//! seed's error shape.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, consumer::pull, kv, stream, AckKind};
use axum::{routing::get, Router};
use futures_util::StreamExt;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::OnceCell;
use tower_status::auth::{ApiKeys, Identity, Permissions};
use tower_status::check::{HealthCheck, NatsCheck};
use tower_status::format::{FormatContext, Rendered, StatusError};
use tower_status::report::Component;
use tower_status::{Report, Status, StatusLayer};

const STATUS_PATH: &str = "/health/status";
const STREAM: &str = "JOBS";
const BUCKET: &str = "job-queue";
const CONSUMER: &str = "email-worker";
const MAX_DELIVER: i64 = 3;

/// The JetStream handles the `jobs` section reads, once set up.
type Queue = Arc<OnceCell<(async_nats::Client, jetstream::Context)>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    let nats_url = var("NATS_URL", "nats://127.0.0.1:4222");
    let status_key = var("STATUS_API_KEY", "dev-key");
    let limited_key = var("STATUS_LIMITED_KEY", "limited-key");

    let queue: Queue = Arc::default();
    tokio::spawn(run_queue(nats_url.clone(), Arc::clone(&queue)));

    let nats = NatsCheck::new(&nats_url)
        .streams([STREAM])
        .kv_buckets([BUCKET])
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_millis(800));
    let jobs_queue = Arc::clone(&queue);
    let layer = StatusLayer::new()
        .path(STATUS_PATH)
        .service_name("job-queue")
        .version(tower_status::app_version!())
        // X-API-Key (header names are case-insensitive) or Authorization: Bearer.
        .api_keys(
            ApiKeys::new()
                .key(status_key, Identity::new("operator"))
                .key(
                    limited_key,
                    Identity::new("limited").permissions(Permissions::NONE),
                ),
        )
        .check(HealthCheck::new("nats", nats).component_type("messaging"))
        .section("jobs", move || {
            let queue = Arc::clone(&jobs_queue);
            async move {
                match job_counts(&queue).await {
                    Ok(counts) => json!(counts),
                    Err(error) => json!({ "error": error }),
                }
            }
        })
        .default_format(seed_format)
        .serve_builtin_formats(false)
        .error_format(seed_error);

    let app = Router::new()
        .route(
            "/",
            get(|| async { "job-queue demo; status at /health/status\n" }),
        )
        .layer(layer);

    let addr = var("STATUS_ADDR", "127.0.0.1:3000");
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    // The bound address (the port is the system's choice with port 0),
    // flushed at once: a test reads this line to know where to connect.
    println!(
        "listening on http://{}{STATUS_PATH}",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The seed's body.

/// `ComponentHealth` of the seed.
#[derive(Serialize)]
struct ComponentHealth<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The seed's 200/503 body, fields in the seed's order.
#[derive(Serialize)]
struct Body003<'a> {
    status: &'static str,
    components: BTreeMap<&'a str, ComponentHealth<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    uptime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nats: Option<NatsServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    streams: Option<Vec<StreamStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kv_buckets: Option<Vec<BucketStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs: Option<JobCounts>,
}

/// `nats` of the seed, from the `NatsCheck` details.
#[derive(Serialize, Deserialize)]
struct NatsServer {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

/// One of `streams`, from the `NatsCheck` details (typed to keep the
/// seed's field order).
#[derive(Serialize, Deserialize)]
struct StreamStats {
    name: String,
    messages: u64,
    bytes: u64,
    consumers: u64,
}

/// One of `kv_buckets`, from the `NatsCheck` details.
#[derive(Serialize, Deserialize)]
struct BucketStats {
    name: String,
    keys: u64,
    bytes: u64,
}

/// `value[name]` read as `T`, when there and of that shape.
fn typed<T: serde::de::DeserializeOwned>(value: Option<&Value>, name: &str) -> Option<T> {
    serde_json::from_value(value?.get(name)?.clone()).ok()
}

fn word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Degraded => "degraded",
        Status::Down => "unhealthy",
        Status::Maintenance => "maintenance",
    }
}

/// The crate's report in the shape of seed 003. The HTTP status is the
/// crate's: 200 for ok/degraded, 503 when NATS (critical) is down.
fn seed_format(report: &Report, ctx: &FormatContext<'_>) -> Rendered {
    let components = report
        .components
        .iter()
        .map(|(name, c): (&String, &Component)| {
            let health = ComponentHealth {
                status: word(c.status),
                error: c.error.as_deref(),
            };
            (name.as_str(), health)
        })
        .collect();
    let nats = report
        .components
        .get("nats")
        .and_then(|c| c.details.as_ref());
    let body = Body003 {
        status: word(report.status),
        components,
        version: report.version.as_deref(),
        uptime: go_duration(report.uptime_seconds),
        nats: nats.and_then(|d| serde_json::from_value(d.clone()).ok()),
        streams: typed(nats, "streams"),
        kv_buckets: typed(nats, "kv_buckets"),
        // A section that failed holds `{"error": ..}`, which does not read
        // as counts: they are left out rather than invented, and the `nats`
        // component says why.
        jobs: report
            .sections
            .get("jobs")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    };
    Rendered::json(ctx.status_code(), &body)
}

/// Whole seconds as Go prints a `time.Duration`, without trailing zero
/// units: `45s`, `1m5s`, `2h30m`, `2h0m5s`, `0s`.
fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || (h > 0 && s > 0) {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

// ---------------------------------------------------------------------------
// Error bodies.

/// The seed's error body, fields in the seed's order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    /// A description of the error that occurred.
    error: &'a str,
    /// Additional details about the error: the crate's own reason.
    details: &'a str,
    /// The error code: the HTTP status, as in the seed's example (500).
    code: u16,
}

/// The endpoint's errors in the seed's shape, with the seed's words for
/// its documented 401 and 403 and the HTTP reason phrase for the others.
fn seed_error(err: &StatusError) -> Rendered {
    let error = match err.status {
        StatusCode::UNAUTHORIZED => "Unauthorized - API key required.",
        StatusCode::FORBIDDEN => "Forbidden - Insufficient permissions.",
        other => other.canonical_reason().unwrap_or(err.code.as_str()),
    };
    Rendered::json(
        err.status,
        &ErrorBody {
            error,
            details: &err.message,
            code: err.status.as_u16(),
        },
    )
}

// ---------------------------------------------------------------------------
// The queue: set-up, worker and counts, all on JetStream.

/// A job's record in the `job-queue` bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct JobRecord {
    id: u32,
    queue: String,
    state: String,
    attempts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The seed's `jobs` object.
#[derive(Debug, Default, Serialize, Deserialize)]
struct JobCounts {
    total: u64,
    unprocessed: u64,
    processing: u64,
    completed: u64,
    failed: u64,
    dlq: u64,
}

/// Counts the records of the bucket by state, as they are now.
async fn job_counts(queue: &Queue) -> Result<JobCounts, String> {
    let Some((client, js)) = queue.get() else {
        return Err("the job queue is not set up yet (waiting for NATS)".to_owned());
    };
    // Fail fast rather than wait out request timeouts while disconnected.
    if client.connection_state() != State::Connected {
        return Err("not connected to NATS".to_owned());
    }
    let store = js
        .get_key_value(BUCKET)
        .await
        .map_err(|e| format!("KV bucket {BUCKET}: {e}"))?;
    let mut keys = store
        .keys()
        .await
        .map_err(|e| format!("listing keys of {BUCKET}: {e}"))?;
    let mut counts = JobCounts::default();
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| format!("listing keys of {BUCKET}: {e}"))?;
        let Some(value) = store
            .get(&key)
            .await
            .map_err(|e| format!("reading {key}: {e}"))?
        else {
            continue; // deleted between the listing and the read
        };
        let record: JobRecord =
            serde_json::from_slice(&value).map_err(|e| format!("record {key}: {e}"))?;
        counts.total += 1;
        match record.state.as_str() {
            "pending" => counts.unprocessed += 1,
            "processing" => counts.processing += 1,
            "completed" => counts.completed += 1,
            "failed" => counts.failed += 1,
            "dlq" => counts.dlq += 1,
            other => return Err(format!("record {key}: unknown state {other:?}")),
        }
    }
    Ok(counts)
}

/// Sets the queue up (retrying while NATS is unreachable), then works.
async fn run_queue(url: String, queue: Queue) {
    let (client, js, store) = loop {
        match set_up(&url).await {
            Ok(ready) => break ready,
            Err(e) => {
                eprintln!("job queue: set-up on {url} failed: {e}; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let _ = queue.set((client, js.clone()));
    eprintln!("job queue: stream {STREAM} and bucket {BUCKET} ready; worker started");
    worker(js, store).await;
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn set_up(
    url: &str,
) -> Result<(async_nats::Client, jetstream::Context, kv::Store), BoxError> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .name("job-queue-example")
        .connect(url)
        .await?;
    let js = jetstream::new(client.clone());
    // A fresh demo each start: earlier runs' jobs would skew the figures.
    let _ = js.delete_stream(STREAM).await;
    let _ = js.delete_key_value(BUCKET).await;
    let stream = js
        .create_stream(stream::Config {
            name: STREAM.to_owned(),
            subjects: vec!["jobs.>".to_owned()],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    // `create_key_value` of async-nats 0.46 first reads the account info,
    // and cannot parse a 2.9 server's reply to that; the bucket's backing
    // stream is created here with the settings it would use (history 1).
    js.create_stream(stream::Config {
        name: format!("KV_{BUCKET}"),
        subjects: vec![format!("$KV.{BUCKET}.>")],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    })
    .await?;
    let store = js.get_key_value(BUCKET).await?;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(CONSUMER.to_owned()),
            filter_subject: "jobs.email".to_owned(),
            ack_wait: Duration::from_secs(30),
            max_deliver: MAX_DELIVER,
            ..Default::default()
        })
        .await?;
    for id in 1..=24u32 {
        let queue = if id <= 20 { "email" } else { "report" };
        let record = JobRecord {
            id,
            queue: queue.to_owned(),
            state: "pending".to_owned(),
            attempts: 0,
            error: None,
        };
        store
            .put(job_key(id), serde_json::to_vec(&record)?.into())
            .await?;
        let payload = json!({ "id": id, "queue": queue }).to_string();
        js.publish(format!("jobs.{queue}"), payload.into())
            .await?
            .await?;
    }
    Ok((client, js, store))
}

fn job_key(id: u32) -> String {
    format!("job-{id:03}")
}

async fn record(store: &kv::Store, record: &JobRecord) {
    let bytes = match serde_json::to_vec(record) {
        Ok(bytes) => bytes,
        Err(e) => return eprintln!("job {}: {e}", record.id),
    };
    if let Err(e) = store.put(job_key(record.id), bytes.into()).await {
        eprintln!("job {}: recording state {}: {e}", record.id, record.state);
    }
}

/// Consumes `jobs.email` for ever; survives NATS restarts.
async fn worker(js: jetstream::Context, store: kv::Store) {
    loop {
        let messages = async {
            let consumer: jetstream::consumer::PullConsumer =
                js.get_stream(STREAM).await?.get_consumer(CONSUMER).await?;
            Ok::<_, BoxError>(consumer.messages().await?)
        };
        let mut messages = match messages.await {
            Ok(m) => m,
            Err(e) => {
                eprintln!("worker: {e}; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => handle(&js, &store, message).await,
                // Missed heartbeats while NATS is away: the stream goes on.
                Err(e) => eprintln!("worker: {e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Processes one delivery of a job.
async fn handle(js: &jetstream::Context, store: &kv::Store, message: jetstream::Message) {
    let attempt = message.info().map_or(1, |i| i.delivered);
    let Some(id) = serde_json::from_slice::<Value>(&message.payload)
        .ok()
        .and_then(|v| v.get("id")?.as_u64())
        .and_then(|id| u32::try_from(id).ok())
    else {
        let _ = message.ack_with(AckKind::Term).await;
        return;
    };
    let mut job = JobRecord {
        id,
        queue: "email".to_owned(),
        state: "processing".to_owned(),
        attempts: attempt,
        error: None,
    };
    record(store, &job).await;

    let outcome: Result<(), (bool, &str)> = match id {
        // Runs for ever: the ack deadline is extended while it "works".
        7 => {
            tokio::spawn(async move {
                loop {
                    let _ = message.ack_with(AckKind::Progress).await;
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
            });
            return;
        }
        5 | 15 => Err((false, "invalid recipient address")),
        10 => Err((true, "SMTP relay timed out")),
        12 if attempt == 1 => Err((true, "SMTP relay timed out")),
        _ => {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok(())
        }
    };
    match outcome {
        Ok(()) => {
            job.state = "completed".to_owned();
            record(store, &job).await;
            let _ = message.double_ack().await;
        }
        Err((retryable, why)) if retryable && attempt < MAX_DELIVER => {
            job.state = "pending".to_owned();
            job.error = Some(why.to_owned());
            record(store, &job).await;
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_millis(100))))
                .await;
        }
        Err((retryable, why)) => {
            job.error = Some(why.to_owned());
            if retryable {
                // Out of attempts: to the dead-letter subject.
                let dead = json!({ "id": id, "error": why, "attempts": attempt }).to_string();
                match js.publish("jobs.dlq", dead.into()).await {
                    Ok(ack) => {
                        let _ = ack.await;
                    }
                    Err(e) => eprintln!("job {id}: dead-lettering: {e}"),
                }
                job.state = "dlq".to_owned();
            } else {
                job.state = "failed".to_owned();
            }
            record(store, &job).await;
            let _ = message.ack_with(AckKind::Term).await;
        }
    }
}
