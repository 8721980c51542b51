//! [`TcpCheck`]: can a TCP connection to a dependency be opened?

use std::time::{Duration, Instant};

use super::{BoxFuture, Check, CheckResult};

/// Opens a TCP connection to `host:port`; refused, unresolvable or too slow
/// is unhealthy with the operating system's error text. The connection is
/// closed at once. The observed value is the connect time in milliseconds.
///
/// ```
/// use std::time::Duration;
/// use tower_status::check::TcpCheck;
///
/// let db = TcpCheck::new("127.0.0.1:5432").timeout(Duration::from_millis(500));
/// assert_eq!(db.addr(), "127.0.0.1:5432");
/// ```
#[derive(Clone, Debug)]
pub struct TcpCheck {
    addr: String,
    connect_timeout: Duration,
}

impl TcpCheck {
    /// Checks `addr` (`host:port`) with a 1 s connect timeout.
    #[must_use]
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// Checks `addr` after making sure it is `host:port` (IPv6 hosts in
    /// brackets), so a bad address from configuration is an error at start,
    /// not a failing check.
    ///
    /// ```
    /// use tower_status::check::TcpCheck;
    ///
    /// assert!(TcpCheck::parse("db.internal:5432").is_ok());
    /// assert!(TcpCheck::parse("[::1]:6379").is_ok());
    /// let err = TcpCheck::parse("localhost").unwrap_err();
    /// assert_eq!(err.to_string(), "`localhost` is not host:port");
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidAddr`] when `addr` is not `host:port`: a missing or zero port, an
    /// empty host, or a host that is neither a name nor a bracketed IPv6
    /// address.
    pub fn parse(addr: &str) -> Result<Self, InvalidAddr> {
        let invalid = || InvalidAddr(addr.to_owned());
        let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
        let host_ok = match host.strip_prefix('[') {
            Some(v6) => v6
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
            None => {
                !host.is_empty()
                    && !host.contains(':')
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            }
        };
        match port.parse::<u16>() {
            Ok(p) if p > 0 && host_ok => Ok(Self::new(addr)),
            _ => Err(invalid()),
        }
    }

    /// How long the connect may take.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero (every connect would time out).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        assert!(
            !timeout.is_zero(),
            "TcpCheck::timeout for `{}` must be greater than zero",
            self.addr
        );
        self.connect_timeout = timeout;
        self
    }

    /// The address checked.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Check for TcpCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            let started = Instant::now();
            let connect = tokio::net::TcpStream::connect(self.addr.as_str());
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Ok(Ok(_stream)) => {
                    CheckResult::ok().with_observed(started.elapsed().as_secs_f64() * 1000.0, "ms")
                }
                Ok(Err(e)) => CheckResult::down(format!("connect to {}: {e}", self.addr)),
                Err(_) => CheckResult::down(format!(
                    "connect to {} timed out after {} ms",
                    self.addr,
                    self.connect_timeout.as_millis()
                )),
            }
        })
    }
}

/// An address that is not `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidAddr(String);

impl std::fmt::Display for InvalidAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is not host:port", self.0)
    }
}

impl std::error::Error for InvalidAddr {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in ["127.0.0.1:1", "a-b.c_d:65535", "[::1]:80", "[fe80::1]:443"] {
            assert!(TcpCheck::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "host",
            "host:",
            "host:0",
            "host:70000",
            "::1:80",
            "[::1]",
            "a b:1",
            "[zz]:1",
        ] {
            assert!(TcpCheck::parse(bad).is_err(), "{bad}");
        }
    }
}
