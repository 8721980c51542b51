//! Seed 004: `examples/api_account.rs` as a child process, with its two
//! dependencies (storage, search) played by TCP listeners of the test.
//!
//! The example is built with `cargo build --example api_account` (a debug
//! build; users run it with `--release`).
//! Every body is validated against `tests/schemas/seed_004.json`, and the
//! seed's own Python client (`tests/seed_clients/seed_004_client.py`, run
//! through `run_seed_004.py`, which substitutes only the URL and the key)
//! is run with `python3` and its printed lines checked.

#[path = "seed_clients/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::{HeldPort, Reply, Running, TempDir};
use http::{Method, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::Value;

const SCHEMA: &str = "seed_004.json";
const KEYS: &str = "std-key:standard:1000,pro-key:pro:5000";

type Http = Client<HttpConnector, http_body_util::Full<bytes::Bytes>>;

/// A dependency: a TCP listener that accepts while it is up. Its port
/// stays held while it is down (connections are refused, and no other
/// program can take the port), so it comes back on the same port.
struct Dependency {
    port: HeldPort,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Dependency {
    async fn start() -> Self {
        let mut dep = Self {
            port: HeldPort::loopback(),
            task: None,
        };
        dep.up().await;
        dep
    }

    /// Listens (again) on its port.
    async fn up(&mut self) {
        let listener = self.port.listen().expect("listen on the dependency's port");
        self.task = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }));
    }

    /// Stops listening: connects are refused from now on.
    async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn addr(&self) -> String {
        self.port.addr.to_string()
    }
}

struct App {
    example: Running,
    base: String,
    http: Http,
    storage: Dependency,
    search: Dependency,
    maintenance: PathBuf,
    dir: TempDir,
}

impl App {
    async fn start(keys: &str) -> Self {
        let dir = TempDir::new("seed-004");
        let storage = Dependency::start().await;
        let search = Dependency::start().await;
        let maintenance = dir.path().join("maintenance.json");
        let env = [
            ("API_KEYS", keys.to_owned()),
            ("STORAGE_ADDR", storage.addr()),
            ("SEARCH_ADDR", search.addr()),
            ("MAINTENANCE_FILE", maintenance.display().to_string()),
            ("DATACENTER", "test-dc".to_owned()),
            ("APP_ENV", "staging".to_owned()),
        ];
        // Building and starting block: off the runtime's threads.
        let started = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, &v[..])).collect();
            harness::start_example("api_account", &env)
        })
        .await;
        let (example, addr) = started.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        Self {
            example,
            base: format!("http://{addr}"),
            http: harness::client(),
            storage,
            search,
            maintenance,
            dir,
        }
    }

    async fn request(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let url = format!("{}{path}", self.base);
        harness::send(&self.http, method, &url, headers).await
    }

    /// Waits until readiness (open without a key) answers `code` with the
    /// crate's `status` word, and a `/v1/status/watch` event says the same.
    async fn assert_layer_agrees(&self, code: StatusCode, status: &str) {
        let what = format!("readiness {code} {status}");
        harness::wait_for(&what, Duration::from_secs(10), || async {
            let reply = self.request(Method::GET, "/v1/status/ready", &[]).await;
            (reply.status == code && reply.json()["status"] == status).then_some(())
        })
        .await;
        let url = format!("{}/v1/status/watch", self.base);
        harness::watch_until(
            &self.http,
            &url,
            &[("x-api-key", "std-key")],
            Duration::from_secs(10),
            |e| e["status"] == status,
        )
        .await;
    }

    async fn status(&self, key: &str) -> Reply {
        self.request(Method::GET, "/v1/status", &[("x-api-key", key)])
            .await
    }

    /// A 200 or 503 status body, validated.
    async fn body(&self, key: &str) -> (StatusCode, Value) {
        let reply = self.status(key).await;
        assert!(
            matches!(
                reply.status,
                StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{reply:?}"
        );
        let body = reply.json();
        harness::validate(SCHEMA, "StatusEnvelope", &body);
        (reply.status, body)
    }

    /// Waits until the status body satisfies `cond`.
    async fn wait_body(&self, what: &str, cond: impl Fn(StatusCode, &Value) -> bool) -> Value {
        harness::wait_for(what, Duration::from_secs(10), || async {
            let (code, body) = self.body("std-key").await;
            cond(code, &body).then_some(body)
        })
        .await
    }

    /// Runs the seed's Python client; its printed lines.
    async fn seed_client(&self, key: &str) -> Vec<String> {
        let base = self.base.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || run_seed_client(&base, &key))
            .await
            .expect("the seed client ran")
    }
}

fn python() -> PathBuf {
    let python = harness::on_path("python3")
        .unwrap_or_else(|| panic!("python3 is not on PATH: the seed's client is Python"));
    let has_requests = |p: &PathBuf| {
        Command::new(p)
            .args(["-c", "import requests"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_requests(&python) {
        // The seed's client needs `requests`; install it for this user.
        for extra in [&[][..], &["--break-system-packages"][..]] {
            let _ = Command::new(&python)
                .args(["-m", "pip", "install", "--user", "--quiet", "requests"])
                .args(extra)
                .status();
            if has_requests(&python) {
                break;
            }
        }
        assert!(
            has_requests(&python),
            "python3 cannot import requests and `python3 -m pip install requests` failed"
        );
    }
    python
}

fn run_seed_client(base: &str, key: &str) -> Vec<String> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/seed_clients/run_seed_004.py");
    let out = Command::new(python())
        .arg(script)
        .env("SEED_BASE_URL", base)
        .env("SEED_API_KEY", key)
        // Straight to the loopback server, whatever proxy the machine has.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the seed client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// An error reply of the endpoint: `code`, the seed's error envelope with
/// its fields in the seed's order.
fn assert_error(reply: &Reply, code: StatusCode, error_code: &str) -> Value {
    assert_eq!(reply.status, code, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    harness::validate(SCHEMA, "ErrorEnvelope", &body);
    assert_eq!(body["code"], error_code, "{body}");
    assert_eq!(body["status_code"], code.as_u16(), "{body}");
    assert_seed_order(reply);
    body
}

/// `success`, `message`, `code`, `status_code`, `suggestion`, in that order.
fn assert_seed_order(reply: &Reply) {
    let text = String::from_utf8_lossy(&reply.body);
    let at = |field: &str| {
        text.find(&format!("\"{field}\":"))
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    };
    let fields = ["success", "message", "code", "status_code", "suggestion"];
    assert!(
        fields.windows(2).all(|w| at(w[0]) < at(w[1])),
        "fields not in the seed's order: {text}"
    );
}

fn rfc3339_secs(text: &str) -> u64 {
    humantime::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn remaining(body: &Value) -> u64 {
    body["data"]["account"]["rate_limits"]["remaining"]
        .as_u64()
        .expect("remaining")
}

/// The lines of the seed client's 200 branch, with `notice` when given.
fn expected_lines(body: &Value, remaining: u64, notice: Option<(&str, &str)>) -> Vec<String> {
    let data = &body["data"];
    let s = |v: &Value| v.as_str().expect("a string").to_owned();
    let mut lines = vec![
        format!(
            "API Status: {} (v{})",
            s(&data["status"]),
            env!("CARGO_PKG_VERSION")
        ),
        "TIMESTAMP".to_owned(),
        String::new(),
        "Component Status:".to_owned(),
    ];
    for name in ["api", "storage", "search"] {
        lines.push(format!("- {name}: {}", s(&data["components"][name])));
    }
    lines.push(String::new());
    lines.push(format!("Account Tier: {}", s(&data["account"]["tier"])));
    let limit = &data["account"]["rate_limits"]["limit"];
    lines.push(format!("Rate Limits: {remaining}/{limit} remaining"));
    lines.push(format!(
        "Rate Reset: {}",
        s(&data["account"]["rate_limits"]["reset_time"])
    ));
    lines.push(String::new());
    lines.push("RESPONSE TIME".to_owned());
    if let Some((message, completion)) = notice {
        lines.push(String::new());
        lines.push(format!(" NOTICE: {message}"));
        lines.push(format!(" Estimated completion: {completion}"));
    }
    lines
}

/// Compares the client's lines with `expected`; the timestamp and the
/// response time change between calls and are checked by shape.
fn assert_client_lines(got: &[String], expected: &[String]) {
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (got, want) in got.iter().zip(expected) {
        match want.as_str() {
            "TIMESTAMP" => {
                let ts = got.strip_prefix("Timestamp: ").expect("a Timestamp line");
                rfc3339_secs(ts);
            }
            "RESPONSE TIME" => {
                let ms = got
                    .strip_prefix("Response Time: ")
                    .and_then(|r| r.strip_suffix("ms"))
                    .expect("a Response Time line");
                assert!(ms.parse::<f64>().is_ok_and(|v| v >= 0.0), "{got}");
            }
            _ => assert_eq!(got, want),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_rate_limits_and_the_http_contract() {
    let app = App::start(KEYS).await;

    let (code, first) = app.body("std-key").await;
    assert_eq!(code, StatusCode::OK);
    let data = &first["data"];
    assert_eq!(first["success"], true);
    assert_eq!(first["message"], "System status retrieved successfully");
    assert_eq!(data["status"], "operational");
    assert_eq!(data["version"], env!("CARGO_PKG_VERSION"));
    for name in ["api", "storage", "search"] {
        assert_eq!(data["components"][name], "operational");
    }
    assert_eq!(data["account"]["tier"], "standard");
    assert_eq!(data["account"]["rate_limits"]["limit"], 1000);
    // The status call itself counts.
    assert_eq!(remaining(&first), 999);
    assert!(data.get("notice").is_none());
    assert_eq!(first["metadata"]["environment"], "staging");
    assert_eq!(first["metadata"]["datacenter"], "test-dc");
    // No API request yet: the response time is the status call's own.
    let own = data["performance"]["response_time_ms"].as_f64().unwrap();
    assert!(own > 0.0 && own < 5_000.0, "{data}");

    // reset_time is the top of the hour after the report's timestamp.
    let at = rfc3339_secs(data["timestamp"].as_str().unwrap());
    let reset = rfc3339_secs(
        data["account"]["rate_limits"]["reset_time"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(reset, (at / 3600 + 1) * 3600, "{data}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset > now.saturating_sub(5) && reset <= now + 3600 + 5);

    // Each request carrying the key counts: status calls and API calls.
    assert_eq!(remaining(&app.body("std-key").await.1), 998);
    for _ in 0..3 {
        let ping = app
            .request(Method::GET, "/v1/ping", &[("x-api-key", "std-key")])
            .await;
        assert_eq!(ping.status, StatusCode::OK);
    }
    let after = app.body("std-key").await.1;
    assert_eq!(remaining(&after), 994);
    // The API's own requests are the response time's source.
    assert!(
        after["data"]["performance"]["response_time_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Another key is another account with its own window.
    let pro = app.body("pro-key").await.1;
    assert_eq!(pro["data"]["account"]["tier"], "pro");
    assert_eq!(pro["data"]["account"]["rate_limits"]["limit"], 5000);
    assert_eq!(remaining(&pro), 4999);

    // X-Api-Key only: no key, an unknown key, or Bearer are 401.
    // The body is the seed's error envelope.
    for headers in [
        &[][..],
        &[("x-api-key", "nope")][..],
        &[("authorization", "Bearer std-key")][..],
    ] {
        let reply = app.request(Method::GET, "/v1/status", headers).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(reply.header("www-authenticate").is_none());
    }
    let head = app.request(Method::HEAD, "/v1/status", &[]).await;
    let get = app.request(Method::GET, "/v1/status", &[]).await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(get.body.len().to_string().as_str())
    );

    // HEAD: the headers of GET, no body; it is a request with the key too.
    let head = app
        .request(Method::HEAD, "/v1/status", &[("x-api-key", "std-key")])
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert!(head.header("content-length").is_some_and(|l| l != "0"));
    // Other methods: 405 with Allow; like every request carrying a key,
    // each counts against it.
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let reply = app
            .request(method, "/v1/status", &[("x-api-key", "std-key")])
            .await;
        assert_error(&reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    assert_eq!(remaining(&app.body("std-key").await.1), 989);

    // The seed's body is the only one served: the crate's own formats are
    // off, so asking for them is a 400 in the seed's error shape.
    for query in ["json", "ietf", "nope"] {
        let path = format!("/v1/status?format={query}");
        let reply = app
            .request(Method::GET, &path, &[("x-api-key", "pro-key")])
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "unknown_format");
    }
    let reply = app
        .request(
            Method::GET,
            "/v1/status",
            &[
                ("x-api-key", "pro-key"),
                ("accept", "application/health+json"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    harness::validate(SCHEMA, "StatusEnvelope", &reply.json());
    let reply = app
        .request(Method::GET, "/v1/status/a/b", &[("x-api-key", "pro-key")])
        .await;
    assert_error(&reply, StatusCode::NOT_FOUND, "not_found");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dependency_down_degrades_both_down_is_critical() {
    let mut app = App::start(KEYS).await;
    app.wait_body("operational", |code, b| {
        code == StatusCode::OK && b["data"]["status"] == "operational"
    })
    .await;

    app.storage.down().await;
    let degraded = app
        .wait_body("degraded", |code, b| {
            code == StatusCode::OK && b["data"]["status"] == "degraded"
        })
        .await;
    let components = &degraded["data"]["components"];
    assert_eq!(components["storage"], "unavailable");
    assert_eq!(components["search"], "operational");
    assert_eq!(components["api"], "operational");
    // Readiness and the watch follow the layer's rule: degraded, still ready.
    app.assert_layer_agrees(StatusCode::OK, "degraded").await;

    app.search.down().await;
    let critical = app
        .wait_body("critical", |code, _| {
            code == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
    assert_eq!(critical["data"]["status"], "critical");
    assert_eq!(critical["data"]["components"]["storage"], "unavailable");
    assert_eq!(critical["data"]["components"]["search"], "unavailable");
    // The seed's client takes its 503 branch.
    assert_eq!(
        app.seed_client("std-key").await,
        ["API is currently unavailable (Service status: critical)"]
    );
    // The rule is the layer's: readiness fails and the watch says down.
    app.assert_layer_agrees(StatusCode::SERVICE_UNAVAILABLE, "down")
        .await;

    app.storage.up().await;
    app.search.up().await;
    app.wait_body("operational again", |code, b| {
        code == StatusCode::OK && b["data"]["status"] == "operational"
    })
    .await;
    app.assert_layer_agrees(StatusCode::OK, "ok").await;
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_file_and_the_seed_client() {
    let app = App::start(KEYS).await;

    // The seed client, as written, against a healthy API.
    let lines = app.seed_client("std-key").await;
    let after = app.body("std-key").await.1;
    let shown = remaining(&after) + 1;
    assert_client_lines(&lines, &expected_lines(&after, shown, None));

    // While the file exists: maintenance, 200, with the file's notice.
    let tmp = app.dir.path().join("maintenance.tmp");
    std::fs::write(
        &tmp,
        r#"{"message": "Scheduled maintenance in progress", "estimated_completion": "2030-12-19T14:00:00Z"}"#,
    )
    .unwrap();
    std::fs::rename(&tmp, &app.maintenance).unwrap();
    let body = app
        .wait_body("maintenance", |code, b| {
            code == StatusCode::OK && b["data"]["status"] == "maintenance"
        })
        .await;
    assert_eq!(
        body["data"]["notice"],
        serde_json::json!({
            "type": "maintenance",
            "message": "Scheduled maintenance in progress",
            "estimated_completion": "2030-12-19T14:00:00Z"
        })
    );
    let lines = app.seed_client("std-key").await;
    let after = app.body("std-key").await.1;
    let shown = remaining(&after) + 1;
    assert_client_lines(
        &lines,
        &expected_lines(
            &after,
            shown,
            Some(("Scheduled maintenance in progress", "2030-12-19T14:00:00Z")),
        ),
    );
    assert!(lines
        .iter()
        .any(|l| l == " NOTICE: Scheduled maintenance in progress"));

    // A new notice replaces the old one.
    std::fs::write(&tmp, r#"{"message": "Database upgrade"}"#).unwrap();
    std::fs::rename(&tmp, &app.maintenance).unwrap();
    let body = app
        .wait_body("the new notice", |_, b| {
            b["data"]["notice"]["message"] == "Database upgrade"
        })
        .await;
    assert_eq!(body["data"]["notice"]["estimated_completion"], Value::Null);

    // Removed: back to operational, no notice, and the client's lines say so.
    std::fs::remove_file(&app.maintenance).unwrap();
    app.wait_body("maintenance over", |code, b| {
        code == StatusCode::OK
            && b["data"]["status"] == "operational"
            && b["data"].get("notice").is_none()
    })
    .await;
    let lines = app.seed_client("std-key").await;
    assert!(
        lines[0].starts_with("API Status: operational"),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("NOTICE")), "{lines:#?}");
    drop(app);
}

/// The crate tracks at most 1024 callers per window: a caller beyond that
/// has no count, so no rate limit can be shown, and the answer is the
/// seed's 500 error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrackable_caller_gets_the_seed_500() {
    let keys: Vec<String> = (0..1025).map(|i| format!("k{i}:free:10")).collect();
    let app = App::start(&keys.join(",")).await;
    for i in 0..1024 {
        let reply = app.status(&format!("k{i}")).await;
        assert_eq!(reply.status, StatusCode::OK, "key {i}: {reply:?}");
    }
    let reply = app.status("k1024").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = reply.json();
    harness::validate(SCHEMA, "InternalError", &body);
    assert_eq!(body["message"], "Unable to retrieve system status");
    assert_seed_order(&reply);
    // Tracked callers are still served.
    let (code, body) = app.body("k0").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(remaining(&body), 8);
    let _ = &app.example;
}

/// Variables of the example's configuration, cleared for `run_to_exit`.
const CONFIG_VARS: &[&str] = &[
    "API_KEYS",
    "STORAGE_ADDR",
    "SEARCH_ADDR",
    "MAINTENANCE_FILE",
    "DATACENTER",
    "APP_ENV",
];

#[test]
fn bad_configuration_stops_the_example_with_one_line() {
    for (var, bad, why) in [
        ("STORAGE_ADDR", "storage", "`storage` is not host:port"),
        ("STORAGE_ADDR", "storage:0", "`storage:0` is not host:port"),
        ("SEARCH_ADDR", ":9200", "`:9200` is not host:port"),
        (
            "SEARCH_ADDR",
            "search:http",
            "`search:http` is not host:port",
        ),
        ("API_KEYS", "k:tier", "entry 1 is not key:tier:limit"),
        (
            "API_KEYS",
            "k:t:1,k2:t:many",
            "entry 2: limit \"many\" is not a number",
        ),
    ] {
        let (code, stderr) =
            harness::examples::run_to_exit("api_account", CONFIG_VARS, &[(var, bad)]);
        assert_eq!(code, Some(2), "{var}={bad}: {stderr}");
        assert_eq!(
            stderr,
            format!("api_account: invalid {var}: {why}\n"),
            "{var}={bad}"
        );
    }
}
