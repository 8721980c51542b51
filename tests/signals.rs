//! Consumer signals on real loopback servers (axum) read by a real HTTP
//! client: `429` for `degraded` where it is turned on, `x-envoy-degraded`
//! on degraded answers only, the load-balancing weight (0 when down,
//! draining or in maintenance, lower with requests in flight and with
//! latency), and `Retry-After` where it always was. Every wait is bounded.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::routing::get;
use common::{bounded, fetch, http1_client, start_axum, wait_until, Fetched};
use http::header::RETRY_AFTER;
use http::{Method, StatusCode};
use tokio::sync::watch;
use tower_status::check::{CheckResult, Freshness, HealthCheck};
use tower_status::format::{
    ConsumerSignals, Probe, ENVOY_DEGRADED_HEADER, MAX_WEIGHT, WEIGHT_HEADER,
};
use tower_status::report::Notice;
use tower_status::{StatusHandle, StatusLayer};

const OK: u8 = 0;
const DEGRADED: u8 = 1;
const DOWN: u8 = 2;

/// Every probe's path, with the probe.
const PROBES: [(Probe, &str); 4] = [
    (Probe::Report, "/status"),
    (Probe::Live, "/status/live"),
    (Probe::Ready, "/status/ready"),
    (Probe::Component, "/status/search"),
];

/// A critical check `search` whose result follows `state` (ok, degraded,
/// down), run on every request.
fn switch(state: &Arc<AtomicU8>) -> HealthCheck {
    let state = Arc::clone(state);
    HealthCheck::new("search", move || {
        let now = state.load(Ordering::SeqCst);
        async move {
            match now {
                OK => CheckResult::ok(),
                DEGRADED => CheckResult::degraded("reindexing"),
                _ => CheckResult::down("connection refused"),
            }
        }
    })
    .freshness(Freshness::OnDemand {
        ttl: Duration::ZERO,
    })
}

/// A server behind `layer` (with the `search` check following `state`):
/// `/` answers at once, `/hold` when `release` turns true, `/slow` after
/// 25 ms. Returns its address and the handle it serves.
async fn serve(
    layer: StatusLayer,
    state: &Arc<AtomicU8>,
    release: watch::Receiver<bool>,
) -> (SocketAddr, StatusHandle) {
    let status = layer.check(switch(state)).build();
    let app = axum::Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/hold",
            get(move || {
                let mut release = release.clone();
                async move {
                    // Ends when the sender says so (or is gone).
                    let _ = release.wait_for(|released| *released).await;
                    "released"
                }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                // A floor on the latency, not a wait for something else.
                tokio::time::sleep(Duration::from_millis(25)).await;
                "slow"
            }),
        )
        .layer(status.clone());
    (start_axum(app).await, status)
}

/// A fresh state (ok) and a release that is never sent.
fn fixtures() -> (Arc<AtomicU8>, watch::Sender<bool>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    (Arc::new(AtomicU8::new(OK)), tx, rx)
}

async fn get_at(addr: SocketAddr, path: &str) -> Fetched {
    fetch(&http1_client(), addr, Method::GET, path).await
}

/// The weight header of an answer, failing when it is missing or not an integer.
fn weight(res: &Fetched, what: &str) -> u16 {
    let value = res
        .headers
        .get(WEIGHT_HEADER)
        .unwrap_or_else(|| panic!("{what}: no {WEIGHT_HEADER} in {res:?}"));
    let weight: u16 = value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: {WEIGHT_HEADER} is {value:?}"));
    assert!(weight <= MAX_WEIGHT, "{what}: {weight}");
    weight
}

fn envoy(res: &Fetched) -> Option<&str> {
    res.headers
        .get(ENVOY_DEGRADED_HEADER)
        .map(|v| v.to_str().expect("header text"))
}

#[tokio::test]
async fn degraded_is_429_where_enabled_and_200_where_not() {
    let (state, _tx, rx) = fixtures();
    let layer = StatusLayer::new().consumer_signals(
        [Probe::Report, Probe::Component],
        ConsumerSignals::new().degraded_as_429(true),
    );
    let (addr, _status) = serve(layer, &state, rx.clone()).await;
    let (plain, _) = serve(StatusLayer::new(), &state, rx).await;
    let client = http1_client();

    state.store(DEGRADED, Ordering::SeqCst);
    for path in ["/status", "/status?format=ietf", "/status/search"] {
        for method in [Method::GET, Method::HEAD] {
            let res = fetch(&client, addr, method.clone(), path).await;
            assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{method} {path}");
            // Consul's warning, and nothing else changes: no Retry-After.
            assert!(res.headers.get(RETRY_AFTER).is_none(), "{path}");
            let res = fetch(&client, plain, method.clone(), path).await;
            assert_eq!(
                res.status,
                StatusCode::OK,
                "{method} {path} without signals"
            );
        }
    }
    let report = get_at(addr, "/status").await.json();
    assert_eq!(report["status"], "degraded", "{report}");
    let search = get_at(addr, "/status/search").await.json();
    assert_eq!(search["status"], "degraded", "{search}");
    // Not turned on for the probes: degraded readiness stays 200.
    let ready = get_at(addr, "/status/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "degraded");
    assert_eq!(get_at(addr, "/status/live").await.status, StatusCode::OK);

    // Only degraded: ok stays 200 and down 503.
    state.store(OK, Ordering::SeqCst);
    for (_, path) in PROBES {
        assert_eq!(get_at(addr, path).await.status, StatusCode::OK, "{path}");
    }
    state.store(DOWN, Ordering::SeqCst);
    for path in ["/status", "/status/ready", "/status/search"] {
        let res = get_at(addr, path).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
}

#[tokio::test]
async fn envoy_header_is_on_degraded_answers_only() {
    let (state, _tx, rx) = fixtures();
    let layer = StatusLayer::new().consumer_signals(
        [Probe::Report, Probe::Live, Probe::Ready],
        ConsumerSignals::new().envoy_degraded_header(true),
    );
    let (addr, _status) = serve(layer, &state, rx).await;

    for (now, word) in [(OK, "ok"), (DOWN, "down")] {
        state.store(now, Ordering::SeqCst);
        for (_, path) in PROBES {
            let res = get_at(addr, path).await;
            assert_eq!(envoy(&res), None, "{word}: {path}");
        }
    }
    state.store(DEGRADED, Ordering::SeqCst);
    for path in ["/status", "/status/ready"] {
        for method in [Method::GET, Method::HEAD] {
            let res = fetch(&http1_client(), addr, method.clone(), path).await;
            // Envoy expects 200: the header alone marks the host degraded.
            assert_eq!(res.status, StatusCode::OK, "{method} {path}");
            assert_eq!(envoy(&res), Some("true"), "{method} {path}");
        }
    }
    // Liveness is never degraded; components were not asked for.
    assert_eq!(envoy(&get_at(addr, "/status/live").await), None);
    let search = get_at(addr, "/status/search").await;
    assert_eq!(search.json()["status"], "degraded");
    assert_eq!(envoy(&search), None);
}

#[tokio::test]
async fn weight_is_zero_when_down_draining_or_in_maintenance() {
    let (state, _tx, rx) = fixtures();
    let layer = StatusLayer::new().consumer_signals(
        Probe::ALL,
        ConsumerSignals::new().load_balancing_weight(true),
    );
    let (addr, status) = serve(layer, &state, rx).await;

    // Idle, nothing recorded yet: the full weight on every probe, degraded too.
    for now in [OK, DEGRADED] {
        state.store(now, Ordering::SeqCst);
        for (_, path) in PROBES {
            assert_eq!(
                weight(&get_at(addr, path).await, path),
                MAX_WEIGHT,
                "{path}"
            );
        }
    }
    // Down: 0 wherever the answer is down; liveness still answers ok.
    state.store(DOWN, Ordering::SeqCst);
    for path in ["/status", "/status/ready", "/status/search"] {
        let res = get_at(addr, path).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(weight(&res, path), 0, "{path}");
    }
    assert_eq!(
        weight(&get_at(addr, "/status/live").await, "live"),
        MAX_WEIGHT
    );

    // Draining: 0 on every probe, liveness too, until it stops.
    state.store(OK, Ordering::SeqCst);
    status.start_draining();
    for (_, path) in PROBES {
        for method in [Method::GET, Method::HEAD] {
            let res = fetch(&http1_client(), addr, method.clone(), path).await;
            assert_eq!(weight(&res, path), 0, "draining: {method} {path}");
        }
    }
    assert_eq!(
        get_at(addr, "/status/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    status.stop_draining();
    assert_eq!(
        weight(&get_at(addr, "/status/ready").await, "ready"),
        MAX_WEIGHT
    );

    // Maintenance: 0, and `Retry-After` where it always was.
    status.set_maintenance(
        Notice::new("upgrade").estimated_completion(SystemTime::now() + Duration::from_secs(90)),
    );
    for path in ["/status", "/status/ready"] {
        let res = get_at(addr, path).await;
        assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(weight(&res, path), 0, "{path}");
        let secs: u64 = res.headers[RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=90).contains(&secs), "{path}: Retry-After {secs}");
    }
    // Liveness and the component still answer ok, without Retry-After:
    // the weight is 0 all the same.
    for path in ["/status/live", "/status/search"] {
        let res = get_at(addr, path).await;
        assert_eq!(res.status, StatusCode::OK, "{path}");
        assert!(res.headers.get(RETRY_AFTER).is_none(), "{path}");
        assert_eq!(weight(&res, path), 0, "{path}");
    }
    status.clear_maintenance();
    assert_eq!(weight(&get_at(addr, "/status").await, "report"), MAX_WEIGHT);
}

#[tokio::test]
async fn weight_falls_with_requests_in_flight() {
    let (state, release, rx) = fixtures();
    let signals = ConsumerSignals::new().load_balancing_weight(true);
    let layer = StatusLayer::new().consumer_signals([Probe::Ready], signals);
    let (addr, status) = serve(layer, &state, rx).await;
    let ready = || async move { weight(&get_at(addr, "/status/ready").await, "ready") };
    let idle = ready().await;
    assert_eq!(idle, MAX_WEIGHT);

    let mut held = Vec::new();
    let mut last = idle;
    for in_flight in [10u64, 20] {
        while (held.len() as u64) < in_flight {
            held.push(tokio::spawn(async move { get_at(addr, "/hold").await }));
        }
        let what = format!("{in_flight} requests in flight");
        wait_until(&what, || async {
            status.report().await.requests.in_flight == in_flight
        })
        .await;
        let loaded = ready().await;
        // Nothing has finished yet: no latency, the in-flight term alone.
        assert_eq!(
            loaded,
            signals.weight_for(in_flight, Duration::ZERO),
            "{what}"
        );
        assert!(loaded < last, "{what}: {loaded} after {last}");
        last = loaded;
    }
    assert_eq!(last, 333);
    // Probes are not traffic: they never count as in flight.
    assert_eq!(status.report().await.requests.in_flight, 20);

    release.send_replace(true);
    for request in held {
        let res = bounded("held request", request)
            .await
            .expect("request task");
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.body, "released");
    }
    wait_until("nothing in flight", || async {
        status.report().await.requests.in_flight == 0
    })
    .await;
    assert!(ready().await >= 1, "up and not draining: never 0");
}

#[tokio::test]
async fn weight_falls_with_latency() {
    let (state, _tx, rx) = fixtures();
    // Halved by 10 ms of p90 latency, so 25 ms requests weigh clearly.
    let signals = ConsumerSignals::new()
        .load_balancing_weight(true)
        .weight_halved_at(1000, Duration::from_millis(10));
    let layer = StatusLayer::new().consumer_signals([Probe::Live], signals);
    let (addr, _status) = serve(layer, &state, rx).await;
    let live = || async move { weight(&get_at(addr, "/status/live").await, "live") };
    assert_eq!(live().await, MAX_WEIGHT);

    assert_eq!(get_at(addr, "/").await.status, StatusCode::OK);
    let after_fast = live().await;

    for _ in 0..10 {
        assert_eq!(get_at(addr, "/slow").await.status, StatusCode::OK);
    }
    let slow = live().await;
    // Every slow request took at least 25 ms; the histogram reads it
    // within 1/16 below.
    let bound = signals.weight_for(0, Duration::from_millis(23));
    assert!(slow <= bound, "{slow} > {bound}");
    assert!(slow < after_fast, "{slow} after {after_fast}");
}

#[tokio::test]
async fn without_signals_no_probe_changes() {
    let (state, _tx, rx) = fixtures();
    let layer = StatusLayer::new()
        .consumer_signals(
            Probe::ALL,
            ConsumerSignals::new()
                .degraded_as_429(true)
                .envoy_degraded_header(true)
                .load_balancing_weight(true),
        )
        // A later call replaces what an earlier one set, for its probes only.
        .consumer_signals([Probe::Report, Probe::Live], ConsumerSignals::new());
    let (addr, status) = serve(layer, &state, rx.clone()).await;
    let (plain, plain_status) = serve(StatusLayer::new(), &state, rx).await;

    for now in [OK, DEGRADED, DOWN] {
        state.store(now, Ordering::SeqCst);
        for draining in [false, true] {
            for handle in [&status, &plain_status] {
                if draining {
                    handle.start_draining();
                } else {
                    handle.stop_draining();
                }
            }
            for (probe, path) in PROBES {
                let what = format!("state {now}, draining {draining}: {path}");
                let bare = get_at(plain, path).await;
                let res = get_at(addr, path).await;
                let cleared = matches!(probe, Probe::Report | Probe::Live);
                for answer in [&bare, &res].into_iter().take(if cleared { 2 } else { 1 }) {
                    assert!(answer.headers.get(WEIGHT_HEADER).is_none(), "{what}");
                    assert_eq!(envoy(answer), None, "{what}");
                    assert_ne!(answer.status, StatusCode::TOO_MANY_REQUESTS, "{what}");
                }
                if cleared {
                    assert_eq!(res.status, bare.status, "{what}");
                } else {
                    assert!(res.headers.get(WEIGHT_HEADER).is_some(), "{what}");
                }
            }
        }
    }
}
