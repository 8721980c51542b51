//! [`DiskCheck`]: free space on the file system holding a path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::{blocking, non_zero, Share, Threshold, DEFAULT_TIMEOUT};
use crate::check::{BoxFuture, Check, CheckResult};

/// Free space on the file system holding `path`, as available to the
/// process (not counting blocks reserved for root): degraded below the
/// warn threshold (default 10 % of the file system), down below the
/// critical one (default 5 %). A path that does not exist, or cannot be
/// read, is down with the operating system's error.
///
/// The observed value is the free space in bytes; the details give it
/// again with the file system's size, the free share and both thresholds
/// in bytes. Unix only: elsewhere the check is down, saying so.
///
/// ```
/// use tower_status::check::{DiskCheck, Share, Threshold};
///
/// let data = DiskCheck::new("/var/lib/app")
///     .warn_below(Threshold::Bytes(10 << 30))
///     .critical_below(Share::new(0.02)?);
/// assert_eq!(data.path(), std::path::Path::new("/var/lib/app"));
/// # Ok::<(), tower_status::check::InvalidShare>(())
/// ```
#[derive(Clone, Debug)]
pub struct DiskCheck {
    path: PathBuf,
    warn: Threshold,
    critical: Threshold,
    timeout: Duration,
}

impl DiskCheck {
    /// Checks the file system holding `path`: warn below 10 % free,
    /// critical below 5 %, 1 s timeout.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            warn: Threshold::Share(Share(0.10)),
            critical: Threshold::Share(Share(0.05)),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Degraded when less than this is free.
    #[must_use]
    pub fn warn_below(mut self, threshold: impl Into<Threshold>) -> Self {
        self.warn = threshold.into();
        self
    }

    /// Down when less than this is free.
    #[must_use]
    pub fn critical_below(mut self, threshold: impl Into<Threshold>) -> Self {
        self.critical = threshold.into();
        self
    }

    /// How long reading the file system's figures may take (a hung network
    /// mount is down when it is over).
    ///
    /// # Panics
    ///
    /// When `timeout` is zero (every reading would time out).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        non_zero(timeout, "DiskCheck", &self.path.display());
        self.timeout = timeout;
        self
    }

    /// The path checked.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verdict on `free` bytes out of `total`.
    fn judge(&self, free: u64, total: u64) -> CheckResult {
        let warn = self.warn.bytes_of(total);
        let critical = self.critical.bytes_of(total);
        #[allow(clippy::cast_precision_loss)]
        let share = if total == 0 {
            0.0
        } else {
            free as f64 / total as f64
        };
        let shown = self.path.display();
        let result = if free < critical {
            CheckResult::down(format!(
                "{free} bytes free on {shown}, below the critical {} ({critical} bytes)",
                self.critical
            ))
        } else if free < warn {
            CheckResult::degraded(format!(
                "{free} bytes free on {shown}, below the warning {} ({warn} bytes)",
                self.warn
            ))
        } else {
            CheckResult::ok()
        };
        result
            .with_details(json!({
                "path": shown.to_string(),
                "free_bytes": free,
                "total_bytes": total,
                "free_share": share,
                "warn_below_bytes": warn,
                "critical_below_bytes": critical,
            }))
            .with_observed(free, "bytes")
    }
}

/// Free (available to the process) and total bytes of the file system
/// holding `path`.
#[cfg(unix)]
fn space(path: &Path) -> Result<(u64, u64), String> {
    let fs = rustix::fs::statvfs(path).map_err(|e| {
        format!(
            "free space on {}: {}",
            path.display(),
            std::io::Error::from(e)
        )
    })?;
    let unit = if fs.f_frsize > 0 {
        fs.f_frsize
    } else {
        fs.f_bsize
    };
    Ok((
        fs.f_bavail.saturating_mul(unit),
        fs.f_blocks.saturating_mul(unit),
    ))
}

#[cfg(not(unix))]
fn space(path: &Path) -> Result<(u64, u64), String> {
    Err(format!(
        "free space on {}: DiskCheck is supported on Unix only",
        path.display()
    ))
}

impl Check for DiskCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            let path = self.path.clone();
            let what = format!("reading the free space on {}", self.path.display());
            match blocking(&what, self.timeout, move || space(&path)).await {
                Ok((free, total)) => self.judge(free, total),
                Err(down) => down,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    #[test]
    fn thresholds_decide() {
        let check = DiskCheck::new("/data")
            .warn_below(Threshold::Bytes(300))
            .critical_below(Share::new(0.1).unwrap());
        assert_eq!(check.judge(301, 1000).status, Status::Ok);
        let warn = check.judge(299, 1000);
        assert_eq!(warn.status, Status::Degraded);
        assert_eq!(
            warn.error.as_deref(),
            Some("299 bytes free on /data, below the warning 300 bytes (300 bytes)")
        );
        let down = check.judge(99, 1000);
        assert_eq!(down.status, Status::Down);
        assert_eq!(
            down.error.as_deref(),
            Some("99 bytes free on /data, below the critical 10 % (100 bytes)")
        );
        assert_eq!(down.observed_value, Some(99.into()));
        assert_eq!(down.details.unwrap()["free_share"], 0.099);
        // An empty file system (a pseudo one) has no share to speak of.
        assert_eq!(
            DiskCheck::new("/proc").judge(0, 0).details.unwrap()["free_share"],
            0.0
        );
    }

    #[tokio::test]
    async fn a_missing_path_is_down_with_the_os_error() {
        let missing = std::env::temp_dir().join("tower-status-no-such-dir/sub");
        let result = DiskCheck::new(&missing).check().await;
        assert_eq!(result.status, Status::Down);
        let error = result.error.unwrap();
        assert!(error.contains(&missing.display().to_string()), "{error}");
        assert!(error.contains("No such file"), "{error}");
    }

    #[test]
    #[should_panic(expected = "DiskCheck::timeout for `/data` must be greater than zero")]
    fn a_zero_timeout_is_refused() {
        let _ = DiskCheck::new("/data").timeout(Duration::ZERO);
    }
}
