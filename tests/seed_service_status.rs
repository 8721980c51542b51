//! `examples/service_status.rs` against seed 000 (Mileston Business API,
//! "API Status Check"): the example runs as a child process and is driven
//! over real TCP, with real TCP listeners as its dependency. Every body is
//! validated against `tests/schemas/seed_000.json`; the seed's own Docker
//! `HEALTHCHECK` command (curl) and its JavaScript clients (fetch, axios with
//! node) run against it too.

mod seeds;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use seeds::{
    age_ms, assert_head, assert_head_like_get, assert_methods_not_allowed, get, get_until,
    run_to_exit, send, App, Blackhole, Dependency, Reply, Schema,
};
use serde_json::{json, Value};

const NAME: &str = "service_status";

/// The seed's "Response Format" example, verbatim.
const SEED_EXAMPLE: &str = r#"{
  "status": "healthy",
  "service": "all-services",
  "timestamp": "2024-01-15T10:30:00.000Z",
  "environment": "development",
  "version": "1.0.0",
  "uptime": 3600,
  "memory": {
    "used": 45,
    "total": 67
  }
}"#;

/// The seed's "Error Response Example", verbatim.
const SEED_ERROR_EXAMPLE: &str = r#"{
  "error": "Service unavailable",
  "timestamp": "2024-01-15T10:30:00.000Z",
  "service": "all-services"
}"#;

/// Fields in the seed's order.
const FIELDS: [&str; 7] = [
    "status",
    "service",
    "timestamp",
    "environment",
    "version",
    "uptime",
    "memory",
];

fn schema() -> Schema {
    Schema::load("seed_000.json")
}

/// Fields of the seed's error object, in its order.
const ERROR_FIELDS: [&str; 3] = ["error", "timestamp", "service"];

/// Fails unless the body of `r` has each of `fields` as a key, in that
/// order (the first occurrence of each).
fn assert_fields_in_order(r: &Reply, fields: &[&str]) {
    let text = std::str::from_utf8(&r.body).unwrap();
    let positions: Vec<usize> = fields
        .iter()
        .map(|f| {
            text.find(&format!("\"{f}\":"))
                .unwrap_or_else(|| panic!("no {f} in {text}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "fields not in the seed's order: {text}"
    );
}

/// Checks an error reply: `code`, JSON, the seed's error object with
/// exactly its fields in its order, `all-services`, a fresh timestamp.
fn check_error(r: &Reply, code: StatusCode) -> Value {
    assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    schema().assert_valid_def("error", &body);
    assert_fields_in_order(r, &ERROR_FIELDS);
    assert_eq!(body["service"], "all-services", "{body}");
    let age = age_ms(body["timestamp"].as_str().unwrap());
    assert!(age < 5_000, "timestamp {age} ms away from now: {body}");
    body
}

/// Checks a status body: schema, exact fields in the seed's order, values
/// that follow from the environment. Returns it as JSON.
fn check_body(r: &Reply, status: &str, environment: &str) -> Value {
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    schema().assert_valid(&body);
    assert_fields_in_order(r, &FIELDS);
    assert_eq!(body.as_object().unwrap().len(), FIELDS.len(), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["service"], "all-services");
    assert_eq!(body["environment"], environment);
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime"].as_u64().unwrap() < 600, "{body}");
    let used = body["memory"]["used"].as_u64().unwrap();
    let total = body["memory"]["total"].as_u64().unwrap();
    assert!(
        used >= 1,
        "RSS of a running process is at least 1 MB: {body}"
    );
    assert!(total >= used, "virtual size below RSS: {body}");
    let age = age_ms(body["timestamp"].as_str().unwrap());
    assert!(age < 5_000, "timestamp {age} ms away from now: {body}");
    body
}

#[test]
fn schema_follows_the_seed() {
    let s = schema();
    s.assert_valid(&serde_json::from_str(SEED_EXAMPLE).unwrap());
    let error_example: Value = serde_json::from_str(SEED_ERROR_EXAMPLE).unwrap();
    s.assert_valid_def("error", &error_example);
    for (what, bad) in [
        (
            "no timestamp",
            json!({"error": "x", "service": "all-services"}),
        ),
        (
            "no service",
            json!({"error": "x", "timestamp": "2024-01-15T10:30:00.000Z"}),
        ),
        (
            "no error",
            json!({"timestamp": "2024-01-15T10:30:00.000Z", "service": "s"}),
        ),
        (
            "the crate's {error, code} object",
            json!({"error": "x", "code": "method_not_allowed"}),
        ),
        ("an extra field", {
            let mut v = error_example.clone();
            v["code"] = json!(503);
            v
        }),
        ("timestamp without milliseconds", {
            let mut v = error_example.clone();
            v["timestamp"] = json!("2024-01-15T10:30:00Z");
            v
        }),
    ] {
        assert!(
            !s.def_errors("error", &bad).is_empty(),
            "error schema accepts {what}: {bad}"
        );
    }
    let example: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    let broken = |path: &[&str], value: Option<Value>| {
        let mut v = example.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut at = &mut v;
        for p in parents {
            at = &mut at[*p];
        }
        match value {
            Some(value) => at[*last] = value,
            None => {
                at.as_object_mut().unwrap().remove(*last);
            }
        }
        v
    };
    for (what, bad) in [
        ("status ok", broken(&["status"], Some(json!("ok")))),
        (
            "no milliseconds",
            broken(&["timestamp"], Some(json!("2024-01-15T10:30:00Z"))),
        ),
        (
            "not a date (format is validated)",
            broken(&["timestamp"], Some(json!("2024-13-45T10:30:00.000Z"))),
        ),
        ("uptime as text", broken(&["uptime"], Some(json!("3600")))),
        (
            "fractional MB",
            broken(&["memory", "used"], Some(json!(45.5))),
        ),
        ("no memory.total", broken(&["memory", "total"], None)),
        ("no version", broken(&["version"], None)),
        (
            "an extra field",
            broken(&["uptime_seconds"], Some(json!(1))),
        ),
    ] {
        assert!(!s.errors(&bad).is_empty(), "schema accepts {what}: {bad}");
    }
}

#[tokio::test]
async fn healthy_dependency_answers_200_with_the_seeds_fields() {
    let dep = Dependency::open().await;
    let app = App::start(
        NAME,
        &[
            ("DEPENDENCY_ADDR", &dep.addr_string()),
            ("APP_ENV", "production"),
        ],
    )
    .await;
    let r = get(&app.url("/status"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    check_body(&r, "healthy", "production");
    // Trailing slash and query strings are the same endpoint.
    let r = get(&app.url("/status/?x=1"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    check_body(&r, "healthy", "production");
    // The app's own routes still work.
    let r = get(&app.url("/"), &[]).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"hello\n"[..]));
}

#[tokio::test]
async fn without_dependency_and_app_env_it_is_healthy_in_development() {
    let app = App::start(NAME, &[]).await;
    let r = get(&app.url("/status"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    check_body(&r, "healthy", "development");
}

#[tokio::test]
async fn dependency_down_is_503_unhealthy_and_recovers() {
    let dep = Dependency::open().await;
    let app = App::start(NAME, &[("DEPENDENCY_ADDR", &dep.addr_string())]).await;
    let url = app.url("/status");
    assert_eq!(get(&url, &[]).await.status, StatusCode::OK);

    let addr = dep.close().await;
    let r = get_until("503 after the dependency closed", &url, &[], |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    check_body(&r, "unhealthy", "development");
    assert_head(&url, &[], StatusCode::SERVICE_UNAVAILABLE).await;
    // The error text is the crate's, on the component's own resource.
    let c = get(&app.url("/status/dependency"), &[]).await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    let c = c.json();
    let error = c["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("connect to {addr}: ")) && error.contains("refused"),
        "{c}"
    );

    let _dep = Dependency::open_at(addr).await;
    let back = Instant::now();
    let r = get_until("200 after the dependency came back", &url, &[], |r| {
        r.status == StatusCode::OK
    })
    .await;
    check_body(&r, "healthy", "development");
    // The check result lives 500 ms.
    assert!(
        back.elapsed() < Duration::from_secs(2),
        "{:?}",
        back.elapsed()
    );
}

#[tokio::test]
async fn dependency_that_times_out_is_unhealthy() {
    let Some(hole) = Blackhole::open().await else {
        eprintln!("skipped: this OS completes connections to a full accept queue");
        return;
    };
    let app = App::start(NAME, &[("DEPENDENCY_ADDR", &hole.addr.to_string())]).await;
    let r = get(&app.url("/status"), &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    check_body(&r, "unhealthy", "development");
    let c = get(&app.url("/status/dependency"), &[]).await.json();
    assert_eq!(
        c["error"],
        format!("connect to {} timed out after 1000 ms", hole.addr),
        "{c}"
    );
}

#[tokio::test]
async fn head_other_methods_and_errors_are_the_seeds_error_object() {
    let app = App::start(NAME, &[]).await;
    let url = app.url("/status");
    assert_head(&url, &[], StatusCode::OK).await;
    for body in assert_methods_not_allowed(&url, &[]).await {
        schema().assert_valid_def("error", &body);
        assert_eq!(body["service"], "all-services", "{body}");
        assert_eq!(
            body["error"], "only GET and HEAD are allowed on the status endpoint",
            "{body}"
        );
    }
    let r = send(Method::POST, &url, &[]).await;
    check_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), "GET, HEAD");
    // An unknown format, and the crate's own formats, which are off: the
    // seed's body is the only one served.
    for query in ["format=nope", "format=json", "format=ietf"] {
        let r = get(&app.url(&format!("/status?{query}")), &[]).await;
        let body = check_error(&r, StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().unwrap().contains("format"),
            "{query}: {body}"
        );
    }
    // Whatever the Accept header asks for, the seed's body.
    for accept in ["application/json", "application/health+json", "*/*"] {
        let r = get(&url, &[("accept", accept)]).await;
        assert_eq!(r.status, StatusCode::OK, "{accept}");
        check_body(&r, "healthy", "development");
    }
    let r = get(&app.url("/status/no/such"), &[]).await;
    check_error(&r, StatusCode::NOT_FOUND);
    let r = get(&app.url("/status/nothing-of-that-name"), &[]).await;
    check_error(&r, StatusCode::NOT_FOUND);
    // HEAD of an error: its status and headers, with the length of the
    // seed's error object that GET gets.
    assert_head_like_get(&app.url("/status/no/such"), &[], StatusCode::NOT_FOUND).await;
    assert_head_like_get(
        &app.url("/status?format=json"),
        &[],
        StatusCode::BAD_REQUEST,
    )
    .await;
}

/// The seed's `HEALTHCHECK` command, with this example's URL:
/// `curl -f URL || exit 1`, under the seed's `--timeout=3s`.
async fn docker_healthcheck(url: &str) -> i32 {
    let run = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("curl -f {url} || exit 1"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(3), run).await {
        Ok(status) => status.expect("running sh").code().unwrap_or(-1),
        Err(_) => panic!("HEALTHCHECK exceeded the seed's 3 s timeout"),
    }
}

#[tokio::test]
async fn seed_docker_healthcheck_with_curl() {
    let curl = std::process::Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "curl is needed to run the seed's HEALTHCHECK command and is not on PATH"
    );
    let dep = Dependency::open().await;
    let app = App::start(NAME, &[("DEPENDENCY_ADDR", &dep.addr_string())]).await;
    let url = app.url("/status");
    assert_eq!(docker_healthcheck(&url).await, 0, "healthy");

    let addr = dep.close().await;
    get_until("503", &url, &[], |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert_eq!(docker_healthcheck(&url).await, 1, "dependency down");

    let _dep = Dependency::open_at(addr).await;
    get_until("200", &url, &[], |r| r.status == StatusCode::OK).await;
    assert_eq!(docker_healthcheck(&url).await, 0, "recovered");
}

/// The seed's two JavaScript snippets, verbatim except for the URL (taken
/// from the command line) and the check marks (the seed's page shows them
/// mis-decoded as `‚úÖ`/`‚ùå`), then run one after the other.
const SEED_CLIENTS_JS: &str = r#"
const BASE = process.argv[2];

// Seed 000, "Using JavaScript/Fetch".
async function checkServiceHealth() {
  try {
    const response = await fetch(`${BASE}/status`);
    const data = await response.json();
    
    if (data.status === 'healthy') {
      console.log('✅ Service is healthy');
      console.log(`Uptime: ${data.uptime} seconds`);
      console.log(`Memory usage: ${data.memory.used}MB / ${data.memory.total}MB`);
    } else {
      console.log('❌ Service is unhealthy');
    }
  } catch (error) {
    console.error('Failed to check service health:', error);
  }
}

// Seed 000, "Using Node.js".
const axios = require('axios');

async function monitorService() {
  try {
    const response = await axios.get(`${BASE}/status`);
    const { status, uptime, memory, environment } = response.data;
    
    console.log(`Service Status: ${status}`);
    console.log(`Environment: ${environment}`);
    console.log(`Uptime: ${Math.floor(uptime / 60)} minutes`);
    console.log(`Memory: ${memory.used}MB / ${memory.total}MB`);
    
    return status === 'healthy';
  } catch (error) {
    console.error('Service health check failed:', error.message);
    return false;
  }
}

(async () => {
  await checkServiceHealth();
  const healthy = await monitorService();
  console.log(`monitorService() returned ${healthy}`);
  process.exit(healthy ? 0 : 1);
})();
"#;

/// A directory with `axios` installed (once; kept in cargo's test tmp dir).
fn node_project() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seed_000_node");
    std::fs::create_dir_all(&dir).unwrap();
    if !dir.join("node_modules/axios/package.json").exists() {
        std::fs::write(
            dir.join("package.json"),
            r#"{"name":"seed-000-clients","private":true}"#,
        )
        .unwrap();
        let out = std::process::Command::new("npm")
            .current_dir(&dir)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "axios@1",
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "`npm install axios` failed (is the npm registry reachable?):\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("`npm install axios` could not run (is npm installed?): {e}"),
        }
    }
    std::fs::write(dir.join("clients.js"), SEED_CLIENTS_JS).unwrap();
    dir
}

/// Runs the seed's clients against `base`: exit code, stdout, stderr.
async fn run_clients(dir: &std::path::Path, base: &str) -> (i32, String, String) {
    let run = tokio::process::Command::new("node")
        .current_dir(dir)
        .arg("clients.js")
        .arg(base)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("node took over 20 s")
        .expect("running node");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn seed_javascript_clients_with_node() {
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let dir = tokio::task::spawn_blocking(node_project).await.unwrap();
    let dep = Dependency::open().await;
    let app = App::start(
        NAME,
        &[
            ("DEPENDENCY_ADDR", &dep.addr_string()),
            ("APP_ENV", "staging"),
        ],
    )
    .await;
    let base = app.url("");

    let (code, out, err) = run_clients(&dir, &base).await;
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("✅ Service is healthy\n"), "{out}");
    let uptime = out
        .lines()
        .find_map(|l| l.strip_prefix("Uptime: ")?.strip_suffix(" seconds"))
        .unwrap_or_else(|| panic!("no uptime in {out}"));
    assert!(uptime.parse::<u64>().is_ok(), "uptime `{uptime}`");
    let usage = out
        .lines()
        .find_map(|l| l.strip_prefix("Memory usage: "))
        .unwrap_or_else(|| panic!("no memory usage in {out}"));
    let (used, total) = usage.split_once("MB / ").expect("used MB / total MB");
    let (used, total): (u64, u64) = (
        used.parse().unwrap(),
        total.strip_suffix("MB").unwrap().parse().unwrap(),
    );
    assert!(used >= 1 && total >= used, "{out}");
    assert!(out.contains("Service Status: healthy\n"), "{out}");
    assert!(out.contains("Environment: staging\n"), "{out}");
    assert!(out.contains("Uptime: 0 minutes\n"), "{out}");
    assert!(out.contains("Memory: "), "{out}");
    assert!(out.contains("monitorService() returned true"), "{out}");

    let _addr = dep.close().await;
    get_until("503", &app.url("/status"), &[], |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (code, out, err) = run_clients(&dir, &base).await;
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    // fetch reads the 503's body: the same object, unhealthy.
    assert!(out.contains("❌ Service is unhealthy\n"), "{out}");
    // axios rejects a 503.
    assert!(
        err.contains("Service health check failed: Request failed with status code 503"),
        "{err}"
    );
    assert!(out.contains("monitorService() returned false"), "{out}");
}

#[test]
fn malformed_dependency_addr_stops_the_example_with_a_message() {
    for bad in [
        "localhost",
        "localhost:0",
        "localhost:http",
        ":5432",
        "::1:80",
        "[::1]",
        "[zz]:80",
        "db host:5432",
    ] {
        let (code, stderr) = run_to_exit(NAME, &[("DEPENDENCY_ADDR", bad)]);
        assert_eq!(code, Some(2), "DEPENDENCY_ADDR={bad}: {stderr}");
        // One line, with `TcpCheck::parse`'s reason.
        assert_eq!(
            stderr,
            format!("service_status: invalid DEPENDENCY_ADDR: `{bad}` is not host:port\n"),
            "DEPENDENCY_ADDR={bad}"
        );
    }
}

#[tokio::test]
async fn every_get_is_answered_while_the_dependency_flaps() {
    // Checks under churn: each answer is 200 healthy or 503 unhealthy,
    // never anything else, and always a valid body.
    let dep = Dependency::open().await;
    let app = App::start(NAME, &[("DEPENDENCY_ADDR", &dep.addr_string())]).await;
    let url = app.url("/status");
    let mut dep = Some(dep);
    let mut closed = None;
    for round in 0..6 {
        for _ in 0..5 {
            let r = send(Method::GET, &url, &[]).await;
            let word = match r.status {
                StatusCode::OK => "healthy",
                StatusCode::SERVICE_UNAVAILABLE => "unhealthy",
                other => panic!("unexpected {other}"),
            };
            check_body(&r, word, "development");
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        match (dep.take(), closed.take()) {
            (Some(d), _) => closed = Some(d.close().await),
            (None, Some(c)) if round < 5 => dep = Some(Dependency::open_at(c).await),
            (None, c) => closed = c,
        }
    }
}
