//! Harness of the seed tests (`tests/seed_*.rs` include it with `#[path]`):
//! builds an example (a debug build), runs it and `nats-server` as child
//! processes that bind port 0 and say which port they got (killed on
//! drop), talks HTTP through hyper_util's client, and validates bodies
//! against the JSON Schemas in `tests/schemas/`. Every wait is bounded.

// Each test file uses only some of these.
#![allow(dead_code)]

#[path = "../seeds/examples.rs"]
pub mod examples;

pub use examples::process::Running;
// Only some test files use it.
#[allow(unused_imports)]
pub use examples::HeldPort;

use std::collections::HashMap;
use std::future::Future;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
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

/// Starts example `name` (built first) with `env`, on
/// `STATUS_ADDR=127.0.0.1:0`, and waits for the `listening on
/// http://ADDR/...` line it prints once bound; returns the running example
/// and `ADDR`.
pub fn start_example(name: &str, env: &[(&str, &str)]) -> (Running, SocketAddr) {
    examples::start_example(name, &[], env)
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

/// A real `nats-server -js`, with its store in a directory that outlives
/// restarts, reached through a [`Forwarder`]: the server binds a port of
/// its choosing at every start (`-p -1`) and the harness reads it from the
/// server's log, while the URL given to the example stays the same.
pub struct Nats {
    front: Forwarder,
    store: PathBuf,
    server: Option<Running>,
}

impl Nats {
    pub fn start(dir: &TempDir) -> Self {
        let mut nats = Self {
            front: Forwarder::open(),
            store: dir.path().join("jetstream"),
            server: None,
        };
        nats.restart();
        nats
    }

    /// The URL for the example and the test: the forwarder's.
    pub fn url(&self) -> String {
        format!("nats://{}", self.front.addr)
    }

    /// Kills the server (SIGKILL) and cuts the connections to it.
    pub fn stop(&mut self) {
        self.front.forward_to(None);
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    /// (Re)starts the server with the same store, on a port it picks, and
    /// points the forwarder at it.
    pub fn restart(&mut self) {
        self.stop();
        const READY: &str = "Listening for client connections on ";
        let (server, addr) = Running::spawn_until(
            "nats-server",
            Command::new(nats_server_binary())
                .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
                .arg(&self.store),
            Duration::from_secs(30),
            |line| {
                let at = line.find(READY)? + READY.len();
                line[at..].trim().parse::<SocketAddr>().ok()
            },
        );
        self.server = Some(server);
        self.front.forward_to(Some(addr));
    }
}

/// A loopback address that stays the same while the server behind it
/// changes: a listener of the test, held for its whole life, forwarding
/// each connection to the server of the moment. A server that must "come
/// back on the same port" after a restart comes back behind it, so no port
/// is ever freed and bound again (another program could take it in
/// between). While there is no server, connections are accepted and closed
/// at once.
pub struct Forwarder {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Forwarding>>,
    accepting: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Forwarding {
    to: Option<SocketAddr>,
    closing: bool,
    next: u64,
    /// Both ends of each forwarded connection, to cut them.
    open: HashMap<u64, [TcpStream; 2]>,
}

fn lock(shared: &Mutex<Forwarding>) -> MutexGuard<'_, Forwarding> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forwarder {
    pub fn open() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the forwarder");
        let addr = listener.local_addr().expect("the forwarder's address");
        let shared = Arc::new(Mutex::new(Forwarding::default()));
        let accepting = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || Self::accept(listener, shared))
        };
        Forwarder {
            addr,
            shared,
            accepting: Some(accepting),
        }
    }

    /// Forwards new connections to `to` (none: closes them at once), and
    /// cuts those forwarded so far.
    pub fn forward_to(&self, to: Option<SocketAddr>) {
        let mut forwarding = lock(&self.shared);
        forwarding.to = to;
        for (_, ends) in forwarding.open.drain() {
            for end in ends {
                let _ = end.shutdown(Shutdown::Both);
            }
        }
    }

    fn accept(listener: TcpListener, shared: Arc<Mutex<Forwarding>>) {
        for client in listener.incoming() {
            let to = {
                let forwarding = lock(&shared);
                if forwarding.closing {
                    return;
                }
                forwarding.to
            };
            // No server: the connection is dropped, closed at once.
            let (Ok(client), Some(to)) = (client, to) else {
                continue;
            };
            let Ok(server) = TcpStream::connect_timeout(&to, Duration::from_secs(2)) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (Ok(c1), Ok(c2), Ok(s1), Ok(s2)) = (
                client.try_clone(),
                client.try_clone(),
                server.try_clone(),
                server.try_clone(),
            ) else {
                continue;
            };
            let id = {
                let mut forwarding = lock(&shared);
                if forwarding.to != Some(to) {
                    continue; // the server changed meanwhile
                }
                forwarding.next += 1;
                let id = forwarding.next;
                forwarding.open.insert(id, [client, server]);
                id
            };
            for (mut from, mut into) in [(c1, s1), (s2, c2)] {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut into);
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = into.shutdown(Shutdown::Both);
                    lock(&shared).open.remove(&id);
                });
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.forward_to(None);
        lock(&self.shared).closing = true;
        // Wakes the accepting thread, which sees `closing` and ends.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
            if let Some(accepting) = self.accepting.take() {
                let _ = accepting.join();
            }
        }
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
