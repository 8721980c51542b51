//! History over real servers: `/status/history`, the badges, objectives,
//! and the history file across a restart (good, missing and bad files).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::Method;
use serde_json::Value;
use tower_status::check::{CheckResult, HealthCheck};
use tower_status::history::Objective;
use tower_status::{StatusHandle, StatusLayer};

use common::{fetch, http1_client, start_axum};

const DEADLINE: Duration = Duration::from_secs(10);

fn open_layer() -> StatusLayer {
    StatusLayer::new()
        .show_details(tower_status::auth::Visibility::Always)
        .watch_interval(Duration::from_millis(50))
}

async fn serve(status: &StatusHandle) -> std::net::SocketAddr {
    start_axum(
        axum::Router::new()
            .route("/", axum::routing::get(|| async { "hello" }))
            .layer(status.clone()),
    )
    .await
}

/// A fresh path in the temporary directory (nothing there yet).
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tower-status-history-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Polls `/status/history` until `cond` holds on it.
async fn history_until(
    addr: std::net::SocketAddr,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let res = fetch(&http1_client(), addr, Method::GET, "/status/history").await;
        assert_eq!(res.status, 200, "{res:?}");
        let h = res.json();
        if cond(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "never happened: {what}: {h}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn current(h: &Value) -> &Value {
    h["minutes"].as_array().unwrap().last().unwrap()
}

#[tokio::test]
async fn the_current_minute_holds_the_worst_status_and_the_traffic() {
    let status = open_layer()
        .check(HealthCheck::pushed("db"))
        .objective(Objective::availability(0.999))
        .objective(Objective::latency(Duration::from_millis(300), 0.99))
        .build();
    status.set_component("db", CheckResult::ok());
    let addr = serve(&status).await;
    for _ in 0..5 {
        let res = fetch(&http1_client(), addr, Method::GET, "/").await;
        assert_eq!(res.status, 200);
    }
    let h = history_until(addr, "ok with traffic", |h| {
        current(h)["status"] == "ok" && current(h)["requests"].as_u64() >= Some(5)
    })
    .await;
    assert_eq!(
        h["minutes"].as_array().unwrap().len(),
        1440,
        "a day of minutes"
    );
    assert_eq!(current(&h)["components"]["db"], "ok");
    assert_eq!(
        h["uptime_24h"]["overall"]["ratio"], 1.0,
        "{}",
        h["uptime_24h"]
    );
    let slos: Vec<&str> = h["slos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(slos.len(), 2, "{}", h["slos"]);
    assert_eq!(
        h["slos"][0]["budget_left"], 1.0,
        "no errors: {}",
        h["slos"][0]
    );

    status.set_component("db", CheckResult::down("refused"));
    let h = history_until(addr, "down in the minute", |h| {
        current(h)["status"] == "down"
    })
    .await;
    assert_eq!(current(&h)["components"]["db"], "down");
    // Back up: the minute keeps its worst (unless a new minute began).
    let start = current(&h)["start"].clone();
    status.set_component("db", CheckResult::ok());
    let h = history_until(addr, "ok again seen", |h| {
        h["uptime_1h"]["overall"]["down_minutes"].as_u64() >= Some(1)
    })
    .await;
    if current(&h)["start"] == start {
        assert_eq!(current(&h)["status"], "down", "{}", current(&h));
    }
}

#[tokio::test]
async fn badges_are_svg_for_proxies() {
    let status = open_layer().check(HealthCheck::pushed("db")).build();
    status.set_component("db", CheckResult::down("refused"));
    let addr = serve(&status).await;
    // The evaluator has booked a minute: the uptime badge has data.
    history_until(addr, "a minute", |h| current(h)["status"] == "down").await;
    for (path, max_age, text) in [
        ("/status/badge.svg", "60", "down"),
        ("/status/badge/uptime.svg", "300", "0%"),
    ] {
        let res = fetch(&http1_client(), addr, Method::GET, path).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.headers[CONTENT_TYPE], "image/svg+xml", "{path}");
        let cache = res.headers[CACHE_CONTROL].to_str().unwrap();
        assert!(
            cache.contains(&format!("max-age={max_age}")),
            "{path}: {cache}"
        );
        let svg = std::str::from_utf8(&res.body).unwrap();
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let texts: String = doc
            .descendants()
            .filter(|n| n.is_text())
            .map(|n| n.text().unwrap())
            .collect();
        assert!(texts.contains(text), "{path}: {texts}");
        let head = fetch(&http1_client(), addr, Method::HEAD, path).await;
        assert_eq!(head.status, 200);
        assert!(head.body.is_empty());
    }
}

#[tokio::test]
async fn the_history_survives_a_restart_through_its_file() {
    let file = scratch("history.bin");
    {
        let status = open_layer()
            .check(HealthCheck::pushed("db"))
            .history_file(&file)
            .build();
        status.set_component("db", CheckResult::down("refused"));
        let addr = serve(&status).await;
        history_until(addr, "down booked", |h| current(h)["status"] == "down").await;
        status.save_history().expect("saved");
    }
    assert!(file.exists());
    // A new process: the same file, read at build.
    let status = open_layer()
        .check(HealthCheck::pushed("db"))
        .history_file(&file)
        .build();
    let h = status.history();
    let minutes = &h.history.minutes;
    assert!(
        minutes
            .iter()
            .any(|m| m.status == Some(tower_status::Status::Down)),
        "the saved minute came back"
    );
}

#[tokio::test]
async fn a_missing_file_starts_empty_and_a_bad_one_is_moved_aside() {
    let missing = scratch("none-yet.bin");
    let status = open_layer().history_file(&missing).build();
    assert!(status
        .history()
        .history
        .minutes
        .iter()
        .all(|m| m.status.is_none()));

    for (what, bytes) in [
        ("empty", Vec::new()),
        ("foreign", b"{\"not\": \"a history\"}".to_vec()),
        ("truncated", {
            let good = scratch("good.bin");
            let s = open_layer()
                .check(HealthCheck::pushed("db"))
                .history_file(&good)
                .build();
            s.set_component("db", CheckResult::ok());
            let addr = serve(&s).await;
            history_until(addr, "ok booked", |h| current(h)["status"] == "ok").await;
            s.save_history().unwrap();
            let bytes = std::fs::read(&good).unwrap();
            bytes[..bytes.len() / 2].to_vec()
        }),
    ] {
        let file = scratch("bad.bin");
        std::fs::write(&file, &bytes).unwrap();
        let status = open_layer().history_file(&file).build();
        assert!(
            status
                .history()
                .history
                .minutes
                .iter()
                .all(|m| m.status.is_none()),
            "{what}: started empty"
        );
        assert!(!file.exists(), "{what}: moved aside");
        let dir = file.parent().unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("bad.bin.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}: {aside:?}");
    }
}

#[test]
#[should_panic(expected = "latency objectives must share one threshold")]
fn two_latency_thresholds_are_refused() {
    let _ = StatusLayer::new()
        .objective(Objective::latency(Duration::from_millis(300), 0.99))
        .objective(Objective::latency(Duration::from_millis(500), 0.9).named("slow"));
}

const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn get_with(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> common::Fetched {
    use http_body_util::BodyExt;
    let mut req = http::Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Full::<bytes::Bytes>::default())
        .unwrap();
    let res = common::bounded("GET", http1_client().request(req))
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    common::Fetched {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
        trailers: None,
    }
}

#[tokio::test]
async fn a_browser_gets_the_page_and_api_clients_json() {
    let keyed = StatusLayer::new()
        .api_keys(
            tower_status::auth::ApiKeys::new()
                .key("s3cret-key", tower_status::auth::Identity::new("ops")),
        )
        .require_key(tower_status::auth::Endpoint::Report, false)
        .watch_interval(Duration::from_millis(50))
        .check(HealthCheck::pushed("db"))
        .build();
    keyed.set_component("db", CheckResult::down("refused <b>now</b>"));
    let addr = serve(&keyed).await;

    // Anonymous browser: the overall status only.
    let anon = get_with(addr, "/status", &[("accept", BROWSER)]).await;
    assert_eq!(anon.headers[CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = anon.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = std::str::from_utf8(&anon.body).unwrap();
    assert!(html.contains("down"), "the status is shown");
    assert!(!html.contains("db"), "no component for anonymous callers");
    assert!(!html.contains("refused"), "no error for anonymous callers");
    assert!(html.len() < 50_000);

    // With the key: the components, escaped.
    let full = get_with(
        addr,
        "/status",
        &[("accept", BROWSER), ("x-api-key", "s3cret-key")],
    )
    .await;
    let html = std::str::from_utf8(&full.body).unwrap();
    assert!(html.contains("db"), "components shown with details");
    assert!(
        html.contains("refused &lt;b&gt;now&lt;/b&gt;"),
        "errors escaped"
    );
    assert!(!html.contains("<b>now</b>"));
    assert!(!html.contains("s3cret-key"), "the key is not echoed");

    // API clients are unaffected.
    for accept in ["*/*", "application/json"] {
        let res = get_with(addr, "/status", &[("accept", accept)]).await;
        assert_eq!(res.headers[CONTENT_TYPE], "application/json", "{accept}");
        // Chosen by `Accept`, as the page is: a cache keeps them apart.
        assert_eq!(res.headers["vary"], "accept", "{accept}");
    }
    let res = get_with(addr, "/status?format=json", &[("accept", BROWSER)]).await;
    assert_eq!(res.headers[CONTENT_TYPE], "application/json");
}

#[tokio::test]
async fn a_fast_burning_objective_drives_health_when_asked() {
    let status = open_layer()
        .objective(Objective::availability(0.999).on_fast_burn(tower_status::Status::Down))
        .objective(Objective::latency(Duration::from_millis(300), 0.99))
        .build();
    let addr = start_axum(
        axum::Router::new()
            .route("/", axum::routing::get(|| async { "hello" }))
            .route(
                "/fail",
                axum::routing::get(|| async { http::StatusCode::INTERNAL_SERVER_ERROR }),
            )
            .layer(status.clone()),
    )
    .await;
    // No traffic yet: nothing burns.
    let r = fetch(&http1_client(), addr, Method::GET, "/status")
        .await
        .json();
    assert_eq!(r["status"], "ok", "{r}");
    assert_eq!(r["components"]["slo.availability"]["status"], "ok", "{r}");
    assert!(
        r["components"].get("slo.latency").is_none(),
        "only reported: {r}"
    );

    // Every request fails: 1000x the budget, over both windows.
    for _ in 0..20 {
        let res = fetch(&http1_client(), addr, Method::GET, "/fail").await;
        assert_eq!(res.status, 500);
    }
    let deadline = Instant::now() + DEADLINE;
    let r = loop {
        let r = fetch(&http1_client(), addr, Method::GET, "/status")
            .await
            .json();
        if r["status"] == "down" {
            break r;
        }
        assert!(Instant::now() < deadline, "never burned: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let slo = &r["components"]["slo.availability"];
    assert_eq!(slo["status"], "down", "{r}");
    assert!(
        slo["error"].as_str().unwrap().contains("burning fast"),
        "{slo}"
    );
    let h = status.history();
    let availability = h.slos.iter().find(|s| s.name == "availability").unwrap();
    assert!(availability.fast_burn, "{availability:?}");
    assert!(availability.burn_rates.five_minutes.unwrap() > 14.4);
}
