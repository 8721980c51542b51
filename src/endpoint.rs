//! The status endpoint: which requests are ours, and the responses to them.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::future::StatusFuture;
use crate::layer::Shared;
use crate::report::{self, Status};

/// What a request on the status path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// The full report.
    Report,
}

/// Matches a request path against the status path: the path itself, with or
/// without one trailing slash. The query string is not part of `path`.
#[inline]
pub(crate) fn route(path: &str, base: &str) -> Option<Route> {
    let rest = path.strip_prefix(base)?;
    // `base` is normalized without a trailing slash, except the root path itself.
    if rest.is_empty() || (rest == "/" && base != "/") {
        Some(Route::Report)
    } else {
        None
    }
}

/// Answers a request on the status path.
pub(crate) fn respond(shared: Arc<Shared>, route: Route, parts: Parts) -> StatusFuture {
    shared.recorder.count_status_request();
    Box::pin(async move {
        let head = parts.method == Method::HEAD;
        if parts.method != Method::GET && !head {
            return method_not_allowed();
        }
        shared.recorder.ensure_ticker();
        let res = match route {
            Route::Report => {
                let report = report::collect(&shared);
                let code = http_status(report.status);
                json(code, &report)
            }
        };
        if head {
            without_body(res)
        } else {
            res
        }
    })
}

/// HTTP status for an overall status.
fn http_status(status: Status) -> StatusCode {
    match status {
        Status::Ok | Status::Degraded => StatusCode::OK,
        Status::Down | Status::Maintenance => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The body of every error the endpoint returns: `{"error": .., "code": ..}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json(
        status,
        &ErrorBody {
            error: message,
            code,
        },
    )
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "only GET and HEAD are allowed on the status endpoint",
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    res
}

/// A JSON response with the endpoint's standard headers.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            *res.status_mut() = status;
            let headers = res.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        // Only a value with non-string map keys fails to serialize; say so rather than panic.
        Err(_) => {
            let mut res = Response::new(Full::new(Bytes::from_static(
                br#"{"error":"the status report could not be serialized","code":"internal_error"}"#,
            )));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

/// The same response with its `Content-Length` kept and its body removed, for `HEAD`.
fn without_body(res: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let len = http_body::Body::size_hint(res.body()).exact().unwrap_or(0);
    let (mut parts, _) = res.into_parts();
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    Response::from_parts(parts, Full::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_path_with_or_without_slash() {
        assert_eq!(route("/status", "/status"), Some(Route::Report));
        assert_eq!(route("/status/", "/status"), Some(Route::Report));
        assert_eq!(route("/status//", "/status"), None);
        assert_eq!(route("/statusx", "/status"), None);
        assert_eq!(route("/", "/status"), None);
        assert_eq!(route("/", "/"), Some(Route::Report));
        assert_eq!(route("/x", "/"), None);
    }
}
