//! `examples/axum.rs`, the README's main example, run as a child process
//! and driven over real TCP: the report open to everyone with its
//! `database` check (ok out of the box, against the example's own
//! stand-in listener), the probes, the metrics, `HEAD`, `405` and stray
//! credentials; and a database that is down, or misconfigured.

mod seeds;

use http::StatusCode;
use seeds::{
    assert_head, assert_methods_not_allowed, get, get_until, run_to_exit, App, Dependency, Reply,
};
use serde_json::Value;

const NAME: &str = "axum";

/// A JSON answer that is not cached, with `code`; its body.
fn json(r: &Reply, code: StatusCode) -> Value {
    assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    r.json()
}

/// The `database` component of a report.
fn database(report: &Value) -> &Value {
    let c = &report["components"]["database"];
    assert!(c.is_object(), "no database component: {report}");
    c
}

#[tokio::test]
async fn out_of_the_box_the_database_check_is_ok() {
    let app = App::start(NAME, &[]).await;

    // The application itself.
    let r = get(&app.url("/"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"hello\n");
    assert_eq!(get(&app.url("/users/7"), &[]).await.json()["id"], 7);

    // The report, open to everyone, with every detail and the check.
    let url = app.url("/status");
    let report = json(&get(&url, &[]).await, StatusCode::OK);
    assert_eq!(report["status"], "ok", "{report}");
    assert_eq!(report["service"], "tower-status", "{report}");
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"), "{report}");
    assert_eq!(report["environment"], "development", "{report}");
    let db = database(&report);
    assert_eq!(db["status"], "ok", "{report}");
    assert_eq!(db["critical"], true, "{report}");
    assert_eq!(db["type"], "tcp", "{report}");

    // Stray credentials are ignored: no keys are configured.
    for stray in [
        ("x-api-key", "not-a-key"),
        ("authorization", "Bearer not-a-key"),
        ("authorization", "Basic Zm9vOmJhcg=="),
    ] {
        let r = json(&get(&url, &[stray]).await, StatusCode::OK);
        assert_eq!(database(&r)["status"], "ok", "{stray:?}: {r}");
        assert!(!String::from_utf8_lossy(&get(&url, &[stray]).await.body).contains("not-a-key"));
    }
    assert_head(&url, &[], StatusCode::OK).await;
    assert_methods_not_allowed(&url, &[]).await;

    // The probes.
    let live = json(&get(&app.url("/status/live"), &[]).await, StatusCode::OK);
    assert_eq!(live["status"], "ok", "{live}");
    let ready = json(&get(&app.url("/status/ready"), &[]).await, StatusCode::OK);
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_head(&app.url("/status/ready"), &[], StatusCode::OK).await;

    // One component by name.
    let db = json(
        &get(&app.url("/status/database"), &[]).await,
        StatusCode::OK,
    );
    assert_eq!(db["status"], "ok", "{db}");

    // The metrics.
    let r = get(&app.url("/status/metrics"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&r.body);
    for line in [
        "tower_status_up 1".to_owned(),
        r#"tower_status_component_up{component="database",critical="true"} 1"#.to_owned(),
        format!(
            r#"tower_status_build_info{{service="tower-status",version="{}",environment="development"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
}

#[tokio::test]
async fn a_database_that_is_down_is_503_and_recovers() {
    let dep = Dependency::open().await;
    let app = App::start(NAME, &[("DATABASE_ADDR", &dep.addr_string())]).await;
    let url = app.url("/status");
    let report = json(&get(&url, &[]).await, StatusCode::OK);
    assert_eq!(database(&report)["status"], "ok", "{report}");

    let closed = dep.close().await;
    let r = get_until("down", &url, &[], |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let report = json(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(report["status"], "down", "{report}");
    let db = database(&report);
    assert_eq!(db["status"], "down", "{report}");
    assert!(
        db["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("connect to {closed}: "))),
        "{report}"
    );
    let ready = json(
        &get(&app.url("/status/ready"), &[]).await,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    assert_eq!(ready["status"], "down", "{ready}");
    // Liveness runs no check: the process answers.
    json(&get(&app.url("/status/live"), &[]).await, StatusCode::OK);
    // The metrics are answered 200 whatever the health.
    let r = get(&app.url("/status/metrics"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.lines().any(|l| l == "tower_status_up 0"), "{text}");

    let _dep = Dependency::open_at(closed).await;
    let r = get_until("ok again", &url, &[], |r| r.status == StatusCode::OK).await;
    assert_eq!(database(&json(&r, StatusCode::OK))["status"], "ok");
}

#[test]
fn a_malformed_database_addr_stops_the_example_with_a_message() {
    let (code, stderr) = run_to_exit(NAME, &[("DATABASE_ADDR", "db")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "axum: invalid DATABASE_ADDR: `db` is not host:port\n"
    );
}
