//! Fuzzes `StatusLayer` through its public API: an `http::Request` built
//! from arbitrary bytes (method, path and query, version, headers including
//! `X-Api-Key`, `Authorization` and `Accept`) is sent with
//! `tower::ServiceExt::oneshot` to a layer with API keys, checks, a pushed
//! component, a section, a custom format, metrics and OpenAPI, on one
//! current-thread tokio runtime created once.
//!
//! Asserted for every input: no panic, an answer within 5 s, and either the
//! inner service's marked answer (exactly for paths outside the status
//! path) or a well-formed answer of the endpoint: a known status code,
//! `Cache-Control`, `405` with `Allow` for other methods, no body for
//! `HEAD`, JSON that parses for JSON content types, Prometheus lines for
//! metrics, a whole page under its policy for the status page, an SVG
//! with `Cache-Control` for badges, a first event for the event stream,
//! and no API key echoed.

#![no_main]

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};
use tower_status::auth::{ApiKeys, Identity, Permissions};
use tower_status::check::{CheckResult, HealthCheck, TrafficRule};
use tower_status::format::{FormatContext, Rendered};
use tower_status::{Report, Status, StatusLayer, StatusService};

/// Keys the layer accepts; no answer may contain any of them.
const KEY: &str = "fz-LEAK-full-key";
const STATUS_KEY: &str = "fz-LEAK-status-key";
const KEY_MARK: &str = "fz-LEAK";
/// A pushed component whose name needs escaping in every format.
const PUSHED: &str = "we\"ird\\ name\n%2F/x";

type Inner = fn(Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>>;
type Svc = StatusService<tower::util::ServiceFn<Inner>>;

/// The wrapped service: marks its answers.
fn inner(_req: Request<Full<Bytes>>) -> Ready<Result<Response<Full<Bytes>>, Infallible>> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"inner")));
    res.headers_mut()
        .insert("x-fuzz-inner", HeaderValue::from_static("1"));
    ready(Ok(res))
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn service() -> &'static Svc {
    static SVC: OnceLock<Svc> = OnceLock::new();
    SVC.get_or_init(|| {
        let layer = StatusLayer::new()
            .service_name("fuzz \"svc\"\n")
            .version("1.2.3")
            .environment("fuzz")
            .check(HealthCheck::new("db", || async { true }))
            .check(
                HealthCheck::new("cache", || async {
                    CheckResult::degraded("slow \"cache\"\n\\").with_observed(3, "ms")
                })
                .critical(false),
            )
            .traffic_rule(TrafficRule::error_rate_above(0.5, Status::Degraded))
            .section("jobs", || async { serde_json::json!({ "queued": 1 }) })
            .format(
                "custom",
                Some("application/vnd.fuzz+json"),
                |report: &Report, ctx: &FormatContext<'_>| {
                    Rendered::json(
                        ctx.status_code(),
                        &serde_json::json!({
                            "health": report.status,
                            "names": report.components.keys().collect::<Vec<_>>(),
                            // Not the values: a format that echoes the query
                            // echoes whatever a caller put there.
                            "query_pairs": ctx.query.len(),
                            "details": ctx.details(),
                        }),
                    )
                },
            )
            .api_keys(ApiKeys::new().key(KEY, Identity::new("ops")).key(
                STATUS_KEY,
                Identity::new("lb").permissions(Permissions::STATUS),
            ))
            .count_requests_per_key(Duration::from_secs(60))
            .serve_metrics(true)
            .serve_openapi(true)
            .watch_interval(Duration::from_millis(10))
            .watch_keepalive(Duration::from_millis(20))
            // A pushed component whose name needs escaping in every format.
            .check(HealthCheck::pushed(PUSHED).critical(false))
            .build();
        layer.set_component(PUSHED, CheckResult::down("pushed\r\n\"error\""));
        layer.layer(tower::service_fn(inner as Inner))
    })
}

fn pick<T: Clone>(u: &mut Unstructured<'_>, items: &[T]) -> ArbResult<T> {
    Ok(u.choose(items)?.clone())
}

/// Up to `max` raw bytes, as (possibly invalid) text.
fn raw(u: &mut Unstructured<'_>, max: usize) -> ArbResult<Vec<u8>> {
    let len = u.int_in_range(0..=max)?;
    Ok(u.bytes(len)?.to_vec())
}

const SEGMENTS: &[&str] = &[
    "status",
    "STATUS",
    "%73tatus",
    "status%2F",
    "live",
    "ready",
    "watch",
    "metrics",
    "openapi.json",
    "db",
    "cache",
    "traffic",
    "jobs",
    "we%22ird%5C%20name%0A%252F",
    "",
    ".",
    "..",
    "%2F",
    "%ff%fe",
    "%",
    "fz-LEAK-full-key",
];

const QUERIES: &[&str] = &[
    "verbose",
    "verbose=0",
    "verbose=false",
    "format=json",
    "format=ietf",
    "format=custom",
    "format=nope",
    "format=",
    "format=%00%ff",
    "exclude=db",
    "exclude=db,cache,,traffic",
    "exclude=",
    "api_key=fz-LEAK-full-key",
    "%",
    "&&==&",
];

const METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
    Method::PATCH,
];

const HEADER_NAMES: &[&str] = &[
    "x-api-key",
    "authorization",
    "accept",
    "x-other",
    "content-type",
];

const HEADER_VALUES: &[&str] = &[
    "fz-LEAK-full-key",
    "Bearer fz-LEAK-full-key",
    "bearer   fz-LEAK-status-key ",
    "fz-LEAK-status-key",
    "fz-LEAK-wrong",
    "Bearer fz-LEAK-wrong",
    "Bearer",
    "Bearer ",
    "Basic Zm9vOmJhcg==",
    "",
    "application/json",
    "application/health+json",
    "application/vnd.fuzz+json",
    "text/html, application/health+json;q=0.9, */*",
    "application/grpc",
];

/// Builds a request from `data`; `None` when the http crate cannot hold it.
fn build(data: &[u8]) -> ArbResult<Option<Request<Full<Bytes>>>> {
    let mut u = Unstructured::new(data);
    let method = if u.ratio(1, 8)? {
        match Method::from_bytes(&raw(&mut u, 12)?) {
            Ok(m) => m,
            Err(_) => return Ok(None),
        }
    } else {
        pick(&mut u, METHODS)?
    };
    // Path and query: mostly from known pieces, sometimes raw bytes.
    let mut uri: Vec<u8> = Vec::new();
    if u.ratio(1, 16)? {
        uri.extend_from_slice(b"http://127.0.0.1:3000");
    }
    if u.ratio(1, 6)? {
        uri.extend(raw(&mut u, 64)?);
    } else {
        let segments = u.int_in_range(0..=5)?;
        for _ in 0..segments {
            let segment = if u.ratio(1, 5)? {
                raw(&mut u, 16)?
            } else {
                pick(&mut u, SEGMENTS)?.as_bytes().to_vec()
            };
            uri.extend([b'/'].iter().chain(&segment));
        }
        if uri.is_empty() || uri.ends_with(b"3000") || u.ratio(1, 8)? {
            uri.push(b'/');
        }
        if u.ratio(1, 2)? {
            uri.push(b'?');
            let pairs = u.int_in_range(1..=3)?;
            for i in 0..pairs {
                if i > 0 {
                    uri.push(b'&');
                }
                if u.ratio(1, 4)? {
                    uri.extend(raw(&mut u, 24)?);
                } else {
                    uri.extend_from_slice(pick(&mut u, QUERIES)?.as_bytes());
                }
            }
        }
    }
    let version = pick(
        &mut u,
        &[
            Version::HTTP_09,
            Version::HTTP_10,
            Version::HTTP_11,
            Version::HTTP_2,
            Version::HTTP_3,
        ],
    )?;
    let mut builder = Request::builder()
        .method(method)
        .uri(uri.as_slice())
        .version(version);
    let headers = u.int_in_range(0..=4)?;
    for _ in 0..headers {
        let name = if u.ratio(1, 10)? {
            match HeaderName::from_bytes(&raw(&mut u, 12)?) {
                Ok(n) => n,
                Err(_) => continue,
            }
        } else {
            HeaderName::from_static(pick(&mut u, HEADER_NAMES)?)
        };
        let value = if u.ratio(1, 4)? {
            match HeaderValue::from_bytes(&raw(&mut u, 48)?) {
                Ok(v) => v,
                Err(_) => continue,
            }
        } else {
            HeaderValue::from_static(pick(&mut u, HEADER_VALUES)?)
        };
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::default()).ok())
}

/// The documented matching rule for the default path `/status`.
fn is_ours(path: &str) -> bool {
    path == "/status" || path.starts_with("/status/")
}

fn no_key(what: &str, text: &str) {
    assert!(!text.contains(KEY_MARK), "{what}: an API key was echoed");
}

/// One Prometheus sample line: `name{labels} value` or `name value`.
fn check_metric_line(line: &str) {
    assert!(
        line.starts_with("tower_status_"),
        "metric line without the prefix: {line:?}"
    );
    let value = line.rsplit(' ').next().unwrap_or("");
    assert!(
        value.parse::<f64>().is_ok() || matches!(value, "+Inf" | "-Inf" | "NaN"),
        "metric line without a value: {line:?}"
    );
}

async fn drive(req: Request<Full<Bytes>>) {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let what = format!("{method} {}", req.uri());
    let svc = service().clone();
    let res = tokio::time::timeout(Duration::from_secs(5), svc.oneshot(req))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 5 s"))
        .expect("infallible");
    let inner = res.headers().contains_key("x-fuzz-inner");
    assert_eq!(inner, !is_ours(&path), "{what}: went the wrong way");
    let (parts, mut body) = res.into_parts();
    for (name, value) in &parts.headers {
        no_key(&what, name.as_str());
        no_key(&what, &String::from_utf8_lossy(value.as_bytes()));
    }
    if inner {
        let bytes = body.collect().await.expect("inner body").to_bytes();
        assert_eq!(&bytes[..], b"inner", "{what}");
        return;
    }
    assert!(
        matches!(
            parts.status,
            StatusCode::OK
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::SERVICE_UNAVAILABLE
        ),
        "{what}: unexpected status {}",
        parts.status
    );
    assert!(
        parts.headers.contains_key("cache-control"),
        "{what}: no Cache-Control"
    );
    if method != Method::GET && method != Method::HEAD {
        assert_eq!(parts.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
        assert_eq!(parts.headers["allow"], "GET, HEAD", "{what}");
    }
    let ct = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{what}: no Content-Type"))
        .to_owned();
    if ct == "text/event-stream" {
        // Never ends: the first frame only (an event, or a keep-alive
        // comment after 20 ms).
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap_or_else(|_| panic!("{what}: no first event within 5 s"));
        if method == Method::HEAD {
            assert!(frame.is_none(), "{what}: HEAD with a body");
            return;
        }
        let data = frame
            .expect("the stream does not end")
            .expect("infallible")
            .into_data()
            .unwrap_or_default();
        let text = std::str::from_utf8(&data).expect("UTF-8 event");
        no_key(&what, text);
        if text != ": keep-alive\n\n" {
            let json = text
                .strip_prefix("event: status\ndata: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("{what}: malformed event {text:?}"));
            let change: serde_json::Value = serde_json::from_str(json).expect("event JSON");
            assert!(change["status"].is_string(), "{what}: {json}");
        }
        return;
    }
    let bytes = body.collect().await.expect("status body").to_bytes();
    if method == Method::HEAD {
        assert!(bytes.is_empty(), "{what}: HEAD with a body");
        let len = parts.headers.get("content-length");
        assert!(len.is_some(), "{what}: HEAD without Content-Length");
        return;
    }
    let text = std::str::from_utf8(&bytes).expect("UTF-8 body");
    no_key(&what, text);
    if ct.starts_with("application/json")
        || ct.starts_with("application/health+json")
        || ct.starts_with("application/vnd.fuzz+json")
    {
        let value: serde_json::Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{what}: malformed JSON ({e}): {text:?}"));
        assert!(value.is_object(), "{what}: {text}");
        if parts.status.is_client_error() || parts.status == StatusCode::SERVICE_UNAVAILABLE {
            // Errors are `{error, code}`; a 503 may also be a report.
            assert!(
                value.get("code").is_some() || value.get("status").is_some(),
                "{what}: {text}"
            );
        }
    } else if ct.starts_with("text/plain") {
        assert_eq!(parts.status, StatusCode::OK, "{what}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            check_metric_line(line);
        }
    } else if ct.starts_with("text/html") {
        // The status page: whole, and never without its policy.
        assert!(
            text.starts_with("<!DOCTYPE html>") && text.ends_with("</html>\n"),
            "{what}: a page cut short"
        );
        let csp = parts
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.starts_with("default-src 'none'"), "{what}: CSP {csp:?}");
    } else if ct.starts_with("image/svg+xml") {
        // A badge, with a lifetime for the proxies that cache it.
        assert_eq!(parts.status, StatusCode::OK, "{what}");
        assert!(
            text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
            "{what}: {text:?}"
        );
        assert!(parts.headers.contains_key("cache-control"), "{what}");
    } else {
        panic!("{what}: unexpected content type {ct:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some(req)) = build(data) else {
        return;
    };
    runtime().block_on(drive(req));
});
