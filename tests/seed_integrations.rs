//! `examples/integrations.rs` against seed 001 (ImagineAPI's integrations
//! `/status`): the example runs as a child process and is driven over real
//! TCP, with real TCP listeners as its integrations. Every body is validated
//! against `tests/schemas/seed_001.json`.

mod seeds;

use http::{Method, StatusCode};
use seeds::{
    assert_head, assert_head_like_get, assert_methods_not_allowed, get, get_until, run_to_exit,
    send, watch_until, App, Dependency, Reply, Schema,
};
use serde_json::{json, Value};

const NAME: &str = "integrations";
const BEARER: (&str, &str) = ("authorization", "Bearer dev-token");

/// The seed's example body, verbatim.
const SEED_EXAMPLE: &str = r#"{
  "status": "ok",
  "data": {
    "integrations": [
      {"id": "1", "status": "healthy", "type": "MJ"},
      {"id": "2", "status": "healthy", "type": "DALL-E"}
    ],
    "healthy_integrations_count": 2,
    "total_integrations_count": 2,
    "healthy_percentage": 100.0,
    "stats_by_integration_type": {
      "MJ": {
        "total_count": 1,
        "healthy_count": 1,
        "healthy_percentage": 100.0,
        "status": "ok"
      },
      "DALL-E": {
        "total_count": 1,
        "healthy_count": 1,
        "healthy_percentage": 100.0,
        "status": "ok"
      }
    }
  }
}"#;

fn schema() -> Schema {
    Schema::load("seed_001.json")
}

/// Checks a status reply: code, content type, schema, and the counts
/// agreeing with the list. Returns the body.
fn check(r: &Reply, code: StatusCode) -> Value {
    assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), "application/json");
    let body = r.json();
    schema().assert_valid(&body);
    let data = &body["data"];
    let list = data["integrations"].as_array().unwrap();
    let healthy = list.iter().filter(|i| i["status"] == "healthy").count();
    assert_eq!(data["total_integrations_count"], list.len(), "{body}");
    assert_eq!(data["healthy_integrations_count"], healthy, "{body}");
    let stats = data["stats_by_integration_type"].as_object().unwrap();
    let typed: u64 = stats
        .values()
        .map(|s| s["total_count"].as_u64().unwrap())
        .sum();
    assert_eq!(typed as usize, list.len(), "{body}");
    body
}

/// The layer's own view of the overall status: readiness (open without a
/// key) and the first matching `/status/watch` event (with the key) must
/// say `status` (the crate's word), readiness with `code`.
async fn assert_layer_agrees(app: &App, code: StatusCode, status: &str) {
    get_until(
        &format!("readiness {code} {status}"),
        &app.url("/status/ready"),
        &[],
        |r| r.status == code && r.json()["status"] == status,
    )
    .await;
    watch_until("the watch", &app.url("/status/watch"), &[BEARER], |e| {
        e["status"] == status
    })
    .await;
    // And still the seed's body says the same.
    let r = get(&app.url("/status"), &[BEARER]).await;
    assert_eq!(r.status, code, "{}", String::from_utf8_lossy(&r.body));
}

/// The example with `INTEGRATIONS` set to `entries`.
async fn start_with(entries: &[(&str, &str, &Dependency)]) -> App {
    App::start(NAME, &[("INTEGRATIONS", &spec(entries))]).await
}

/// The seed's two integrations, `1=MJ` and `2=DALL-E`, both up, and the
/// example checking them.
async fn mj_and_dalle() -> (Dependency, Dependency, App) {
    let mj = Dependency::open().await;
    let dalle = Dependency::open().await;
    let app = start_with(&[("1", "MJ", &mj), ("2", "DALL-E", &dalle)]).await;
    (mj, dalle, app)
}

/// `id=TYPE@addr` entries.
fn spec(entries: &[(&str, &str, &Dependency)]) -> String {
    entries
        .iter()
        .map(|(id, kind, dep)| format!("{id}={kind}@{}", dep.addr))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn schema_follows_the_seed() {
    let s = schema();
    let example: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    s.assert_valid(&example);
    for (what, bad) in [
        (
            "status down",
            json!({"status": "down", "data": example["data"]}),
        ),
        ("no data", json!({"status": "ok"})),
        ("percentage over 100", {
            let mut v = example.clone();
            v["data"]["healthy_percentage"] = json!(100.5);
            v
        }),
        ("integration status ok", {
            let mut v = example.clone();
            v["data"]["integrations"][0]["status"] = json!("ok");
            v
        }),
        ("type stats without status", {
            let mut v = example.clone();
            v["data"]["stats_by_integration_type"]["MJ"]
                .as_object_mut()
                .unwrap()
                .remove("status");
            v
        }),
        ("count as text", {
            let mut v = example.clone();
            v["data"]["total_integrations_count"] = json!("2");
            v
        }),
    ] {
        assert!(!s.errors(&bad).is_empty(), "schema accepts {what}: {bad}");
    }
}

#[tokio::test]
async fn all_healthy_is_the_seeds_example_byte_for_byte() {
    let (_mj, _dalle, app) = mj_and_dalle().await;
    let r = get(&app.url("/status"), &[BEARER]).await;
    let body = check(&r, StatusCode::OK);
    let example: Value = serde_json::from_str(SEED_EXAMPLE).unwrap();
    assert_eq!(body, example);
    // Same fields in the same order as the seed, floats written as `100.0`.
    let minified: String = SEED_EXAMPLE.split_whitespace().collect();
    assert_eq!(String::from_utf8_lossy(&r.body), minified);
    assert_head(&app.url("/status"), &[BEARER], StatusCode::OK).await;
}

#[tokio::test]
async fn some_down_is_degraded_with_200_and_per_type_stats() {
    let mj1 = Dependency::open().await;
    let mj2 = Dependency::open().await;
    let dalle = Dependency::open().await;
    let runway = Dependency::open().await;
    let app = start_with(&[
        ("mj-1", "MJ", &mj1),
        ("mj-2", "MJ", &mj2),
        ("dalle", "DALL-E", &dalle),
        ("runway", "Runway", &runway),
    ])
    .await;
    let url = app.url("/status");
    check(&get(&url, &[BEARER]).await, StatusCode::OK);
    let mj2_addr = mj2.close().await;
    runway.close().await;
    let r = get_until("degraded", &url, &[BEARER], |r| {
        r.json()["data"]["healthy_integrations_count"] == 2
    })
    .await;
    let body = check(&r, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "status": "degraded",
            "data": {
                "integrations": [
                    {"id": "mj-1", "status": "healthy", "type": "MJ"},
                    {"id": "mj-2", "status": "unhealthy", "type": "MJ"},
                    {"id": "dalle", "status": "healthy", "type": "DALL-E"},
                    {"id": "runway", "status": "unhealthy", "type": "Runway"}
                ],
                "healthy_integrations_count": 2,
                "total_integrations_count": 4,
                "healthy_percentage": 50.0,
                "stats_by_integration_type": {
                    "MJ": {"total_count": 2, "healthy_count": 1, "healthy_percentage": 50.0, "status": "degraded"},
                    "DALL-E": {"total_count": 1, "healthy_count": 1, "healthy_percentage": 100.0, "status": "ok"},
                    "Runway": {"total_count": 1, "healthy_count": 0, "healthy_percentage": 0.0, "status": "unhealthy"}
                }
            }
        })
    );
    // Readiness and the watch follow the same rule: degraded, still ready.
    assert_layer_agrees(&app, StatusCode::OK, "degraded").await;
    // The crate's own view agrees: non-critical components down, with the
    // connect error text.
    let c = get(&app.url("/status/mj-2"), &[BEARER]).await;
    assert_eq!(c.status, StatusCode::SERVICE_UNAVAILABLE);
    let c = c.json();
    assert_eq!(
        (c["type"].as_str(), c["critical"].as_bool()),
        (Some("MJ"), Some(false))
    );
    assert!(
        c["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("connect to {mj2_addr}: "))),
        "{c}"
    );
}

#[tokio::test]
async fn two_thirds_round_to_two_decimals() {
    let a = Dependency::open().await;
    let b = Dependency::open().await;
    let c = Dependency::open().await;
    let app = start_with(&[("a", "X", &a), ("b", "X", &b), ("c", "X", &c)]).await;
    c.close().await;
    let url = app.url("/status");
    let r = get_until("degraded", &url, &[BEARER], |r| {
        r.json()["status"] == "degraded"
    })
    .await;
    let body = check(&r, StatusCode::OK);
    assert_eq!(body["data"]["healthy_percentage"], json!(66.67));
    assert_eq!(
        body["data"]["stats_by_integration_type"]["X"],
        json!({"total_count": 3, "healthy_count": 2, "healthy_percentage": 66.67, "status": "degraded"})
    );
}

#[tokio::test]
async fn all_down_is_503_unhealthy_and_recovers() {
    let (mj, dalle, app) = mj_and_dalle().await;
    let url = app.url("/status");
    check(&get(&url, &[BEARER]).await, StatusCode::OK);
    let mj_addr = mj.close().await;
    let dalle_addr = dalle.close().await;
    let r = get_until("503", &url, &[BEARER], |r| {
        r.status == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let body = check(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({
            "status": "unhealthy",
            "data": {
                "integrations": [
                    {"id": "1", "status": "unhealthy", "type": "MJ"},
                    {"id": "2", "status": "unhealthy", "type": "DALL-E"}
                ],
                "healthy_integrations_count": 0,
                "total_integrations_count": 2,
                "healthy_percentage": 0.0,
                "stats_by_integration_type": {
                    "MJ": {"total_count": 1, "healthy_count": 0, "healthy_percentage": 0.0, "status": "unhealthy"},
                    "DALL-E": {"total_count": 1, "healthy_count": 0, "healthy_percentage": 0.0, "status": "unhealthy"}
                }
            }
        })
    );
    assert_head(&url, &[BEARER], StatusCode::SERVICE_UNAVAILABLE).await;
    // The rule is the layer's: readiness fails and the watch says down.
    assert_layer_agrees(&app, StatusCode::SERVICE_UNAVAILABLE, "down").await;

    // One back: degraded, 200.
    let _mj = Dependency::open_at(mj_addr).await;
    let r = get_until("degraded", &url, &[BEARER], |r| r.status == StatusCode::OK).await;
    assert_eq!(check(&r, StatusCode::OK)["status"], "degraded");
    assert_layer_agrees(&app, StatusCode::OK, "degraded").await;
    // Both back: ok.
    let _dalle = Dependency::open_at(dalle_addr).await;
    let r = get_until("ok", &url, &[BEARER], |r| r.json()["status"] == "ok").await;
    assert_eq!(
        check(&r, StatusCode::OK)["data"]["healthy_percentage"],
        json!(100.0)
    );
    assert_layer_agrees(&app, StatusCode::OK, "ok").await;
}

#[tokio::test]
async fn no_integrations_is_ok_with_zero_counts() {
    for integrations in [None, Some(""), Some("  ")] {
        let env: Vec<(&str, &str)> = integrations
            .map(|v| ("INTEGRATIONS", v))
            .into_iter()
            .collect();
        let app = App::start(NAME, &env).await;
        let r = get(&app.url("/status"), &[BEARER]).await;
        let body = check(&r, StatusCode::OK);
        assert_eq!(
            body,
            json!({
                "status": "ok",
                "data": {
                    "integrations": [],
                    "healthy_integrations_count": 0,
                    "total_integrations_count": 0,
                    "healthy_percentage": 100.0,
                    "stats_by_integration_type": {}
                }
            }),
            "INTEGRATIONS={integrations:?}"
        );
    }
}

#[tokio::test]
async fn only_the_bearer_key_opens_the_status() {
    let dep = Dependency::open().await;
    let app = App::start(
        NAME,
        &[
            ("INTEGRATIONS", &spec(&[("1", "MJ", &dep)])),
            ("STATUS_API_KEY", "s3cret"),
        ],
    )
    .await;
    let url = app.url("/status");
    let s = schema();
    for headers in [
        vec![],
        vec![("authorization", "Bearer dev-token")],
        vec![("authorization", "Bearer s3cret-not")],
        vec![("authorization", "Basic czNjcmV0Og==")],
        vec![("authorization", "s3cret")],
        // Only `Authorization: Bearer`: the X-Api-Key header is off.
        vec![("x-api-key", "s3cret")],
    ] {
        let r = get(&url, &headers).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("www-authenticate"), "Bearer realm=\"status\"");
        let body = r.json();
        s.assert_valid_def("error", &body);
        assert_eq!(body["code"], "unauthorized", "{headers:?}");
        // The key is never echoed.
        assert!(!String::from_utf8_lossy(&r.body).contains("s3cret"));
    }
    let r = send(Method::HEAD, &url, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.is_empty());

    let r = get(&url, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(check(&r, StatusCode::OK)["status"], "ok");
}

#[tokio::test]
async fn default_key_head_and_other_methods() {
    let app = App::start(NAME, &[("STATUS_API_KEY", "")]).await;
    let url = app.url("/status");
    // An empty STATUS_API_KEY counts as unset: dev-token.
    check(&get(&url, &[BEARER]).await, StatusCode::OK);
    assert_head(&url, &[BEARER], StatusCode::OK).await;
    let s = schema();
    for body in assert_methods_not_allowed(&url, &[BEARER]).await {
        s.assert_valid_def("error", &body);
        assert_eq!(body["code"], "method_not_allowed", "{body}");
    }
    // Refused before auth or not: 405 either way.
    for body in assert_methods_not_allowed(&url, &[]).await {
        s.assert_valid_def("error", &body);
        assert_eq!(body["code"], "method_not_allowed", "{body}");
    }
    // An unknown format, and the crate's own formats, which are off: the
    // seed's body is the only one served.
    for query in ["format=nope", "format=json", "format=ietf"] {
        let r = get(&app.url(&format!("/status?{query}")), &[BEARER]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        let body = r.json();
        s.assert_valid_def("error", &body);
        assert_eq!(body["code"], "unknown_format", "{query}");
    }
    assert_head_like_get(
        &app.url("/status?format=json"),
        &[BEARER],
        StatusCode::BAD_REQUEST,
    )
    .await;
    for accept in ["application/json", "application/health+json"] {
        let r = get(&url, &[BEARER, ("accept", accept)]).await;
        assert_eq!(check(&r, StatusCode::OK)["status"], "ok", "{accept}");
    }
}

#[test]
fn malformed_integrations_stop_the_example_with_a_message() {
    for bad in [
        "1",
        "1=MJ",
        "1=MJ@localhost",
        "=MJ@localhost:1",
        "1=@localhost:1",
        "1=MJ@localhost:0",
        "1=MJ@localhost:99999",
        "1=MJ@:80",
        "a b=MJ@localhost:1",
        "1=MJ@localhost:1,",
        "1=MJ@localhost:1,,2=X@localhost:2",
        "1=MJ@localhost:1,1=X@localhost:2",
    ] {
        let (code, stderr) = run_to_exit(NAME, &[("INTEGRATIONS", bad)]);
        assert_eq!(code, Some(2), "INTEGRATIONS={bad}: {stderr}");
        assert!(
            stderr.starts_with("integrations: invalid INTEGRATIONS: entry "),
            "INTEGRATIONS={bad}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Addresses are checked by `TcpCheck::parse`, whose reason is shown.
    let (code, stderr) = run_to_exit(NAME, &[("INTEGRATIONS", "1=MJ@127.0.0.1:1,2=X@db:0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "integrations: invalid INTEGRATIONS: entry 2 `2=X@db:0`: `db:0` is not host:port\n"
    );
}
