//! The status page in a real browser: headless Chromium, driven by
//! `playwright-core` (`tests/browser/page.mjs`), loads the page of
//! `examples/production.rs` run as a process, for an anonymous and a keyed
//! caller. No console error, no CSP violation, no request off the page's
//! origin; the DOM holds what the JSON report holds; the database going
//! down shows on the open page without a reload. Screenshots (light,
//! dark, phone width, and the database down) are saved under
//! `target/browser/`.
//!
//! Needs `chromium` (or `CHROMIUM=/path/to/chrome`), Node.js and
//! `npm ci --prefix tests/browser`: `scripts/test.sh` installs all three
//! when missing. Without them the test fails and says which is missing.
#![cfg(unix)]

#[path = "seeds/examples.rs"]
mod examples;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use examples::HeldPort;
use http::{header, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// The key the example accepts when `STATUS_API_KEY` is unset.
const KEY: &str = "dev-key";
/// Longest wait for one step of the browser (launch, load, an update).
const STEP: Duration = Duration::from_secs(60);
/// The example's configuration that this test sets; the rest is removed.
const CLEAR: &[&str] = &[
    "APP_ENV",
    "STATUS_API_KEY",
    "DATABASE_ADDR",
    "CACHE_ADDR",
    "SEARCH_ADDR",
    "CHECK_INTERVAL_MS",
    "FAILURE_THRESHOLD",
    "SUCCESS_THRESHOLD",
    "WEBHOOK_URL",
    "HISTORY_FILE",
    "SLO_AVAILABILITY",
    "SLO_LATENCY_MS",
];

/// A dependency: a loopback listener that accepts connections and closes
/// them (what a TCP check needs), on a port kept while it is down.
struct Dependency {
    port: HeldPort,
    accepting: Option<tokio::task::JoinHandle<()>>,
}

impl Dependency {
    fn up() -> Dependency {
        let port = HeldPort::loopback();
        let listener = port.listen().expect("listening on the held port");
        let accepting = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        Dependency {
            port,
            accepting: Some(accepting),
        }
    }

    fn addr(&self) -> String {
        self.port.addr.to_string()
    }

    /// Closes the listener: connections are refused from now on.
    async fn down(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// `GET path` over a new connection, within [`STEP`]; the status and body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (http::StatusCode, Bytes) {
    tokio::time::timeout(STEP, async {
        let stream = TcpStream::connect(addr).await.expect("connecting");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, addr.to_string())
            .header(header::ACCEPT, "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = sender
            .send_request(req.body(Full::<Bytes>::default()).expect("a request"))
            .await
            .expect("an answer");
        let status = res.status();
        (
            status,
            res.into_body().collect().await.expect("a body").to_bytes(),
        )
    })
    .await
    .unwrap_or_else(|_| panic!("GET {path}: no answer within {STEP:?}"))
}

/// `GET path`; the body as JSON.
async fn get_json(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Value {
    let (_, body) = get(addr, path, headers).await;
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "GET {path}: not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// Polls `path` (keyed) until `cond` holds on its JSON, at most [`STEP`].
async fn until_json(addr: SocketAddr, path: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let value = get_json(addr, path, &[("x-api-key", KEY)]).await;
        if cond(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never satisfied the condition; last: {value:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Chromium to drive: `CHROMIUM`, else `chromium` on the `PATH`.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no `chromium` on the PATH (and CHROMIUM unset): run scripts/test.sh, \
                 which installs it (Debian package `chromium`)"
            )
        })
}

/// Where the screenshots go: `target/browser/`.
fn screenshot_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser")
}

/// The driver, `node tests/browser/page.mjs`, talking in JSON lines.
struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    stderr: Arc<Mutex<String>>,
}

impl Driver {
    fn start(url: &str) -> Driver {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "tests/browser/node_modules/playwright-core is missing: run scripts/test.sh \
             (or `npm ci --prefix tests/browser`)"
        );
        let mut child = Command::new("node")
            .arg("page.mjs")
            .current_dir(&dir)
            .env("STATUS_URL", url)
            .env("STATUS_API_KEY", KEY)
            .env("CHROMIUM", chromium())
            .env("SCREENSHOT_DIR", screenshot_dir())
            .env("DEADLINE_MS", STEP.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `node` ({e}): run scripts/test.sh, which installs Node.js")
            });
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str(&line) {
                    Ok(value) => {
                        let _ = tx.send(value);
                    }
                    Err(_) => eprintln!("driver: {line}"),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let text = Arc::clone(&stderr);
        let mut err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                text.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Driver {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The driver's next message, which must be `step`.
    async fn next(&mut self, step: &str) -> Value {
        // Launch, four page loads and their screenshots before the first.
        let within = STEP * 4;
        let got = tokio::task::block_in_place(|| self.lines.recv_timeout(within));
        match got {
            Ok(value) if value["step"] == step => value,
            Ok(value) => panic!("expected `{step}` from the driver, got {value:#}"),
            Err(_) => {
                let _ = self.child.kill();
                let status = self.child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "no `{step}` from the driver ({status:?}); its stderr:\n{}",
                    self.stderr.lock().unwrap_or_else(|e| e.into_inner())
                )
            }
        }
    }

    fn tell(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("writing to the driver");
        self.stdin.flush().expect("flushing the driver's stdin");
    }

    fn exits_cleanly(mut self) {
        let status = self.child.wait().expect("waiting for the driver");
        assert!(
            status.success(),
            "the driver failed ({status}): {}",
            self.stderr.lock().unwrap_or_else(|e| e.into_inner())
        );
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts what every page load must show: an HTML answer with its CSP,
/// no console error or CSP violation, nothing requested off its origin.
fn assert_clean(what: &str, seen: &Value, origin: &str) {
    let response = &seen["response"];
    assert_eq!(response["status"], 200, "{what}: {response}");
    assert_eq!(
        response["contentType"], "text/html; charset=utf-8",
        "{what}"
    );
    let csp = response["csp"].as_str().unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{what}: CSP {csp:?}"
    );
    for list in ["consoleErrors", "pageErrors", "cspViolations"] {
        assert_eq!(seen[list], Value::Array(vec![]), "{what}: {list}");
    }
    let requests = seen["requests"].as_array().expect("requests");
    assert!(!requests.is_empty(), "{what}: no request recorded");
    for url in requests {
        let url = url.as_str().unwrap_or_default();
        assert!(
            url.starts_with(origin) || url.starts_with("data:"),
            "{what}: a request off the page's origin: {url}"
        );
    }
    // The page itself and its watch stream.
    assert!(
        requests
            .iter()
            .any(|u| u.as_str() == Some(&format!("{origin}/status/watch"))),
        "{what}: the page never opened its watch stream: {requests:?}"
    );
    let dom = &seen["dom"];
    assert!(
        dom["bytes"].as_u64().unwrap_or(u64::MAX) < 50 * 1024,
        "{what}: {} bytes",
        dom["bytes"]
    );
    assert_eq!(
        dom["unlabelled"], 0,
        "{what}: a status colour without its word"
    );
    assert_eq!(dom["live"], "live", "{what}: live updates not connected");
}

/// The statuses of a report's components, by name.
fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["components"]
        .as_object()
        .expect("components")
        .iter()
        .map(|(name, c)| (name.clone(), c["status"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// The statuses the page shows, by component.
fn shown(dom: &Value) -> BTreeMap<String, String> {
    dom["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_chromium_for_anonymous_and_keyed_callers() {
    let mut db = Dependency::up();
    let cache = Dependency::up();
    let search = Dependency::up();
    let (_example, addr) = examples::start_example(
        "production",
        CLEAR,
        &[
            ("APP_ENV", "browser-test"),
            ("DATABASE_ADDR", &db.addr()),
            ("CACHE_ADDR", &cache.addr()),
            ("SEARCH_ADDR", &search.addr()),
            ("CHECK_INTERVAL_MS", "200"),
            ("FAILURE_THRESHOLD", "1"),
            ("SUCCESS_THRESHOLD", "1"),
        ],
    );
    let origin = format!("http://{addr}");
    // Every check has a result, and the app has some traffic to chart.
    let report = until_json(addr, "/status", |r| r["status"] == "ok").await;
    for path in ["/", "/orders/1", "/orders/2", "/nowhere"] {
        let _ = get(addr, path, &[]).await;
    }

    let mut driver = Driver::start(&format!("{origin}/status"));

    // Anonymous: the overall status only.
    let anonymous = driver.next("anonymous").await;
    assert_clean("anonymous", &anonymous, &origin);
    let dom = &anonymous["dom"];
    let public = get_json(addr, "/status", &[]).await;
    assert_eq!(dom["overall"], public["status"], "{dom:#}");
    assert_eq!(
        dom["title"],
        format!("Service status: {}", public["status"].as_str().unwrap())
    );
    assert_eq!(dom["heading"], "Service status");
    assert_eq!(dom["identity"], Value::Null, "no version or environment");
    assert_eq!(dom["components"], Value::Array(vec![]));
    assert_eq!(dom["sections"], Value::Array(vec![]), "no details");
    assert_eq!(dom["detailsNote"], true);
    assert!(!dom.to_string().contains("browser-test"), "{dom:#}");

    // Keyed: what the report holds, in light, dark and at phone width.
    let keyed = driver.next("keyed").await;
    assert_clean("keyed", &keyed, &origin);
    assert_clean("keyed, dark", &keyed["dark"], &origin);
    assert_clean("keyed, phone", &keyed["phone"], &origin);
    let dom = &keyed["dom"];
    assert_eq!(dom["overall"], report["status"], "{dom:#}");
    assert_eq!(dom["heading"], report["service"], "{dom:#}");
    let identity = dom["identity"].as_str().unwrap_or_default();
    assert!(
        identity.contains(report["version"].as_str().unwrap()) && identity.contains("browser-test"),
        "{identity:?}"
    );
    assert_eq!(shown(dom), statuses(&report), "{dom:#}");
    for c in dom["components"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        assert_eq!(
            c["critical"], report["components"][name]["critical"],
            "{name}"
        );
        assert_eq!(
            c["cells"].as_array().unwrap().len(),
            48,
            "{name}: 24 h of 30-min cells"
        );
        assert!(c["uptime"].as_str().unwrap().starts_with("uptime "), "{c}");
    }
    assert_eq!(dom["overallCells"].as_array().unwrap().len(), 48);
    // The current cell says its time and status.
    let last = dom["overallCells"][47].as_str().unwrap_or_default();
    assert!(last.ends_with(" ok") || last.contains(" ok "), "{last:?}");
    let sections: Vec<&str> = dom["sections"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        sections,
        [
            "Components",
            "Response time",
            "Traffic",
            "Objectives",
            "Recent changes"
        ]
    );
    let history = get_json(addr, "/status/history", &[("x-api-key", KEY)]).await;
    let objectives: Vec<&str> = history["slos"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(dom["objectives"], serde_json::json!(objectives));
    assert!(dom["charts"].as_u64().unwrap() >= 4, "{}", dom["charts"]);
    // Focus shows a cell's words (keyboard users see what hover shows).
    let cell = &keyed["cell"];
    assert_eq!(cell["focused"], true, "{cell}");
    assert!(cell["width"].as_f64().unwrap() > 1.0, "{cell}");
    // Dark mode changes the colours; the phone never scrolls sideways.
    assert_ne!(keyed["dark"]["dom"]["background"], dom["background"]);
    assert_ne!(keyed["dark"]["dom"]["colour"], dom["colour"]);
    assert!(
        keyed["phone"]["dom"]["overflowX"].as_i64().unwrap() <= 0,
        "{}",
        keyed["phone"]["dom"]["overflowX"]
    );

    // The database goes down; the open page follows without a reload.
    driver.next("ready").await;
    db.down().await;
    driver.tell("down");
    let live = driver.next("live").await;
    assert_clean("keyed, after db went down", &live, &origin);
    let dom = &live["dom"];
    assert_eq!(dom["sameDocument"], true, "the page was reloaded");
    let report = until_json(addr, "/status", |r| r["status"] == "down").await;
    assert_eq!(dom["overall"], "down");
    assert_eq!(shown(dom)["db"], "down");
    assert_eq!(shown(dom)["db"], statuses(&report)["db"]);
    assert!(
        dom["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap_or_default().contains("db: ok → down")),
        "{}",
        dom["transitions"]
    );
    eprintln!(
        "the open page showed db down {} ms after the test took it down; screenshots in {}",
        live["waitedMs"],
        screenshot_dir().display()
    );
    driver.exits_cleanly();
    for shot in ["anonymous", "light", "dark", "phone", "light-db-down"] {
        let path = screenshot_dir().join(format!("{shot}.png"));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 1000, "{}: {len} bytes", path.display());
    }
    drop((cache, search));
}
