//! Responses of the status endpoint: JSON bodies with its standard headers,
//! errors (the one fallback error body, the `Allow` and Bearer challenge
//! strings, every error code), `Retry-After`, and `HEAD`.

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use super::routes::ALLOWED_METHODS;
use crate::auth::Refusal;
use crate::format::{Rendered, StatusError};
use crate::report::Notice;
use crate::state::Shared;

/// The challenge sent with a `401` when Bearer keys are accepted.
pub(crate) const BEARER_CHALLENGE: &str = "Bearer realm=\"status\"";

/// The `code` of each error the endpoint answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    UnknownFormat,
    Unauthorized,
    Forbidden,
    AuthUnavailable,
    NotFound,
    MethodNotAllowed,
    /// In the fixed body of a value that cannot be serialized
    /// (`Rendered::json`); listed for the OpenAPI document.
    #[allow(dead_code)]
    InternalError,
}

impl ErrorCode {
    /// Every code, for the OpenAPI document.
    pub(crate) const ALL: [ErrorCode; 7] = [
        ErrorCode::UnknownFormat,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::AuthUnavailable,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InternalError,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownFormat => "unknown_format",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::AuthUnavailable => "auth_unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InternalError => "internal_error",
        }
    }
}

/// The body of every error the endpoint returns: `{"error": .., "code": ..}`.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct ErrorBody<'a> {
    pub(crate) error: &'a str,
    pub(crate) code: &'a str,
}

/// A JSON response with the endpoint's standard headers (the format
/// module's, so a value that cannot be serialized gets its one 500 body).
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    rendered(Rendered::json(status, value))
}

/// A format's output as a response, with `Cache-Control: no-store` always.
pub(crate) fn rendered(r: Rendered) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(r.body));
    *res.status_mut() = r.status;
    *res.headers_mut() = r.headers;
    res.headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Marks `res` as chosen by the request's `Accept` (the report's format,
/// or the page), so a cache keeps one answer per `Accept`.
pub(crate) fn vary_accept(res: &mut Response<Full<Bytes>>) {
    res.headers_mut()
        .append(VARY, HeaderValue::from_static("accept"));
}

/// An error response; an error format configured on the layer reshapes it
/// in [`finish`].
pub(crate) fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response<Full<Bytes>> {
    let mut res = json(
        status,
        &ErrorBody {
            error: message,
            code: code.as_str(),
        },
    );
    res.extensions_mut().insert(StatusError {
        status,
        code: code.as_str().to_owned(),
        message: message.to_owned(),
    });
    res
}

pub(crate) fn not_found(message: &str) -> Response<Full<Bytes>> {
    error(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
}

pub(crate) fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut res = error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "only GET and HEAD are allowed on the status endpoint",
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    res
}

/// The answer to a refused request.
pub(crate) fn refused(refusal: Refusal, bearer: bool) -> Response<Full<Bytes>> {
    match refusal {
        Refusal::Unauthenticated(why) => {
            let mut res = error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, why);
            if bearer {
                res.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
            }
            res
        }
        Refusal::Forbidden(why) => error(StatusCode::FORBIDDEN, ErrorCode::Forbidden, why),
        Refusal::Unavailable(why) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::AuthUnavailable,
            why,
        ),
    }
}

/// `Retry-After` in whole seconds until the end of maintenance, when known.
pub(crate) fn retry_after(res: &mut Response<Full<Bytes>>, notice: Option<&Notice>) {
    let Some(until) = notice.and_then(|n| n.estimated_completion) else {
        return;
    };
    if res.status() != StatusCode::SERVICE_UNAVAILABLE {
        return;
    }
    let secs = until
        .0
        .duration_since(SystemTime::now())
        .map_or(1, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .max(1);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
}

/// The last step of every answer: an error shaped by the layer's error
/// format, if it has one, and the body removed for `HEAD`.
pub(crate) fn finish(
    shared: &Shared,
    res: Response<Full<Bytes>>,
    head: bool,
) -> Response<Full<Bytes>> {
    let res = match (
        &shared.config.error_format,
        res.extensions().get::<StatusError>(),
    ) {
        (Some(shape), Some(err)) => reshape(res.headers(), shape.0.render(err)),
        _ => res,
    };
    if head {
        without_body(res)
    } else {
        res
    }
}

/// An error rendered by the user's error format, keeping the endpoint's
/// own headers (`Allow`, `WWW-Authenticate`, `Retry-After`).
fn reshape(original: &http::HeaderMap, r: Rendered) -> Response<Full<Bytes>> {
    let mut res = rendered(r);
    for name in [ALLOW, WWW_AUTHENTICATE, RETRY_AFTER] {
        if let Some(v) = original.get(&name) {
            res.headers_mut().entry(name).or_insert(v.clone());
        }
    }
    res
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
    fn an_unserializable_value_gets_the_internal_error_code() {
        let map: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        let res = json(StatusCode::OK, &map);
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = http_body::Body::size_hint(res.body()).exact();
        assert!(body.is_some());
        let bytes = futures_executor::block_on(http_body_util::BodyExt::collect(res.into_body()))
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], ErrorCode::InternalError.as_str());
    }
}
