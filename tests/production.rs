//! `examples/production.rs` run as a process, against the contract of its
//! module docs (issue 15): the environment variables and their defaults,
//! who sees what on every path, damping, a dependency, recovery, the
//! webhook, the transition log, the event stream, metrics, bad values,
//! idle and slow clients, and draining on SIGTERM.
//!
//! The example listens on `STATUS_ADDR=127.0.0.1:0` and the test reads the
//! port it prints; its dependencies are listeners this test binds on port
//! 0. Every wait has a deadline; every request goes over a new connection,
//! as a probe's does.
#![cfg(unix)]

#[path = "support/databases.rs"]
mod databases;
#[path = "seeds/examples.rs"]
mod examples;
#[path = "support/ports.rs"]
mod ports;
#[path = "support/redis_server.rs"]
mod redis_server;

use examples::process;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound for one request.
const STEP: Duration = Duration::from_secs(5);
/// Time between two looks at a condition.
const POLL: Duration = Duration::from_millis(20);
/// The key when `STATUS_API_KEY` is unset.
const DEV_KEY: &str = "dev-key";
/// The example's `MAX_CONNECTIONS`, `HEADER_READ_TIMEOUT` and `DRAIN_GRACE`.
const MAX_CONNECTIONS: usize = 512;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// The example's TCP checks time out after this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Every variable of the contract: removed before each run, so the
/// shell running the tests never leaks in.
const CONTRACT_VARS: &[&str] = &[
    "STATUS_ADDR",
    "APP_ENV",
    "STATUS_API_KEY",
    "DATABASE_ADDR",
    "CACHE_ADDR",
    "SEARCH_ADDR",
    "POSTGRES_URL",
    "REDIS_URL",
    "CHECK_INTERVAL_MS",
    "FAILURE_THRESHOLD",
    "SUCCESS_THRESHOLD",
    "WEBHOOK_URL",
    "HISTORY_FILE",
    "SLO_AVAILABILITY",
    "SLO_LATENCY_MS",
];

/// The tests that measure time or load the machine run one at a time:
/// the thresholds, idle connections, SIGTERM and bad values (dozens of
/// processes at once) tests.
static TIMED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// The example as a process.

/// The example's executable, built once per test binary with the
/// features this test was built with (`seeds/examples.rs`).
fn example_exe() -> PathBuf {
    examples::build_example("production")
}

/// The example started with `env` on top of a clean contract.
fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(example_exe());
    for var in CONTRACT_VARS {
        cmd.env_remove(var);
    }
    cmd.env("STATUS_ADDR", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running example; killed (and reaped) when dropped.
struct Example {
    child: Child,
    addr: SocketAddr,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl Example {
    /// Starts the example and waits (at most 20 s) for the line saying
    /// where it listens. Its output is drained by threads from then on.
    fn start(env: &[(&str, &str)]) -> Example {
        let mut child = command(env).spawn().expect("starting the example");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        let lines = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("listening on ") {
                    let _ = tx.send(line.clone());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let text = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                // The drain threads end with the process.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "the example printed no `listening on` line ({status:?}); stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix("/status"))
            .and_then(|addr| addr.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| panic!("not `listening on http://ADDR/status`: {line:?}"));
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{line}");
        Example {
            child,
            addr,
            stdout,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `kill -TERM` the example.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill can be run");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits (at most `deadline`) for the example to exit.
    async fn exit_within(&mut self, deadline: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the example") {
                return status;
            }
            assert!(
                started.elapsed() < deadline,
                "still running after {deadline:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        get(self.addr, path, headers).await
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// HTTP, one connection per request.

/// A response, body read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `GET path` over a new connection; the response head.
async fn send(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> hyper::Result<http::Response<Incoming>> {
    let stream = TcpStream::connect(addr).await.expect("connecting");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::HOST, addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    sender
        .send_request(req.body(Full::<Bytes>::default()).unwrap())
        .await
}

/// `GET path` within [`STEP`].
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let answer = tokio::time::timeout(STEP, async {
        let res = send(addr, path, headers).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, hyper::Error>(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    })
    .await;
    match answer {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => panic!("GET {path}: {e}"),
        Err(_) => panic!("GET {path}: no answer within {STEP:?}"),
    }
}

/// Reads `/status/watch` events from `body` until one satisfies `cond`
/// (at most `deadline`), returning it.
async fn event_where(
    body: &mut Incoming,
    pending: &mut String,
    deadline: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let read = async {
        loop {
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let Some(data) = event
                    .strip_prefix("event: status\n")
                    .and_then(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
                else {
                    continue; // a keep-alive comment
                };
                let value: Value = serde_json::from_str(data).expect("event data is JSON");
                if cond(&value) {
                    return value;
                }
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        pending.push_str(&String::from_utf8_lossy(&data));
                    }
                }
                other => panic!("the event stream ended: {other:?}"),
            }
        }
    };
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or_else(|_| panic!("no such event within {deadline:?}; unread: {pending:?}"))
}

/// Calls `f` every [`POLL`] until it gives `Some`, for at most `deadline`.
async fn until<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = f().await {
            return found;
        }
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------
// Dependencies and the webhook receiver.

/// A TCP dependency on 127.0.0.1 that can go down (connections refused)
/// and come back on the same port. The port stays this test's throughout:
/// a second socket, bound with `SO_REUSEPORT` and not listening, holds it
/// while the listener is gone, and becomes the next listener.
struct Dependency {
    addr: SocketAddr,
    accepting: Option<JoinHandle<()>>,
    spare: Option<TcpSocket>,
}

fn reusable() -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.set_reuseport(true).expect("SO_REUSEPORT");
    socket
}

impl Dependency {
    fn start() -> Dependency {
        let first = reusable();
        first
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("binding a dependency");
        let addr = first.local_addr().unwrap();
        let mut dep = Dependency {
            addr,
            accepting: None,
            spare: Some(first),
        };
        dep.up();
        dep
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Listens (again) on its port, accepting and closing connections.
    fn up(&mut self) {
        let socket = self.spare.take().expect("it is down");
        let spare = reusable();
        spare.bind(self.addr).expect("holding the port");
        let listener = socket.listen(1024).expect("listening");
        self.spare = Some(spare);
        self.accepting = Some(tokio::spawn(async move {
            loop {
                if listener.accept().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }));
    }

    /// Stops listening: connections are refused from now on.
    async fn down(&mut self) {
        let task = self.accepting.take().expect("it is up");
        task.abort();
        // Once the task is cancelled its listener is closed.
        let _ = task.await;
    }
}

/// One POST the webhook receiver got: its content type and JSON body.
type Post = (Option<String>, Value);

/// What the webhook receiver got, in the order it got it.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Post>>>);

/// An HTTP server taking the webhook's POSTs at `/hooks/status`.
async fn webhook_receiver() -> (String, Received) {
    use axum::routing::post;
    let received = Received::default();
    let got = received.clone();
    let app = axum::Router::new().route(
        "/hooks/status",
        post(move |headers: http::HeaderMap, body: Bytes| {
            let got = got.clone();
            async move {
                let kind = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let value: Value = serde_json::from_slice(&body).expect("the webhook body is JSON");
                got.0.lock().unwrap().push((kind, value));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/status", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

// ---------------------------------------------------------------------------
// The tests.

/// Runs the example with `env`, which must stop it at start: its exit
/// status and what it wrote.
fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut child = command(env).spawn().expect("starting the example");
    let started = Instant::now();
    while child.try_wait().expect("polling the example").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("with {env:?} the example kept running instead of stopping");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("collecting output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_value_of_any_variable_stops_it_at_start_naming_the_variable() {
    let _one_at_a_time = TIMED.blocking_lock();
    let cases: &[(&str, &str)] = &[
        ("STATUS_ADDR", ""),
        ("STATUS_ADDR", "localhost"),
        ("STATUS_ADDR", "127.0.0.1"),
        ("STATUS_ADDR", "127.0.0.1:99999"),
        ("STATUS_ADDR", "localhost:3000"),
        ("STATUS_ADDR", "127.0.0.1:3000\nrm -rf"),
        ("APP_ENV", ""),
        ("APP_ENV", "   "),
        ("APP_ENV", "prod env"),
        ("APP_ENV", "prod\n"),
        ("STATUS_API_KEY", ""),
        ("STATUS_API_KEY", "two words"),
        ("STATUS_API_KEY", "tab\tkey"),
        ("STATUS_API_KEY", "clé"),
        ("DATABASE_ADDR", ""),
        ("DATABASE_ADDR", "db"),
        ("DATABASE_ADDR", "db:0"),
        ("DATABASE_ADDR", "db:port"),
        ("DATABASE_ADDR", "http://db:5432"),
        ("CACHE_ADDR", "cache:"),
        ("CACHE_ADDR", "cache:65536"),
        ("SEARCH_ADDR", "[::1"),
        ("SEARCH_ADDR", "search engine:9200"),
        ("POSTGRES_URL", ""),
        ("POSTGRES_URL", "127.0.0.1:5432"),
        ("POSTGRES_URL", "mysql://app:secret@db/app"),
        ("POSTGRES_URL", "postgres://app:secret@db:port/app"),
        (
            "POSTGRES_URL",
            "postgres://app:secret@db/app?sslmode=sometimes",
        ),
        ("REDIS_URL", ""),
        ("REDIS_URL", "cache:6379"),
        ("REDIS_URL", "http://:secret@cache:6379"),
        ("REDIS_URL", "redis://:secret@cache:port"),
        ("CHECK_INTERVAL_MS", ""),
        ("CHECK_INTERVAL_MS", "abc"),
        ("CHECK_INTERVAL_MS", "0"),
        ("CHECK_INTERVAL_MS", "5"),
        ("CHECK_INTERVAL_MS", "-100"),
        ("CHECK_INTERVAL_MS", "1.5"),
        ("CHECK_INTERVAL_MS", "100ms"),
        ("CHECK_INTERVAL_MS", " 100"),
        ("CHECK_INTERVAL_MS", "99999999999999999999999"),
        ("FAILURE_THRESHOLD", "0"),
        ("FAILURE_THRESHOLD", "three"),
        ("FAILURE_THRESHOLD", "-1"),
        ("FAILURE_THRESHOLD", "4294967296"),
        ("SUCCESS_THRESHOLD", "0"),
        ("SUCCESS_THRESHOLD", "2.0"),
        ("SUCCESS_THRESHOLD", ""),
        ("WEBHOOK_URL", ""),
        ("WEBHOOK_URL", "not a url"),
        ("WEBHOOK_URL", "/hooks/status"),
        ("WEBHOOK_URL", "ftp://example.com/hook"),
        ("WEBHOOK_URL", "https://example.com/hook"),
        ("WEBHOOK_URL", "http://"),
        ("WEBHOOK_URL", "http://user:secret@example.com/hook"),
        ("HISTORY_FILE", ""),
        ("SLO_AVAILABILITY", "1"),
        ("SLO_AVAILABILITY", "99.9"),
        ("SLO_AVAILABILITY", "0"),
        ("SLO_AVAILABILITY", "high"),
        ("SLO_LATENCY_MS", "0"),
        ("SLO_LATENCY_MS", "0.3"),
    ];
    // Each case in its own process, all at once.
    let runs: Vec<_> = cases
        .iter()
        .map(|&(var, value)| {
            example_exe();
            std::thread::spawn(move || (var, value, run_to_exit(&[(var, value)])))
        })
        .collect();
    for run in runs {
        let (var, value, (code, stdout, stderr)) = run.join().unwrap();
        let case = format!("{var}={value:?}");
        assert_eq!(code, Some(2), "{case}: exit status; stderr: {stderr}");
        assert_eq!(stdout, "", "{case}: it must not start listening");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{case}: one line on stderr, got {stderr:?}");
        assert!(
            lines[0].contains(var),
            "{case}: the line names {var}: {stderr:?}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        if var == "STATUS_API_KEY" && !value.trim().is_empty() {
            assert!(
                !stderr.contains(value),
                "{case}: the key is echoed: {stderr}"
            );
        }
        if value.contains("secret") {
            assert!(
                !stderr.contains("secret"),
                "{case}: a secret is echoed: {stderr}"
            );
        }
    }
    // Several bad values: the first of the contract's order is named.
    let (code, _, stderr) = run_to_exit(&[("FAILURE_THRESHOLD", "0"), ("APP_ENV", "a b")]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("APP_ENV") && !stderr.contains("FAILURE_THRESHOLD"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_see_what_their_key_allows_on_every_path() {
    let db = Dependency::start();
    // Only `db`: unset variables leave `cache` and `search` out. The key
    // is the default one.
    let app = Example::start(&[
        ("DATABASE_ADDR", &db.addr()),
        ("CHECK_INTERVAL_MS", "100"),
        ("APP_ENV", "staging"),
    ]);
    let x_api_key: &[(&str, &str)] = &[("x-api-key", DEV_KEY)];
    let bearer: &[(&str, &str)] = &[("authorization", "Bearer dev-key")];
    until("the report is ok", STEP, || async {
        let r = app.get("/status", x_api_key).await;
        (r.status == StatusCode::OK && r.json()["components"]["db"]["status"] == "ok").then_some(())
    })
    .await;

    // The API itself.
    let r = app.get("/", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["service"], "orders");
    let r = app.get("/orders/42", &[]).await;
    assert_eq!(
        (r.status, r.json()["id"].clone()),
        (StatusCode::OK, 42.into())
    );
    assert_eq!(
        app.get("/orders/x", &[]).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.get("/nope", &[]).await.status, StatusCode::NOT_FOUND);

    // Anonymous: the overall status only, wherever it asks.
    let overall = ["status", "timestamp"];
    for path in [
        "/status",
        "/status/",
        "/status/live",
        "/status/ready",
        "/status/ready?verbose",
    ] {
        let r = app.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        let v = r.json();
        assert_eq!(keys(&v), overall, "{path}: {v}");
        assert_eq!(v["status"], "ok", "{path}");
    }
    let r = app.get("/status?format=ietf", &[]).await;
    assert!(!r.text().contains("db"), "{}", r.text());
    for path in [
        "/status/metrics",
        "/status/transitions",
        "/status/db",
        "/status/traffic",
    ] {
        let r = app.get(path, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.text());
        assert!(
            !r.text().contains("db:") && !r.text().contains("datastore"),
            "{path}"
        );
    }
    // A wrong key is refused, never served as anonymous; the probes ignore it.
    for wrong in [
        &[("x-api-key", "wrong")][..],
        &[("authorization", "Bearer wrong")],
    ] {
        let r = app.get("/status", wrong).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
        assert!(!r.text().contains("components"));
        for probe in ["/status/live", "/status/ready"] {
            let r = app.get(probe, wrong).await;
            assert_eq!(r.status, StatusCode::OK, "{probe} {wrong:?}");
            assert_eq!(keys(&r.json()), overall, "{probe} {wrong:?}");
        }
    }

    // With the key, in either header: everything.
    for key in [x_api_key, bearer] {
        let v = app.get("/status", key).await.json();
        assert_eq!(v["status"], "ok", "{v}");
        assert_eq!(v["service"], "orders");
        assert_eq!(v["environment"], "staging");
        assert_eq!(v["caller"]["name"], "operator");
        let components = keys(&v["components"]);
        assert_eq!(components, ["db", "traffic"], "{v}");
        let db_c = &v["components"]["db"];
        assert_eq!(
            (db_c["type"].as_str(), db_c["critical"].as_bool()),
            (Some("datastore"), Some(true))
        );
        assert_eq!(
            db_c["last_run"]["status"], "ok",
            "damped checks show their last run"
        );
        let v = app.get("/status/ready?verbose", key).await.json();
        assert!(v["components"]["db"].is_object(), "{v}");
        let r = app.get("/status/db", key).await;
        assert_eq!(
            (r.status, r.json()["name"].clone()),
            (StatusCode::OK, "db".into())
        );
        let r = app.get("/status/metrics", key).await;
        assert_eq!(r.status, StatusCode::OK);
        let text = r.text();
        assert!(text.contains("tower_status_up 1"), "{text}");
        assert!(
            text.contains("tower_status_component_up{component=\"db\""),
            "{text}"
        );
        let r = app.get("/status/transitions", key).await;
        assert_eq!(r.status, StatusCode::OK);
        let log = r.json();
        assert_eq!(log["capacity"], 256, "{log}");
        assert_eq!(log["evicted"], 0, "{log}");
        assert!(
            log["transitions"].is_array() && log["flaps_last_hour"].is_object(),
            "{log}"
        );
    }

    // `/status/watch`: the first event is the current status; components
    // only for the key.
    for (who, headers, components) in [
        ("anonymous", &[][..], false),
        ("X-Api-Key", x_api_key, true),
        ("Bearer", bearer, true),
    ] {
        let res = tokio::time::timeout(STEP, send(app.addr, "/status/watch", headers))
            .await
            .expect("watch answers")
            .expect("watch");
        assert_eq!(res.status(), StatusCode::OK, "{who}");
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/event-stream",
            "{who}"
        );
        let mut body = res.into_body();
        let first = event_where(&mut body, &mut String::new(), STEP, |_| true).await;
        assert_eq!(first["status"], "ok", "{who}: {first}");
        assert_eq!(
            first.get("components").is_some(),
            components,
            "{who}: {first}"
        );
        if components {
            assert_eq!(first["components"]["db"], "ok", "{who}: {first}");
        }
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_go_down_are_blocked_recover_and_are_announced() {
    let _one_at_a_time = TIMED.lock().await;
    let (webhook_url, received) = webhook_receiver().await;
    let (mut db, mut cache, mut search) = (
        Dependency::start(),
        Dependency::start(),
        Dependency::start(),
    );
    let interval = Duration::from_millis(100);
    let app = Example::start(&[
        ("DATABASE_ADDR", &db.addr()),
        ("CACHE_ADDR", &cache.addr()),
        ("SEARCH_ADDR", &search.addr()),
        ("CHECK_INTERVAL_MS", "100"),
        ("FAILURE_THRESHOLD", "3"),
        ("SUCCESS_THRESHOLD", "2"),
        ("WEBHOOK_URL", &webhook_url),
        ("STATUS_API_KEY", "ops-secret"),
        ("APP_ENV", "staging"),
    ]);
    let key: &[(&str, &str)] = &[("x-api-key", "ops-secret")];
    // A key set in the environment replaces the development one.
    assert_eq!(
        app.get("/status", &[("x-api-key", DEV_KEY)]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let report = || async { app.get("/status", key).await };
    let component = |v: &Value, name: &str, field: &str| v["components"][name][field].clone();

    let v = until("every component ok", STEP, || async {
        let v = report().await.json();
        let all_ok = ["db", "cache", "search"]
            .iter()
            .all(|c| component(&v, c, "status") == "ok");
        (all_ok && v["status"] == "ok").then_some(v)
    })
    .await;
    assert_eq!(component(&v, "db", "critical"), true);
    assert_eq!(component(&v, "cache", "critical"), false);
    assert_eq!(component(&v, "search", "critical"), true);

    // A failure shows after FAILURE_THRESHOLD failed runs in a row: within
    // that many intervals (with their jitter, up to 10 %) plus the check's
    // timeout, plus slack for a loaded machine. Until then the component
    // is still `ok`, its last run says `down`.
    let fails_within = 3 * (interval + interval / 10) + CHECK_TIMEOUT + Duration::from_secs(1);
    let went_down = |name: &'static str, others: &'static [&'static str]| async move {
        let started = Instant::now();
        let damped = Cell::new(false);
        let damped = &damped;
        let v = until(&format!("{name} is down"), fails_within, || async move {
            let v = report().await.json();
            if component(&v, name, "status") == "ok"
                && v["components"][name]["last_run"]["status"] == "down"
            {
                damped.set(true);
            }
            let mut down = vec![name];
            down.extend(others);
            down.iter()
                .all(|c| component(&v, c, "status") == "down")
                .then_some(v)
        })
        .await;
        (v, started.elapsed(), damped.get())
    };

    // `cache` is not critical: down only degrades, answered 200.
    cache.down().await;
    let (v, took, damped) = went_down("cache", &[]).await;
    assert_eq!(v["status"], "degraded", "{v}");
    assert!(
        damped,
        "cache showed `ok` while its runs failed (threshold 3)"
    );
    assert!(
        v["components"]["cache"]["last_run"]["consecutive"].as_u64() >= Some(3),
        "{v}"
    );
    assert_eq!(root_causes(&v), ["cache"], "{v}");
    assert_eq!(report().await.status, StatusCode::OK);
    eprintln!("cache down after {took:?}");
    cache.up();
    until("cache is back", STEP, || async {
        (report().await.json()["status"] == "ok").then_some(())
    })
    .await;

    // `db` goes down, the service with it; then `search`, which needs
    // `db`, fails too: it is blocked by `db`, and `db` alone is the root
    // cause. (Taken down together, whichever reached its threshold first
    // would be the root cause: damping decides when each is seen down.)
    db.down().await;
    let (v, took, damped) = went_down("db", &[]).await;
    eprintln!("db down after {took:?}");
    assert!(damped, "db showed `ok` while its runs failed (threshold 3)");
    assert!(
        v["components"]["db"]["last_run"]["consecutive"].as_u64() >= Some(3),
        "{v}"
    );
    assert_eq!(v["status"], "down", "{v}");
    assert_eq!(root_causes(&v), ["db"], "{v}");
    search.down().await;
    let (v, _, _) = went_down("search", &["db"]).await;
    assert_eq!(
        component(&v, "search", "blocked_by"),
        serde_json::json!(["db"]),
        "{v}"
    );
    assert_eq!(component(&v, "db", "blocked_by"), Value::Null, "{v}");
    assert_eq!(root_causes(&v), ["db"], "{v}");
    let db_error = component(&v, "db", "error");
    assert!(
        db_error.as_str().is_some_and(|e| e.contains(&db.addr())),
        "{v}"
    );
    assert_eq!(report().await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.get("/status/ready", &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.get("/status/live", &[]).await.status, StatusCode::OK);

    // Recovery takes SUCCESS_THRESHOLD passed runs: `db` stays `down`
    // after its first passing run.
    db.up();
    search.up();
    let damped = Cell::new(false);
    let held = &damped;
    let v = until("db is back", fails_within, || async move {
        let v = report().await.json();
        let last = &v["components"]["db"]["last_run"];
        if component(&v, "db", "status") == "down" && last["status"] == "ok" {
            assert_eq!(last["consecutive"], 1, "{v}");
            held.set(true);
        }
        (component(&v, "db", "status") == "ok").then_some(v)
    })
    .await;
    assert!(
        damped.get(),
        "db was not held down after its first passing run (threshold 2)"
    );
    assert!(
        v["components"]["db"]["last_run"]["consecutive"].as_u64() >= Some(2),
        "{v}"
    );
    until("everything is back", STEP, || async {
        (report().await.json()["status"] == "ok").then_some(())
    })
    .await;

    // The transition log: the overall changes in order, each component's
    // own, flap counts; and how the webhook's deliveries went.
    let overall_changes = vec![
        ("ok", "degraded"),
        ("degraded", "ok"),
        ("ok", "down"),
        ("down", "ok"),
    ];
    let log = until("the log has the recovery", STEP, || async {
        let log = app.get("/status/transitions", key).await.json();
        (overall(&log["transitions"]) == overall_changes).then_some(log)
    })
    .await;
    let transitions = log["transitions"].as_array().unwrap();
    let search_down = transitions
        .iter()
        .find(|t| t["component"] == "search" && t["to"] == "down")
        .unwrap_or_else(|| panic!("no transition of search to down: {log}"));
    assert_eq!(
        search_down["blocked_by"],
        serde_json::json!(["db"]),
        "{log}"
    );
    let db_down = transitions
        .iter()
        .find(|t| t["component"] == "db" && t["to"] == "down")
        .unwrap_or_else(|| panic!("no transition of db to down: {log}"));
    assert!(
        db_down["error"].is_string() && db_down["previous_lasted_ms"].is_u64(),
        "{log}"
    );
    for name in ["cache", "db", "search"] {
        assert!(
            log["flaps_last_hour"][name].as_u64() >= Some(2),
            "{name}: {log}"
        );
    }
    assert_eq!(log["evicted"], 0);

    // The webhook got every overall transition, once and in order, as
    // JSON naming the service and the root cause.
    let notifications = until(
        "the webhook got every change",
        Duration::from_secs(10),
        || async {
            let got = received.0.lock().unwrap().clone();
            let mut by_sequence = BTreeMap::new();
            for (kind, n) in &got {
                assert!(
                    kind.as_deref()
                        .is_some_and(|k| k.starts_with("application/json")),
                    "content type {kind:?}"
                );
                // Delivered at least once: a repeat has the same sequence and body.
                if let Some(before) = by_sequence.insert(n["sequence"].as_u64().unwrap(), n.clone())
                {
                    assert_eq!(&before, n, "a repeated delivery differs");
                }
            }
            let in_order: Vec<&Value> = got.iter().map(|(_, n)| n).collect();
            let changes: Vec<Value> = by_sequence
                .values()
                .filter_map(|n| n.get("transition").cloned())
                .collect();
            (overall(&Value::Array(changes)) == overall_changes).then_some((
                in_order.len(),
                by_sequence,
                got,
            ))
        },
    )
    .await;
    let (_, by_sequence, got) = notifications;
    // Delivered one at a time in order: sequences never go back.
    let arrived: Vec<u64> = got
        .iter()
        .map(|(_, n)| n["sequence"].as_u64().unwrap())
        .collect();
    assert!(
        arrived.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {arrived:?}"
    );
    for n in by_sequence.values() {
        assert_eq!(n["service"], "orders", "{n}");
        assert_eq!(n["environment"], "staging", "{n}");
        let Some(t) = n.get("transition") else {
            continue;
        };
        match (t["from"].as_str(), t["to"].as_str()) {
            (Some("ok"), Some("degraded")) => assert_eq!(root_causes(n), ["cache"], "{n}"),
            (Some("ok"), Some("down")) => assert_eq!(root_causes(n), ["db"], "{n}"),
            _ => {}
        }
    }
    let stats = until("the deliveries are counted", STEP, || async {
        let log = app.get("/status/transitions", key).await.json();
        let stats = log["notifiers"]["webhook"].clone();
        (stats["delivered"].as_u64() == Some(by_sequence.len() as u64)).then_some(stats)
    })
    .await;
    assert_eq!(
        (stats["failed"].as_u64(), stats["dropped"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );

    // Transitions are logged on stderr (the crate's `tracing` events).
    let stderr = app.stderr();
    assert!(
        stderr.contains("status changed") && stderr.contains("WARN"),
        "{stderr}"
    );
}

/// The names of the root causes in a report or a notification.
fn root_causes(v: &Value) -> Vec<String> {
    v["root_causes"]
        .as_array()
        .map(|causes| {
            causes
                .iter()
                .map(|c| c["component"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The overall transitions (no `component`) of a list, as (from, to).
fn overall(transitions: &Value) -> Vec<(&str, &str)> {
    transitions
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t.get("component").is_none())
        .map(|t| {
            (
                t["from"].as_str().unwrap_or("none"),
                t["to"].as_str().unwrap_or("?"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_do_not_starve_the_probes() {
    let _one_at_a_time = TIMED.lock().await;
    let app = Example::start(&[]);
    let addr = app.addr;
    let opened = Instant::now();

    // 700 connections that never send anything, opened 50 at a time.
    const IDLE: usize = 700;
    let limit = Arc::new(tokio::sync::Semaphore::new(50));
    let mut connecting = Vec::new();
    for _ in 0..IDLE {
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        connecting.push(tokio::spawn(async move {
            // Bounded: a connect stalls (SYN retries) when the example's
            // listen backlog overflows.
            let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
                .await
                .expect("connect within 2 s")
                .expect("connect");
            drop(permit);
            stream
        }));
    }
    let mut idle = Vec::new();
    for c in connecting {
        idle.push(c.await.unwrap());
    }
    let connected = Instant::now();
    // And one that trickles a request head, a byte every 200 ms.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        let mut written = slow
            .write_all(b"GET /status/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        while written.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            written = slow.write_all(b"a").await;
        }
        written
    });
    // Each watched until the server closes it.
    let closed = Arc::new(AtomicUsize::new(0));
    for mut stream in idle {
        let closed = Arc::clone(&closed);
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte).await;
            closed.fetch_add(1, Ordering::SeqCst);
        });
    }

    // The probes answer at once, each on a connection of its own.
    for round in 0..5 {
        for path in ["/status/live", "/status/ready", "/status"] {
            let started = Instant::now();
            let r = tokio::time::timeout(Duration::from_secs(2), send(addr, path, &[]))
                .await
                .unwrap_or_else(|_| panic!("{path} (round {round}): no answer within 2 s"))
                .unwrap_or_else(|e| panic!("{path} (round {round}): {e}"));
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            eprintln!("{path}: {:?}", started.elapsed());
        }
    }

    // All of it before the header-read timeout could have closed any idle
    // connection: the room was made by the cap's policy, not by the timeout.
    let took = opened.elapsed();
    assert!(
        took < HEADER_READ_TIMEOUT - Duration::from_secs(1),
        "opening the connections and probing took {took:?}"
    );

    // The cap: the server holds at most MAX_CONNECTIONS, closing the idle
    // ones that have waited longest.
    until(
        "idle connections over the cap closed",
        Duration::from_secs(2),
        || async { (closed.load(Ordering::SeqCst) >= IDLE - MAX_CONNECTIONS).then_some(()) },
    )
    .await;
    // No more than that (and those this test's own connections pushed
    // out): the others are kept until the header-read timeout.
    let closed_early = closed.load(Ordering::SeqCst);
    eprintln!("closed at the cap: {closed_early} of {IDLE}");
    assert!(
        closed_early <= IDLE - MAX_CONNECTIONS + 20,
        "{closed_early} closed early"
    );
    // The header-read timeout: the rest, and the slow one, are closed once
    // it passes.
    let all_closed = HEADER_READ_TIMEOUT + Duration::from_secs(3);
    until(
        "every idle connection closed",
        all_closed.saturating_sub(connected.elapsed()),
        || async { (closed.load(Ordering::SeqCst) == IDLE).then_some(()) },
    )
    .await;
    let slow = tokio::time::timeout(Duration::from_secs(3), trickle)
        .await
        .expect("the slow client is cut off after the header-read timeout")
        .unwrap();
    assert!(slow.is_err(), "writing to a closed connection fails");
    assert_eq!(app.get("/status/live", &[]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits_0() {
    let _one_at_a_time = TIMED.lock().await;
    let db = Dependency::start();
    let mut app = Example::start(&[("DATABASE_ADDR", &db.addr()), ("CHECK_INTERVAL_MS", "100")]);
    let key: &[(&str, &str)] = &[("x-api-key", DEV_KEY)];
    until("ready", STEP, || async {
        (app.get("/status/ready", &[]).await.status == StatusCode::OK).then_some(())
    })
    .await;
    // A watcher and an idle connection stay open: neither holds the exit.
    let res = send(app.addr, "/status/watch", key).await.unwrap();
    let mut watch = res.into_body();
    let mut pending = String::new();
    event_where(&mut watch, &mut pending, STEP, |e| e["status"] == "ok").await;
    let mut idle = TcpStream::connect(app.addr).await.unwrap();

    app.terminate();
    let signalled = Instant::now();
    let v = until("readiness fails", STEP, || async {
        let r = app.get("/status/ready", key).await;
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then(|| r.json())
    })
    .await;
    assert_eq!(v["reason"], "draining", "{v}");
    let anonymous = app.get("/status/ready", &[]).await;
    assert_eq!(anonymous.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(keys(&anonymous.json()), ["status", "timestamp"]);
    // Draining, everything else is served as before.
    assert_eq!(app.get("/status/live", &[]).await.status, StatusCode::OK);
    assert_eq!(app.get("/orders/1", &[]).await.status, StatusCode::OK);
    let drained = event_where(&mut watch, &mut pending, STEP, |e| e["draining"] == true).await;
    assert_eq!(drained["status"], "ok", "{drained}");

    let status = app.exit_within(DRAIN_GRACE + Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; stderr:\n{}",
        app.stderr()
    );
    assert!(
        took >= DRAIN_GRACE - Duration::from_millis(500),
        "exited after {took:?}, before the grace"
    );
    assert!(
        took < DRAIN_GRACE + Duration::from_secs(3),
        "exited {took:?} after SIGTERM: the watcher or the idle connection held it"
    );
    // Both were closed, and stdout had one line.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(STEP, idle.read(&mut byte))
        .await
        .expect("closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let rest = tokio::time::timeout(STEP, async {
        while let Some(Ok(_)) = watch.frame().await {}
    })
    .await;
    assert!(rest.is_ok(), "the event stream did not end");
    let stdout = app.stdout.lock().unwrap().clone();
    assert_eq!(stdout, [format!("listening on http://{}/status", app.addr)]);
    drop(db);
}

/// Requests booked in the history, over every minute of `/status/history`.
fn requests_booked(history: &Value) -> u64 {
    history["minutes"]
        .as_array()
        .unwrap_or_else(|| panic!("no minutes: {history}"))
        .iter()
        .filter_map(|m| m["requests"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_file_keeps_the_day_across_a_restart() {
    let _one_at_a_time = TIMED.lock().await;
    let dir = std::env::temp_dir().join(format!("tower-status-production-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("history.bin");
    let _ = std::fs::remove_file(&file);
    let path = file.to_str().unwrap().to_owned();
    let db = Dependency::start();
    let env = [
        ("DATABASE_ADDR", db.addr()),
        ("CHECK_INTERVAL_MS", "100".to_owned()),
        ("HISTORY_FILE", path.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let key: &[(&str, &str)] = &[("x-api-key", DEV_KEY)];

    let mut app = Example::start(&env);
    for id in 0..20 {
        assert_eq!(
            app.get(&format!("/orders/{id}"), &[]).await.status,
            StatusCode::OK
        );
    }
    let before = until("the requests and db booked", STEP, || async {
        let h = app.get("/status/history", key).await.json();
        let db_booked = h["minutes"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["components"]["db"] == "ok"));
        (db_booked && requests_booked(&h) >= 20).then_some(h)
    })
    .await;
    // SIGTERM: drained, the history saved, exit 0.
    app.terminate();
    let status = app.exit_within(DRAIN_GRACE + Duration::from_secs(5)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; stderr:\n{}",
        app.stderr()
    );
    assert!(file.is_file(), "no history file at {path}");

    // A new process reads the day back before its first evaluation.
    let app = Example::start(&env);
    let after = app.get("/status/history", key).await.json();
    assert!(
        requests_booked(&after) >= requests_booked(&before),
        "before the restart: {before}\nafter: {after}"
    );
    let first = &before["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["components"]["db"] == "ok")
        .unwrap()["start"];
    assert!(
        after["minutes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| &m["start"] == first && m["components"]["db"] == "ok"),
        "the minute {first} is gone: {after}"
    );
    assert_eq!(app.stderr().matches("WARN").count(), 0, "{}", app.stderr());
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
    drop(db);
}

// ---------------------------------------------------------------------------
// PostgreSQL and Redis (issue 17).

/// `POSTGRES_URL` and `REDIS_URL` against real servers this test starts:
/// both ok with what they say about themselves, Redis down only degrades,
/// PostgreSQL down takes the service down, both come back, and neither
/// password shows in any answer or log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_redis_from_their_urls_never_showing_a_password() {
    let mut postgres = tokio::task::spawn_blocking(databases::Server::postgres)
        .await
        .expect("starting PostgreSQL");
    let redis_password = redis_server::secret();
    let password = redis_password.clone();
    let mut redis = tokio::task::spawn_blocking(move || {
        redis_server::RedisServer::start("production", &password, &[])
    })
    .await
    .expect("starting redis-server");
    let postgres_url = format!(
        "postgres://app:{}@127.0.0.1:{}/postgres?sslmode=disable",
        postgres.password(),
        postgres.port()
    );
    let redis_url = redis.url();
    let secrets = [postgres.password().to_owned(), redis_password];
    let example = Example::start(&[
        ("POSTGRES_URL", postgres_url.as_str()),
        ("REDIS_URL", redis_url.as_str()),
        ("CHECK_INTERVAL_MS", "100"),
        ("FAILURE_THRESHOLD", "1"),
        ("SUCCESS_THRESHOLD", "1"),
    ]);
    let key = [("X-Api-Key", DEV_KEY)];
    let mut answers = String::new();
    // One change of status shows within the check's timeout, one interval
    // and the report's own wait, with room for a busy machine.
    let within = CHECK_TIMEOUT + Duration::from_secs(10);
    let report_where = |want: &'static [(&'static str, &'static str)]| {
        let addr = example.addr;
        move || async move {
            let reply = get(addr, "/status", &[("X-Api-Key", DEV_KEY)]).await;
            let report = reply.json();
            want.iter()
                .all(|(name, status)| {
                    let component = if *name == "overall" {
                        &report
                    } else {
                        &report["components"][*name]
                    };
                    component["status"] == *status
                })
                .then_some((reply.status, report))
        }
    };

    let (code, report) = until(
        "postgres and redis ok",
        within,
        report_where(&[("overall", "ok"), ("postgres", "ok"), ("redis", "ok")]),
    )
    .await;
    answers.push_str(&report.to_string());
    assert_eq!(code, StatusCode::OK);
    let pg = &report["components"]["postgres"];
    assert_eq!(pg["critical"], true, "{pg}");
    assert_eq!(pg["type"], "datastore", "{pg}");
    assert_eq!(pg["observed_unit"], "ms", "{pg}");
    let details = &pg["details"];
    let version = details["version"].as_str().unwrap_or_default();
    assert!(version.starts_with(|c: char| c.is_ascii_digit()), "{pg}");
    assert_eq!(details["pool"]["max"], 10, "{pg}");
    assert_eq!(
        details["target"],
        format!("postgres://127.0.0.1:{}/postgres", postgres.port()),
        "{pg}"
    );
    let rd = &report["components"]["redis"];
    assert_eq!(rd["critical"], false, "{rd}");
    assert_eq!(rd["details"]["role"], "master", "{rd}");
    assert!(rd["details"]["redis_version"].is_string(), "{rd}");

    // Redis gone: degraded (200), PostgreSQL untouched.
    redis.kill();
    let (code, report) = until(
        "redis down",
        within,
        report_where(&[("overall", "degraded"), ("redis", "down")]),
    )
    .await;
    answers.push_str(&report.to_string());
    assert_eq!(code, StatusCode::OK, "{report}");
    assert_eq!(report["components"]["postgres"]["status"], "ok");

    // PostgreSQL gone: down (503), its error says why without the password.
    postgres.stop();
    let (code, report) = until(
        "postgres down",
        within,
        report_where(&[("overall", "down"), ("postgres", "down")]),
    )
    .await;
    answers.push_str(&report.to_string());
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert!(
        report["components"]["postgres"]["error"].is_string(),
        "{report}"
    );

    // Both back on their ports: ok again.
    // Kept until the end: dropping them stops the servers.
    let _servers = tokio::task::spawn_blocking(move || {
        postgres.restart();
        redis.restart();
        (postgres, redis)
    })
    .await
    .expect("restarting the servers");
    let (_, report) = until(
        "postgres and redis ok again",
        within,
        report_where(&[("overall", "ok"), ("postgres", "ok"), ("redis", "ok")]),
    )
    .await;
    answers.push_str(&report.to_string());

    for path in [
        "/status/transitions",
        "/status/metrics",
        "/status/history",
        "/status/postgres",
        "/status/redis",
    ] {
        let reply = example.get(path, &key).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        answers.push_str(&reply.text());
    }
    let transitions = example.get("/status/transitions", &key).await.text();
    assert!(
        transitions.contains("postgres") && transitions.contains("redis"),
        "{transitions}"
    );
    let stderr = example.stderr();
    assert!(
        stderr.contains("postgres"),
        "the transitions are logged: {stderr}"
    );
    for secret in &secrets {
        assert!(
            !answers.contains(secret.as_str()),
            "a password in an answer: {answers}"
        );
        assert!(
            !stderr.contains(secret.as_str()),
            "a password in the log: {stderr}"
        );
    }
}
