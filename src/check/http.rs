//! [`HttpCheck`]: GET an upstream's status URL (feature `http-check`).

use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use super::{redact, BoxFuture, Check, CheckResult};
use crate::report::Status;

/// Largest upstream body read, in bytes.
const MAX_BODY: usize = 64 * 1024;

/// GETs a plain `http://` URL (HTTP/1.1) and checks the response status;
/// when the body is JSON with a `status` field (as another service's
/// `/status` has), that status counts too, so a gateway can aggregate the
/// services behind it. The observed value is the round trip in milliseconds;
/// the details give the URL, the HTTP status and, when the upstream says
/// them, its `status` and `version`.
///
/// A password or token in the URL (`http://user:secret@host/`,
/// `?token=...`) never shows: errors, details and `Debug` carry the URL as
/// [`redact`](super::redact) leaves it.
///
/// Upstream words map to: `ok`, `pass`, `healthy`, `up`, `operational` ->
/// ok; `degraded`, `warn` -> degraded; anything else -> down.
///
/// ```
/// use std::time::Duration;
/// use tower_status::check::HttpCheck;
///
/// let users = HttpCheck::new("http://127.0.0.1:8081/status")
///     .expect_status(200..=299)
///     .timeout(Duration::from_millis(800));
/// # let _ = users;
/// ```
#[derive(Clone)]
pub struct HttpCheck {
    url: String,
    /// `url` without its secrets: the only form errors and details show.
    shown_url: String,
    expect: RangeInclusive<u16>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCheck")
            .field("url", &self.shown_url)
            .field("expect", &self.expect)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpCheck {
    /// Checks `url`, expecting a 2xx within 1 s.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            shown_url: redact(&url),
            url,
            expect: 200..=299,
            timeout: Duration::from_secs(1),
        }
    }

    /// Response statuses counted as healthy.
    #[must_use]
    pub fn expect_status(mut self, range: RangeInclusive<u16>) -> Self {
        self.expect = range;
        self
    }

    /// How long connect, request and body may take together.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero (every request would time out).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "HttpCheck::timeout for `{}` must be greater than zero",
            self.shown_url
        );
        self.timeout = timeout;
        self
    }

    async fn get(&self) -> Result<(u16, Bytes), String> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| format!("invalid URL {:?}: {e}", self.shown_url))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "only http:// URLs are supported, not {:?}",
                self.shown_url
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {:?} has no host", self.shown_url))?
            .clone();
        let addr = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake with {addr}: {e}"))?;
        // The connection is driven beside the request and ends with it.
        let conn = async move {
            let _ = conn.await;
        };
        let request = async move {
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            // `user:password@` goes in `Authorization`, never in `Host`.
            let (userinfo, host) = match authority.as_str().rsplit_once('@') {
                Some((userinfo, host)) => (Some(userinfo), host),
                None => (None, authority.as_str()),
            };
            let mut req = Request::get(path)
                .header(header::HOST, host)
                .header(header::ACCEPT, "application/json");
            if let Some(userinfo) = userinfo {
                req = req.header(header::AUTHORIZATION, basic_auth(userinfo));
            }
            let req = req
                .body(Empty::<Bytes>::new())
                .map_err(|_| format!("GET {}: invalid request", self.shown_url))?;
            let res = sender
                .send_request(req)
                .await
                .map_err(|e| format!("GET {}: {e}", self.shown_url))?;
            let status = res.status().as_u16();
            let body = Limited::new(res.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| format!("reading body of {}: {e}", self.shown_url))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::pin!(request);
        tokio::select! {
            r = &mut request => r,
            () = conn => request.await,
        }
    }
}

/// `Basic` credentials from a URL's percent-encoded `user:password`.
fn basic_auth(userinfo: &str) -> String {
    use base64::Engine as _;
    let decoded = percent_encoding::percent_decode_str(userinfo).collect::<Vec<u8>>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(decoded)
    )
}

fn upstream_status(word: &str) -> Status {
    match word.to_ascii_lowercase().as_str() {
        "ok" | "pass" | "healthy" | "up" | "operational" => Status::Ok,
        "degraded" | "warn" => Status::Degraded,
        _ => Status::Down,
    }
}

impl Check for HttpCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            let started = Instant::now();
            let (code, body) = match tokio::time::timeout(self.timeout, self.get()).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return CheckResult::down(e),
                Err(_) => {
                    return CheckResult::down(format!(
                        "GET {} timed out after {} ms",
                        self.shown_url,
                        self.timeout.as_millis()
                    ))
                }
            };
            // Milliseconds to the microsecond, as the other checks give them.
            let took = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
            let said = serde_json::from_slice::<Value>(&body).ok();
            let said_str = |key: &str| {
                said.as_ref()
                    .and_then(|v| v.get(key).and_then(Value::as_str).map(str::to_owned))
            };
            let upstream = said_str("status");
            let mut details = json!({ "url": self.shown_url, "http_status": code });
            if let Some(version) = said_str("version") {
                details["upstream_version"] = Value::String(version);
            }
            let mut result = if self.expect.contains(&code) {
                CheckResult::ok()
            } else {
                CheckResult::down(format!("GET {} returned {code}", self.shown_url))
            };
            if let Some(word) = upstream {
                let status = upstream_status(&word);
                if status > result.status {
                    result = CheckResult::new(status, Some(format!("upstream reports {word:?}")));
                }
                details["upstream_status"] = Value::String(word);
            }
            result.with_details(details).with_observed(took, "ms")
        })
    }
}
