//! What both seed harnesses (`tests/seeds/mod.rs` and
//! `tests/seed_clients/harness.rs`) need: build an example once, start it
//! on port 0 and read the address it bound, run it to its exit, hold a
//! loopback port for a dependency, build requests and read `/watch` events.

// Each harness uses only some of these.
#![allow(dead_code)]

#[path = "../support/process.rs"]
pub mod process;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use process::Running;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// Builds `examples/NAME.rs` with `cargo build --example NAME` (once per
/// test binary) and returns the executable's path, as cargo reports it.
///
/// A debug build: it reuses the dependencies `cargo test` has just compiled,
/// so only the example itself is compiled (a release build would compile
/// every dependency again, optimized). Users run the examples with
/// `cargo run --release --example NAME`; the tests only need a binary.
/// Cargo takes its own lock on the build directory, so concurrent builds
/// (other test binaries, other people's `cargo run`) wait for each other.
pub fn build_example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(exe) = built.get(name) {
        return exe.clone();
    }
    let started = Instant::now();
    let out = as_outer_cargo(&mut Command::new(env!("CARGO")))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", name, "--features", &features()])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo can be run");
    assert!(out.status.success(), "cargo build --example {name} failed");
    let exe = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo named no executable for example {name}"));
    eprintln!(
        "built example {name} in {:.1} s (cargo build --example {name})",
        started.elapsed().as_secs_f64()
    );
    built.insert(name.to_owned(), exe.clone());
    exe
}

/// The crate's features this test was built with, so the example is
/// built against the library `cargo test` has just compiled.
fn features() -> String {
    let enabled = [
        ("http-check", cfg!(feature = "http-check")),
        ("host-check", cfg!(feature = "host-check")),
        ("dns-check", cfg!(feature = "dns-check")),
        ("postgres-check", cfg!(feature = "postgres-check")),
        ("mysql-check", cfg!(feature = "mysql-check")),
        ("redis-check", cfg!(feature = "redis-check")),
        ("grpc-check", cfg!(feature = "grpc-check")),
        ("tls-check", cfg!(feature = "tls-check")),
        ("nats", cfg!(feature = "nats")),
        ("grpc", cfg!(feature = "grpc")),
        ("signal", cfg!(feature = "signal")),
        ("webhook", cfg!(feature = "webhook")),
    ];
    let names: Vec<&str> = enabled
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    names.join(",")
}

/// Removes from `cmd` the variables cargo sets for a test process
/// (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, ...), so the nested `cargo build`
/// runs in the environment of the `cargo test` that started this test.
/// Build scripts that read one of them (ring's reads `CARGO_MANIFEST_DIR`)
/// would otherwise count as changed, and the dependencies `cargo test` has
/// just compiled would be compiled again, in both directions, every time.
fn as_outer_cargo(cmd: &mut Command) -> &mut Command {
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else {
            continue;
        };
        let set_by_cargo = name.starts_with("CARGO_PKG_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if set_by_cargo {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Starts example `name` (built by [`build_example`]) with `env`, on
/// `STATUS_ADDR=127.0.0.1:0` unless `env` says otherwise (the variables
/// in `clear` removed first, so the caller's shell never leaks in), and
/// waits for its `listening on http://ADDR/...` line; returns the running
/// example and `ADDR`. The example binds the port itself: no port is
/// chosen by the test and handed over.
pub fn start_example(name: &str, clear: &[&str], env: &[(&str, &str)]) -> (Running, SocketAddr) {
    let exe = build_example(name);
    let mut cmd = Command::new(exe);
    for var in clear {
        cmd.env_remove(var);
    }
    cmd.env("STATUS_ADDR", "127.0.0.1:0")
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied());
    Running::spawn_example(name, &mut cmd)
}

/// Runs example `name` with `env` (and nothing else of the examples'
/// configuration from the caller's shell: `clear` lists the variables to
/// remove), expecting it to exit by itself within 10 s; returns its exit
/// code (None when killed by a signal) and what it wrote to stderr.
pub fn run_to_exit(name: &str, clear: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let exe = build_example(name);
    let mut cmd = Command::new(exe);
    for var in clear {
        cmd.env_remove(var);
    }
    cmd.env("STATUS_ADDR", "127.0.0.1:0")
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied());
    let mut example = Running::spawn(name, &mut cmd);
    match example.wait_exit(Duration::from_secs(10)) {
        Some(status) => (status.code(), example.stderr()),
        None => {
            example.kill();
            example.fail(&format!("with {env:?} kept running instead of exiting"))
        }
    }
}

/// A loopback port for a dependency that goes down and comes back on the
/// same port: bound by a socket that never listens, so connections to it
/// are refused while the dependency's listener is closed. The holder and
/// the listeners set `SO_REUSEPORT` only, so they share the port while no
/// other socket can take it: a port-0 bind with `SO_REUSEADDR` (as tokio's
/// `TcpListener::bind` does) may be given a port whose holder has
/// `SO_REUSEADDR` and does not listen, which once let an example's own
/// listener take a dependency's port.
pub struct HeldPort {
    pub addr: SocketAddr,
    _holder: tokio::net::TcpSocket,
}

impl HeldPort {
    pub fn loopback() -> HeldPort {
        let holder = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
        holder.set_reuseport(true).expect("SO_REUSEPORT");
        holder
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind a loopback port");
        let addr = holder.local_addr().expect("its address");
        HeldPort {
            addr,
            _holder: holder,
        }
    }

    /// A listener on the held port; connections are refused again once
    /// it is dropped.
    pub fn listen(&self) -> std::io::Result<tokio::net::TcpListener> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.bind(self.addr)?;
        socket.listen(1024)
    }
}

/// An HTTP response, body read whole. Each harness adds its own `header`.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; fails the test, showing the body, when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }
}

/// `method url` with `headers` and an empty body.
pub fn request(method: Method, url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::default()).expect("a valid request")
}

/// Reads the `/watch` response `res` (Server-Sent Events), which must be a
/// `200` event stream, until the data of an `event: status` event satisfies
/// `cond`, and returns that data. The events that did not are pushed to
/// `seen`; `what` names the stream in failure messages. Unbounded: the
/// caller bounds it.
pub async fn status_event_where<B>(
    what: &str,
    res: Response<B>,
    seen: &mut Vec<Value>,
    cond: impl Fn(&Value) -> bool,
) -> Value
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    assert_eq!(res.status(), StatusCode::OK, "{what}");
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream"),
        "{what}"
    );
    let mut body = res.into_body();
    let mut text = String::new();
    loop {
        let frame = match body.frame().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => panic!("{what}: reading events: {e}"),
            None => panic!("{what}: the event stream ended"),
        };
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        // Whole events end with a blank line.
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if !event.starts_with("event: status\n") {
                continue; // a keep-alive comment
            }
            let data = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("{what}: an event without data: {event:?}"));
            let value: Value = serde_json::from_str(data)
                .unwrap_or_else(|e| panic!("{what}: event data is not JSON ({e}): {data}"));
            if cond(&value) {
                return value;
            }
            seen.push(value);
        }
    }
}
