//! Watching the status: `StatusLayer::subscribe` in process, and the
//! Server-Sent Events of `/status/watch` over a real axum server.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{bounded, counter, fetch, flag, flag_check, http1_client, serve_hello};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tower_status::auth::{ApiKeys, Endpoint, Identity, Visibility};
use tower_status::check::{CheckResult, Freshness, HealthCheck};
use tower_status::{Status, StatusLayer};

/// The evaluation interval of these tests.
const INTERVAL: Duration = Duration::from_millis(100);
/// Slack on top of one interval for a change to show (a check run, a
/// scheduler delay on a loaded machine).
const MARGIN: Duration = Duration::from_millis(400);

const OPS_KEY: &str = "ops-key-0123456789";

fn db_layer(db: &Arc<AtomicBool>, runs: &Arc<AtomicUsize>) -> StatusLayer {
    StatusLayer::new()
        .check(flag_check("db", db, runs))
        .watch_interval(INTERVAL)
}

// ---------------------------------------------------------------------------
// In process
// ---------------------------------------------------------------------------

#[tokio::test]
async fn subscribe_gives_the_current_status_then_each_change() {
    let db = flag();
    let layer = db_layer(&db, &counter());
    let mut watch = layer.clone().build().subscribe();

    let first = bounded("first status", watch.changed())
        .await
        .expect("layer alive");
    assert_eq!(first.status, Status::Ok);
    assert_eq!(
        first.components.into_iter().collect::<Vec<_>>(),
        [("db".to_owned(), Status::Ok)]
    );

    for (up, want) in [(false, Status::Down), (true, Status::Ok)] {
        db.store(up, Ordering::SeqCst);
        let flipped = Instant::now();
        let change = tokio::time::timeout(INTERVAL + MARGIN, watch.changed())
            .await
            .unwrap_or_else(|_| panic!("no change to {want} within {:?}", INTERVAL + MARGIN))
            .expect("layer alive");
        println!("{want} seen {:?} after the flip", flipped.elapsed());
        assert_eq!(change.status, want);
        assert_eq!(change.components["db"], want);
    }

    // Nothing changes: nothing is returned.
    let quiet = tokio::time::timeout(3 * INTERVAL, watch.changed()).await;
    assert!(quiet.is_err(), "no change, yet {quiet:?}");
}

#[tokio::test]
async fn subscribe_follows_pushed_components_and_maintenance() {
    let layer = StatusLayer::new().watch_interval(INTERVAL);
    let handle = layer.clone().build();
    let mut watch = layer.clone().build().subscribe();
    let first = bounded("first", watch.changed()).await.expect("alive");
    assert_eq!(first.status, Status::Ok);
    assert!(first.components.is_empty());

    handle.set_component("broker", CheckResult::degraded("lagging"));
    let change = bounded("pushed", watch.changed()).await.expect("alive");
    assert_eq!(change.status, Status::Degraded);
    assert_eq!(change.components["broker"], Status::Degraded);

    handle.set_maintenance(tower_status::report::Notice::new("upgrade"));
    let change = bounded("maintenance", watch.changed())
        .await
        .expect("alive");
    assert_eq!(change.status, Status::Maintenance);
}

#[tokio::test]
async fn a_subscription_ends_with_the_layer() {
    let layer = db_layer(&flag(), &counter());
    let mut watch = layer.clone().build().subscribe();
    bounded("first", watch.changed()).await.expect("alive");
    drop(layer);
    let end = bounded("end of the subscription", watch.changed()).await;
    assert_eq!(end, None);
}

#[tokio::test]
async fn services_keep_the_layer_alive_and_it_ends_with_the_last_of_them() {
    use tower::{Layer, ServiceExt};
    let handle = db_layer(&flag(), &counter()).build();
    let mut watch = handle.subscribe();
    bounded("first", watch.changed()).await.expect("alive");
    let svc = handle.layer(tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from("hi"))))
    }));
    let clones: Vec<_> = (0..3).map(|_| svc.clone()).collect();
    drop(handle);

    // Only services hold the layer now: it keeps serving and evaluating.
    let quiet = tokio::time::timeout(Duration::from_millis(1_500), watch.changed()).await;
    assert!(
        quiet.is_err(),
        "the layer ended with services alive: {quiet:?}"
    );
    for svc in &clones {
        let req = Request::get("/status").body(Full::default()).unwrap();
        let res = bounded("status", svc.clone().oneshot(req)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    // Dropped on other threads too: the layer ends once the last is gone.
    std::thread::spawn(move || drop(clones)).join().unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(1_500), watch.changed()).await;
    assert!(
        quiet.is_err(),
        "the layer ended with a service alive: {quiet:?}"
    );
    drop(svc);
    let end = bounded("end once no service is left", watch.changed()).await;
    assert_eq!(end, None);
}

#[test]
fn services_made_and_dropped_off_any_runtime_let_the_layer_go() {
    use tower::Layer;
    // What the layer's state holds: the check, with this token in it.
    let token = Arc::new(());
    let held = Arc::clone(&token);
    let layer = StatusLayer::new().check(HealthCheck::new("db", move || {
        let _ = &held;
        async { true }
    }));
    let handle = layer.build();
    let svc = handle.layer(tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
    }));
    let clones: Vec<_> = (0..4).map(|_| svc.clone()).collect();
    drop(handle);
    assert!(Arc::strong_count(&token) > 1, "services hold the layer");
    drop((svc, clones));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Arc::strong_count(&token) > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the layer outlived its services"
    );
}

#[tokio::test]
async fn a_later_subscriber_gets_the_current_status_first() {
    let layer = db_layer(&flag(), &counter());
    let mut early = layer.clone().build().subscribe();
    bounded("first subscriber", early.changed())
        .await
        .expect("alive");

    let mut late = layer.clone().build().subscribe();
    let first = tokio::time::timeout(INTERVAL + MARGIN, late.changed())
        .await
        .expect("the current status, as StatusWatch::changed documents")
        .expect("alive");
    assert_eq!(first.status, Status::Ok);
}

#[tokio::test]
async fn the_evaluator_stops_with_the_last_subscriber() {
    let runs = counter();
    let layer = db_layer(&flag(), &runs);
    let mut watch = layer.clone().build().subscribe();
    bounded("first", watch.changed()).await.expect("alive");
    bounded("evaluations every interval", async {
        while runs.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(INTERVAL / 4).await;
        }
    })
    .await;
    drop(watch);
    // One more tick notices nobody listens: from then on the count stays
    // put (4 intervals without a run), within 3 s.
    let settled = Instant::now() + Duration::from_secs(3);
    let mut last = runs.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(4 * INTERVAL).await;
        let now = runs.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        assert!(
            Instant::now() < settled,
            "the check still runs 3 s after the last subscriber left"
        );
        last = now;
    }
}

// ---------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------

/// An open event stream, read block by block.
struct Events {
    body: Incoming,
    buf: String,
    headers: http::HeaderMap,
}

impl Events {
    /// `GET /status/watch` with `headers`; must be 200.
    async fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> Self {
        let client = http1_client();
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(format!("http://{addr}/status/watch"));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::<Bytes>::default()).expect("request");
        let res = bounded("response head of /status/watch", client.request(request))
            .await
            .expect("HTTP request");
        assert_eq!(res.status(), StatusCode::OK, "{:?}", res.headers());
        let (parts, body) = res.into_parts();
        Self {
            body,
            buf: String::new(),
            headers: parts.headers,
        }
    }

    /// The next block (up to a blank line), or `None` when none came
    /// within `within`.
    async fn block(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                return Some(block);
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => return None,
                Ok(None) => panic!("the event stream ended; unread: {:?}", self.buf),
                Ok(Some(Err(e))) => panic!("event stream error: {e}"),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf
                            .push_str(std::str::from_utf8(&data).expect("UTF-8 events"));
                    }
                }
            }
        }
    }

    /// The next `status` event's data within `within`, skipping
    /// keep-alives; `None` when none came.
    async fn event(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let block = self.block(left).await?;
            if block.starts_with(':') {
                continue;
            }
            return Some(parse_event(&block));
        }
    }

    /// The next event's statuses (its transitions left out; see
    /// [`Self::expect_raw_event`]).
    async fn expect_event(&mut self, within: Duration, what: &str) -> Value {
        let mut event = self.expect_raw_event(within, what).await;
        if let Some(map) = event.as_object_mut() {
            map.remove("transitions");
        }
        event
    }

    async fn expect_raw_event(&mut self, within: Duration, what: &str) -> Value {
        let started = Instant::now();
        let event = self
            .event(within)
            .await
            .unwrap_or_else(|| panic!("no event within {within:?}: {what}"));
        println!("{what}: {event} after {:?}", started.elapsed());
        event
    }
}

/// `event: status` and one `data:` line of JSON.
fn parse_event(block: &str) -> Value {
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.len(), 2, "an event is two lines: {block:?}");
    assert_eq!(lines[0], "event: status", "{block:?}");
    let data = lines[1]
        .strip_prefix("data: ")
        .unwrap_or_else(|| panic!("no data line: {block:?}"));
    serde_json::from_str(data).unwrap_or_else(|e| panic!("data is not JSON ({e}): {data}"))
}

#[tokio::test]
async fn events_follow_the_status() {
    let (db, runs) = (flag(), counter());
    let layer = db_layer(&db, &runs);
    let addr = serve_hello(&layer).await;

    let mut events = Events::open(addr, &[]).await;
    assert_eq!(events.headers[CONTENT_TYPE], "text/event-stream");
    assert_eq!(events.headers[CACHE_CONTROL], "no-store");
    let first = events.expect_event(INTERVAL + MARGIN, "first event").await;
    assert_eq!(first, json!({"status": "ok", "components": {"db": "ok"}}));

    db.store(false, Ordering::SeqCst);
    let mut down = events
        .expect_raw_event(INTERVAL + MARGIN, "after db went down")
        .await;
    // The change carries its transitions: the component's, then the overall one.
    let transitions = down["transitions"].take();
    let seen: Vec<_> = transitions
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| (t["component"].clone(), t["from"].clone(), t["to"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (json!("db"), json!("ok"), json!("down")),
            (Value::Null, json!("ok"), json!("down"))
        ],
        "{transitions}"
    );
    down.as_object_mut().unwrap().remove("transitions");
    assert_eq!(
        down,
        json!({"status": "down", "components": {"db": "down"}})
    );

    db.store(true, Ordering::SeqCst);
    let up = events
        .expect_event(INTERVAL + MARGIN, "after db came back")
        .await;
    assert_eq!(up, first);

    // No change, no event (and no keep-alive within the default 15 s).
    assert_eq!(events.block(4 * INTERVAL).await, None);

    // A second stream starts with the current status.
    let mut second = Events::open(addr, &[]).await;
    let current = second
        .expect_event(INTERVAL + MARGIN, "second stream")
        .await;
    assert_eq!(current, first);

    // Watch requests are status requests, not traffic.
    let report = layer.clone().build().report().await;
    assert_eq!(report.requests.total, 0);
}

#[tokio::test]
async fn keep_alive_comments_when_quiet() {
    let layer = db_layer(&flag(), &counter()).watch_keepalive(Duration::from_millis(200));
    let addr = serve_hello(&layer).await;
    let mut events = Events::open(addr, &[]).await;
    let first = events.block(INTERVAL + MARGIN).await.expect("first event");
    assert!(first.starts_with("event: status\n"), "{first:?}");

    for _ in 0..2 {
        let started = Instant::now();
        let block = events
            .block(Duration::from_millis(200) + MARGIN)
            .await
            .expect("a keep-alive within 200 ms + margin");
        let took = started.elapsed();
        println!("{block:?} after {took:?}");
        assert_eq!(block, ": keep-alive");
        assert!(
            took >= Duration::from_millis(150),
            "not before the period: {took:?}"
        );
    }
}

/// Keys configured; the watch open to anonymous callers, who see no details.
fn keyed(layer: StatusLayer) -> StatusLayer {
    layer
        .api_keys(ApiKeys::new().key(OPS_KEY, Identity::new("ops")))
        .require_key(Endpoint::Report, false)
        .show_details(Visibility::WhenAuthorized)
}

#[tokio::test]
async fn callers_without_details_see_only_the_overall_status() {
    let (db, cache_slow) = (flag(), flag());
    let slow = Arc::clone(&cache_slow);
    // `cache` is not critical: degraded or down, the service is degraded.
    let layer = keyed(db_layer(&db, &counter())).check(
        HealthCheck::new("cache", move || {
            let slow = slow.load(Ordering::SeqCst);
            async move {
                if slow {
                    CheckResult::degraded("slow")
                } else {
                    CheckResult::down("gone")
                }
            }
        })
        .critical(false)
        .freshness(Freshness::OnDemand {
            ttl: Duration::ZERO,
        }),
    );
    let addr = serve_hello(&layer).await;

    let mut ops = Events::open(addr, &[("x-api-key", OPS_KEY)]).await;
    let mut anon = Events::open(addr, &[]).await;
    assert_eq!(
        ops.expect_event(INTERVAL + MARGIN, "ops first").await,
        json!({"status": "degraded", "components": {"cache": "degraded", "db": "ok"}})
    );
    assert_eq!(
        anon.expect_event(INTERVAL + MARGIN, "anonymous first")
            .await,
        json!({"status": "degraded"})
    );

    // Only the non-critical component changes: the overall status does not.
    cache_slow.store(false, Ordering::SeqCst);
    assert_eq!(
        ops.expect_event(INTERVAL + MARGIN, "ops after cache went down")
            .await,
        json!({"status": "degraded", "components": {"cache": "down", "db": "ok"}})
    );
    let quiet = Duration::from_millis(500);
    let nothing = anon.block(quiet).await;
    assert_eq!(nothing, None, "anonymous got something within {quiet:?}");

    // The overall status changes: both see it.
    db.store(false, Ordering::SeqCst);
    assert_eq!(
        anon.expect_event(INTERVAL + MARGIN, "anonymous after db went down")
            .await,
        json!({"status": "down"})
    );
    assert_eq!(
        ops.expect_event(INTERVAL + MARGIN, "ops after db went down")
            .await,
        json!({"status": "down", "components": {"cache": "down", "db": "down"}})
    );
}

#[tokio::test]
async fn a_missing_key_is_refused_before_any_evaluation() {
    let runs = counter();
    let layer =
        db_layer(&flag(), &runs).api_keys(ApiKeys::new().key(OPS_KEY, Identity::new("ops")));
    let addr = serve_hello(&layer).await;
    let client = http1_client();

    let res = fetch(&client, addr, Method::GET, "/status/watch").await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{res:?}");
    assert_eq!(res.headers[CONTENT_TYPE], "application/json");
    assert_eq!(res.headers[WWW_AUTHENTICATE], "Bearer realm=\"status\"");
    assert_eq!(res.json()["code"], "unauthorized");
    tokio::time::sleep(2 * INTERVAL).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "nothing was evaluated");

    let mut events = Events::open(addr, &[("authorization", &format!("Bearer {OPS_KEY}"))]).await;
    assert_eq!(
        events.expect_event(INTERVAL + MARGIN, "with the key").await,
        json!({"status": "ok", "components": {"db": "ok"}})
    );
}

#[tokio::test]
async fn head_is_headers_only() {
    let runs = counter();
    let layer = db_layer(&flag(), &runs);
    let addr = serve_hello(&layer).await;
    let client = http1_client();
    let res = fetch(&client, addr, Method::HEAD, "/status/watch").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.headers[CONTENT_TYPE], "text/event-stream");
    assert_eq!(res.headers[CACHE_CONTROL], "no-store");
    assert!(res.body.is_empty());
    tokio::time::sleep(2 * INTERVAL).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0, "HEAD starts no evaluation");

    let res = fetch(&client, addr, Method::POST, "/status/watch").await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_closed_stream_stops_the_evaluation() {
    let runs = counter();
    let layer = db_layer(&flag(), &runs).watch_keepalive(Duration::from_millis(100));
    let addr = serve_hello(&layer).await;
    let mut events = Events::open(addr, &[]).await;
    events.expect_event(INTERVAL + MARGIN, "first").await;
    drop(events);
    // The server notices at its next write (a keep-alive), the evaluator at its next tick.
    let settled = Instant::now() + Duration::from_secs(3);
    let mut last = runs.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(4 * INTERVAL).await;
        let now = runs.load(Ordering::SeqCst);
        if now == last {
            break;
        }
        assert!(
            Instant::now() < settled,
            "the check still runs 3 s after the client left"
        );
        last = now;
    }
}

#[tokio::test]
async fn a_stream_opened_after_a_pause_starts_with_the_current_status() {
    let db = flag();
    let layer = db_layer(&db, &counter());
    let addr = serve_hello(&layer).await;
    {
        let mut watch = layer.clone().build().subscribe();
        let first = bounded("first", watch.changed()).await.expect("alive");
        assert_eq!(first.status, Status::Ok);
    }
    // Nobody watches: the evaluator stops. Then the status changes.
    tokio::time::sleep(3 * INTERVAL).await;
    db.store(false, Ordering::SeqCst);

    let mut events = Events::open(addr, &[]).await;
    let first = events.expect_event(INTERVAL + MARGIN, "first event").await;
    assert_eq!(
        first,
        json!({"status": "down", "components": {"db": "down"}}),
        "the first event is the current status"
    );
}
