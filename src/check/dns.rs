//! [`DnsCheck`]: does a name resolve? (feature `dns-check`)
//!
//! ```
//! use std::time::Duration;
//! use tower_status::check::{DnsCheck, HealthCheck};
//! use tower_status::StatusLayer;
//!
//! let layer = StatusLayer::new().check(
//!     HealthCheck::new("dns", DnsCheck::new("db.internal").timeout(Duration::from_millis(500)))
//!         .critical(false),
//! );
//! # let _ = layer;
//! ```

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{BoxFuture, Check, CheckResult};

/// Resolves a name with the system's resolver (as `TcpStream::connect`
/// does: `/etc/hosts`, then DNS); an error, no address or no answer within
/// the timeout (default 1 s) is down. The observed value is the list of
/// addresses found (unit `addresses`); the details give the name and the
/// lookup time in milliseconds.
///
/// The name may carry a port (`db.internal:5432`), which only changes the
/// socket addresses asked for, not the answer: the port is `0` without one.
///
/// ```
/// use tower_status::check::DnsCheck;
///
/// assert_eq!(DnsCheck::new("localhost").name(), "localhost");
/// assert_eq!(DnsCheck::new("db.internal:5432").name(), "db.internal:5432");
/// ```
#[derive(Clone, Debug)]
pub struct DnsCheck {
    name: String,
    timeout: Duration,
}

impl DnsCheck {
    /// Resolves `name` (`host` or `host:port`) within 1 s.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            timeout: Duration::from_secs(1),
        }
    }

    /// How long the lookup may take.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero (every lookup would time out).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "DnsCheck::timeout for `{}` must be greater than zero",
            self.name
        );
        self.timeout = timeout;
        self
    }

    /// The name resolved.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `(host, port)` for the resolver: a bare IPv6 address or a name
    /// without a port gets port 0; `[v6]:port` loses its brackets.
    fn target(&self) -> Result<(&str, u16), String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err("DnsCheck: the name to resolve is empty".to_owned());
        }
        if name.parse::<IpAddr>().is_ok() {
            return Ok((name, 0));
        }
        match name.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("DnsCheck: `{name}` is not host or host:port"))?;
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                Ok((host, port))
            }
            Some(_) => Err(format!("DnsCheck: `{name}` is not host or host:port")),
            None => Ok((name, 0)),
        }
    }
}

impl Check for DnsCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            let target = match self.target() {
                Ok(t) => t,
                Err(e) => return CheckResult::down(e),
            };
            let started = Instant::now();
            let found = match tokio::time::timeout(self.timeout, tokio::net::lookup_host(target))
                .await
            {
                Ok(Ok(addrs)) => addrs,
                Ok(Err(e)) => return CheckResult::down(format!("resolving {}: {e}", self.name)),
                Err(_) => {
                    return CheckResult::down(format!(
                        "resolving {} timed out after {} ms",
                        self.name,
                        self.timeout.as_millis()
                    ))
                }
            };
            let took = started.elapsed().as_secs_f64() * 1000.0;
            let mut ips: Vec<IpAddr> = Vec::new();
            for addr in found {
                if !ips.contains(&addr.ip()) {
                    ips.push(addr.ip());
                }
            }
            let shown: Vec<Value> = ips.iter().map(|ip| Value::String(ip.to_string())).collect();
            let result = if ips.is_empty() {
                CheckResult::down(format!("{} resolved to no address", self.name))
            } else {
                CheckResult::ok()
            };
            result
                .with_details(json!({ "name": self.name, "lookup_ms": took }))
                .with_observed(shown, "addresses")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = |n: &str| DnsCheck::new(n).target().map(|(h, p)| (h.to_owned(), p));
        assert_eq!(t("localhost"), Ok(("localhost".into(), 0)));
        assert_eq!(t("db:5432"), Ok(("db".into(), 5432)));
        assert_eq!(t("::1"), Ok(("::1".into(), 0)));
        assert_eq!(t("[::1]:53"), Ok(("::1".into(), 53)));
        assert_eq!(
            t("db:x"),
            Err("DnsCheck: `db:x` is not host or host:port".into())
        );
        assert_eq!(
            t(":53").unwrap_err(),
            "DnsCheck: `:53` is not host or host:port"
        );
        assert_eq!(
            t("  ").unwrap_err(),
            "DnsCheck: the name to resolve is empty"
        );
    }

    #[tokio::test]
    async fn a_bad_name_is_down_without_a_lookup() {
        let result = DnsCheck::new("").check().await;
        assert_eq!(result.status, crate::Status::Down);
    }
}
