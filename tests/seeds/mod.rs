//! Helpers for the seed tests (`tests/seed_*.rs`): build an example once,
//! run it as a child process on a port it binds itself (port 0; the test
//! reads the address from its output), drive it with a real HTTP client,
//! open and close real TCP dependencies, and validate bodies against the
//! JSON Schemas in `tests/schemas/`. Every wait is bounded.

// Each test file uses only some of these.
#![allow(dead_code)]

mod examples;

use examples::process::Running;
use examples::HeldPort;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

/// Upper bound for one request or one short wait.
pub const STEP: Duration = Duration::from_secs(5);

/// Variables the examples read: cleared so the caller's shell never leaks in.
const EXAMPLE_VARS: &[&str] = &[
    "STATUS_ADDR",
    "APP_ENV",
    "DEPENDENCY_ADDR",
    "DATABASE_ADDR",
    "OPTIONAL_DEPENDENCY_ADDR",
    "INTEGRATIONS",
    "STATUS_API_KEY",
];

/// A running example; killed (and reaped) when dropped.
pub struct App {
    example: Running,
    pub addr: SocketAddr,
}

impl App {
    /// Starts example `name` with `env` (on top of a clean set of the
    /// examples' variables) on `STATUS_ADDR=127.0.0.1:0`, and waits for the
    /// `listening on http://ADDR/...` line it prints once bound (so it
    /// accepts connections from then on).
    pub async fn start(name: &str, env: &[(&str, &str)]) -> App {
        let name = name.to_owned();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        // Building and starting block: off the runtime's threads.
        let started = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (&k[..], &v[..])).collect();
            examples::start_example(&name, EXAMPLE_VARS, &env)
        })
        .await;
        let (example, addr) = started.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        App { example, addr }
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// What the example wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.example.stderr()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // A failing test shows what the example said.
        if std::thread::panicking() {
            eprintln!("{}", self.example.output());
        }
    }
}

/// Runs example `name` with `env` (the examples' other variables cleared)
/// expecting it to exit by itself within 10 s; returns its exit code (None
/// when killed by a signal) and stderr.
pub fn run_to_exit(name: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    examples::run_to_exit(name, EXAMPLE_VARS, env)
}

/// A TCP dependency on loopback: accepts and closes every connection until
/// closed. Its port stays held while it is closed (connections are refused,
/// and no other program can take the port), so reopening binds the same
/// port again.
pub struct Dependency {
    pub addr: SocketAddr,
    port: Arc<HeldPort>,
    task: Option<JoinHandle<()>>,
}

/// A closed [`Dependency`]: its address (shown as `host:port`), still held
/// for [`Dependency::open_at`].
pub struct Closed {
    pub addr: SocketAddr,
    port: Arc<HeldPort>,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

impl Dependency {
    /// Listens on a fresh loopback port (chosen by the OS).
    pub async fn open() -> Dependency {
        Self::listen(Arc::new(HeldPort::loopback())).await
    }

    /// Listens again on the port of `closed`, to bring a dependency back.
    pub async fn open_at(closed: Closed) -> Dependency {
        Self::listen(closed.port).await
    }

    async fn listen(port: Arc<HeldPort>) -> Dependency {
        let listener = bounded("binding a dependency", async {
            loop {
                // Beside the holder, which does not listen: retry briefly
                // should the OS still refuse.
                match port.listen() {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        Dependency {
            addr: port.addr,
            port,
            task: Some(task),
        }
    }

    /// `host:port` for the example's environment.
    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Stops listening: connections are refused from now on.
    pub async fn close(mut self) -> Closed {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        // Refused once the listener is gone. Asked until it is, within a
        // deadline: one CI run saw a connection accepted just after the
        // listener's task was aborted and awaited.
        let deadline = Instant::now() + STEP;
        while let Ok(stream) = TcpStream::connect(self.addr).await {
            drop(stream);
            assert!(
                Instant::now() < deadline,
                "closed dependency {} still accepts after {STEP:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Closed {
            addr: self.addr,
            port: Arc::clone(&self.port),
        }
    }
}

impl Drop for Dependency {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A TCP dependency that never completes a connection: a listener with a
/// full accept queue, so new connects hang until they time out. `None`
/// where the OS completes them anyway.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    pub async fn open() -> Option<Blackhole> {
        let socket = TcpSocket::new_v4().ok()?;
        socket.bind("127.0.0.1:0".parse().unwrap()).ok()?;
        let listener = socket.listen(1).ok()?;
        let addr = listener.local_addr().ok()?;
        let mut fillers = Vec::new();
        for _ in 0..8 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                // Hangs: the queue is full.
                Err(_) => {
                    return Some(Blackhole {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    })
                }
                Ok(Err(_)) => return None,
            }
        }
        None
    }
}

/// Runs `fut`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(STEP, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}

pub use examples::Reply;

// This harness's reading of a header.
impl Reply {
    /// A header as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// Sends `method url` with `headers` and reads the whole response.
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> Reply {
    let req = examples::request(method.clone(), url, headers);
    // A real HTTP/1.1 client (hyper-util's legacy client), fresh per call:
    // its pool is tied to the runtime that made it, and each test has its own.
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let what = format!("{method} {url}");
    let res = bounded(&what, client.request(req))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let (parts, body) = res.into_parts();
    let body = bounded(&what, body.collect())
        .await
        .unwrap_or_else(|e| panic!("{what}: body: {e}"))
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// `GET url` with `headers`.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(Method::GET, url, headers).await
}

/// Polls `GET url` until `cond` holds on the reply (bounded), returning it.
pub async fn get_until(
    what: &str,
    url: &str,
    headers: &[(&str, &str)],
    cond: impl Fn(&Reply) -> bool,
) -> Reply {
    let started = Instant::now();
    loop {
        let reply = get(url, headers).await;
        if cond(&reply) {
            return reply;
        }
        assert!(
            started.elapsed() < STEP,
            "{what}: not within {STEP:?}; last reply {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A JSON Schema from `tests/schemas/`, with format validation on.
pub struct Schema {
    name: String,
    doc: Value,
}

impl Schema {
    pub fn load(file: &str) -> Schema {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/schemas")
            .join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Schema {
            name: file.to_owned(),
            doc,
        }
    }

    /// The schema document.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    fn errors_against(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", self.name));
        validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect()
    }

    /// The schema of the definition `def` (`$defs/DEF`), sharing `$defs`.
    fn def(&self, def: &str) -> Value {
        assert!(
            self.doc["$defs"].get(def).is_some(),
            "{} has no $defs/{def}",
            self.name
        );
        serde_json::json!({
            "$schema": self.doc["$schema"],
            "$defs": self.doc["$defs"],
            "$ref": format!("#/$defs/{def}"),
        })
    }

    /// Errors of `instance` against the whole schema (empty when valid).
    pub fn errors(&self, instance: &Value) -> Vec<String> {
        self.errors_against(&self.doc, instance)
    }

    /// Errors of `instance` against `$defs/DEF` (empty when valid).
    pub fn def_errors(&self, def: &str, instance: &Value) -> Vec<String> {
        self.errors_against(&self.def(def), instance)
    }

    /// Fails unless `instance` is valid against the whole schema.
    pub fn assert_valid(&self, instance: &Value) {
        let errors = self.errors(instance);
        assert!(
            errors.is_empty(),
            "body does not match {}:\n  {}\nbody: {instance}",
            self.name,
            errors.join("\n  ")
        );
    }

    /// Fails unless `instance` is valid against `$defs/DEF`.
    pub fn assert_valid_def(&self, def: &str, instance: &Value) {
        let errors = self.def_errors(def, instance);
        assert!(
            errors.is_empty(),
            "body does not match {}#/$defs/{def}:\n  {}\nbody: {instance}",
            self.name,
            errors.join("\n  ")
        );
    }
}

/// Milliseconds between an RFC 3339 timestamp and now (absolute).
pub fn age_ms(timestamp: &str) -> u128 {
    let t = humantime::parse_rfc3339(timestamp)
        .unwrap_or_else(|e| panic!("`{timestamp}` is not RFC 3339: {e}"));
    let now = std::time::SystemTime::now();
    match now.duration_since(t) {
        Ok(d) => d.as_millis(),
        Err(e) => e.duration().as_millis(),
    }
}

/// Checks the crate's answers to methods other than GET/HEAD: 405,
/// `Allow: GET, HEAD`, a JSON error body with a non-empty `error`; returns
/// the bodies, whose shape (the crate's or the example's error format) the
/// caller checks.
pub async fn assert_methods_not_allowed(url: &str, headers: &[(&str, &str)]) -> Vec<Value> {
    let mut bodies = Vec::new();
    for method in [
        Method::POST,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
        Method::from_bytes(b"PURGE").unwrap(),
    ] {
        let r = send(method.clone(), url, headers).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {url}");
        assert_eq!(r.header("allow"), "GET, HEAD", "{method} {url}");
        assert_eq!(r.header("content-type"), "application/json", "{method}");
        assert_eq!(r.header("cache-control"), "no-store", "{method}");
        let body = r.json();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method}: {body}"
        );
        bodies.push(body);
    }
    bodies
}

/// Checks `HEAD url`: `expected` status, the GET's headers, no body.
pub async fn assert_head(url: &str, headers: &[(&str, &str)], expected: StatusCode) {
    let r = send(Method::HEAD, url, headers).await;
    assert_eq!(r.status, expected, "HEAD {url}");
    assert!(r.body.is_empty(), "HEAD {url} has a body");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let len: usize = r
        .header("content-length")
        .parse()
        .expect("HEAD has a Content-Length");
    assert!(len > 0, "HEAD {url}: Content-Length 0");
}

/// Checks that `HEAD url` answers `expected` with the headers of `GET url`
/// and no body, its `Content-Length` being the length of the GET's body
/// (for error bodies, whose length does not change between calls).
pub async fn assert_head_like_get(url: &str, headers: &[(&str, &str)], expected: StatusCode) {
    let got = get(url, headers).await;
    assert_eq!(got.status, expected, "GET {url}");
    let head = send(Method::HEAD, url, headers).await;
    assert_eq!(head.status, expected, "HEAD {url}");
    assert!(head.body.is_empty(), "HEAD {url} has a body");
    assert_eq!(
        head.header("content-length"),
        got.body.len().to_string(),
        "HEAD {url}"
    );
    for name in ["content-type", "cache-control", "allow", "www-authenticate"] {
        assert_eq!(head.header(name), got.header(name), "HEAD {url}: {name}");
    }
}

/// Opens `GET url` (a `/watch` resource: Server-Sent Events) and reads
/// `event: status` events until `cond` holds on one's data, which it
/// returns; bounded by [`STEP`].
pub async fn watch_until(
    what: &str,
    url: &str,
    headers: &[(&str, &str)],
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let req = examples::request(Method::GET, url, headers);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = bounded(what, client.request(req))
        .await
        .unwrap_or_else(|e| panic!("{what}: GET {url}: {e}"));
    let mut seen = Vec::new();
    let found = tokio::time::timeout(
        STEP,
        examples::status_event_where(what, res, &mut seen, cond),
    )
    .await;
    found.unwrap_or_else(|_| panic!("{what}: not within {STEP:?}; events seen: {seen:?}"))
}
