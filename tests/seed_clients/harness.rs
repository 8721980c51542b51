//! Harness of the seed tests (`tests/seed_*.rs` include it with `#[path]`):
//! builds an example (a debug build), runs it and `nats-server` as child
//! processes that are killed on drop, talks HTTP through hyper_util's
//! client, and validates bodies against the JSON Schemas in
//! `tests/schemas/`. Every wait is bounded.

// Each test file uses only some of these.
#![allow(dead_code)]

#[path = "../seeds/examples.rs"]
pub mod examples;

pub use examples::{build_example, free_port};

use std::fs::File;
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process with its output in a log file, killed on drop.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Self {
        let file = File::create(&log).expect("create the log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the process accepts TCP connections on `port`; fails
    /// with its output if it exits or does not listen within `within`.
    pub fn wait_for_port(&mut self, port: u16, within: Duration) {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            self.assert_running();
            assert!(
                started.elapsed() < within,
                "{} did not listen on {addr} within {within:?}:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics if the process has exited, with its output.
    pub fn assert_running(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.name, self.output());
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Finds `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The `nats-server` binary; fails the test clearly when it is missing.
pub fn nats_server_binary() -> PathBuf {
    on_path("nats-server").unwrap_or_else(|| {
        panic!(
            "nats-server is not on PATH: these tests run a real NATS server. \
             Install it (scripts/test.sh does: apt-get install nats-server)."
        )
    })
}

/// The version `nats-server --version` reports, without the `v`.
pub fn nats_server_version() -> String {
    let out = Command::new(nats_server_binary())
        .arg("--version")
        .output()
        .expect("nats-server --version runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // "nats-server: v2.9.10"
    text.trim()
        .rsplit(' ')
        .next()
        .map(|v| v.trim_start_matches('v').to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("unexpected nats-server --version output: {text:?}"))
}

/// A real `nats-server -js` on a free port, with its store in a directory
/// that outlives restarts.
pub struct Nats {
    pub port: u16,
    store: PathBuf,
    log_dir: PathBuf,
    starts: usize,
    proc: Option<Proc>,
}

impl Nats {
    pub fn start(dir: &TempDir) -> Self {
        let mut nats = Self {
            port: free_port(),
            store: dir.path().join("jetstream"),
            log_dir: dir.path().to_owned(),
            starts: 0,
            proc: None,
        };
        nats.restart();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// (Re)starts the server on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.starts += 1;
        let log = self.log_dir.join(format!("nats-{}.log", self.starts));
        let proc = Proc::spawn(
            "nats-server",
            Command::new(nats_server_binary())
                .args(["-js", "-a", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .arg("-sd")
                .arg(&self.store),
            log,
        );
        let proc = self.proc.insert(proc);
        proc.wait_for_port(self.port, Duration::from_secs(10));
    }
}

pub use examples::Reply;

// This harness's reading of a header.
impl Reply {
    /// A header as text, when present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A plain HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request with `headers`, within 10 s.
pub async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let req = examples::request(method.clone(), url, headers);
    let run = async {
        let res = client.request(req).await?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(Duration::from_secs(10), run).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => panic!("{method} {url}: {e}"),
        Err(_) => panic!("{method} {url}: no answer within 10 s"),
    }
}

/// Polls `probe` until it gives `Some`, for at most `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks `body` against `$defs/DEF` of `tests/schemas/FILE`.
pub fn validate(file: &str, def: &str, body: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/schemas")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    assert!(
        schema["$defs"].get(def).is_some(),
        "{file} has no $defs/{def}"
    );
    schema["$ref"] = Value::String(format!("#/$defs/{def}"));
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{file} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} (at {})", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "body does not match {file}#/$defs/{def}: {errors:#?}\n{body:#}"
    );
}

/// Opens `GET url` (a `/watch` resource: Server-Sent Events) and reads
/// `event: status` events until `cond` holds on one's data, which it
/// returns; fails after `within`.
pub async fn watch_until(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    headers: &[(&str, &str)],
    within: Duration,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let req = examples::request(Method::GET, url, headers);
    let what = format!("GET {url}");
    let mut seen = Vec::new();
    let run = async {
        let res = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        examples::status_event_where(&what, res, &mut seen, cond).await
    };
    match tokio::time::timeout(within, run).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no matching event within {within:?}; seen: {seen:?}"),
    }
}
