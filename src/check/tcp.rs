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
/// let db = TcpCheck::new("127.0.0.1:5432").connect_timeout(Duration::from_millis(500));
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

    /// How long the connect may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
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
