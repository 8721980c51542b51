//! [`TlsCheck`]: how long until an upstream's TLS certificate expires, and
//! is it valid? (feature `tls-check`)
//!
//! ```
//! use std::time::Duration;
//! use tower_status::check::{HealthCheck, TlsCheck};
//! use tower_status::StatusLayer;
//!
//! # fn main() -> Result<(), tower_status::check::InvalidTlsTarget> {
//! let layer = StatusLayer::new().check(
//!     HealthCheck::new(
//!         "payments-cert",
//!         TlsCheck::new("payments.example.com:443")?
//!             .warn_within(21)
//!             .timeout(Duration::from_millis(1500)),
//!     )
//!     .critical(false),
//! );
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! Each run connects, completes a TLS handshake (rustls, ring provider) and
//! reads the server's certificate. The chain and the name are verified
//! with rustls's webpki verifier against the webpki (Mozilla) roots plus
//! the [root certificates](TlsCheck::root_certificate) given, but the
//! handshake is let through whatever the verdict, so that an expired or
//! untrusted certificate still tells its dates.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde_json::{json, Value};
use tokio_rustls::TlsConnector;
use x509_cert::der::Decode;
use x509_cert::time::Time;
use x509_cert::Certificate;

use super::{BoxFuture, Check, CheckResult};

const DAY: f64 = 86_400.0;

/// Checks an upstream's TLS certificate: `down` when it has expired, is not
/// valid yet, or does not verify (unknown issuer, another name), when the
/// server cannot be reached or the handshake fails; `degraded` within
/// [`warn_within`](Self::warn_within) days of its expiry (default 14);
/// `ok` otherwise.
///
/// The observed value is the number of days left (negative once expired,
/// unit `days`); the details give the leaf's `subject`, `issuer`,
/// `not_before` and `not_after` (RFC 3339), the `server_name` sent (SNI),
/// whether the chain is `trusted`, and the handshake time in `handshake_ms`.
///
/// ```
/// use tower_status::check::TlsCheck;
///
/// let check = TlsCheck::new("10.0.0.7:8443").unwrap().server_name("api.internal");
/// assert_eq!(check.address(), "10.0.0.7:8443");
/// assert_eq!(check.sni(), "api.internal");
/// assert_eq!(
///     TlsCheck::new("api.internal").unwrap_err().to_string(),
///     "TlsCheck: `api.internal` is not host:port"
/// );
/// ```
#[derive(Clone)]
pub struct TlsCheck {
    addr: String,
    host: String,
    port: u16,
    server_name: String,
    warn_within: u32,
    timeout: Duration,
    roots: RootCertStore,
    extra_roots: usize,
    /// A bad server name, reported by every run.
    name_error: Option<String>,
    /// A root certificate that could not be read, reported by every run.
    root_error: Option<String>,
    /// Built on first run, once the roots are known.
    prepared: OnceLock<Result<Prepared, String>>,
}

#[derive(Clone)]
struct Prepared {
    provider: Arc<CryptoProvider>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl fmt::Debug for TlsCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCheck")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .field("warn_within_days", &self.warn_within)
            .field("timeout", &self.timeout)
            .field("extra_roots", &self.extra_roots)
            .field("name_error", &self.name_error)
            .field("root_error", &self.root_error)
            .finish_non_exhaustive()
    }
}

/// The target given to [`TlsCheck::new`] is not `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidTlsTarget(String);

impl fmt::Display for InvalidTlsTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsCheck: `{}` is not host:port", self.0)
    }
}

impl std::error::Error for InvalidTlsTarget {}

impl TlsCheck {
    /// Checks the server at `host:port` (`[v6]:port` for an IPv6 address),
    /// sending `host` as the server name, within 1 s, warning 14 days
    /// before expiry.
    ///
    /// # Errors
    ///
    /// When `addr` is not `host:port` with a port from 1 to 65535.
    pub fn new(addr: impl Into<String>) -> Result<Self, InvalidTlsTarget> {
        let addr = addr.into();
        let (host, port) = parse(&addr).ok_or_else(|| InvalidTlsTarget(addr.clone()))?;
        let mut check = Self {
            server_name: host.clone(),
            addr,
            host,
            port,
            warn_within: 14,
            timeout: Duration::from_secs(1),
            roots: RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            extra_roots: 0,
            name_error: None,
            root_error: None,
            prepared: OnceLock::new(),
        };
        check.name_error = check.name_error();
        Ok(check)
    }

    /// The name sent in the handshake (SNI) and verified against the
    /// certificate, when it is not the host of the address. An invalid
    /// name makes every run `down` with the reason.
    #[must_use]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self.name_error = self.name_error();
        self
    }

    /// `degraded` when the certificate expires within this many days
    /// (default 14).
    #[must_use]
    pub fn warn_within(mut self, days: u32) -> Self {
        self.warn_within = days;
        self
    }

    /// How long connecting and the handshake may take together.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "TlsCheck::timeout for `{}` must be greater than zero",
            self.addr
        );
        self.timeout = timeout;
        self
    }

    /// Also trusts this CA (a private one): DER, or PEM with one or more
    /// `CERTIFICATE` blocks. One that cannot be read makes every run
    /// `down` with the reason.
    #[must_use]
    pub fn root_certificate(mut self, cert: impl AsRef<[u8]>) -> Self {
        let bytes = cert.as_ref();
        let ders: Result<Vec<CertificateDer<'static>>, String> =
            if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
                CertificateDer::pem_slice_iter(bytes)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("reading a PEM root certificate: {e}"))
                    .and_then(|v| {
                        if v.is_empty() {
                            Err("no CERTIFICATE block in a PEM root certificate".to_owned())
                        } else {
                            Ok(v)
                        }
                    })
            } else {
                Ok(vec![CertificateDer::from(bytes.to_vec())])
            };
        let added = ders.and_then(|ders| {
            ders.into_iter().try_for_each(|der| {
                self.extra_roots += 1;
                self.roots
                    .add(der)
                    .map_err(|e| format!("root certificate {}: {e}", self.extra_roots))
            })
        });
        if let Err(e) = added {
            self.root_error
                .get_or_insert(format!("TlsCheck for {}: {e}", self.addr));
        }
        self.prepared = OnceLock::new();
        self
    }

    /// The address connected to, as given.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// The server name sent and verified.
    #[must_use]
    pub fn sni(&self) -> &str {
        &self.server_name
    }

    fn name_error(&self) -> Option<String> {
        ServerName::try_from(self.server_name.as_str())
            .err()
            .map(|_| {
                format!(
                    "TlsCheck for {}: `{}` is not a valid server name",
                    self.addr, self.server_name
                )
            })
    }

    fn prepared(&self) -> Result<Prepared, String> {
        self.prepared
            .get_or_init(|| {
                // The ring provider by name: another crate of the build
                // may enable aws-lc-rs too, and then no default is chosen.
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let verifier = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots.clone()),
                    Arc::clone(&provider),
                )
                .build()
                .map_err(|e| format!("TlsCheck for {}: {e}", self.addr))?;
                Ok(Prepared { provider, verifier })
            })
            .clone()
    }

    async fn run(&self) -> CheckResult {
        let bad_settings: Vec<&str> = [&self.name_error, &self.root_error]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !bad_settings.is_empty() {
            return CheckResult::down(bad_settings.join("; "));
        }
        let prepared = match self.prepared() {
            Ok(p) => p,
            Err(e) => return CheckResult::down(e),
        };
        let Ok(server_name) = ServerName::try_from(self.server_name.clone()) else {
            return CheckResult::down(format!("`{}` is not a valid server name", self.server_name));
        };
        let recorder = Arc::new(Recorder {
            inner: Arc::clone(&prepared.verifier),
            seen: Mutex::new(None),
        });
        let config = match ClientConfig::builder_with_provider(prepared.provider)
            .with_safe_default_protocol_versions()
        {
            Ok(b) => b
                .dangerous()
                .with_custom_certificate_verifier(
                    Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>
                )
                .with_no_client_auth(),
            Err(e) => return CheckResult::down(format!("TlsCheck for {}: {e}", self.addr)),
        };
        let connector = TlsConnector::from(Arc::new(config));
        let base = json!({ "address": self.addr, "server_name": self.server_name });

        let started = Instant::now();
        let handshake = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
            connector
                .connect(server_name.clone(), tcp)
                .await
                .map_err(|e| {
                    format!(
                        "TLS handshake with {} ({}) failed: {e}",
                        self.addr, self.server_name
                    )
                })
        };
        let stream = match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return CheckResult::down(e).with_details(base),
            Err(_) => {
                return CheckResult::down(format!(
                    "no TLS handshake with {} ({}) within {} ms",
                    self.addr,
                    self.server_name,
                    self.timeout.as_millis()
                ))
                .with_details(base)
            }
        };
        let handshake_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        // Nothing is sent: the handshake was all the check needed.
        drop(stream);
        let seen = recorder
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(seen) = seen else {
            return CheckResult::down(format!(
                "{} ({}) sent no certificate",
                self.addr, self.server_name
            ))
            .with_details(base);
        };
        self.judge(
            &prepared.verifier,
            &server_name,
            seen,
            handshake_ms,
            SystemTime::now(),
        )
    }

    /// The result for the chain the server sent, at `now`.
    fn judge(
        &self,
        verifier: &WebPkiServerVerifier,
        server_name: &ServerName<'_>,
        seen: Seen,
        handshake_ms: f64,
        now: SystemTime,
    ) -> CheckResult {
        let name = &self.server_name;
        let leaf = match Certificate::from_der(&seen.leaf) {
            Ok(c) => c,
            Err(e) => {
                return CheckResult::down(format!(
                    "the certificate {} ({name}) sent cannot be read: {e}",
                    self.addr
                ))
                .with_details(json!({
                    "address": self.addr,
                    "server_name": name,
                    "handshake_ms": handshake_ms,
                }))
            }
        };
        let tbs = &leaf.tbs_certificate;
        let not_before = unix(tbs.validity.not_before);
        let not_after = unix(tbs.validity.not_after);
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let left = not_after.as_secs_f64() - now_secs;

        // A certificate out of its dates fails the verifier for that alone:
        // verified again within them, the chain and the name get their own
        // verdict.
        let trust = match seen.verdict {
            // Only when the leaf itself is out of its dates: an expired
            // intermediate under a leaf within them stays a failure.
            Err(rustls::Error::InvalidCertificate(ref e))
                if is_about_time(e) && (left < 0.0 || now_secs < not_before.as_secs_f64()) =>
            {
                let middle = (not_before + not_after) / 2;
                verifier
                    .verify_server_cert(
                        &seen.leaf,
                        &seen.intermediates,
                        server_name,
                        &[],
                        UnixTime::since_unix_epoch(middle),
                    )
                    .map(|_| ())
            }
            other => other,
        };

        let mut problems = Vec::new();
        let mut down = false;
        if let Err(e) = &trust {
            down = true;
            problems.push(format!(
                "certificate for {name} is not trusted: {}",
                why(e, name)
            ));
        }
        let shown_after = shown(tbs.validity.not_after);
        let shown_before = shown(tbs.validity.not_before);
        if left < 0.0 {
            down = true;
            problems.push(format!(
                "certificate for {name} expired {} ago ({shown_after})",
                span(-left)
            ));
        } else if now_secs < not_before.as_secs_f64() {
            down = true;
            problems.push(format!(
                "certificate for {name} is not valid before {shown_before} (in {})",
                span(not_before.as_secs_f64() - now_secs)
            ));
        } else if left < f64::from(self.warn_within) * DAY {
            problems.push(format!(
                "certificate for {name} expires in {} ({shown_after})",
                span(left)
            ));
        }
        let result = match (problems.is_empty(), down) {
            (true, _) => CheckResult::ok(),
            (false, true) => CheckResult::down(problems.join("; ")),
            (false, false) => CheckResult::degraded(problems.join("; ")),
        };
        let days_left = (left / DAY * 100.0).round() / 100.0;
        result
            .with_details(json!({
                "address": self.addr,
                "server_name": name,
                "subject": tbs.subject.to_string(),
                "issuer": tbs.issuer.to_string(),
                "not_before": shown_before,
                "not_after": shown_after,
                "trusted": trust.is_ok(),
                "handshake_ms": handshake_ms,
            }))
            .with_observed(Value::from(days_left), "days")
    }
}

/// `host:port`, the host without the brackets of an IPv6 address.
fn parse(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if let Some(v6) = host.strip_prefix('[') {
        let v6 = v6.strip_suffix(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        return Some((v6.to_owned(), port));
    }
    let bad = |c: char| c.is_whitespace() || matches!(c, '/' | '@' | '[' | ']' | ':');
    if host.is_empty() || host.contains(bad) {
        return None;
    }
    Some((host.to_owned(), port))
}

fn unix(time: Time) -> Duration {
    time.to_unix_duration()
}

/// RFC 3339, as `humantime::format_rfc3339_seconds` writes it.
fn shown(time: Time) -> String {
    time.to_date_time().to_string()
}

fn is_about_time(e: &CertificateError) -> bool {
    matches!(
        e,
        CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. }
    )
}

/// The verifier's reason, in words.
fn why(e: &rustls::Error, name: &str) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "it is not issued by a trusted CA (unknown issuer)".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("it is not valid for the name {name}")
            }
            CertificateError::BadSignature => "its signature is invalid".to_owned(),
            CertificateError::Revoked => "it has been revoked".to_owned(),
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// `3 days`, `1 day`, `5 hours`, `12 minutes`.
fn span(secs: f64) -> String {
    let (n, unit) = if secs >= DAY {
        ((secs / DAY).round(), "day")
    } else if secs >= 3600.0 {
        ((secs / 3600.0).round(), "hour")
    } else {
        ((secs / 60.0).round(), "minute")
    };
    // `n` is a small whole number here.
    let n = n as u64;
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// What the server sent, and what the verifier said of it at the time.
struct Seen {
    leaf: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    verdict: Result<(), rustls::Error>,
}

/// Verifies with webpki, records the chain and the verdict, and lets the
/// handshake finish whatever it is: the check reports it, no data is sent.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Seen>>,
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seen")
            .field("verdict", &self.verdict)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ());
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen {
            leaf: end_entity.clone().into_owned(),
            intermediates: intermediates
                .iter()
                .map(|c| c.clone().into_owned())
                .collect(),
            verdict,
        });
        Ok(ServerCertVerified::assertion())
    }

    // The handshake signatures are checked for real: the server must hold
    // the key of the certificate it showed.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl Check for TlsCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse("example.com:443"), Some(("example.com".into(), 443)));
        assert_eq!(parse("10.0.0.1:8443"), Some(("10.0.0.1".into(), 8443)));
        assert_eq!(parse("[::1]:443"), Some(("::1".into(), 443)));
        for bad in [
            "", "host", ":443", "host:0", "host:x", "::1:443", "[zz]:1", "a b:1", "u@h:1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
            assert!(TlsCheck::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans() {
        assert_eq!(span(3.0 * DAY - 10.0), "3 days");
        assert_eq!(span(DAY + 1.0), "1 day");
        assert_eq!(span(5.0 * 3600.0), "5 hours");
        assert_eq!(span(60.0), "1 minute");
    }

    #[tokio::test]
    async fn bad_configuration_is_down_with_the_reason() {
        let bad_name = TlsCheck::new("127.0.0.1:1")
            .unwrap()
            .server_name("not a name");
        let r = bad_name.check().await;
        assert_eq!(r.status, crate::Status::Down);
        assert_eq!(
            r.error.as_deref(),
            Some("TlsCheck for 127.0.0.1:1: `not a name` is not a valid server name")
        );
        let bad_root = TlsCheck::new("127.0.0.1:1")
            .unwrap()
            .root_certificate(b"junk");
        let r = bad_root.check().await;
        assert_eq!(r.status, crate::Status::Down);
        assert!(r
            .error
            .unwrap()
            .starts_with("TlsCheck for 127.0.0.1:1: root certificate 1:"));
        let empty_pem = TlsCheck::new("127.0.0.1:1")
            .unwrap()
            .root_certificate("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        assert!(empty_pem.root_error.is_some(), "{empty_pem:?}");
        // A server name set afterwards does not hide the bad root.
        let both = empty_pem.server_name("not a name!");
        assert!(
            both.root_error.is_some() && both.name_error.is_some(),
            "{both:?}"
        );
    }
}
