//! History: the last 24 hours, minute by minute, in fixed memory, and the
//! service level objectives read from it.
//!
//! The engine keeps a ring of 1440 one-minute slots. Each slot holds the
//! minute's worst overall status, the worst status of each component (up to
//! 64 components), and the wrapped service's traffic in that minute:
//! requests, errors, the median and 99th percentile response time, and the
//! requests faster than the latency objective's threshold. The ring is
//! 86 400 bytes (1440 slots of 60 bytes), allocated once; with the table of
//! component names and the two snapshots of the recorder's counters it
//! measures minutes between, the whole history is 97 248 bytes (on 64-bit
//! targets) plus the bytes of the component names, and never grows with
//! time or traffic.
//!
//! What it serves is plain data: [`HistoryView`] (the body of
//! `/status/history`: the per-minute series and [`Uptime`] over the last
//! hour and day) and, for each [`Objective`], a [`SloReport`] (error budget
//! left and burn rates).
//!
//! # What a minute says
//!
//! - A minute in which nothing was observed has no data: it is neither up
//!   nor down, and is left out of uptime.
//! - Uptime is the share of minutes with data that were up: `ok` and
//!   `degraded` count as up (as status pages count degraded performance),
//!   `down` as down, and `maintenance` minutes are left out of both.
//! - The statuses of a minute are the worst seen in it, in the order of
//!   [`Status`](crate::Status) (`ok` < `degraded` < `down` < `maintenance`).
//! - Requests are every request that finished in the minute (as the
//!   report's `requests.total` counts them: responses, service errors and
//!   aborts); errors are those the recorder counts as errors (5xx, a
//!   service or body error, a non-zero `grpc-status`), not aborts.
//! - A minute without requests has no traffic data: it counts in no
//!   service level objective.
//! - Minutes are those of the wall clock (UTC). A clock stepped back by
//!   less than a day books into the newest minute until it catches up
//!   (the past is never rewritten); stepped back further, the history
//!   starts over; a clock that jumps forward leaves the minutes it skipped
//!   without data.
//! - The history can be kept in a file across restarts: written
//!   atomically, read back whole or not at all (a versioned binary format
//!   with a checksum, about 82 KB for a full day).
//!
//! # Service level objectives
//!
//! An [`Objective`] is met by a share of the wrapped service's requests:
//! those without error ([`Objective::availability`]) or those faster than a
//! threshold ([`Objective::latency`]). Its error budget is the share of
//! requests allowed to miss it (`1 - target`); the burn rate over a window
//! is the share that missed it over the budget (1 spends the budget
//! exactly over the period, 14.4 spends 2 % of a 30-day budget in an
//! hour). As in the Google SRE workbook, a fast burn is a burn rate above
//! 14.4 over both the last hour and the last 5 minutes, a slow burn one
//! above 6 over both the last 6 hours and the last 30 minutes.
//!
//! ```
//! use std::time::Duration;
//! use tower_status::history::Objective;
//!
//! let availability = Objective::availability(0.999);
//! let latency = Objective::latency(Duration::from_millis(300), 0.99).named("fast-enough");
//! assert_eq!(availability.name(), "availability");
//! assert_eq!(latency.latency_threshold(), Some(Duration::from_millis(300)));
//! ```

mod file;
mod ring;
mod slo;
#[cfg(test)]
pub(crate) mod testing;
mod view;

pub(crate) use file::{move_aside, save_bytes};
pub(crate) use ring::{History, Settings};
pub use slo::{BurnRates, Objective, SloReport};
pub use view::{HistoryView, Minute, Uptime, UptimeFigure};
