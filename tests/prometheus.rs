//! `/status/metrics`: the Prometheus text format, checked line by line, by
//! `promtool check metrics`, and scraped by a real Prometheus server.

mod common;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use tower_status::check::HealthCheck;

use axum::routing::get as axum_get;
use bytes::Bytes;
use common::{bounded, fetch, http1_client, parse_json, send, start_axum, text};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use process::{Running, ANNOUNCE_WITHIN};
use serde_json::Value;
use tower::{service_fn, Layer};
use tower_status::auth::{ApiKeys, Identity, Permissions};
use tower_status::check::CheckResult;
use tower_status::format::PROMETHEUS_MEDIA_TYPE;
use tower_status::StatusLayer;

const PROMTOOL: &str = "/usr/bin/promtool";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The wrapped service: `/missing` is 404, `/fail` 500, `/slow` takes
/// 30 ms, anything else 200.
fn app() -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    service_fn(|req: Request<Full<Bytes>>| async move {
        let mut res = text("hello");
        match req.uri().path() {
            "/missing" => *res.status_mut() = StatusCode::NOT_FOUND,
            "/fail" => *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
            "/slow" => tokio::time::sleep(Duration::from_millis(30)).await,
            _ => {}
        }
        Ok::<_, Infallible>(res)
    })
}

async fn pass_through(layer: &StatusLayer, path: &str, want: StatusCode) {
    let (parts, _) = send(layer.layer(app()), common::get(path)).await;
    assert_eq!(parts.status, want, "{path}");
}

/// `GET uri` through a fresh service of `layer`.
async fn get(
    layer: &StatusLayer,
    uri: &str,
    headers: &[(&str, &str)],
) -> (http::response::Parts, String) {
    let mut builder = Request::builder().method(Method::GET).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder.body(Full::default()).expect("valid request");
    let (parts, body) = send(layer.layer(app()), request).await;
    (parts, String::from_utf8(body.to_vec()).expect("UTF-8 body"))
}

/// The samples of an exposition: series (name and labels as written) to value.
fn samples(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample line: {l:?}"));
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|e| panic!("bad value in {l:?}: {e}")),
            };
            (series.to_owned(), value)
        })
        .collect()
}

fn sample(all: &BTreeMap<String, f64>, series: &str) -> f64 {
    *all.get(series)
        .unwrap_or_else(|| panic!("no sample {series}; have {:#?}", all.keys()))
}

/// A layer with a healthy critical `db`, a failing non-critical `cache`,
/// and metrics served.
fn metrics_layer() -> StatusLayer {
    StatusLayer::new()
        .service_name("billing")
        .version("1.2.3")
        .environment("test")
        .serve_metrics(true)
        .check(HealthCheck::new("db", || async { true }))
        .check(
            tower_status::check::HealthCheck::new("cache", || async {
                CheckResult::down("evicted")
            })
            .critical(false),
        )
}

async fn metrics_text(layer: &StatusLayer) -> String {
    let (parts, body) = get(layer, "/status/metrics", &[]).await;
    assert_eq!(parts.status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn metrics_endpoint() {
    let layer = metrics_layer();
    const OK: usize = 5;
    for _ in 0..OK {
        pass_through(&layer, "/hello", StatusCode::OK).await;
    }
    pass_through(&layer, "/slow", StatusCode::OK).await;
    pass_through(&layer, "/missing", StatusCode::NOT_FOUND).await;
    pass_through(&layer, "/fail", StatusCode::INTERNAL_SERVER_ERROR).await;
    let total = OK + 3;
    // Status requests are not traffic.
    let _ = get(&layer, "/status", &[]).await;

    let (parts, body) = get(&layer, "/status/metrics", &[]).await;
    assert_eq!(parts.status, StatusCode::OK, "{body}");
    let content_type = parts.headers[CONTENT_TYPE].to_str().expect("text");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(content_type, PROMETHEUS_MEDIA_TYPE);
    assert_eq!(parts.headers[CACHE_CONTROL], "no-store");
    assert!(body.ends_with('\n'), "ends with a newline");

    let all = samples(&body);
    assert_eq!(sample(&all, "tower_status_up"), 0.5, "degraded by cache");
    assert_eq!(
        sample(&all, r#"tower_status_status{status="degraded"}"#),
        1.0
    );
    assert_eq!(sample(&all, r#"tower_status_status{status="ok"}"#), 0.0);
    assert_eq!(
        sample(
            &all,
            r#"tower_status_component_up{component="db",critical="true"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &all,
            r#"tower_status_component_up{component="cache",critical="false"}"#
        ),
        0.0
    );
    assert_eq!(
        sample(&all, r#"tower_status_requests_total{class="2xx"}"#),
        (OK + 1) as f64
    );
    assert_eq!(
        sample(&all, r#"tower_status_requests_total{class="4xx"}"#),
        1.0
    );
    assert_eq!(
        sample(&all, r#"tower_status_requests_total{class="5xx"}"#),
        1.0
    );
    assert!(!all.contains_key(r#"tower_status_requests_total{class="3xx"}"#));
    assert_eq!(sample(&all, "tower_status_request_errors_total"), 1.0);
    assert_eq!(sample(&all, "tower_status_requests_aborted_total"), 0.0);
    assert_eq!(sample(&all, "tower_status_requests_in_flight"), 0.0);

    // The histogram: cumulative, +Inf and _count equal to the requests.
    let inf = r#"tower_status_request_duration_seconds_bucket{le="+Inf"}"#;
    assert_eq!(sample(&all, inf), total as f64);
    assert_eq!(
        sample(&all, "tower_status_request_duration_seconds_count"),
        total as f64
    );
    let sum = sample(&all, "tower_status_request_duration_seconds_sum");
    assert!(sum >= 0.030, "the slow request alone took 30 ms: {sum}");
    let buckets: Vec<(f64, f64)> = body
        .lines()
        .filter_map(|l| l.strip_prefix("tower_status_request_duration_seconds_bucket{le=\""))
        .map(|l| {
            let (le, rest) = l.split_once("\"} ").expect("a bucket line");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("a bound")
            };
            (le, rest.parse().expect("a count"))
        })
        .collect();
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf: {buckets:?}");
    for pair in buckets.windows(2) {
        assert!(pair[0].0 < pair[1].0, "bounds ascend: {buckets:?}");
        assert!(pair[0].1 <= pair[1].1, "counts are cumulative: {buckets:?}");
    }
    let at = |le: &str| {
        sample(
            &all,
            &format!("tower_status_request_duration_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    assert!(
        at("0.025") <= (total - 1) as f64,
        "the 30 ms request is above 25 ms"
    );
    assert_eq!(at("30"), total as f64);

    assert!(sample(&all, "tower_status_uptime_seconds") >= 0.0);
    if body.contains("tower_status_resident_memory_bytes") {
        assert!(sample(&all, "tower_status_resident_memory_bytes") > 0.0);
    }
    assert_eq!(
        sample(
            &all,
            r#"tower_status_build_info{service="billing",version="1.2.3",environment="test"}"#
        ),
        1.0
    );

    // Every sample has its HELP and TYPE.
    for name in [
        "up",
        "status",
        "component_up",
        "requests_total",
        "request_errors_total",
        "requests_aborted_total",
        "requests_in_flight",
        "request_duration_seconds",
        "uptime_seconds",
        "build_info",
    ] {
        assert!(
            body.contains(&format!("# HELP tower_status_{name} ")),
            "{name}"
        );
        assert!(
            body.contains(&format!("# TYPE tower_status_{name} ")),
            "{name}"
        );
    }
    assert!(body.contains("# TYPE tower_status_request_duration_seconds histogram\n"));
    assert!(body.contains("# TYPE tower_status_requests_total counter\n"));

    // A scrape is not traffic either.
    let again = samples(&metrics_text(&layer).await);
    assert_eq!(
        sample(&again, r#"tower_status_requests_total{class="2xx"}"#),
        (OK + 1) as f64
    );
}

#[tokio::test]
async fn build_info_leaves_out_what_is_not_configured() {
    let layer = StatusLayer::new()
        .environment("staging")
        .serve_metrics(true);
    let body = metrics_text(&layer).await;
    let all = samples(&body);
    assert_eq!(
        sample(&all, r#"tower_status_build_info{environment="staging"}"#),
        1.0
    );
    let layer = layer.version("2.0.0");
    let all = samples(&metrics_text(&layer).await);
    assert_eq!(
        sample(
            &all,
            r#"tower_status_build_info{version="2.0.0",environment="staging"}"#
        ),
        1.0
    );
    assert!(body.contains("# HELP tower_status_build_info "), "{body}");
    assert!(
        body.contains("# TYPE tower_status_build_info gauge\n"),
        "{body}"
    );
}

#[tokio::test]
async fn metrics_are_200_whatever_the_health() {
    let layer = metrics_layer().check(HealthCheck::new("db", || async { false }));
    let (parts, body) = get(&layer, "/status", &[]).await;
    assert_eq!(parts.status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let all = samples(&metrics_text(&layer).await);
    assert_eq!(sample(&all, "tower_status_up"), 0.0);
    assert_eq!(sample(&all, r#"tower_status_status{status="down"}"#), 1.0);

    layer
        .clone()
        .build()
        .set_maintenance(tower_status::report::Notice::new("upgrade"));
    let all = samples(&metrics_text(&layer).await);
    assert_eq!(sample(&all, "tower_status_up"), 0.0);
    assert_eq!(
        sample(&all, r#"tower_status_status{status="maintenance"}"#),
        1.0
    );
    assert_eq!(sample(&all, r#"tower_status_status{status="down"}"#), 0.0);
}

#[tokio::test]
async fn without_serve_metrics_metrics_is_a_component_name() {
    let layer = StatusLayer::new().check(HealthCheck::new("db", || async { true }));
    let (parts, body) = get(&layer, "/status/metrics", &[]).await;
    assert_eq!(parts.status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(parts.headers[CONTENT_TYPE], "application/json");
    let json = parse_json(body.as_bytes());
    assert_eq!(json["code"], "not_found");

    // A component named `metrics` is found there instead.
    layer
        .clone()
        .build()
        .set_component("metrics", CheckResult::ok());
    let (parts, body) = get(&layer, "/status/metrics", &[]).await;
    assert_eq!(parts.status, StatusCode::OK, "{body}");
    let json = parse_json(body.as_bytes());
    assert_eq!(json["name"], "metrics");
    assert_eq!(json["status"], "ok");
}

#[tokio::test]
async fn metrics_need_the_details_permission() {
    let layer = metrics_layer().api_keys(ApiKeys::new().key("ops-key", Identity::new("ops")).key(
        "lb-key",
        Identity::new("lb").permissions(Permissions::STATUS),
    ));
    let (parts, _) = get(&layer, "/status/metrics", &[]).await;
    assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
    let (parts, _) = get(&layer, "/status/metrics", &[("x-api-key", "lb-key")]).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    let (parts, body) = get(&layer, "/status/metrics", &[("x-api-key", "ops-key")]).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(body.contains("tower_status_up 0.5\n"), "{body}");
}

#[tokio::test]
async fn a_scraper_key_needs_no_details_permission() {
    let layer = metrics_layer().api_keys(ApiKeys::new().key("ops-key", Identity::new("ops")).key(
        "scrape-key",
        Identity::new("prometheus").permissions(Permissions::METRICS),
    ));
    let scrape = [("authorization", "Bearer scrape-key")];
    let (parts, body) = get(&layer, "/status/metrics", &scrape).await;
    assert_eq!(parts.status, StatusCode::OK, "{body}");
    assert!(body.contains("tower_status_up 0.5\n"), "{body}");
    let (parts, _) = get(&layer, "/status", &scrape).await;
    assert_eq!(parts.status, StatusCode::FORBIDDEN);
    let (parts, _) = get(&layer, "/status/metrics", &[("x-api-key", "scrape-kez")]).await;
    assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
}

/// A component name with every character the format must escape.
const HOSTILE: &str = "we\"ird\\na\nme";

fn hostile_layer() -> StatusLayer {
    let layer = metrics_layer()
        .service_name("bill\"ing")
        .version("1.0\\beta")
        .environment("line\nbreak")
        .check(HealthCheck::pushed(HOSTILE).critical(false));
    layer
        .clone()
        .build()
        .set_component(HOSTILE, CheckResult::degraded("slow"));
    layer
}

#[tokio::test]
async fn label_values_are_escaped() {
    let body = metrics_text(&hostile_layer()).await;
    let all = samples(&body);
    assert_eq!(
        sample(
            &all,
            r#"tower_status_component_up{component="we\"ird\\na\nme",critical="false"}"#
        ),
        0.5
    );
    assert_eq!(
        sample(
            &all,
            r#"tower_status_build_info{service="bill\"ing",version="1.0\\beta",environment="line\nbreak"}"#
        ),
        1.0
    );
    // No raw newline inside a line: every line is a comment or a sample.
    for line in body.lines() {
        assert!(
            line.starts_with("# ") || line.starts_with("tower_status_"),
            "{line:?}"
        );
    }
}

/// Runs `promtool check metrics` on `exposition`, failing with its output
/// unless it exits 0.
async fn promtool_check(exposition: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = match tokio::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run {PROMTOOL} ({e}): it comes with the Debian package `prometheus`, \
             which scripts/test.sh installs; run scripts/test.sh (or apt-get install prometheus)"
        ),
    };
    let mut stdin = child.stdin.take().expect("stdin");
    bounded(
        "writing to promtool",
        stdin.write_all(exposition.as_bytes()),
    )
    .await
    .expect("write to promtool");
    drop(stdin);
    let out = bounded("promtool check metrics", child.wait_with_output())
        .await
        .expect("promtool output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\nstderr:\n{stderr}\nstdout:\n{stdout}\ninput:\n{exposition}",
        out.status
    );
    format!("{stdout}{stderr}")
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let layer = metrics_layer();
    for path in ["/a", "/slow", "/missing", "/fail"] {
        let (parts, _) = send(layer.layer(app()), common::get(path)).await;
        assert!(parts.status.as_u16() >= 200);
    }
    let output = promtool_check(&metrics_text(&layer).await).await;
    println!("promtool check metrics: exit 0, output {output:?}");
    assert!(output.trim().is_empty(), "lint findings: {output}");

    // Escaped labels parse too.
    let output = promtool_check(&metrics_text(&hostile_layer()).await).await;
    assert!(output.trim().is_empty(), "lint findings: {output}");

    // And an empty service: no components, no traffic.
    let bare = StatusLayer::new().serve_metrics(true);
    let output = promtool_check(&metrics_text(&bare).await).await;
    assert!(output.trim().is_empty(), "lint findings: {output}");
}

// ---------------------------------------------------------------------------
// A real Prometheus server
// ---------------------------------------------------------------------------

/// A Prometheus child process and its directory, killed and removed on drop
/// (also when the test fails).
struct Prometheus {
    // Dropped in this order: the process is killed, then its directory removed.
    server: Running,
    addr: SocketAddr,
    _dir: RemovedOnDrop,
}

/// A directory removed on drop.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Prometheus {
    /// Starts Prometheus on a loopback port it binds itself (port 0; the
    /// address is read from its log), scraping `target` every second, with
    /// `Authorization: Bearer KEY` when `bearer` is given.
    fn start(target: SocketAddr, bearer: Option<&str>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after the epoch")
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "tower-status-prometheus-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("data")).expect("create the temp dir");
        // Removed however the start ends.
        let removed = RemovedOnDrop(dir);
        let dir = &removed.0;
        let authorization = bearer
            .map(|key| {
                format!("    authorization:\n      type: Bearer\n      credentials: '{key}'\n")
            })
            .unwrap_or_default();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: tower-status\n    metrics_path: /status/metrics\n\
             {authorization}    \
             static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        if !std::path::Path::new(PROMETHEUS).is_file() {
            panic!(
                "{PROMETHEUS} is missing: it comes with the Debian package `prometheus`, \
                 which scripts/test.sh installs"
            );
        }
        // Prometheus logs `msg="Listening on" address=127.0.0.1:PORT` once bound.
        let (server, addr) = Running::spawn_until(
            "prometheus",
            Command::new(PROMETHEUS)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg("--web.listen-address=127.0.0.1:0"),
            ANNOUNCE_WITHIN,
            |line| {
                if !line.contains("msg=\"Listening on\"") {
                    return None;
                }
                let at = line.find("address=")? + "address=".len();
                line[at..]
                    .split_whitespace()
                    .next()?
                    .parse::<SocketAddr>()
                    .ok()
                    .filter(|addr| addr.port() != 0)
            },
        );
        Self {
            server,
            addr,
            _dir: removed,
        }
    }

    /// The last 30 lines of its log.
    fn log(&self) -> String {
        let log = self.server.stderr();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Fails the test with the log when Prometheus is gone.
    fn assert_running(&mut self) {
        self.server.assert_running();
    }

    /// The `data.result` of an instant query, or `None` while Prometheus
    /// does not answer yet.
    async fn query(
        &self,
        client: &hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Full<Bytes>,
        >,
        promql: &str,
    ) -> Option<Vec<Value>> {
        let query: String = form_urlencoded_query(promql);
        let uri = format!("http://{}/api/v1/query?query={query}", self.addr);
        let request = common::get(&uri);
        let res = tokio::time::timeout(Duration::from_secs(2), client.request(request))
            .await
            .ok()?
            .ok()?;
        if res.status() != StatusCode::OK {
            return None;
        }
        let body = tokio::time::timeout(
            Duration::from_secs(2),
            http_body_util::BodyExt::collect(res.into_body()),
        )
        .await
        .ok()?
        .ok()?
        .to_bytes();
        let json = parse_json(&body);
        assert_eq!(json["status"], "success", "{json}");
        json["data"]["result"].as_array().cloned()
    }

    /// Polls `promql` (for at most 30 s) until one of its samples satisfies
    /// `want`, and returns that sample.
    async fn wait_for(
        &mut self,
        client: &hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Full<Bytes>,
        >,
        promql: &str,
        want: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        loop {
            self.assert_running();
            if let Some(result) = self.query(client, promql).await {
                if let Some(found) = result.iter().find(|s| want(s)) {
                    return found.clone();
                }
                last = Some(result);
            }
            if Instant::now() > deadline {
                panic!(
                    "no matching sample of {promql} within 30 s; last result {last:?}\n\
                     prometheus log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Percent-encodes a PromQL query for a URL query string.
fn form_urlencoded_query(promql: &str) -> String {
    promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn value_of(sample: &Value) -> Option<&str> {
    sample["value"][1].as_str()
}

/// The scraper's key of [`a_real_prometheus_scrapes_the_metrics`].
const SCRAPE_KEY: &str = "sk-prometheus-scrape";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_metrics() {
    // The report needs a key; Prometheus scrapes with a key that opens the
    // metrics and nothing else.
    let layer = metrics_layer().api_keys(ApiKeys::new().key("ops-key", Identity::new("ops")).key(
        SCRAPE_KEY,
        Identity::new("prometheus").permissions(Permissions::METRICS),
    ));
    let router = axum::Router::new()
        .route("/hello", axum_get(|| async { "hello" }))
        .layer(layer.clone());
    let target = start_axum(router).await;
    let client = http1_client();
    for _ in 0..7 {
        let res = fetch(&client, target, Method::GET, "/hello").await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let started = Instant::now();
    // Blocks until Prometheus says where it listens: off the runtime.
    let mut prometheus =
        tokio::task::block_in_place(|| Prometheus::start(target, Some(SCRAPE_KEY)));

    let is =
        |n: &'static str| move |s: &Value| s["metric"]["class"] == "2xx" && value_of(s) == Some(n);
    let found = prometheus
        .wait_for(&client, "tower_status_requests_total", is("7"))
        .await;
    println!(
        "after {:?}: tower_status_requests_total = {found}",
        started.elapsed()
    );
    assert_eq!(found["metric"]["job"], "tower-status");
    assert_eq!(found["metric"]["instance"], target.to_string());

    // More traffic shows in a later scrape.
    for _ in 0..3 {
        fetch(&client, target, Method::GET, "/hello").await;
    }
    let found = prometheus
        .wait_for(&client, "tower_status_requests_total", is("10"))
        .await;
    println!(
        "after {:?}: tower_status_requests_total = {found}",
        started.elapsed()
    );

    // The rest of the scrape, as Prometheus stored it.
    let count = prometheus
        .wait_for(
            &client,
            "tower_status_request_duration_seconds_count",
            |s| value_of(s) == Some("10"),
        )
        .await;
    println!("tower_status_request_duration_seconds_count = {count}");
    let up = prometheus
        .wait_for(&client, r#"up{job="tower-status"}"#, |_| true)
        .await;
    assert_eq!(value_of(&up), Some("1"), "the scrape succeeds: {up}");
    let health = prometheus
        .wait_for(&client, "tower_status_up", |_| true)
        .await;
    assert_eq!(value_of(&health), Some("0.5"), "{health}");
    let db = prometheus
        .wait_for(
            &client,
            r#"tower_status_component_up{component="db"}"#,
            |_| true,
        )
        .await;
    assert_eq!(db["metric"]["critical"], "true");
    assert_eq!(value_of(&db), Some("1"));
    let build = prometheus
        .wait_for(&client, "tower_status_build_info", |_| true)
        .await;
    assert_eq!(build["metric"]["service"], "billing");
    assert_eq!(build["metric"]["version"], "1.2.3");
    assert_eq!(build["metric"]["environment"], "test");
    assert_eq!(value_of(&build), Some("1"), "{build}");
    // Joined to another series, as dashboards use it.
    let joined = prometheus
        .wait_for(
            &client,
            "tower_status_up * on(instance) group_left(version) tower_status_build_info",
            |_| true,
        )
        .await;
    assert_eq!(joined["metric"]["version"], "1.2.3", "{joined}");
    assert_eq!(value_of(&joined), Some("0.5"), "{joined}");
    let quantile = prometheus
        .wait_for(
            &client,
            "histogram_quantile(0.5, tower_status_request_duration_seconds_bucket)",
            |s| value_of(s).is_some(),
        )
        .await;
    println!("histogram_quantile(0.5, ...) = {quantile}");
    let p50: f64 = value_of(&quantile)
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!((0.0..=0.1).contains(&p50), "median of fast requests: {p50}");

    // The scraper's key opens nothing else; the report still needs a key.
    let status = fetch(&client, target, Method::GET, "/status").await;
    assert_eq!(status.status, StatusCode::UNAUTHORIZED);

    // Scrapes are status requests, never traffic: still 10 after several.
    let report = layer.clone().build().report().await;
    assert_eq!(report.requests.total, 10);
    assert!(report.status_requests >= 2, "scraped: {report:?}");
}
