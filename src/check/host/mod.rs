//! Host checks (feature `host-check`): free disk space ([`DiskCheck`]),
//! the process's memory against its container's limit ([`MemoryCheck`])
//! and the tokio runtime's queue ([`RuntimeCheck`]).
//!
//! Limits are given as a [`Share`] (a fraction between 0 and 1, checked
//! when it is made, so a bad value from configuration is an error at
//! start) or, for disk space, as a number of bytes ([`Threshold`]).
//!
//! ```
//! use std::time::Duration;
//! use tower_status::check::{DiskCheck, HealthCheck, MemoryCheck, RuntimeCheck, Share, Threshold};
//! use tower_status::StatusLayer;
//!
//! let layer = StatusLayer::new()
//!     .check(HealthCheck::new(
//!         "disk",
//!         DiskCheck::new(std::env::temp_dir())
//!             .warn_below(Share::new(0.10)?)
//!             .critical_below(Threshold::Bytes(512 * 1024 * 1024))
//!             .timeout(Duration::from_millis(500)),
//!     ))
//!     .check(HealthCheck::new(
//!         "memory",
//!         MemoryCheck::new().degraded_above(Share::new(0.8)?).down_above(Share::new(0.95)?),
//!     ).critical(false))
//!     .check(HealthCheck::new("runtime", RuntimeCheck::new().degraded_above_queue(500)).critical(false));
//! # let _ = layer;
//! assert!(Share::new(1.5).is_err());
//! # Ok::<(), tower_status::check::InvalidShare>(())
//! ```

mod disk;
mod memory;
mod tokio_runtime;

use std::fmt;
use std::time::Duration;

use super::CheckResult;

pub use disk::DiskCheck;
pub use memory::MemoryCheck;
pub use tokio_runtime::RuntimeCheck;

/// A fraction between 0 and 1 (both included): `0.1` is 10 %.
///
/// ```
/// use tower_status::check::Share;
///
/// assert_eq!(Share::new(0.25).unwrap().get(), 0.25);
/// let err = Share::new(25.0).unwrap_err();
/// assert_eq!(err.to_string(), "share 25 is not between 0 and 1 (10 % is 0.1)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Share(f64);

impl Share {
    /// `value`, when it is a number between 0 and 1.
    ///
    /// # Errors
    ///
    /// [`InvalidShare`] for a value below 0, above 1, or not a number.
    pub fn new(value: f64) -> Result<Self, InvalidShare> {
        if (0.0..=1.0).contains(&value) {
            Ok(Self(value))
        } else {
            Err(InvalidShare(value))
        }
    }

    /// The fraction.
    #[must_use]
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A share that is not between 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InvalidShare(f64);

impl fmt::Display for InvalidShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "share {} is not between 0 and 1 (10 % is 0.1)", self.0)
    }
}

impl std::error::Error for InvalidShare {}

/// A limit of free disk space: bytes, or a share of the file system's size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// This many bytes.
    Bytes(u64),
    /// This share of the file system's size.
    Share(Share),
}

impl From<Share> for Threshold {
    fn from(share: Share) -> Self {
        Threshold::Share(share)
    }
}

impl Threshold {
    /// The limit in bytes on a file system of `total` bytes.
    fn bytes_of(self, total: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            // At most `total`: the share is at most 1.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Threshold::Share(s) => (total as f64 * s.get()) as u64,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Bytes(b) => write!(f, "{b} bytes"),
            Threshold::Share(s) => write!(f, "{} %", s.get() * 100.0),
        }
    }
}

/// Default timeout of the host checks' own reads.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs `read` on tokio's blocking pool for at most `timeout`: `what` names
/// the reading in the error of a timeout or a failed task.
async fn blocking<T, F>(what: &str, timeout: Duration, read: F) -> Result<T, CheckResult>
where
    F: FnOnce() -> Result<T, String> + Send + 'static,
    T: Send + 'static,
{
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(read)).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(CheckResult::down(e)),
        Ok(Err(e)) => Err(CheckResult::down(format!("{what}: {e}"))),
        Err(_) => Err(CheckResult::down(format!(
            "{what} timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

/// Asserts a check's own timeout is not zero.
fn non_zero(timeout: Duration, check: &str, subject: &dyn fmt::Display) {
    assert!(
        !timeout.is_zero(),
        "{check}::timeout for `{subject}` must be greater than zero"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        for ok in [0.0, 0.5, 1.0] {
            assert_eq!(Share::new(ok).map(Share::get), Ok(ok));
        }
        for bad in [-0.1, 1.01, 90.0, f64::NAN, f64::INFINITY] {
            assert!(Share::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn thresholds_in_bytes() {
        let half = Threshold::from(Share::new(0.5).unwrap());
        assert_eq!(half.bytes_of(1000), 500);
        assert_eq!(Threshold::Bytes(7).bytes_of(1000), 7);
        assert_eq!(
            Threshold::from(Share::new(1.0).unwrap()).bytes_of(u64::MAX),
            u64::MAX
        );
        assert_eq!(half.to_string(), "50 %");
        assert_eq!(Threshold::Bytes(7).to_string(), "7 bytes");
    }
}
