//! The ring of minutes and the engine that fills it.
//!
//! Each of the [`SLOTS`] slots is stamped with the minute it holds (minutes
//! since the Unix epoch), at index `minute % SLOTS`. A slot whose stamp is
//! not the minute asked for, or lies more than a day before the newest
//! minute, holds no data for it: skipped minutes need no clearing, and a
//! slot is reset when a new minute is first written into it.
//!
//! Time comes in as [`SystemTime`], so tests drive it. The ring never
//! moves backwards: what is seen at a time before the newest minute (a
//! clock stepped back by less than a day) is booked into the newest
//! minute, and past minutes are never rewritten. A clock stepped back by
//! a day or more cannot be placed on the ring at all: the ring starts
//! over, empty, at the new time. A clock that jumps forward leaves the
//! minutes it skipped without data. Times before the Unix epoch are
//! ignored.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::slo::Objective;
use super::view::{HistoryView, Minute, Uptime, UptimeFigure};
use crate::recorder::{histogram, latency_between, Snapshot};
use crate::report::{Status, Timestamp};

/// Minutes in the ring: a day.
pub(crate) const SLOTS: usize = 1440;
/// Components the ring keeps a status for; observations of more are
/// dropped (and counted) until one of them has had no data for a day.
pub(crate) const MAX_COMPONENTS: usize = 64;
/// Longest component name kept, in bytes; observations of components with
/// longer names are dropped (and counted).
pub(crate) const MAX_NAME_LEN: usize = 1024;
/// Size of the ring of slots in bytes, as the module docs state.
#[cfg_attr(not(test), allow(dead_code))] // Used by the tests.
pub(crate) const RING_BYTES: usize = 86_400;

/// Stamp of a slot that holds no minute.
pub(crate) const NO_MINUTE: u32 = u32::MAX;
/// `fast` of a minute whose requests were not compared with the latency
/// threshold (none configured, or another one when it was recorded).
pub(crate) const UNKNOWN: u32 = u32::MAX;
/// Counts of a minute saturate here, below [`UNKNOWN`].
const MAX_COUNT: u64 = u32::MAX as u64 - 1;
/// `SLOTS` as a minute count.
const SPAN: u32 = SLOTS as u32;

/// Settings of a history, fixed at construction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Requests at or below this time count as fast, for a latency
    /// objective; `None`: not counted.
    pub(crate) latency_threshold: Option<Duration>,
}

impl Settings {
    /// Counts fast requests for the first latency objective of
    /// `objectives` (the ring keeps one count a minute: a second latency
    /// objective with another threshold gets no figures).
    pub(crate) fn for_objectives<'a>(objectives: impl IntoIterator<Item = &'a Objective>) -> Self {
        Self {
            latency_threshold: objectives
                .into_iter()
                .find_map(Objective::latency_threshold),
        }
    }
}

/// A status as a slot stores it: 0 is no data, then in the order of
/// [`Status`], so the worst is the largest.
pub(crate) fn code(status: Status) -> u8 {
    match status {
        Status::Ok => 1,
        Status::Degraded => 2,
        Status::Down => 3,
        Status::Maintenance => 4,
    }
}

/// The largest valid [`code`].
pub(crate) const MAX_CODE: u8 = 4;

/// The status a [`code`] stands for; `None` for no data.
pub(crate) fn status(code: u8) -> Option<Status> {
    match code {
        1 => Some(Status::Ok),
        2 => Some(Status::Degraded),
        3 => Some(Status::Down),
        4 => Some(Status::Maintenance),
        _ => None,
    }
}

/// The wrapped service's traffic in one minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MinuteTraffic {
    pub(crate) requests: u32,
    pub(crate) errors: u32,
    /// Requests at or below the latency threshold, or [`UNKNOWN`].
    pub(crate) fast: u32,
    /// Median response time in microseconds.
    pub(crate) p50_us: u32,
    /// 99th percentile response time in microseconds.
    pub(crate) p99_us: u32,
}

impl MinuteTraffic {
    /// Both parts of a minute: `self` before the counters restarted (a
    /// history loaded from a file, a new recorder), `later` after. Counts
    /// add up; percentiles cannot be merged, so each is the larger of the
    /// two (never understating the minute's latency).
    fn merge(self, later: Self) -> Self {
        if self.requests == 0 {
            return later;
        }
        if later.requests == 0 {
            return self;
        }
        let add = |a: u32, b: u32| saturate(u64::from(a) + u64::from(b));
        Self {
            requests: add(self.requests, later.requests),
            errors: add(self.errors, later.errors),
            fast: if self.fast == UNKNOWN || later.fast == UNKNOWN {
                UNKNOWN
            } else {
                add(self.fast, later.fast)
            },
            p50_us: self.p50_us.max(later.p50_us),
            p99_us: self.p99_us.max(later.p99_us),
        }
    }
}

fn saturate(n: u64) -> u32 {
    n.min(MAX_COUNT) as u32
}

/// One minute of the ring: 60 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// The minute held (since the Unix epoch), or [`NO_MINUTE`].
    pub(crate) minute: u32,
    pub(crate) traffic: MinuteTraffic,
    /// Worst overall status, as a [`code`].
    pub(crate) overall: u8,
    /// Worst status of each component column, as [`code`]s, two a byte
    /// (column `2i` in the low half of byte `i`).
    pub(crate) components: [u8; MAX_COMPONENTS / 2],
}

impl Slot {
    pub(crate) const EMPTY: Slot = Slot::at(NO_MINUTE);

    /// An empty slot for `minute`.
    pub(crate) const fn at(minute: u32) -> Self {
        Slot {
            minute,
            traffic: MinuteTraffic {
                requests: 0,
                errors: 0,
                fast: 0,
                p50_us: 0,
                p99_us: 0,
            },
            overall: 0,
            components: [0; MAX_COMPONENTS / 2],
        }
    }

    /// The code of component column `k`.
    pub(crate) fn component(&self, k: usize) -> u8 {
        (self.components[k / 2] >> ((k % 2) * 4)) & 0x0f
    }

    fn set_component(&mut self, k: usize, code: u8) {
        let shift = (k % 2) * 4;
        let byte = &mut self.components[k / 2];
        *byte = (*byte & !(0x0f << shift)) | ((code & 0x0f) << shift);
    }

    /// Columns holding a status, as a bit mask.
    fn columns(&self) -> u64 {
        let mut mask = 0u64;
        for (i, byte) in self.components.iter().enumerate() {
            if byte & 0x0f != 0 {
                mask |= 1 << (2 * i);
            }
            if byte & 0xf0 != 0 {
                mask |= 1 << (2 * i + 1);
            }
        }
        mask
    }
}

/// The snapshots the minute's traffic is measured between.
struct Meter {
    /// The minute being booked, or [`NO_MINUTE`].
    minute: u32,
    /// `last` holds a snapshot.
    primed: bool,
    /// The recorder's counters when the minute started (for this engine):
    /// the last snapshot of the minute before, or zero.
    base: Snapshot,
    /// The last snapshot booked.
    last: Snapshot,
    /// The minute's traffic before `base` (from a file, or a recorder that
    /// restarted).
    carry: MinuteTraffic,
}

/// The last day, minute by minute: statuses and traffic in a fixed-size
/// ring (see the [module docs](super)).
pub(crate) struct History {
    pub(super) settings: Settings,
    /// Buckets of the recorder's histogram lying wholly at or below the
    /// latency threshold: a prefix.
    fast_buckets: usize,
    /// [`SLOTS`] long.
    pub(super) slots: Box<[Slot]>,
    /// The newest minute written.
    pub(super) head: Option<u32>,
    /// Name of each component column.
    pub(super) names: [Option<Box<str>>; MAX_COMPONENTS],
    /// With the table full: the columns found without data in the last
    /// day, and the minute that was looked at.
    reclaimable: Option<(u32, u64)>,
    /// Component observations not recorded.
    pub(super) dropped: u64,
    meter: Meter,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("settings", &self.settings)
            .field("head", &self.head)
            .field("components", &self.names.iter().flatten().count())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Minute of `at` since the Unix epoch; `None` before it (or in year 10 000).
pub(crate) fn minute_of(at: SystemTime) -> Option<u32> {
    let secs = at.duration_since(UNIX_EPOCH).ok()?.as_secs();
    u32::try_from(secs / 60).ok().filter(|&m| m != NO_MINUTE)
}

/// When minute `m` started.
pub(crate) fn start_of(minute: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(minute) * 60)
}

/// Whole minutes in `window`, rounded up, at least one, at most a day.
pub(crate) fn minutes_in(window: Duration) -> u32 {
    let secs = window.as_secs() + u64::from(window.subsec_nanos() > 0);
    secs.div_ceil(60).clamp(1, u64::from(SPAN)) as u32
}

/// Traffic summed over a window, for objectives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sums {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Requests in the minutes whose fast requests are known.
    pub(crate) timed: u64,
    /// Fast requests among `timed`.
    pub(crate) fast: u64,
}

impl History {
    /// An empty history.
    pub(crate) fn new(settings: Settings) -> Self {
        let fast_buckets = settings.latency_threshold.map_or(0, |t| {
            let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
            (0..histogram::BUCKETS)
                .take_while(|&i| histogram::upper_bound(i) <= ns)
                .count()
        });
        Self {
            settings,
            fast_buckets,
            slots: vec![Slot::EMPTY; SLOTS].into_boxed_slice(),
            head: None,
            names: std::array::from_fn(|_| None),
            reclaimable: None,
            dropped: 0,
            meter: Meter {
                minute: NO_MINUTE,
                primed: false,
                base: Snapshot::zero(),
                last: Snapshot::zero(),
                carry: MinuteTraffic::default(),
            },
        }
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings
    }

    /// Component observations not recorded: the table of 64 names was
    /// full, or the name longer than [`MAX_NAME_LEN`].
    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests.
    pub(crate) fn components_dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes the history occupies, inline and on the heap: fixed but for
    /// the component names.
    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests.
    pub(crate) fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of_val::<[Slot]>(&self.slots)
            + self.names.iter().flatten().map(|n| n.len()).sum::<usize>()
            + (self.meter.base.buckets.capacity() + self.meter.last.buckets.capacity())
                * std::mem::size_of::<u64>()
    }

    /// Where something seen at minute `m` goes, and whether the ring must
    /// start over (see the module docs).
    fn place(&self, m: u32) -> (u32, bool) {
        match self.head {
            Some(h) if m < h && h - m < SPAN => (h, false),
            Some(h) if m < h => (m, true),
            _ => (m, false),
        }
    }

    /// Moves the ring to the minute of `at`, if later: the minute to write.
    fn advance(&mut self, at: SystemTime) -> Option<u32> {
        let (m, restart) = self.place(minute_of(at)?);
        if restart {
            self.slots.fill(Slot::EMPTY);
            self.reclaimable = None;
        }
        self.head = Some(m);
        Some(m)
    }

    /// The newest minute of a window ending at `now`.
    fn end_minute(&self, now: SystemTime) -> Option<u32> {
        minute_of(now).map(|m| self.place(m).0)
    }

    /// The slot of minute `m`, if it holds that minute and the minute is
    /// within a day of the newest.
    pub(crate) fn slot(&self, m: u32) -> Option<&Slot> {
        let live = self
            .head
            .and_then(|h| h.checked_sub(m))
            .is_some_and(|d| d < SPAN);
        let slot = &self.slots[m as usize % SLOTS];
        (live && slot.minute == m).then_some(slot)
    }

    /// The slot of minute `m`, reset if it held another.
    fn slot_mut(&mut self, m: u32) -> &mut Slot {
        let slot = &mut self.slots[m as usize % SLOTS];
        if slot.minute != m {
            *slot = Slot::at(m);
        }
        slot
    }

    /// The `n` minutes ending with the one of `now`, oldest first.
    fn window(&self, now: SystemTime, n: u32) -> impl Iterator<Item = (u32, Option<&Slot>)> {
        let (start, end) = match self.end_minute(now) {
            Some(end) => (end.saturating_sub(n - 1), Some(end)),
            None => (1, None),
        };
        (start..=end.unwrap_or(0)).map(move |m| (m, self.slot(m)))
    }

    /// Books an evaluation: the overall status (`None` while it is not
    /// known: the minute has no overall data from this evaluation) and
    /// each component's, into the minute of `at`, keeping the worst of the
    /// minute.
    pub(crate) fn observe<'a>(
        &mut self,
        at: SystemTime,
        overall: impl Into<Option<Status>>,
        components: impl IntoIterator<Item = (&'a str, Status)>,
    ) {
        let Some(m) = self.advance(at) else {
            return;
        };
        let slot = self.slot_mut(m);
        if let Some(overall) = overall.into() {
            slot.overall = slot.overall.max(code(overall));
        }
        for (name, status) in components {
            let Some(k) = self.column(name, m) else {
                self.dropped += 1;
                continue;
            };
            let slot = self.slot_mut(m);
            let worst = slot.component(k).max(code(status));
            slot.set_component(k, worst);
            if let Some((_, free)) = &mut self.reclaimable {
                *free &= !(1 << k);
            }
        }
    }

    /// The column of component `name`, given one if new and there is room.
    fn column(&mut self, name: &str, m: u32) -> Option<usize> {
        if let Some(k) = self.names.iter().position(|n| n.as_deref() == Some(name)) {
            return Some(k);
        }
        if name.len() > MAX_NAME_LEN {
            return None;
        }
        let k = match self.names.iter().position(Option::is_none) {
            Some(k) => k,
            None => {
                // Full: a column without data for a day is free again.
                // Looked for once a minute at most.
                let free = match self.reclaimable {
                    Some((at, free)) if at == m => free,
                    _ => self.idle_columns(),
                };
                if free == 0 {
                    self.reclaimable = Some((m, 0));
                    return None;
                }
                let k = free.trailing_zeros() as usize;
                self.reclaimable = Some((m, free & !(1 << k)));
                for slot in self.slots.iter_mut() {
                    slot.set_component(k, 0);
                }
                k
            }
        };
        self.names[k] = Some(name.into());
        Some(k)
    }

    /// Columns with no status in any minute of the last day.
    fn idle_columns(&self) -> u64 {
        let Some(head) = self.head else {
            return u64::MAX;
        };
        let used = (head.saturating_sub(SPAN - 1)..=head)
            .filter_map(|m| self.slot(m))
            .fold(0u64, |used, slot| used | slot.columns());
        !used
    }

    /// Books the wrapped service's traffic up to `snapshot` (the
    /// recorder's cumulative counters) into the minute of `at`: the
    /// minute's figures are measured from the last snapshot booked before
    /// the minute began, so its percentiles are those of the whole minute.
    /// The first snapshot is measured from zero (the recorder starts with
    /// the layer); a snapshot below the last one (a new recorder) too.
    pub(crate) fn record_traffic(&mut self, at: SystemTime, snapshot: &Snapshot) {
        let Some(m) = self.advance(at) else {
            return;
        };
        let meter = &mut self.meter;
        if meter.primed
            && (snapshot.finished() < meter.last.finished() || snapshot.errors < meter.last.errors)
        {
            meter.primed = false;
            meter.minute = NO_MINUTE;
        }
        if meter.minute != m {
            if meter.primed {
                std::mem::swap(&mut meter.base, &mut meter.last);
            } else {
                set_zero(&mut meter.base);
            }
            let slot = &self.slots[m as usize % SLOTS];
            meter.carry = if slot.minute == m {
                slot.traffic
            } else {
                MinuteTraffic::default()
            };
            meter.minute = m;
        }
        let traffic = meter.carry.merge(self.measure(snapshot));
        self.slot_mut(m).traffic = traffic;
        copy_into(&mut self.meter.last, snapshot);
        self.meter.primed = true;
    }

    /// Traffic between the meter's base and `now`, with the recorder's
    /// own percentile math.
    fn measure(&self, now: &Snapshot) -> MinuteTraffic {
        let base = &self.meter.base;
        let requests = now.finished().saturating_sub(base.finished());
        let errors = now.errors.saturating_sub(base.errors).min(requests);
        let fast = if self.settings.latency_threshold.is_some() {
            let n = self
                .fast_buckets
                .min(now.buckets.len())
                .min(base.buckets.len());
            let fast: u64 = now.buckets[..n]
                .iter()
                .zip(&base.buckets[..n])
                .map(|(a, b)| a.saturating_sub(*b))
                .sum();
            saturate(fast.min(requests))
        } else {
            UNKNOWN
        };
        let latency = latency_between(now, base);
        let us = |ms: f64| (ms * 1000.0).round() as u32;
        MinuteTraffic {
            requests: saturate(requests),
            errors: saturate(errors),
            fast,
            p50_us: us(latency.p50),
            p99_us: us(latency.p99),
        }
    }

    /// Uptime over the `window` ending with the minute of `now`, overall
    /// and for each component with data in it.
    pub(crate) fn uptime(&self, now: SystemTime, window: Duration) -> Uptime {
        let n = minutes_in(window);
        let mut overall = UptimeFigure::default();
        let mut components = [UptimeFigure::default(); MAX_COMPONENTS];
        let mut seen = 0u64;
        let mut counted = 0;
        for (_, slot) in self.window(now, n) {
            counted += 1;
            overall.count(slot.and_then(|s| status(s.overall)));
            for (k, figure) in components.iter_mut().enumerate() {
                if self.names[k].is_some() {
                    let status = slot.and_then(|s| status(s.component(k)));
                    seen |= u64::from(status.is_some()) << k;
                    figure.count(status);
                }
            }
        }
        // Before the Unix epoch: nothing to read.
        for _ in counted..n {
            overall.count(None);
        }
        Uptime {
            window_minutes: n,
            overall,
            components: self
                .names
                .iter()
                .zip(components)
                .enumerate()
                .filter(|(k, _)| seen & (1 << k) != 0)
                .filter_map(|(_, (name, figure))| Some((name.as_deref()?.to_owned(), figure)))
                .collect(),
        }
    }

    /// The series of the `window` ending with the minute of `now`, and
    /// uptime over the last hour and day: the body of `/status/history`.
    pub(crate) fn series(&self, now: SystemTime, window: Duration) -> HistoryView {
        let n = minutes_in(window);
        let mut minutes = Vec::with_capacity(n as usize);
        for (m, slot) in self.window(now, n) {
            let traffic = slot.map(|s| s.traffic).unwrap_or_default();
            let ms = |us: u32| (traffic.requests > 0).then(|| f64::from(us) / 1000.0);
            minutes.push(Minute {
                start: Timestamp(start_of(m)),
                status: slot.and_then(|s| status(s.overall)),
                components: slot.map_or_else(BTreeMap::new, |s| {
                    self.names
                        .iter()
                        .enumerate()
                        .filter_map(|(k, name)| {
                            Some((name.as_deref()?.to_owned(), status(s.component(k))?))
                        })
                        .collect()
                }),
                requests: u64::from(traffic.requests),
                errors: u64::from(traffic.errors),
                p50_ms: ms(traffic.p50_us),
                p99_ms: ms(traffic.p99_us),
            });
        }
        HistoryView {
            window_minutes: n,
            minutes,
            uptime_1h: self.uptime(now, Duration::from_secs(3600)),
            uptime_24h: self.uptime(now, Duration::from_secs(86_400)),
            components_dropped: self.dropped,
        }
    }

    /// Traffic summed over the `window` ending with the minute of `now`.
    pub(crate) fn sums(&self, now: SystemTime, window: Duration) -> Sums {
        let mut sums = Sums::default();
        for slot in self.window(now, minutes_in(window)).filter_map(|(_, s)| s) {
            let t = slot.traffic;
            sums.requests += u64::from(t.requests);
            sums.errors += u64::from(t.errors);
            if t.fast != UNKNOWN {
                sums.timed += u64::from(t.requests);
                sums.fast += u64::from(t.fast);
            }
        }
        sums
    }

    /// Buckets wholly at or below the latency threshold.
    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests.
    pub(crate) fn fast_buckets(&self) -> usize {
        self.fast_buckets
    }
}

/// Zeroes `s`, keeping its allocation.
fn set_zero(s: &mut Snapshot) {
    s.started = 0;
    s.outcomes = Default::default();
    s.errors = 0;
    s.sum_ns = 0;
    s.max_ns = 0;
    s.buckets.clear();
    s.buckets.resize(histogram::BUCKETS, 0);
}

/// Copies `from` into `to`, keeping `to`'s allocation.
fn copy_into(to: &mut Snapshot, from: &Snapshot) {
    to.started = from.started;
    to.outcomes = from.outcomes;
    to.errors = from.errors;
    to.sum_ns = from.sum_ns;
    to.max_ns = from.max_ns;
    to.buckets.clone_from(&from.buckets);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::history::testing::{at, stamp, FakeRecorder, Rng};

    const NAMES: [&str; 3] = ["db", "cache", "search"];

    fn random_status(rng: &mut Rng) -> Status {
        match rng.below(20) {
            0..=13 => Status::Ok,
            14..=15 => Status::Degraded,
            16..=18 => Status::Down,
            _ => Status::Maintenance,
        }
    }

    /// What a minute should say: the worst of what was observed in it.
    #[derive(Default)]
    struct Reference {
        minutes: HashMap<u64, (Status, HashMap<&'static str, Status>)>,
    }

    impl Reference {
        fn observe(&mut self, minute: u64, overall: Status, components: &[(&'static str, Status)]) {
            let entry = self
                .minutes
                .entry(minute)
                .or_insert_with(|| (overall, HashMap::new()));
            entry.0 = entry.0.max(overall);
            for &(name, status) in components {
                let worst = entry.1.entry(name).or_insert(status);
                *worst = (*worst).max(status);
            }
        }

        /// Uptime over the `n` minutes ending with `now`, counted plainly.
        fn uptime(&self, now: u64, n: u64) -> Uptime {
            let mut overall = UptimeFigure::default();
            let mut components: BTreeMap<String, UptimeFigure> = BTreeMap::new();
            let first = now + 1 - n;
            for name in NAMES {
                if (first..=now).any(|m| {
                    self.minutes
                        .get(&m)
                        .is_some_and(|(_, c)| c.contains_key(name))
                }) {
                    components.insert(name.to_owned(), UptimeFigure::default());
                }
            }
            for m in first..=now {
                let minute = self.minutes.get(&m);
                overall.count(minute.map(|(s, _)| *s));
                for (name, figure) in &mut components {
                    figure.count(minute.and_then(|(_, c)| c.get(name.as_str()).copied()));
                }
            }
            Uptime {
                window_minutes: n as u32,
                overall,
                components,
            }
        }
    }

    #[test]
    fn minutes_rotate_and_uptime_matches_a_reference_over_two_days() {
        let mut rng = Rng::new(0x5eed_1234);
        let mut history = History::new(Settings::default());
        let mut reference = Reference::default();
        // Starts a day and an hour in: earlier minutes have no data.
        for minute in 1500..1500 + 2 * 1440 + 37 {
            // One minute in ten observes nothing: no data.
            if rng.below(10) > 0 {
                let mut secs: Vec<u64> = (0..1 + rng.below(4)).map(|_| rng.below(60)).collect();
                secs.sort_unstable();
                for s in secs {
                    let overall = random_status(&mut rng);
                    let mut components: Vec<(&'static str, Status)> = Vec::new();
                    for name in NAMES {
                        if rng.below(4) > 0 {
                            components.push((name, random_status(&mut rng)));
                        }
                    }
                    history.observe(at(minute, s), overall, components.iter().copied());
                    reference.observe(minute, overall, &components);
                }
            }
            if minute % 97 == 0 || minute % 1440 == 1439 {
                let now = at(minute, 59);
                for n in [1, 5, 60, 61, 1439, 1440] {
                    let window = Duration::from_secs(n * 60);
                    assert_eq!(
                        history.uptime(now, window),
                        reference.uptime(minute, n),
                        "minute {minute}, window {n}"
                    );
                }
                // Asking from later on: the minutes since have no data.
                let later = minute + 30;
                assert_eq!(
                    history.uptime(at(later, 0), Duration::from_secs(86_400)),
                    reference.uptime(later, 1440),
                    "minute {minute}, asked 30 minutes later"
                );
            }
        }
        // The series says what the reference says, minute by minute.
        let end = 1500 + 2 * 1440 + 36;
        let view = history.series(at(end, 10), Duration::from_secs(86_400));
        assert_eq!(view.window_minutes, 1440);
        assert_eq!(view.minutes.len(), 1440);
        assert_eq!(view.uptime_1h, reference.uptime(end, 60));
        assert_eq!(view.uptime_24h, reference.uptime(end, 1440));
        for (i, minute) in view.minutes.iter().enumerate() {
            let m = end + 1 - 1440 + i as u64;
            assert_eq!(minute.start, Timestamp(at(m, 0)));
            let expected = reference.minutes.get(&m);
            assert_eq!(minute.status, expected.map(|(s, _)| *s), "minute {m}");
            let components: BTreeMap<String, Status> = expected
                .map(|(_, c)| c.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect())
                .unwrap_or_default();
            assert_eq!(minute.components, components, "minute {m}");
        }
    }

    #[test]
    fn windows_are_whole_minutes_ending_with_the_current_one() {
        assert_eq!(minutes_in(Duration::ZERO), 1);
        assert_eq!(minutes_in(Duration::from_secs(60)), 1);
        assert_eq!(minutes_in(Duration::from_millis(60_001)), 2);
        assert_eq!(minutes_in(Duration::from_secs(3600)), 60);
        assert_eq!(minutes_in(Duration::from_secs(7 * 86_400)), 1440);
        let mut history = History::new(Settings::default());
        // Components seen before the overall status is known.
        history.observe(at(9, 0), None, [("db", Status::Down)]);
        let view = history.series(at(9, 30), Duration::from_secs(60));
        assert_eq!(view.minutes[0].status, None);
        assert_eq!(view.minutes[0].components["db"], Status::Down);
        history.observe(at(10, 59), Status::Down, []);
        history.observe(at(11, 0), Status::Ok, []);
        let up = history.uptime(at(11, 30), Duration::from_secs(120));
        assert_eq!((up.overall.up_minutes, up.overall.down_minutes), (1, 1));
        let up = history.uptime(at(11, 30), Duration::from_secs(60));
        assert_eq!((up.overall.up_minutes, up.overall.down_minutes), (1, 0));
        // Before anything was seen, and before the Unix epoch: no data.
        let empty = History::new(Settings::default());
        let up = empty.uptime(at(0, 0), Duration::from_secs(3600));
        assert_eq!((up.overall.ratio, up.overall.no_data_minutes), (None, 60));
        let up = empty.uptime(
            UNIX_EPOCH - Duration::from_secs(1),
            Duration::from_secs(3600),
        );
        assert_eq!((up.overall.ratio, up.overall.no_data_minutes), (None, 60));
        assert!(empty
            .series(UNIX_EPOCH - Duration::from_secs(1), Duration::from_secs(60))
            .minutes
            .is_empty());
    }

    #[test]
    fn the_series_serializes_as_documented_and_to_its_schema() {
        let mut history = History::new(Settings::default());
        let mut rec = FakeRecorder::new();
        history.observe(at(1, 5), Status::Ok, [("db", Status::Ok)]);
        history.observe(at(1, 50), Status::Degraded, [("db", Status::Degraded)]);
        rec.requests(3, 2.0, false).requests(1, 80.0, true);
        history.record_traffic(at(1, 50), rec.snapshot());
        let view = history.series(at(1, 59), Duration::from_secs(120));
        let json = serde_json::to_value(&view).unwrap();
        let minutes = serde_json::json!([
            {"start": "2026-01-01T00:00:00.000Z", "requests": 0, "errors": 0},
            {"start": "2026-01-01T00:01:00.000Z", "status": "degraded",
             "components": {"db": "degraded"}, "requests": 4, "errors": 1,
             "p50_ms": view.minutes[1].p50_ms, "p99_ms": view.minutes[1].p99_ms}
        ]);
        assert_eq!(json["minutes"], minutes);
        assert_eq!(json["window_minutes"], 2);
        assert_eq!(json["uptime_1h"]["overall"]["up_minutes"], 1);
        assert_eq!(json["uptime_1h"]["overall"]["no_data_minutes"], 59);
        assert_eq!(json["uptime_24h"]["components"]["db"]["ratio"], 1.0);
        assert!(json.get("components_dropped").is_none());
        let schema = serde_json::to_value(schemars::schema_for!(HistoryView)).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(validator.is_valid(&json), "{json}");
        let back: HistoryView = serde_json::from_value(json).unwrap();
        assert_eq!(back, view);
    }

    fn statuses(history: &History, now: SystemTime, n: u64) -> Vec<Option<Status>> {
        history
            .series(now, Duration::from_secs(n * 60))
            .minutes
            .iter()
            .map(|m| m.status)
            .collect()
    }

    #[test]
    fn a_clock_that_jumps_back_never_rewrites_the_past() {
        use Status::{Degraded, Down, Maintenance, Ok};
        // Two days into the simulated time, so a day back is still after it.
        let at = |m: u64, s| at(m + 2880, s);
        let stamp = |m: u64| stamp(m + 2880);
        let mut history = History::new(Settings::default());
        let mut traffic = FakeRecorder::new();
        history.observe(at(1100, 10), Ok, [("db", Ok)]);
        history.observe(at(1101, 10), Ok, [("db", Ok)]);
        traffic.requests(10, 5.0, false);
        history.record_traffic(at(1101, 10), traffic.snapshot());
        // Back 30 seconds, into the minute before: booked into the newest.
        history.observe(at(1100, 40), Degraded, [("db", Down)]);
        assert_eq!(history.head, Some(stamp(1101)));
        assert_eq!(
            statuses(&history, at(1101, 59), 2),
            [Some(Ok), Some(Degraded)]
        );
        // Back two hours: still the newest minute, and the window asked
        // at that time ends with it.
        history.observe(at(1101 - 120, 0), Down, []);
        traffic.requests(5, 5.0, true);
        history.record_traffic(at(1101 - 120, 0), traffic.snapshot());
        assert_eq!(
            statuses(&history, at(1101 - 120, 0), 2),
            [Some(Ok), Some(Down)]
        );
        let slot = history.slot(stamp(1101)).unwrap();
        assert_eq!((slot.traffic.requests, slot.traffic.errors), (15, 5));
        assert_eq!(
            history.slot(stamp(1100)).unwrap().component(0),
            code(Ok),
            "the past is untouched"
        );

        // Forward three hours: the minutes skipped have no data.
        history.observe(at(1281, 0), Ok, [("db", Ok)]);
        let view = statuses(&history, at(1281, 0), 182);
        assert_eq!(view[0], Some(Ok));
        assert_eq!(view[1], Some(Down));
        assert!(view[2..181].iter().all(Option::is_none));
        assert_eq!(view[181], Some(Ok));
        let up = history.uptime(at(1281, 0), Duration::from_secs(86_400));
        assert_eq!(
            (up.overall.up_minutes, up.overall.down_minutes),
            (2, 1),
            "{up:?}"
        );

        // Forward more than a day: nothing of before is left.
        history.observe(at(1281 + 1500, 0), Maintenance, []);
        let up = history.uptime(at(1281 + 1500, 0), Duration::from_secs(86_400));
        assert_eq!((up.overall.up_minutes, up.overall.down_minutes), (0, 0));
        assert_eq!(up.overall.maintenance_minutes, 1);
        assert!(up.components.is_empty());

        // Back more than a day: the ring starts over at the new time.
        history.observe(at(1200, 0), Degraded, []);
        assert_eq!(history.head, Some(stamp(1200)));
        let view = statuses(&history, at(1200, 0), 1440);
        assert_eq!(view.iter().flatten().count(), 1);
        assert_eq!(view[1439], Some(Degraded));
        // ... and goes on from there.
        history.observe(at(1201, 0), Down, []);
        assert_eq!(
            statuses(&history, at(1201, 0), 2),
            [Some(Degraded), Some(Down)]
        );
        // Asked from a day or more before the newest minute: no data.
        let long_before = statuses(
            &history,
            crate::history::testing::at(1201 + 2880 - 1440, 0),
            1440,
        );
        assert!(long_before.iter().all(Option::is_none));
        // Before the epoch: no minutes at all.
        assert!(statuses(&history, UNIX_EPOCH - Duration::from_secs(1), 10).is_empty());
    }

    #[test]
    fn traffic_of_a_minute_is_the_recorders_delta_over_the_minute() {
        let mut history = History::new(Settings {
            latency_threshold: Some(Duration::from_millis(100)),
        });
        let mut rec = FakeRecorder::new();
        // Traffic before the first booking counts from zero.
        rec.requests(40, 3.0, false);
        history.record_traffic(at(5, 1), rec.snapshot());
        rec.requests(50, 20.0, false).requests(10, 250.0, true);
        history.record_traffic(at(5, 30), rec.snapshot());
        rec.aborted(5, 400.0);
        history.record_traffic(at(5, 59), rec.snapshot());
        let end_of_5 = rec.snapshot().clone();
        // The next minute counts from the last snapshot of the one before.
        rec.requests(7, 1.0, false);
        history.record_traffic(at(6, 2), rec.snapshot());
        rec.requests(3, 2000.0, true);
        history.record_traffic(at(6, 40), rec.snapshot());

        let five = history.slot(stamp(5)).unwrap().traffic;
        let whole = latency_between(&end_of_5, &Snapshot::zero());
        assert_eq!(five.requests, 105);
        assert_eq!(five.errors, 10, "aborts are not errors");
        assert_eq!(five.fast, 90);
        assert_eq!(f64::from(five.p50_us) / 1000.0, whole.p50);
        assert_eq!(f64::from(five.p99_us) / 1000.0, whole.p99);
        assert!((whole.p50 - 20.0).abs() < 20.0 * 0.035, "{whole:?}");

        let six = history.slot(stamp(6)).unwrap().traffic;
        let delta = latency_between(rec.snapshot(), &end_of_5);
        assert_eq!((six.requests, six.errors, six.fast), (10, 3, 7));
        assert_eq!(f64::from(six.p99_us) / 1000.0, delta.p99);
        assert!((delta.p99 - 2000.0).abs() < 2000.0 * 0.035);

        let view = history.series(at(6, 50), Duration::from_secs(180));
        let m: Vec<_> = view
            .minutes
            .iter()
            .map(|m| (m.requests, m.errors, m.p50_ms.is_some()))
            .collect();
        assert_eq!(m, [(0, 0, false), (105, 10, true), (10, 3, true)]);
        // Traffic alone is not an observation: the status has no data.
        assert_eq!(view.minutes[1].status, None);

        // A new recorder (counters below the last): the minute keeps what
        // it had and adds the new counts.
        let mut fresh = FakeRecorder::new();
        fresh.requests(4, 1.0, true);
        history.record_traffic(at(6, 50), fresh.snapshot());
        let six = history.slot(stamp(6)).unwrap().traffic;
        assert_eq!((six.requests, six.errors, six.fast), (14, 7, 11));
        assert_eq!(f64::from(six.p99_us) / 1000.0, delta.p99);
        // Minutes skipped between bookings have no traffic; what happened
        // meanwhile goes into the minute of the booking.
        fresh.requests(6, 1.0, false);
        history.record_traffic(at(9, 0), fresh.snapshot());
        let t: Vec<_> = (6..=9)
            .map(|m| history.slot(stamp(m)).map(|s| s.traffic.requests))
            .collect();
        assert_eq!(t, [Some(14), None, None, Some(6)]);
    }

    #[test]
    fn fast_requests_are_those_in_buckets_wholly_at_or_below_the_threshold() {
        let threshold = Duration::from_millis(300);
        let mut history = History::new(Settings {
            latency_threshold: Some(threshold),
        });
        let mut rec = FakeRecorder::new();
        // 280 ms is in a bucket ending below 300 ms; 290 ms shares one
        // with 300.5 ms, so it counts as slow.
        rec.requests(1, 1.0, false)
            .requests(1, 280.0, false)
            .requests(1, 290.0, false)
            .requests(1, 300.5, false)
            .requests(1, 310.0, false);
        history.record_traffic(at(1, 0), rec.snapshot());
        assert_eq!(history.slot(stamp(1)).unwrap().traffic.fast, 2);
        // No threshold: not counted.
        let mut none = History::new(Settings::default());
        none.record_traffic(at(1, 0), rec.snapshot());
        assert_eq!(none.slot(stamp(1)).unwrap().traffic.fast, UNKNOWN);

        // The rounding the docs state: the fast buckets end at or below
        // the threshold, and the first slow one starts less than 1/16 of
        // it below.
        for ms in [1u64, 7, 50, 100, 250, 300, 999, 1000, 2500, 30_000] {
            let ns = ms * 1_000_000;
            let h = History::new(Settings {
                latency_threshold: Some(Duration::from_millis(ms)),
            });
            let k = h.fast_buckets();
            assert!(histogram::upper_bound(k - 1) <= ns, "{ms} ms");
            assert!(histogram::upper_bound(k) > ns, "{ms} ms");
            assert!(ns - histogram::lower_bound(k) < ns / 16, "{ms} ms");
        }
    }

    #[test]
    fn the_component_table_is_fixed_and_frees_columns_idle_for_a_day() {
        let mut history = History::new(Settings::default());
        let names: Vec<String> = (0..70).map(|i| format!("c{i}")).collect();
        let some = |range: std::ops::Range<usize>, status| {
            names[range].iter().map(move |n| (n.as_str(), status))
        };
        let all = || some(0..70, Status::Down);
        history.observe(at(0, 0), Status::Down, all());
        assert_eq!(history.components_dropped(), 6);
        history.observe(at(0, 30), Status::Down, all());
        assert_eq!(history.components_dropped(), 12);
        let long = "x".repeat(MAX_NAME_LEN + 1);
        history.observe(at(0, 40), Status::Ok, [(long.as_str(), Status::Ok)]);
        assert_eq!(history.components_dropped(), 13);
        let up = history.uptime(at(0, 59), Duration::from_secs(60));
        assert_eq!(up.components.len(), 64);
        assert!(!up.components.contains_key("c64"));
        let view = history.series(at(0, 59), Duration::from_secs(60));
        assert_eq!(view.components_dropped, 13);

        // A day on, only the first ten are still seen: the others' columns
        // go to new names, without the old names' data.
        for minute in 1..=1440 {
            history.observe(at(minute, 0), Status::Ok, some(0..10, Status::Ok));
        }
        assert_eq!(history.components_dropped(), 13);
        history.observe(at(1440, 10), Status::Ok, some(60..70, Status::Ok));
        assert_eq!(history.components_dropped(), 13);
        let up = history.uptime(at(1440, 59), Duration::from_secs(86_400));
        assert_eq!(up.components.len(), 20);
        for name in ["c0", "c9", "c60", "c69"] {
            assert_eq!(up.components[name].down_minutes, 0, "{name}");
        }
        assert_eq!(up.components["c69"].up_minutes, 1);
        assert_eq!(up.components["c0"].up_minutes, 1440);
        // The new names kept their columns: no name is in the table twice.
        let named: Vec<&str> = history.names.iter().flatten().map(|n| &**n).collect();
        assert_eq!(named.len(), 64);
        let mut unique = named.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 64);
        // A minute on, the 44 names last seen at minute 0 are idle: 50
        // names coming back share their columns, and 6 are dropped.
        history.observe(at(1441, 0), Status::Ok, some(0..60, Status::Ok));
        assert_eq!(history.components_dropped(), 19);
        // Now full of names seen within the day: a new one is dropped.
        history.observe(at(1441, 1), Status::Ok, [("another", Status::Ok)]);
        assert_eq!(history.components_dropped(), 20);
        let up = history.uptime(at(1441, 59), Duration::from_secs(60));
        assert_eq!(up.components.len(), 54);
        let up = history.uptime(at(1441, 59), Duration::from_secs(120));
        assert_eq!(up.components.len(), 64);
        assert!(up.components.values().all(|f| f.down_minutes == 0));
    }

    #[test]
    fn memory_stays_fixed_over_days_of_minutes() {
        let mut history = History::new(Settings {
            latency_threshold: Some(Duration::from_millis(300)),
        });
        let mut rec = FakeRecorder::new();
        let mut rng = Rng::new(7);
        let heap = |h: &History| {
            (
                h.slots.len(),
                h.meter.base.buckets.capacity(),
                h.meter.last.buckets.capacity(),
                h.size_bytes(),
            )
        };
        let mut day = |history: &mut History, first: u64| {
            for minute in first..first + 1440 {
                for secs in [0, 20, 40] {
                    rec.requests(rng.below(500), rng.below(400) as f64, false)
                        .requests(rng.below(5), 1000.0, true);
                    let now = at(minute, secs);
                    history.observe(now, random_status(&mut rng), NAMES.map(|n| (n, Status::Ok)));
                    history.record_traffic(now, rec.snapshot());
                }
            }
        };
        day(&mut history, 0);
        let after_one = heap(&history);
        assert_eq!(after_one.0, SLOTS);
        assert_eq!(after_one.1, histogram::BUCKETS);
        day(&mut history, 1440);
        assert_eq!(heap(&history), after_one);
        day(&mut history, 2880);
        assert_eq!(heap(&history), after_one);
    }

    #[test]
    fn size_is_as_documented() {
        assert_eq!(std::mem::size_of::<Slot>(), 60);
        assert_eq!(SLOTS * std::mem::size_of::<Slot>(), RING_BYTES);
        assert_eq!(RING_BYTES, 86_400);
        let mut history = History::new(Settings::default());
        // The module docs: 97 248 bytes in all on 64-bit targets, names aside.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(history.size_bytes(), 97_248);
        let empty = history.size_bytes();
        history.observe(
            at(0, 0),
            Status::Ok,
            [("db", Status::Ok), ("cache", Status::Ok)],
        );
        assert_eq!(history.size_bytes(), empty + "db".len() + "cache".len());
    }
}
