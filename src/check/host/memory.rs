//! [`MemoryCheck`]: the process's resident memory against its limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::{blocking, non_zero, Share, DEFAULT_TIMEOUT};
use crate::check::{BoxFuture, Check, CheckResult};
use crate::report::Memory;

/// The process's resident memory (as in the report's `memory` section)
/// against the memory it may use: its cgroup v2 `memory.max` (the
/// container's limit; the smallest along the cgroup's path under
/// `/sys/fs/cgroup`, where `max` means none; on cgroup v1 hosts
/// `memory.limit_in_bytes` under `/sys/fs/cgroup/memory`) or the machine's
/// memory (`MemTotal` of `/proc/meminfo`), whichever is smaller. Degraded above
/// 85 % of it, down above 95 % by default.
///
/// The observed value is the resident memory in bytes; the details give
/// it with the limit in bytes, the used share, and where the limit came
/// from (`limit_source`: `cgroup` or `machine`, and `limit_file`). Linux
/// only: elsewhere the check is down, saying so.
///
/// ```
/// use tower_status::check::{MemoryCheck, Share};
///
/// let memory = MemoryCheck::new()
///     .degraded_above(Share::new(0.75)?)
///     .down_above(Share::new(0.9)?);
/// # let _ = memory;
/// # Ok::<(), tower_status::check::InvalidShare>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemoryCheck {
    degraded: Share,
    down: Share,
    timeout: Duration,
    files: Files,
}

/// Where the limit is read.
#[derive(Clone, Debug)]
struct Files {
    proc_cgroup: PathBuf,
    cgroup_root: PathBuf,
    meminfo: PathBuf,
}

impl Default for Files {
    fn default() -> Self {
        Self {
            proc_cgroup: "/proc/self/cgroup".into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            meminfo: "/proc/meminfo".into(),
        }
    }
}

impl Default for MemoryCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCheck {
    /// Degraded above 85 % of the limit, down above 95 %, 1 s timeout.
    #[must_use]
    pub fn new() -> Self {
        Self {
            degraded: Share(0.85),
            down: Share(0.95),
            timeout: DEFAULT_TIMEOUT,
            files: Files::default(),
        }
    }

    /// Degraded when the process uses more than this share of its limit.
    #[must_use]
    pub fn degraded_above(mut self, share: Share) -> Self {
        self.degraded = share;
        self
    }

    /// Down when the process uses more than this share of its limit.
    #[must_use]
    pub fn down_above(mut self, share: Share) -> Self {
        self.down = share;
        self
    }

    /// How long reading the figures may take.
    ///
    /// # Panics
    ///
    /// When `timeout` is zero (every reading would time out).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        non_zero(timeout, "MemoryCheck", &"memory");
        self.timeout = timeout;
        self
    }

    /// The verdict on `used` bytes against `limit`.
    fn judge(&self, used: u64, limit: &Limit) -> CheckResult {
        #[allow(clippy::cast_precision_loss)]
        let share = if limit.bytes == 0 {
            f64::INFINITY
        } else {
            used as f64 / limit.bytes as f64
        };
        let percent = |s: f64| format!("{:.1} %", s * 100.0);
        let says = |over: Share, verdict: &str| {
            format!(
                "resident memory {used} bytes is {} of the {} limit of {} bytes, above the {verdict} {}",
                percent(share),
                limit.source,
                limit.bytes,
                percent(over.get()),
            )
        };
        let result = if share > self.down.get() {
            CheckResult::down(says(self.down, "down threshold"))
        } else if share > self.degraded.get() {
            CheckResult::degraded(says(self.degraded, "degraded threshold"))
        } else {
            CheckResult::ok()
        };
        result
            .with_details(json!({
                "used_bytes": used,
                "limit_bytes": limit.bytes,
                "used_share": if share.is_finite() { json!(share) } else { json!(null) },
                "limit_source": limit.source,
                "limit_file": limit.file.display().to_string(),
            }))
            .with_observed(used, "bytes")
    }
}

/// The memory the process may use, and where that was read.
#[derive(Clone, Debug, PartialEq)]
struct Limit {
    bytes: u64,
    /// `cgroup` or `machine`.
    source: &'static str,
    file: PathBuf,
}

/// The smallest limit on the path of the process's cgroup: cgroup v2's
/// `memory.max` (`max` is none), else cgroup v1's `memory.limit_in_bytes`
/// (where no limit is a huge number, which the machine's memory beats).
fn cgroup_limit(files: &Files) -> Option<Limit> {
    let cgroups = std::fs::read_to_string(&files.proc_cgroup).ok()?;
    // cgroup v2: the line `0::/path`.
    let v2 = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .and_then(|path| smallest(files.cgroup_root.clone(), path, "memory.max"));
    if v2.is_some() {
        return v2;
    }
    // cgroup v1: `N:memory:/path` (or with other controllers, comma-separated).
    let path = cgroups.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })?;
    smallest(
        files.cgroup_root.join("memory"),
        path,
        "memory.limit_in_bytes",
    )
}

/// The smallest number in `file` of `root` and of each directory on `path`
/// below it.
fn smallest(mut dir: PathBuf, path: &str, file: &str) -> Option<Limit> {
    let mut best: Option<Limit> = None;
    let mut consider = |dir: &Path| {
        let file = dir.join(file);
        let bytes = std::fs::read_to_string(&file)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()?;
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(Limit {
                bytes,
                source: "cgroup",
                file,
            });
        }
        Some(())
    };
    consider(&dir);
    for part in path.split('/').filter(|p| !p.is_empty() && *p != "..") {
        dir.push(part);
        consider(&dir);
    }
    best
}

/// `MemTotal` of `/proc/meminfo`.
fn machine_limit(files: &Files) -> Result<Limit, String> {
    let file = &files.meminfo;
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let kib = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no MemTotal in {}", file.display()))?;
    Ok(Limit {
        bytes: kib.saturating_mul(1024),
        source: "machine",
        file: file.clone(),
    })
}

/// The container's limit, else the machine's, whichever is smaller.
fn limit(files: &Files) -> Result<Limit, String> {
    match (cgroup_limit(files), machine_limit(files)) {
        (Some(cgroup), Ok(machine)) if machine.bytes < cgroup.bytes => Ok(machine),
        (Some(cgroup), _) => Ok(cgroup),
        (None, machine) => machine,
    }
}

/// Resident bytes and the limit.
fn read(files: &Files) -> Result<(u64, Limit), String> {
    if !cfg!(target_os = "linux") {
        return Err(
            "MemoryCheck reads the memory limit from /proc and /sys/fs/cgroup, which only Linux has"
                .to_owned(),
        );
    }
    let used = Memory::current()
        .ok_or("the resident memory of the process could not be read")?
        .rss_bytes;
    Ok((used, limit(files)?))
}

impl Check for MemoryCheck {
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        Box::pin(async move {
            let files = self.files.clone();
            match blocking("reading the memory figures", self.timeout, move || {
                read(&files)
            })
            .await
            {
                Ok((used, limit)) => self.judge(used, &limit),
                Err(down) => down,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    /// A fake `/proc` and `/sys/fs/cgroup` in a directory of its own.
    fn fake(name: &str, cgroup: &str, meminfo: &str, maxes: &[(&str, &str)]) -> Files {
        let dir =
            std::env::temp_dir().join(format!("tower-status-memory-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("cgroup");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(dir.join("self-cgroup"), cgroup).unwrap();
        std::fs::write(dir.join("meminfo"), meminfo).unwrap();
        for (sub, max) in maxes {
            let d = root.join(sub.trim_start_matches('/'));
            std::fs::create_dir_all(&d).unwrap();
            // cgroup v1's memory hierarchy, or v2's unified one.
            let file = if sub.starts_with("/memory") {
                "memory.limit_in_bytes"
            } else {
                "memory.max"
            };
            std::fs::write(d.join(file), max).unwrap();
        }
        Files {
            proc_cgroup: dir.join("self-cgroup"),
            cgroup_root: root,
            meminfo: dir.join("meminfo"),
        }
    }

    const MEMINFO: &str = "MemTotal:        2048 kB\nMemFree:  1024 kB\n";

    #[test]
    fn the_smallest_cgroup_limit_on_the_path_wins() {
        let files = fake(
            "nested",
            "0::/kubepods/pod1/app\n",
            MEMINFO,
            &[
                ("/kubepods", "1500\n"),
                ("/kubepods/pod1", "max\n"),
                ("/kubepods/pod1/app", "1000\n"),
            ],
        );
        let l = limit(&files).unwrap();
        assert_eq!((l.bytes, l.source), (1000, "cgroup"));
        assert!(l.file.ends_with("kubepods/pod1/app/memory.max"));
    }

    #[test]
    fn max_means_no_limit_and_the_machine_counts() {
        let files = fake("max", "0::/\n", MEMINFO, &[("/", "max\n")]);
        let l = limit(&files).unwrap();
        assert_eq!((l.bytes, l.source), (2048 * 1024, "machine"));
        // cgroup v1 without a limit (a huge number): the machine again.
        let files = fake(
            "v1-none",
            "4:memory:/app\n0::/\n",
            MEMINFO,
            &[("/memory/app", "9223372036854771712\n")],
        );
        assert_eq!(limit(&files).unwrap().source, "machine");
        // A cgroup limit above the machine's memory: the machine's.
        let files = fake("above", "0::/app\n", MEMINFO, &[("/app", "999999999\n")]);
        assert_eq!(limit(&files).unwrap().source, "machine");
    }

    #[test]
    fn cgroup_v1_limits_count_where_v2_has_none() {
        let files = fake(
            "v1",
            "5:cpu,memory:/docker/abc\n1:pids:/\n0::/\n",
            MEMINFO,
            &[
                ("/memory/docker", "4096\n"),
                ("/memory/docker/abc", "8192\n"),
            ],
        );
        let l = limit(&files).unwrap();
        assert_eq!((l.bytes, l.source), (4096, "cgroup"));
        assert!(
            l.file.ends_with("memory/docker/memory.limit_in_bytes"),
            "{l:?}"
        );
    }

    #[test]
    fn no_figures_is_a_clear_error() {
        let mut files = fake("none", "0::/\n", "nothing\n", &[]);
        assert!(limit(&files).unwrap_err().starts_with("no MemTotal in "));
        files.meminfo = files.meminfo.with_file_name("missing");
        let err = limit(&files).unwrap_err();
        assert!(
            err.starts_with("reading ") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn shares_decide() {
        let limit = Limit {
            bytes: 1000,
            source: "cgroup",
            file: "/sys/fs/cgroup/memory.max".into(),
        };
        let check = MemoryCheck::new();
        assert_eq!(check.judge(850, &limit).status, Status::Ok);
        let degraded = check.judge(900, &limit);
        assert_eq!(degraded.status, Status::Degraded);
        assert_eq!(
            degraded.error.as_deref(),
            Some("resident memory 900 bytes is 90.0 % of the cgroup limit of 1000 bytes, above the degraded threshold 85.0 %")
        );
        let down = check.judge(960, &limit);
        assert_eq!(down.status, Status::Down);
        let details = down.details.unwrap();
        assert_eq!(details["limit_source"], "cgroup");
        assert_eq!(details["limit_bytes"], 1000);
        assert_eq!(details["used_share"], 0.96);
        assert_eq!(down.observed_value, Some(960.into()));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn this_process_is_measured() {
        let result = MemoryCheck::new()
            .degraded_above(Share::new(1.0).unwrap())
            .down_above(Share::new(1.0).unwrap())
            .check()
            .await;
        assert_eq!(result.status, Status::Ok, "{result:?}");
        let details = result.details.unwrap();
        assert!(details["used_bytes"].as_u64().unwrap() > 0);
        assert!(details["limit_bytes"].as_u64().unwrap() > details["used_bytes"].as_u64().unwrap());
    }
}
