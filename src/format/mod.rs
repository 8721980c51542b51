//! Formats: how a [`Report`] becomes a response.
//!
//! A [`Format`] turns the typed report and the request's [`FormatContext`]
//! (caller, query, configured HTTP status) into status code, headers and
//! body. The default JSON ([`JsonFormat`]) is one; [`IetfFormat`] renders
//! `application/health+json`. Register more with
//! [`StatusLayer::format`](crate::StatusLayer::format) and replace the
//! default with [`StatusLayer::default_format`](crate::StatusLayer::default_format):
//! a contract of any shape takes a format and checks, never a handler.
//!
//! A request picks a format with `?format=NAME` (unknown names get 400), or
//! with an `Accept` header, negotiated as RFC 9110 says (quality values,
//! `q=0` for "not this", specific ranges over wildcards) among the default
//! (`application/json`) and the registered media types; a request that
//! accepts none of them still gets the default.
//!
//! [`ConsumerSignals`] add, per [`Probe`], what Consul (`429` for
//! `degraded`), Envoy (`x-envoy-degraded`) and Google Cloud's weighted load
//! balancing (`x-load-balancing-endpoint-weight`) read, whatever the format.
//!
//! ```
//! use http::StatusCode;
//! use serde_json::json;
//! use tower_status::format::{FormatContext, Rendered};
//! use tower_status::{Report, Status, StatusLayer};
//!
//! // The shape of a contract that says healthy/unhealthy.
//! let layer = StatusLayer::new().default_format(|report: &Report, ctx: &FormatContext<'_>| {
//!     let word = if report.status == Status::Down { "unhealthy" } else { "healthy" };
//!     Rendered::json(ctx.status_code(), &json!({ "status": word, "timestamp": report.timestamp }))
//! });
//! # let _ = layer;
//! ```

mod accept;
pub(crate) mod badge;
mod ietf;
pub(crate) mod json;
pub(crate) mod page;
mod prometheus;
mod signals;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};
use serde::Serialize;

use crate::auth::Caller;
use crate::report::Report;
use accept::Accept;

pub use ietf::{word as ietf_word, IetfFormat, MEDIA_TYPE as IETF_MEDIA_TYPE};
pub use json::JsonFormat;
pub use prometheus::{PrometheusFormat, MAX_COMPONENTS, MEDIA_TYPE as PROMETHEUS_MEDIA_TYPE};
pub(crate) use signals::SignalsByProbe;
pub use signals::{ConsumerSignals, Probe, ENVOY_DEGRADED_HEADER, MAX_WEIGHT, WEIGHT_HEADER};

/// A rendered response: status, headers and body.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Rendered {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers; `Cache-Control: no-store` is added when missing.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Rendered {
    /// A body with its content type.
    #[must_use]
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Self {
            status,
            headers,
            body: body.into(),
        }
    }

    /// `value` as `application/json`. A value that cannot be serialized
    /// (a map with non-string keys) gives a 500 JSON error instead.
    #[must_use]
    pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Self {
        Self::json_as(status, "application/json", value)
    }

    /// `value` as JSON with another media type (`application/health+json`).
    #[must_use]
    pub fn json_as<T: Serialize + ?Sized>(
        status: StatusCode,
        content_type: &'static str,
        value: &T,
    ) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Self::new(status, content_type, body),
            Err(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "application/json",
                Bytes::from_static(
                    br#"{"error":"the status report could not be serialized","code":"internal_error"}"#,
                ),
            ),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: http::header::HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }
}

/// What a format knows about the request besides the report.
#[derive(Debug)]
#[non_exhaustive]
pub struct FormatContext<'a> {
    /// Who is asking.
    pub caller: &'a Caller,
    /// The query string's pairs, decoded.
    pub query: &'a [(String, String)],
    /// The request's headers.
    pub headers: &'a HeaderMap,
    pub(crate) code: StatusCode,
    pub(crate) started: std::time::Instant,
}

impl FormatContext<'_> {
    /// The HTTP status configured for the report's overall status (`429`
    /// for `degraded` when the report's [`ConsumerSignals`] say so).
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        self.code
    }

    /// Whether the caller may see details. When not, the report handed to
    /// the format has already been stripped of them.
    #[must_use]
    pub fn details(&self) -> bool {
        self.caller.details
    }

    /// Time since the status request arrived (checks and sections
    /// included): the status call's own response time.
    #[must_use]
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The first value of a query parameter.
    #[must_use]
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Turns a report into a response.
///
/// Implemented by closures `Fn(&Report, &FormatContext<'_>) -> Rendered`.
pub trait Format: Send + Sync + 'static {
    /// Renders `report` for the request described by `ctx`.
    fn render(&self, report: &Report, ctx: &FormatContext<'_>) -> Rendered;
}

impl<F> Format for F
where
    F: Fn(&Report, &FormatContext<'_>) -> Rendered + Send + Sync + 'static,
{
    fn render(&self, report: &Report, ctx: &FormatContext<'_>) -> Rendered {
        self(report, ctx)
    }
}

/// A named format with the media type that selects it.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) media_type: Option<String>,
    pub(crate) format: Arc<dyn Format>,
    /// One of the crate's own (`json`, `ietf`), not the application's.
    pub(crate) builtin: bool,
}

/// Name of the default format.
pub const DEFAULT: &str = "json";

/// The formats of a layer.
#[derive(Clone)]
pub(crate) struct Formats {
    pub(crate) by_name: BTreeMap<String, Registered>,
    pub(crate) default: Arc<dyn Format>,
    /// The built-in JSON, registered as `json` and as the default until
    /// replaced: the endpoint writes it without building a typed report.
    builtin_json: Arc<dyn Format>,
}

impl std::fmt::Debug for Formats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Formats")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Formats {
    /// Whether `media_type` is one `Accept` can select (`type/subtype`,
    /// parameters allowed).
    pub(crate) fn is_media_type(media_type: &str) -> bool {
        accept::offer(media_type).is_some()
    }

    /// Leaves out the crate's own named formats, whenever they were added.
    pub(crate) fn remove_builtins(&mut self) {
        self.by_name.retain(|_, r| !r.builtin);
    }
}

impl Default for Formats {
    fn default() -> Self {
        let json: Arc<dyn Format> = Arc::new(JsonFormat);
        let mut by_name = BTreeMap::new();
        by_name.insert(
            DEFAULT.to_owned(),
            Registered {
                media_type: Some("application/json".to_owned()),
                format: Arc::clone(&json),
                builtin: true,
            },
        );
        by_name.insert(
            "ietf".to_owned(),
            Registered {
                media_type: Some(ietf::MEDIA_TYPE.to_owned()),
                format: Arc::new(IetfFormat),
                builtin: true,
            },
        );
        Self {
            by_name,
            default: Arc::clone(&json),
            builtin_json: json,
        }
    }
}

/// Why no format could be chosen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnknownFormat;

impl Formats {
    /// Whether `format` (from [`choose`](Self::choose)) is the built-in
    /// JSON, whose output the endpoint may write itself.
    pub(crate) fn is_builtin_json(&self, format: &Arc<dyn Format>) -> bool {
        Arc::ptr_eq(format, &self.builtin_json)
    }

    /// `?format=` wins; then the format whose media type the `Accept`
    /// header prefers (RFC 9110 §12.5.1, see [`accept`]); else the default.
    ///
    /// On offer to `Accept` are the default, as `application/json`, and
    /// every registered format with a media type (one that is
    /// `application/json` too is left to the default). Each takes the weight
    /// of the most specific range that matches it, `q=0` keeping it out;
    /// the highest weight wins, then the more specific range, then the
    /// range listed first, then the default, then the first by name. So
    /// `*/*` and `application/*` select the default whenever it is
    /// acceptable. When nothing on offer is acceptable the default is
    /// served all the same (never `406`).
    pub(crate) fn choose(
        &self,
        query: &[(String, String)],
        headers: &HeaderMap,
    ) -> Result<Arc<dyn Format>, UnknownFormat> {
        if let Some((_, name)) = query.iter().find(|(k, _)| k == "format") {
            // By name: `json` is the built-in JSON even when the default is replaced.
            return self
                .by_name
                .get(name.as_str())
                .map(|r| Arc::clone(&r.format))
                .ok_or(UnknownFormat);
        }
        let accept = Accept::from_headers(headers);
        if accept.is_empty() {
            return Ok(Arc::clone(&self.default));
        }
        let mut best = accept
            .preference(&accept::JSON)
            .map(|preference| (preference, &self.default));
        for registered in self.by_name.values() {
            let Some(offer) = registered.media_type.as_deref().and_then(accept::offer) else {
                continue;
            };
            if accept::is_json(&offer) {
                continue;
            }
            if let Some(preference) = accept.preference(&offer) {
                // Strictly better only: ties stay with the default, then the first by name.
                if best.is_none_or(|(b, _)| preference > b) {
                    best = Some((preference, &registered.format));
                }
            }
        }
        Ok(Arc::clone(best.map_or(&self.default, |(_, format)| format)))
    }

    /// Whether the request asks for the status page: no `format` named,
    /// and its `Accept` prefers `text/html` strictly over JSON and over
    /// every registered format (a browser's `text/html,...,*/*;q=0.8`
    /// does; `*/*`, no `Accept` or an API client's does not). A format
    /// registered for `text/html` itself keeps the choice.
    pub(crate) fn prefers_page(&self, query: &[(String, String)], headers: &HeaderMap) -> bool {
        if query.iter().any(|(k, _)| k == "format") {
            return false;
        }
        let accept = Accept::from_headers(headers);
        let Some(html) = accept::offer("text/html") else {
            return false;
        };
        let Some(page) = accept.preference(&html) else {
            return false;
        };
        let offers = self
            .by_name
            .values()
            .filter_map(|r| r.media_type.as_deref().and_then(accept::offer));
        let mut best_format = accept.preference(&accept::JSON);
        for offer in offers {
            if offer.ty == "text" && offer.subty == "html" {
                return false;
            }
            best_format = best_format.max(accept.preference(&offer));
        }
        best_format.is_none_or(|best| page > best)
    }
}

/// An error the status endpoint answers with (400, 401, 403, 404, 405,
/// 503 from a failed key lookup), for [`ErrorFormat`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatusError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`unauthorized`, `method_not_allowed`, ...).
    pub code: String,
    /// Human-readable message.
    pub message: String,
}

/// Shapes the endpoint's error bodies, which are `{"error", "code"}` by
/// default. The endpoint keeps its own `Allow`, `WWW-Authenticate` and
/// `Retry-After` headers.
///
/// Implemented by closures `Fn(&StatusError) -> Rendered`.
///
/// ```
/// use serde_json::json;
/// use tower_status::format::{Rendered, StatusError};
/// use tower_status::StatusLayer;
///
/// let layer = StatusLayer::new().error_format(|err: &StatusError| {
///     Rendered::json(err.status, &json!({ "error": err.message, "service": "all-services" }))
/// });
/// # let _ = layer;
/// ```
pub trait ErrorFormat: Send + Sync + 'static {
    /// Renders `error`.
    fn render(&self, error: &StatusError) -> Rendered;
}

impl<F> ErrorFormat for F
where
    F: Fn(&StatusError) -> Rendered + Send + Sync + 'static,
{
    fn render(&self, error: &StatusError) -> Rendered {
        self(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in formats, plus `csv` (`text/csv`) and `prometheus`.
    fn formats() -> Formats {
        let mut formats = Formats::default();
        let csv = |_: &Report, _: &FormatContext<'_>| Rendered::new(StatusCode::OK, "text/csv", "");
        for (name, media_type, format) in [
            ("csv", "text/csv", Arc::new(csv) as Arc<dyn Format>),
            (
                "prometheus",
                PROMETHEUS_MEDIA_TYPE,
                Arc::new(PrometheusFormat),
            ),
        ] {
            let media_type = Some(media_type.to_owned());
            formats.by_name.insert(
                name.to_owned(),
                Registered {
                    media_type,
                    format,
                    builtin: false,
                },
            );
        }
        formats
    }

    /// Name of the format chosen for these `Accept` fields and query.
    fn chosen(formats: &Formats, query: &[(&str, &str)], accept: &[&str]) -> String {
        let query: Vec<_> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut headers = HeaderMap::new();
        for field in accept {
            headers.append(http::header::ACCEPT, HeaderValue::from_str(field).unwrap());
        }
        let format = formats.choose(&query, &headers).unwrap();
        if Arc::ptr_eq(&format, &formats.default) {
            return "default".to_owned();
        }
        let (name, _) = formats
            .by_name
            .iter()
            .find(|(_, r)| Arc::ptr_eq(&r.format, &format))
            .expect("a registered format");
        name.clone()
    }

    fn by_accept(accept: &str) -> String {
        chosen(&formats(), &[], &[accept])
    }

    #[test]
    fn not_acceptable_is_never_chosen() {
        assert_eq!(
            by_accept("application/health+json;q=0, application/json"),
            "default"
        );
        assert_eq!(
            by_accept("application/json, application/health+json;q=0"),
            "default"
        );
        // Anything but JSON: the first other format by name.
        assert_eq!(by_accept("application/json;q=0, */*"), "csv");
        assert_eq!(by_accept("application/json;q=0, application/*"), "ietf");
        assert_eq!(by_accept("*/*;q=0, text/csv;q=0.1"), "csv");
    }

    #[test]
    fn the_highest_weight_wins() {
        assert_eq!(
            by_accept("application/json;q=0.9, application/health+json"),
            "ietf"
        );
        assert_eq!(
            by_accept("application/health+json, application/json;q=0.9"),
            "ietf"
        );
        assert_eq!(
            by_accept("text/html, text/csv;q=0.5, application/json"),
            "default"
        );
        assert_eq!(by_accept("text/csv;q=0.5, application/json;q=0.4"), "csv");
        assert_eq!(by_accept("text/csv;q=0.001, */*;q=0"), "csv");
    }

    #[test]
    fn wildcards_mean_the_default() {
        for accept in [
            "*/*",
            "application/*",
            "*/*, application/*",
            "text/*;q=0.5, */*",
        ] {
            assert_eq!(by_accept(accept), "default", "{accept}");
        }
        // A replaced default too.
        let mut formats = formats();
        formats.default = Arc::new(IetfFormat);
        assert_eq!(chosen(&formats, &[], &["*/*"]), "default");
        // But a text type is no JSON.
        assert_eq!(by_accept("text/*"), "csv");
    }

    #[test]
    fn more_specific_ranges_win_at_equal_weight() {
        assert_eq!(by_accept("application/*, application/health+json"), "ietf");
        assert_eq!(
            by_accept("*/*;q=0.5, text/*;q=0.5, application/json;q=0.5"),
            "default"
        );
        assert_eq!(by_accept("*/*, text/*"), "csv");
        // The most specific range decides a type's weight, wherever it is listed.
        assert_eq!(
            by_accept("text/*;q=0.8, text/csv;q=0, application/json;q=0.5"),
            "prometheus"
        );
        // A range's own parameters make it more specific.
        assert_eq!(
            by_accept("text/csv, text/plain;version=0.0.4, application/json"),
            "prometheus"
        );
        assert_eq!(
            by_accept("text/plain;version=1.0.0, application/json;q=0.1"),
            "default"
        );
    }

    #[test]
    fn equal_ranges_go_by_order() {
        assert_eq!(
            by_accept("application/health+json, application/json"),
            "ietf"
        );
        assert_eq!(
            by_accept("application/json, application/health+json"),
            "default"
        );
        assert_eq!(
            by_accept("text/csv;q=0.5, application/health+json;q=0.5"),
            "csv"
        );
    }

    #[test]
    fn malformed_entries_are_ignored() {
        assert_eq!(
            by_accept("application/health+json;q=abc, nonsense, */html, application/json;q=0.5"),
            "default"
        );
        assert_eq!(by_accept("garbage;;, text/csv"), "csv");
        for accept in ["", ",,,", "nonsense", "application/json;q=2"] {
            assert_eq!(by_accept(accept), "default", "{accept}");
        }
    }

    #[test]
    fn fields_combine_and_the_query_wins() {
        let formats = formats();
        let two = ["application/json;q=0.5", "application/health+json"];
        assert_eq!(chosen(&formats, &[], &two), "ietf");
        assert_eq!(chosen(&formats, &[("format", "csv")], &two), "csv");
        // The built-in JSON, here the default.
        assert_eq!(chosen(&formats, &[("format", "json")], &two), "default");
        assert_eq!(chosen(&formats, &[], &[]), "default");
        // Unregistered types get the default.
        assert_eq!(by_accept("image/png, application/xml"), "default");
        assert!(formats
            .choose(&[("format".into(), "nope".into())], &HeaderMap::new())
            .is_err());
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;
    use http::header::ACCEPT;

    fn prefers(formats: &Formats, accept: Option<&str>, query: &[(&str, &str)]) -> bool {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(ACCEPT, a.parse().unwrap());
        }
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        formats.prefers_page(&query, &headers)
    }

    #[test]
    fn browsers_get_the_page_and_api_clients_a_format() {
        let f = Formats::default();
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(prefers(&f, Some(browser), &[]));
        assert!(prefers(&f, Some("text/html"), &[]));
        assert!(!prefers(&f, Some(browser), &[("format", "json")]));
        assert!(!prefers(&f, None, &[]));
        assert!(!prefers(&f, Some("*/*"), &[]));
        assert!(!prefers(&f, Some("application/json"), &[]));
        assert!(!prefers(&f, Some("application/json, text/html;q=0.5"), &[]));
        assert!(!prefers(&f, Some("text/html;q=0, */*"), &[]));
        // The IETF format is as acceptable as the page: it keeps the request.
        assert!(!prefers(&f, Some("application/json;q=0, */*"), &[]));
        assert!(!prefers(
            &f,
            Some("text/html;q=0.5, application/health+json"),
            &[]
        ));
    }
}
