//! Seed 003: `examples/job_queue.rs` against a real `nats-server -js`.
//!
//! The example is built with `cargo build --example job_queue` (a debug
//! build; users run it with `--release`) and run as a child process; `nats-server` must be on `PATH`
//! (`scripts/test.sh` installs it). Every body is validated against
//! `tests/schemas/seed_003.json`, and the figures are compared with what
//! the test reads from JetStream itself.

#[path = "seed_clients/harness.rs"]
mod harness;

use std::time::Duration;

use futures_util::StreamExt;
use harness::{Nats, Reply, Running, TempDir};
use http::{Method, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::{json, Value};

const KEY: &str = "seed-003-key";
const LIMITED: &str = "seed-003-limited";
const SCHEMA: &str = "seed_003.json";

type Http = Client<HttpConnector, http_body_util::Full<bytes::Bytes>>;

/// A NATS server and the example talking to it.
struct App {
    nats: Nats,
    example: Running,
    url: String,
    http: Http,
    _dir: TempDir,
}

impl App {
    fn start() -> Self {
        let dir = TempDir::new("seed-003");
        let nats = Nats::start(&dir);
        let (example, addr) = harness::start_example(
            "job_queue",
            &[
                ("NATS_URL", &nats.url()),
                ("STATUS_API_KEY", KEY),
                ("STATUS_LIMITED_KEY", LIMITED),
            ],
        );
        Self {
            nats,
            example,
            url: format!("http://{addr}/health/status"),
            http: harness::client(),
            _dir: dir,
        }
    }

    async fn get(&self, headers: &[(&str, &str)]) -> Reply {
        harness::send(&self.http, Method::GET, &self.url, headers).await
    }

    /// `method` on the status path + `rest` (`?format=json`, `/a/b`).
    async fn at(&self, method: Method, rest: &str, headers: &[(&str, &str)]) -> Reply {
        let url = format!("{}{rest}", self.url);
        harness::send(&self.http, method, &url, headers).await
    }

    /// Waits until the worker is done with every job it will finish
    /// (16 completed, 2 failed, 1 dead-lettered) and returns that body.
    async fn settled(&mut self) -> Value {
        self.example.assert_running();
        let body = harness::wait_for("the worker to settle", Duration::from_secs(30), || async {
            let reply = self.get(&[("x-api-key", KEY)]).await;
            let body = reply.json();
            let done = reply.status == StatusCode::OK
                && body["status"] == "ok"
                && body["jobs"]["completed"] == 16
                && body["jobs"]["failed"] == 2
                && body["jobs"]["dlq"] == 1;
            done.then_some(body)
        })
        .await;
        // Checks and sections are cached for 1 s: let every figure catch up.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let _ = body;
        let reply = self.get(&[("x-api-key", KEY)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json());
        reply.json()
    }
}

/// Stream and bucket figures and job states, read from JetStream directly.
async fn read_jetstream(url: &str) -> (Value, Value, Value) {
    let client = async_nats::connect(url).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let jobs = js.get_stream("JOBS").await.expect("stream JOBS");
    let info = jobs.cached_info();
    let stream = json!({
        "name": "JOBS",
        "messages": info.state.messages,
        "bytes": info.state.bytes,
        "consumers": info.state.consumer_count,
    });
    let kv_stream = js
        .get_stream("KV_job-queue")
        .await
        .expect("bucket job-queue");
    let info = kv_stream.cached_info();
    let bucket = json!({
        "name": "job-queue",
        "keys": info.state.subjects_count,
        "bytes": info.state.bytes,
    });
    let store = js
        .get_key_value("job-queue")
        .await
        .expect("bucket job-queue");
    let mut keys = store.keys().await.expect("list keys");
    let mut counts = json!({
        "total": 0, "unprocessed": 0, "processing": 0, "completed": 0, "failed": 0, "dlq": 0
    });
    while let Some(key) = keys.next().await {
        let key = key.expect("a key");
        let value = store.get(&key).await.expect("read").expect("a value");
        let record: Value = serde_json::from_slice(&value).expect("a JSON record");
        let field = match record["state"].as_str().expect("a state") {
            "pending" => "unprocessed",
            other => other,
        };
        counts["total"] = json!(counts["total"].as_u64().unwrap() + 1);
        counts[field] = json!(counts[field].as_u64().expect("a known state") + 1);
    }
    (stream, bucket, counts)
}

/// An error reply: `code`, the seed's error body with its fields in the
/// seed's order (`error`, `details`, `code`).
fn assert_error(reply: &Reply, code: StatusCode) -> Value {
    assert_eq!(reply.status, code, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    harness::validate(SCHEMA, "ErrorBody", &body);
    assert_eq!(body["code"], code.as_u16());
    let text = String::from_utf8_lossy(&reply.body);
    let at = |field: &str| {
        text.find(&format!("\"{field}\":"))
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    };
    assert!(
        at("error") < at("details") && at("details") < at("code"),
        "fields not in the seed's order: {text}"
    );
    body
}

/// `HEAD` answers the status and headers of `GET`, with the length of the
/// body `GET` gets (the seed's error body, shaped by the layer).
async fn assert_head_like_get(app: &App, rest: &str, headers: &[(&str, &str)], code: StatusCode) {
    let get = app.at(Method::GET, rest, headers).await;
    let head = app.at(Method::HEAD, rest, headers).await;
    assert_eq!((get.status, head.status), (code, code), "{rest}");
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str()),
        "{rest}"
    );
    for name in ["content-type", "www-authenticate", "allow"] {
        assert_eq!(head.header(name), get.header(name), "{rest}: {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_come_from_jetstream_and_keys_are_enforced() {
    let mut app = App::start();
    let body = app.settled().await;
    harness::validate(SCHEMA, "StatusBody", &body);

    assert_eq!(body["status"], "ok");
    assert_eq!(body["components"], json!({ "nats": { "status": "ok" } }));
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime"].as_str().unwrap().ends_with('s'));
    assert_eq!(body["nats"]["url"], app.nats.url());
    assert_eq!(body["nats"]["version"], harness::nats_server_version());

    // What the example's worker did, by construction: 24 jobs, 4 of them
    // on a queue without a worker, 1 running for ever, 2 failing for good,
    // 1 dead-lettered after 3 attempts; 25 messages with the dead letter.
    assert_eq!(
        body["jobs"],
        json!({ "total": 24, "unprocessed": 4, "processing": 1,
                "completed": 16, "failed": 2, "dlq": 1 })
    );
    assert_eq!(body["streams"][0]["messages"], 25);
    assert_eq!(body["streams"][0]["consumers"], 1);
    assert_eq!(body["kv_buckets"][0]["keys"], 24);

    // And the same figures, read from JetStream by the test itself.
    let (stream, bucket, counts) = read_jetstream(&app.nats.url()).await;
    assert_eq!(body["streams"], json!([stream]));
    assert_eq!(body["kv_buckets"], json!([bucket]));
    assert_eq!(body["jobs"], counts);

    // Bearer works as well as X-API-Key.
    let bearer = format!("Bearer {KEY}");
    let reply = app.get(&[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    harness::validate(SCHEMA, "StatusBody", &reply.json());

    // No key, an unknown key: 401 in the seed's error shape.
    let reply = app.get(&[]).await;
    let none = assert_error(&reply, StatusCode::UNAUTHORIZED);
    assert_eq!(none["error"], "Unauthorized - API key required.");
    assert!(reply.header("www-authenticate").is_some());
    assert_error(
        &app.get(&[("x-api-key", "nope")]).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_error(
        &app.get(&[("authorization", "Bearer nope")]).await,
        StatusCode::UNAUTHORIZED,
    );
    // A valid key without the permission: 403.
    let forbidden = assert_error(
        &app.get(&[("x-api-key", LIMITED)]).await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(forbidden["error"], "Forbidden - Insufficient permissions.");
    let bearer = format!("Bearer {LIMITED}");
    assert_error(
        &app.get(&[("authorization", &bearer)]).await,
        StatusCode::FORBIDDEN,
    );

    // HEAD announces the length of what GET gets; other methods get 405.
    let get = app.get(&[]).await;
    let head = harness::send(&app.http, Method::HEAD, &app.url, &[]).await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );
    let head = harness::send(&app.http, Method::HEAD, &app.url, &[("x-api-key", KEY)]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    let post = harness::send(&app.http, Method::POST, &app.url, &[("x-api-key", KEY)]).await;
    let body = assert_error(&post, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "Method Not Allowed");
    assert_eq!(
        body["details"],
        "only GET and HEAD are allowed on the status endpoint"
    );
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    assert_head_like_get(&app, "", &[("x-api-key", LIMITED)], StatusCode::FORBIDDEN).await;

    // The seed's body is the only one served: the crate's own formats are
    // off, so asking for them is a 400 in the seed's error shape.
    for query in ["?format=json", "?format=ietf", "?format=nope"] {
        let reply = app.at(Method::GET, query, &[("x-api-key", KEY)]).await;
        let body = assert_error(&reply, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "Bad Request", "{query}");
    }
    assert_head_like_get(
        &app,
        "?format=json",
        &[("x-api-key", KEY)],
        StatusCode::BAD_REQUEST,
    )
    .await;
    let reply = app
        .at(
            Method::GET,
            "",
            &[("x-api-key", KEY), ("accept", "application/health+json")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    harness::validate(SCHEMA, "StatusBody", &reply.json());
    // Below the status path: 404 in the seed's shape.
    let reply = app.at(Method::GET, "/a/b", &[("x-api-key", KEY)]).await;
    assert_eq!(
        assert_error(&reply, StatusCode::NOT_FOUND)["error"],
        "Not Found"
    );
    app.example.assert_running();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_outage_is_503_with_the_error_and_recovers() {
    let mut app = App::start();
    let before = app.settled().await;
    assert_eq!(before["status"], "ok");

    app.nats.stop();
    // The check and the `jobs` section have caches of their own (1 s each,
    // from their own last runs): for up to a second after the first 503 the
    // section may still show the counts read before the outage. Wait until
    // both have seen it, rather than hope they expire together.
    let down = harness::wait_for(
        "503 without JetStream figures after NATS stopped",
        Duration::from_secs(10),
        || async {
            let reply = app.get(&[("x-api-key", KEY)]).await;
            let body = reply.json();
            let caught_up = ["streams", "kv_buckets", "jobs"]
                .iter()
                .all(|figures| body.get(figures).is_none());
            (reply.status == StatusCode::SERVICE_UNAVAILABLE && caught_up).then_some(body)
        },
    )
    .await;
    harness::validate(SCHEMA, "StatusBody", &down);
    assert_eq!(down["status"], "unhealthy");
    assert_eq!(down["components"]["nats"]["status"], "unhealthy");
    let error = down["components"]["nats"]["error"].as_str().unwrap();
    assert!(error.contains(&app.nats.url()), "{error}");
    // Nothing is invented while NATS is away.
    assert_eq!(down["nats"], json!({ "url": app.nats.url() }));
    for absent in ["streams", "kv_buckets", "jobs"] {
        assert!(down.get(absent).is_none(), "{absent} in {down}");
    }
    // Access is still decided first: no key is 401, not 503.
    assert_error(&app.get(&[]).await, StatusCode::UNAUTHORIZED);
    assert_error(
        &app.get(&[("x-api-key", LIMITED)]).await,
        StatusCode::FORBIDDEN,
    );

    app.nats.restart();
    let back = harness::wait_for(
        "recovery after NATS restarted",
        Duration::from_secs(20),
        || async {
            let reply = app.get(&[("x-api-key", KEY)]).await;
            let body = reply.json();
            (reply.status == StatusCode::OK && body["status"] == "ok" && body.get("jobs").is_some())
                .then_some(body)
        },
    )
    .await;
    harness::validate(SCHEMA, "StatusBody", &back);
    assert_eq!(back["components"], json!({ "nats": { "status": "ok" } }));
    assert_eq!(back["nats"]["version"], harness::nats_server_version());
    // The server kept its store: the same jobs are there.
    assert_eq!(back["jobs"]["total"], 24);
    assert_eq!(back["kv_buckets"][0]["keys"], 24);
    app.example.assert_running();
}
