//! `WebhookNotifier` against real receivers on loopback (feature
//! `webhook`): what it sends, what counts as delivered, its errors, and
//! that an attempt given up leaves no connection open. The outbox's
//! retries, order and drops are tested in `src/notify/outbox.rs`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tower_status::check::{CheckResult, HealthCheck};
use tower_status::notify::{Delivery, Notifier, WebhookNotifier};
use tower_status::report::Notification;
use tower_status::{Status, StatusLayer};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Upper bound of any wait here.
const STEP: Duration = Duration::from_secs(5);

const SECRET: &str = "Bearer s3cret-t0ken";

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// A receiver answering each request with the next scripted status (200
/// once the script is done), recording what it saw.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<StatusCode>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn receive(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    r.seen.lock().unwrap().push(Seen {
        method,
        uri,
        headers,
        body,
    });
    let status = r
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    if status.is_redirection() {
        headers.insert(header::LOCATION, HeaderValue::from_static("/elsewhere"));
    }
    (status, headers)
}

/// Serves a [`Receiver`] on `127.0.0.1:0`: it and its base URL.
async fn serve(script: impl IntoIterator<Item = StatusCode>) -> (Receiver, String) {
    let receiver = Receiver::default();
    receiver.script.lock().unwrap().extend(script);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().fallback(receive).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, base)
}

/// A notification as the engine makes them (its fields are not public to
/// build, so from its JSON).
fn notification(sequence: u64) -> Notification {
    serde_json::from_value(json!({
        "sequence": sequence,
        "service": "checkout",
        "version": "1.2.3",
        "environment": "test",
        "status": "down",
        "transition": {
            "from": "ok", "to": "down", "at": "2026-12-04T10:00:00.000Z",
            "error": "connection refused", "previous_lasted_ms": 60000
        },
        "root_causes": [{ "component": "db", "status": "down", "error": "connection refused" }],
        "components": [{
            "component": "db", "from": "ok", "to": "down", "at": "2026-12-04T10:00:00.000Z",
            "error": "connection refused", "previous_lasted_ms": 60000
        }]
    }))
    .unwrap()
}

fn webhook(url: &str) -> WebhookNotifier {
    WebhookNotifier::new(url)
        .unwrap()
        .header(header::AUTHORIZATION, HeaderValue::from_static(SECRET))
}

/// The error of one attempt, which must never show the secret.
async fn attempt_error(notifier: &WebhookNotifier) -> String {
    let n = notification(1);
    let result = tokio::time::timeout(STEP, notifier.notify(&n)).await;
    let error = result.expect("an attempt ends").unwrap_err().to_string();
    assert!(!error.contains("s3cret"), "{error}");
    error
}

#[tokio::test]
async fn the_notification_is_posted_as_json_with_the_headers() {
    let (receiver, base) = serve([]).await;
    let notifier = webhook(&format!("{base}/hooks/status?team=core"))
        .header(
            header::HeaderName::from_static("x-team"),
            HeaderValue::from_static("core"),
        )
        .header(header::USER_AGENT, HeaderValue::from_static("my-app/2"));
    let n = notification(7);
    notifier.notify(&n).await.unwrap();

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.uri, "/hooks/status?team=core");
    assert_eq!(req.headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(req.headers[header::AUTHORIZATION], SECRET);
    assert_eq!(req.headers["x-team"], "core");
    assert_eq!(req.headers[header::USER_AGENT], "my-app/2");
    assert_eq!(
        req.headers[header::HOST],
        base.trim_start_matches("http://")
    );
    assert_eq!(
        req.headers[header::CONTENT_LENGTH],
        req.body.len().to_string().as_str()
    );
    // The body is the notification's own serialization.
    assert_eq!(req.body, serde_json::to_vec(&n).unwrap());
    let back: Notification = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(back, n);
    let json: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(json["sequence"], 7);
    assert_eq!(json["service"], "checkout");
    assert_eq!(json["transition"]["to"], "down");
    assert_eq!(json["root_causes"][0]["component"], "db");
}

#[tokio::test]
async fn the_default_user_agent_names_the_crate() {
    let (receiver, base) = serve([StatusCode::NO_CONTENT]).await;
    let notifier = WebhookNotifier::new(format!("{base}/")).unwrap();
    notifier.notify(&notification(1)).await.unwrap();
    let seen = receiver.seen();
    let agent = seen[0].headers[header::USER_AGENT].to_str().unwrap();
    assert!(agent.starts_with("tower-status/"), "{agent}");
    assert!(!seen[0].headers.contains_key(header::AUTHORIZATION));
}

#[tokio::test]
async fn a_2xx_is_delivered_anything_else_is_an_error_naming_the_status() {
    let (receiver, base) = serve([
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::NOT_FOUND,
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::ACCEPTED,
    ])
    .await;
    let notifier = webhook(&format!("{base}/hook"));
    let error = attempt_error(&notifier).await;
    assert_eq!(error, format!("{base} answered 503 Service Unavailable"));
    let error = attempt_error(&notifier).await;
    assert_eq!(error, format!("{base} answered 404 Not Found"));
    let error = attempt_error(&notifier).await;
    assert_eq!(
        error,
        format!("{base} answered 301 Moved Permanently (redirects are not followed)")
    );
    notifier.notify(&notification(1)).await.unwrap();
    assert_eq!(receiver.seen().len(), 4);
}

#[tokio::test]
async fn a_refused_connection_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = attempt_error(&webhook(&format!("http://{addr}/hook"))).await;
    assert!(
        error.starts_with(&format!("connect to {addr}: ")),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
}

#[tokio::test]
async fn a_connection_closed_without_an_answer_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    let error = attempt_error(&webhook(&format!("http://{addr}/hook"))).await;
    assert!(
        error.starts_with(&format!("POST to http://{addr}: ")),
        "{error}"
    );
}

#[tokio::test]
async fn an_attempt_dropped_before_the_answer_closes_its_connection() {
    // Reads the request, never answers, and reports when the client hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (got_request, request_seen) = tokio::sync::oneshot::channel();
    let closed = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0; 64 * 1024];
        let mut read = 0;
        let mut got_request = Some(got_request);
        loop {
            let n = stream.read(&mut buf[read..]).await.unwrap();
            if n == 0 {
                return String::from_utf8_lossy(&buf[..read]).into_owned();
            }
            read += n;
            if buf[..read].ends_with(b"}") {
                if let Some(tx) = got_request.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    let notifier = webhook(&format!("http://{addr}/hook"));
    let n = notification(1);
    {
        let attempt = notifier.notify(&n);
        tokio::pin!(attempt);
        tokio::select! {
            r = &mut attempt => panic!("no answer was sent, yet: {r:?}"),
            r = request_seen => r.unwrap(),
        }
        // The attempt is dropped here, as the outbox drops one that
        // timed out.
    }
    let started = Instant::now();
    let request = tokio::time::timeout(STEP, closed)
        .await
        .expect("the connection is closed once the attempt is dropped")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
}

#[test]
fn urls_other_than_plain_http_are_refused_with_the_reason() {
    let https = WebhookNotifier::new("https://hooks.example.com/status")
        .unwrap_err()
        .to_string();
    assert!(
        https.starts_with("invalid webhook URL: https:// is not supported"),
        "{https}"
    );
    assert!(https.contains("implement `Notifier`"), "{https}");
    for url in [
        "hooks.example.com/status",
        "/status",
        "ftp://h/",
        "http://h:70000/",
    ] {
        assert!(WebhookNotifier::new(url).is_err(), "{url}");
    }
    let creds = WebhookNotifier::new("http://me:pa55word@h/")
        .unwrap_err()
        .to_string();
    assert!(!creds.contains("pa55word"), "{creds}");
}

#[test]
fn debug_shows_no_header_value() {
    let notifier = webhook("http://127.0.0.1:9/hook");
    let debug = format!("{notifier:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("authorization"), "{debug}");
    let delivery = format!("{:?}", Delivery::to("hook", notifier));
    assert!(!delivery.contains("s3cret"), "{delivery}");
}

/// Polls `cond` until it holds, failing after [`STEP`].
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {STEP:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// End to end through the public API: a pushed component goes down, then
/// comes back; the webhook receives one notification for each.
#[tokio::test]
async fn a_layer_posts_each_status_change_to_its_webhook() -> Result<(), BoxError> {
    let (receiver, base) = serve([StatusCode::SERVICE_UNAVAILABLE]).await;
    let webhook = WebhookNotifier::new(format!("{base}/hook"))?
        .header(header::AUTHORIZATION, HeaderValue::from_static(SECRET));
    let status = StatusLayer::new()
        .service_name("checkout")
        .check(HealthCheck::pushed("db"))
        .notify(
            Delivery::to("hook", webhook)
                .attempt_timeout(Duration::from_millis(200))
                .backoff(Duration::from_millis(10), Duration::from_millis(50)),
        )
        .watch_interval(Duration::from_millis(50))
        .build();
    let accepted = || {
        receiver
            .seen()
            .into_iter()
            .skip(1) // refused with 503, then retried
            .map(|s| serde_json::from_slice::<Value>(&s.body).unwrap())
            .collect::<Vec<_>>()
    };

    // Once the layer has seen it ok, it goes down.
    let mut watch = status.subscribe();
    let first = tokio::time::timeout(STEP, watch.changed()).await?;
    assert_eq!(first.map(|c| c.status), Some(Status::Ok));
    status.set_component("db", CheckResult::down("gone"));
    wait_for("the down notification", || accepted().len() == 1).await;
    status.set_component("db", CheckResult::ok());
    wait_for("the recovery notification", || accepted().len() == 2).await;

    // And nothing more: a few evaluations later, still the two.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = accepted();
    assert_eq!(got.len(), 2, "{got:?}");
    let (down, up) = (&got[0], &got[1]);
    assert_eq!(down["service"], "checkout");
    assert_eq!(down["status"], "down");
    assert_eq!(down["transition"]["from"], "ok");
    assert_eq!(down["transition"]["to"], "down");
    assert_eq!(down["root_causes"][0]["component"], "db");
    assert_eq!(down["root_causes"][0]["error"], "gone");
    assert_eq!(up["service"], "checkout");
    assert_eq!(up["status"], "ok");
    assert_eq!(up["transition"]["from"], "down");
    assert_eq!(up["transition"]["to"], "ok");
    assert!(up.get("root_causes").is_none(), "{up}");
    assert!(down["sequence"].as_u64() < up["sequence"].as_u64());
    for seen in receiver.seen() {
        assert_eq!(seen.headers[header::AUTHORIZATION], SECRET);
    }

    // The delivery as `/status/transitions` shows it.
    let log = status.transitions();
    let hook = &log.notifiers["hook"];
    assert_eq!((hook.delivered, hook.failed, hook.dropped), (2, 0, 0));
    assert_eq!(hook.failed_attempts, 1);
    assert_eq!(
        hook.last_error.as_deref(),
        Some(format!("{base} answered 503 Service Unavailable").as_str())
    );
    Ok(())
}
