//! [`WebhookNotifier`]: POST each notification as JSON to a plain
//! `http://` URL (feature `webhook`).

use std::error::Error;
use std::fmt;
use std::pin::pin;

use bytes::Bytes;
use futures_util::future::{select, Either};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::{describe, Notifier, NotifyFuture};
use crate::report::Notification;

/// The `User-Agent` sent unless [`WebhookNotifier::header`] replaces it.
const USER_AGENT: &str = concat!("tower-status/", env!("CARGO_PKG_VERSION"));

/// Headers the notifier sets itself (framing, the body's type, the host):
/// [`WebhookNotifier::header`] refuses them.
const RESERVED: [HeaderName; 8] = [
    header::HOST,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// POSTs each [`Notification`] as JSON to a plain `http://` URL
/// (HTTP/1.1, no TLS), with [`Delivery`](super::Delivery) retrying it; a
/// `2xx` answer means delivered (redirects are not followed).
///
/// The body is the notification's JSON (`Content-Type: application/json`):
/// `sequence` (from 1, in the order of the changes: order and deduplicate
/// by it, since a retry after a lost answer delivers again), `service`,
/// `version`, `environment`, `status`, `transition` (`from`, `to`, `at`,
/// `error`, `previous_lasted_ms`) when the overall status changed,
/// `root_causes` and the changed `components`.
///
/// ```
/// use std::time::Duration;
/// use http::{header, HeaderValue};
/// use tower_status::notify::{Delivery, WebhookNotifier};
/// use tower_status::StatusLayer;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let token = HeaderValue::from_str("Bearer s3cret")?; // from your secrets, say
/// let webhook = WebhookNotifier::new("http://alerts.internal:9000/hooks/status")?
///     .header(header::AUTHORIZATION, token);
/// // Header values never show in `Debug` output, errors or logs.
/// assert!(!format!("{webhook:?}").contains("s3cret"));
///
/// let status = StatusLayer::new()
///     .notify(Delivery::to("alerts", webhook).attempt_timeout(Duration::from_secs(2)))
///     .build();
/// # let _ = status;
/// # Ok(()) }
/// ```
///
/// Each attempt opens its own connection and closes it when done; when
/// the attempt is dropped (its timeout passed, the layer is gone) the
/// connection is closed with it: nothing is left running.
///
/// # HTTPS
///
/// `https://` URLs are refused: this crate carries no TLS stack. For one,
/// implement [`Notifier`] with the HTTPS client your application already
/// uses; the [module docs](super#over-https-with-your-own-client) show how.
#[derive(Clone)]
pub struct WebhookNotifier {
    /// `http://host[:port]`, naming the receiver in errors.
    origin: String,
    /// The path alone, for `Debug` (which shows the query as `?…`).
    path: String,
    /// `host:port`, to connect to.
    addr: String,
    /// The path and query the request is for.
    target: PathAndQuery,
    /// Sent with every request: `Host`, the defaults and those added.
    headers: HeaderMap,
}

impl WebhookNotifier {
    /// Posts to `url`, which must be `http://host[:port]/path` (a query is
    /// allowed; no user and password, no fragment).
    ///
    /// # Errors
    ///
    /// When `url` is not of that form; in particular `https://` URLs, as
    /// there is no TLS (implement [`Notifier`] with your own client, see
    /// the [module docs](super#over-https-with-your-own-client)).
    pub fn new(url: impl AsRef<str>) -> Result<Self, InvalidWebhookUrl> {
        let url = url.as_ref();
        let invalid = |reason: String| Err(InvalidWebhookUrl { reason });
        if url.contains('#') {
            return invalid("a fragment (`#...`) is never sent; leave it out".into());
        }
        let uri: Uri = match url.parse() {
            Ok(uri) => uri,
            // Not echoed: it may hold a secret.
            Err(e) => return invalid(format!("not a URL ({e}); expected http://host[:port]/path")),
        };
        match uri.scheme_str() {
            Some("http") => {}
            Some(s) if s.eq_ignore_ascii_case("https") => {
                return invalid(
                    "https:// is not supported: the webhook notifier speaks plain HTTP/1.1 \
                     without TLS; implement `Notifier` with an HTTPS client \
                     (see the tower_status::notify docs)"
                        .into(),
                )
            }
            Some(s) => return invalid(format!("the scheme must be http://, not {s}://")),
            None => return invalid("expected http://host[:port]/path".into()),
        }
        let Some(authority) = uri.authority().cloned() else {
            return invalid("expected http://host[:port]/path".into());
        };
        if authority.as_str().contains('@') {
            return invalid(
                "a user or password in the URL is not supported; send credentials with \
                 `WebhookNotifier::header(AUTHORIZATION, ..)`"
                    .into(),
            );
        }
        let host = authority.host();
        if host.is_empty() {
            return invalid("the URL has no host".into());
        }
        let port = match authority.port_u16() {
            Some(0) => return invalid("port 0 cannot be connected to".into()),
            Some(port) => port,
            None if authority.as_str().len() > host.len() => {
                return invalid(format!(
                    "invalid port {:?}",
                    &authority.as_str()[host.len() + 1..]
                ))
            }
            None => 80,
        };
        let target = match uri.path_and_query() {
            Some(p) if p.as_str().starts_with('/') => p.clone(),
            // `http://host?query`: the path is `/`, the query is kept.
            Some(p) => match format!("/{}", p.as_str()).parse() {
                Ok(p) => p,
                Err(e) => return invalid(format!("invalid path ({e})")),
            },
            None => PathAndQuery::from_static("/"),
        };
        let Ok(host_header) = HeaderValue::from_str(authority.as_str()) else {
            return invalid("the host is not a valid `Host` header".into());
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, host_header);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        Ok(Self {
            origin: format!("http://{authority}"),
            path: target.path().to_owned(),
            addr: format!("{host}:{port}"),
            target,
            headers,
        })
    }

    /// Sends `name: value` with every request (an `Authorization` header,
    /// say), replacing an earlier value of that name; `User-Agent`
    /// (default `tower-status/VERSION`) can be replaced too. The value is
    /// marked sensitive and never shown: `Debug` names the header only.
    ///
    /// # Panics
    ///
    /// For the headers the notifier sets itself: `Host`, `Content-Type`,
    /// `Content-Length`, `Transfer-Encoding`, `Connection`, `TE`,
    /// `Trailer` and `Upgrade` (the message names the header, never the
    /// value).
    #[must_use]
    pub fn header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        assert!(
            !RESERVED.contains(&name),
            "WebhookNotifier::header: `{name}` is set by the notifier itself"
        );
        value.set_sensitive(true);
        self.headers.insert(name, value);
        self
    }

    /// One POST: `Ok` on a 2xx answer, else why not (never a header's
    /// value: those are not in any message here).
    async fn post(&self, notification: &Notification) -> Result<(), String> {
        let body = serde_json::to_vec(notification)
            .map_err(|e| format!("the notification could not be serialized: {e}"))?;
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connect to {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("POST to {}: {}", self.origin, describe(&e)))?;
        let mut request = Request::post(self.target.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("POST to {}: {e}", self.origin))?;
        request.headers_mut().clone_from(&self.headers);
        // The connection is driven beside the request, within this future:
        // dropping the future (a timeout) closes it.
        let conn = async move {
            let _ = conn.await;
        };
        let response = async move {
            sender
                .send_request(request)
                .await
                .map_err(|e| format!("POST to {}: {}", self.origin, describe(&e)))
        };
        let response = match select(pin!(response), pin!(conn)).await {
            Either::Left((response, _)) => response,
            Either::Right(((), response)) => response.await,
        }?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_redirection() {
            Err(format!(
                "{} answered {status} (redirects are not followed)",
                self.origin
            ))
        } else {
            Err(format!("{} answered {status}", self.origin))
        }
    }
}

impl Notifier for WebhookNotifier {
    fn notify<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(async move { self.post(notification).await.map_err(Into::into) })
    }
}

impl fmt::Debug for WebhookNotifier {
    /// The URL (its query, which may hold a token, shown as `?…`) and the
    /// names of the headers sent, never their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let query = if self.target.query().is_some() {
            "?…"
        } else {
            ""
        };
        let url = format!("{}{}{query}", self.origin, self.path);
        let headers: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("WebhookNotifier")
            .field("url", &url)
            .field("headers", &headers)
            .finish()
    }
}

/// Why [`WebhookNotifier::new`] refused a URL. The message names what is
/// wrong; it never repeats a user, password or query of the URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidWebhookUrl {
    reason: String,
}

impl fmt::Display for InvalidWebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid webhook URL: {}", self.reason)
    }
}

impl Error for InvalidWebhookUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        WebhookNotifier::new(url).unwrap_err().to_string()
    }

    #[test]
    fn urls_of_the_form_http_host_port_path_are_taken() {
        let n = WebhookNotifier::new("http://127.0.0.1:9000/hooks/status").unwrap();
        assert_eq!(n.addr, "127.0.0.1:9000");
        assert_eq!(n.target.as_str(), "/hooks/status");
        let n = WebhookNotifier::new("HTTP://example.com").unwrap();
        assert_eq!(n.addr, "example.com:80");
        assert_eq!(n.target.as_str(), "/");
        assert_eq!(n.headers[header::HOST], "example.com");
        let n = WebhookNotifier::new("http://h:8080?token=abc").unwrap();
        assert_eq!(n.target.as_str(), "/?token=abc");
        assert_eq!(n.headers[header::HOST], "h:8080");
        let n = WebhookNotifier::new("http://[::1]:81/h?token=abc").unwrap();
        assert_eq!(n.addr, "[::1]:81");
        assert_eq!(n.target.as_str(), "/h?token=abc");
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        let https = reason("https://example.com/hook");
        assert!(https.contains("https:// is not supported"), "{https}");
        assert!(
            https.contains("TLS") && https.contains("Notifier"),
            "{https}"
        );
        assert!(reason("ftp://example.com/").contains("not ftp://"));
        assert!(reason("/hook").contains("expected http://host[:port]/path"));
        assert!(reason("example.com:80").contains("expected http://host[:port]/path"));
        assert!(reason("http://h/x#frag").contains("fragment"));
        assert!(reason("http://h:99999/").contains("invalid port \"99999\""));
        assert!(reason("http://h:0/").contains("port 0"));
        assert!(reason("http://:80/").contains("no host"));
        assert!(reason("http://h/ a").contains("not a URL"));
        let userinfo = reason("http://user:pa55@h/x");
        assert!(userinfo.contains("user or password"), "{userinfo}");
        assert!(!userinfo.contains("pa55"), "{userinfo}");
    }

    #[test]
    #[should_panic(expected = "`content-type` is set by the notifier itself")]
    fn framing_headers_are_refused() {
        let _ = WebhookNotifier::new("http://h/")
            .unwrap()
            .header(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }

    #[test]
    fn debug_shows_header_names_never_values_nor_the_query() {
        let n = WebhookNotifier::new("http://h:1/x?token=t0ken")
            .unwrap()
            .header(
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer s3cret"),
            );
        let debug = format!("{n:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("t0ken"),
            "{debug}"
        );
        assert!(debug.contains("authorization"), "{debug}");
        assert!(debug.contains("\"http://h:1/x?…\""), "{debug}");
    }
}
