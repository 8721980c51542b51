//! Process memory, read from the operating system.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a reading is reused: reading `/proc` costs a few microseconds,
/// a status endpoint may be polled thousands of times a second.
pub(crate) const MEMORY_REFRESH: Duration = Duration::from_secs(1);

/// The last reading and when it was made.
#[derive(Default)]
pub(crate) struct MemoryCache(Mutex<Option<(Instant, Option<Memory>)>>);

impl MemoryCache {
    /// The figures for a report made at `now`, read again when the last
    /// reading is older than [`MEMORY_REFRESH`] by then.
    pub(crate) fn get_at(&self, now: Instant) -> Option<Memory> {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some((at, memory)) if now.saturating_duration_since(at) < MEMORY_REFRESH => memory,
            _ => {
                let memory = Memory::current();
                *last = Some((Instant::now(), memory));
                memory
            }
        }
    }
}

/// Memory of the process, as the operating system accounts it. In the
/// report the figures are at most a second old.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Memory {
    /// Resident set size: bytes of physical memory the process occupies now
    /// (on Linux, `resident` of `/proc/self/statm` times the page size).
    pub rss_bytes: u64,
    /// Virtual memory size: bytes of address space the process has mapped,
    /// resident or not.
    pub virtual_bytes: u64,
}

impl Memory {
    /// Reads the current figures, or `None` where the platform offers none.
    #[must_use]
    pub fn current() -> Option<Self> {
        memory_stats::memory_stats().map(|m| Memory {
            rss_bytes: m.physical_mem as u64,
            virtual_bytes: m.virtual_mem as u64,
        })
    }
}
