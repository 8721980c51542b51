//! Hostile input, as property tests: whatever the path, method, query,
//! version or headers, the layer never panics, answers its own paths with a
//! well-formed JSON (or event/metrics) response, passes everything else
//! through, and keeps to the documented matching rule.

use std::convert::Infallible;
use std::time::Duration;
use tower_status::check::HealthCheck;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{service_fn, Layer, ServiceExt};
use tower_status::auth::{ApiKeys, Identity};
use tower_status::StatusLayer;

const KEY: &str = "sk-hostile-KEY-0123";

fn layer() -> StatusLayer {
    StatusLayer::new()
        .check(HealthCheck::new("db", || async { Err::<(), _>("db down") }))
        .api_keys(ApiKeys::new().key(KEY, Identity::new("ops")))
        .serve_metrics(true)
        .serve_openapi(true)
}

/// Path segments an attacker would try, plus arbitrary URI-safe text.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("status".to_owned()),
        Just("STATUS".to_owned()),
        Just("%73tatus".to_owned()),
        Just("status%2F".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("live".to_owned()),
        Just("ready".to_owned()),
        Just("watch".to_owned()),
        Just("metrics".to_owned()),
        Just("openapi.json".to_owned()),
        Just("db".to_owned()),
        "[a-zA-Z0-9._~%-]{0,12}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 0..5).prop_map(|s| format!("/{}", s.join("/")))
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::OPTIONS),
        Just(Method::DELETE),
        Just(Method::TRACE),
        Just(Method::CONNECT),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(KEY.as_bytes().to_vec()),
        Just(format!("Bearer {KEY}").into_bytes()),
        Just(b"Bearer".to_vec()),
        Just(b"Basic Zm9vOmJhcg==".to_vec()),
        Just(Vec::new()),
        // Any bytes a header value may hold (no CR, LF or NUL), including non-UTF-8.
        prop::collection::vec(prop::num::u8::ANY, 0..64).prop_map(|v| v
            .into_iter()
            .filter(|b| !matches!(b, 0 | b'\r' | b'\n' | 127))
            .collect()),
        Just(vec![b'k'; 16 * 1024]),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop_oneof![
                Just("x-api-key"),
                Just("authorization"),
                Just("accept"),
                Just("x-other")
            ],
            header_value(),
        ),
        0..4,
    )
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::HTTP_10),
        Just(Version::HTTP_11),
        Just(Version::HTTP_2)
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("verbose".to_owned()),
        Just("format=ietf".to_owned()),
        Just("format=%00%ff".to_owned()),
        Just("exclude=db&exclude=db&exclude=".to_owned()),
        "[a-zA-Z0-9=&%._-]{0,40}",
    ])
}

/// The documented rule: the status path itself, with or without one
/// trailing slash, and everything below it, is the endpoint's; nothing is
/// percent-decoded before matching.
fn is_ours(path: &str) -> bool {
    path == "/status" || path.starts_with("/status/")
}

async fn send(req: Request<Full<Bytes>>) -> (bool, Response<Bytes>) {
    let svc = layer().layer(service_fn(|_req: Request<Full<Bytes>>| async {
        let mut res = Response::new(Full::new(Bytes::from_static(b"inner")));
        res.headers_mut()
            .insert("x-inner", HeaderValue::from_static("1"));
        Ok::<_, Infallible>(res)
    }));
    let res = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(req))
        .await
        .expect("answered in time")
        .expect("infallible");
    let inner = res.headers().contains_key("x-inner");
    let (parts, body) = res.into_parts();
    // The event stream never ends: read its first frame only.
    let is_stream = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v == "text/event-stream");
    let bytes = if is_stream {
        let mut body = body;
        match tokio::time::timeout(Duration::from_secs(5), body.frame()).await {
            Ok(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
            _ => Bytes::new(),
        }
    } else {
        body.collect().await.expect("body").to_bytes()
    };
    (inner, Response::from_parts(parts, bytes))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_request_is_answered_well(
        path in path(),
        method in method(),
        version in version(),
        query in query(),
        headers in headers(),
        absolute in any::<bool>(),
    ) {
        let pq = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let uri = if absolute { format!("http://127.0.0.1:3000{pq}") } else { pq };
        let mut builder = Request::builder().method(method.clone()).uri(&uri).version(version);
        for (name, value) in &headers {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                builder = builder.header(HeaderName::from_static(name), v);
            }
        }
        let Ok(req) = builder.body(Full::default()) else {
            // Not a request the http crate can hold: nothing to send.
            return Ok(());
        };
        let real_path = req.uri().path().to_owned();
        let (inner, res) = runtime().block_on(send(req));

        prop_assert_eq!(inner, !is_ours(&real_path), "path {} went the wrong way", real_path);
        if !inner {
            let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            prop_assert!(res.headers().contains_key("cache-control"), "no cache-control on {}", uri);
            if method != Method::GET && method != Method::HEAD {
                prop_assert_eq!(res.status(), 405);
                prop_assert_eq!(res.headers().get("allow").unwrap(), "GET, HEAD");
            }
            if method == Method::HEAD {
                prop_assert!(res.body().is_empty(), "HEAD with a body on {}", uri);
            } else if ct.starts_with("application/json") || ct.starts_with("application/health+json") {
                let parsed: Result<serde_json::Value, _> = serde_json::from_slice(res.body());
                prop_assert!(parsed.is_ok(), "malformed JSON for {} {}: {:?}", method, uri, res.body());
            } else {
                prop_assert!(
                    ct.starts_with("text/event-stream") || ct.starts_with("text/plain"),
                    "unexpected content type {:?} for {} {}", ct, method, uri
                );
            }
            // The key is never echoed, whatever was sent.
            let body = String::from_utf8_lossy(res.body());
            prop_assert!(!body.contains(KEY), "key echoed for {}", uri);
            for v in res.headers().values() {
                prop_assert!(!String::from_utf8_lossy(v.as_bytes()).contains(KEY));
            }
        }
    }
}
