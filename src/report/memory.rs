//! Process memory, read from the operating system.

use serde::{Deserialize, Serialize};

/// Memory of the process, as the operating system accounts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
