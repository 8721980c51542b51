//! The history in a file, so a restart keeps the day.
//!
//! # Format (version 1)
//!
//! Little-endian throughout. A 48-byte header:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0..8   | magic `TWSTHIST` |
//! | 8..10  | format version (`u16`, 1) |
//! | 10..12 | reserved, 0 |
//! | 12..16 | length of the payload in bytes (`u32`) |
//! | 16..48 | SHA-256 of bytes 0..16 followed by the payload |
//!
//! then the payload:
//!
//! - `u32` the newest minute (minutes since the Unix epoch; `u32::MAX`: none);
//! - `u64` the latency threshold in nanoseconds the fast counts were
//!   taken at (`u64::MAX`: none);
//! - `u64` component observations dropped;
//! - `u8` count of component names, then for each: `u8` column (< 64),
//!   `u16` length, that many bytes of UTF-8;
//! - `u16` count of slots (at most 1440, those within a day of the newest
//!   minute that hold anything), then for each 57 bytes: `u32` minute,
//!   `u32` requests, errors, fast requests (`u32::MAX`: unknown), p50 and
//!   p99 in microseconds, `u8` overall status, 32 bytes of component
//!   statuses, two a byte (column `2i` in the low half of byte `i`).
//!   A status is 0 for no data, 1 `ok`, 2 `degraded`, 3 `down`,
//!   4 `maintenance`.
//!
//! A full day is 82 343 bytes with 64 components, plus the bytes of their
//! names, and reads in well under a millisecond (a test holds it under
//! 100 ms, unoptimized). Everything is checked before anything is used: a file
//! that is not exactly right is rejected whole.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::ring::{
    History, MinuteTraffic, Settings, Slot, MAX_CODE, MAX_COMPONENTS, MAX_NAME_LEN, NO_MINUTE,
    SLOTS, UNKNOWN,
};

const MAGIC: [u8; 8] = *b"TWSTHIST";
/// The format version written, and the newest one read.
pub(crate) const VERSION: u16 = 1;
/// Bytes before the payload.
const HEADER: usize = 48;
/// Bytes of one slot in the payload.
const SLOT_BYTES: usize = 4 * 6 + 1 + MAX_COMPONENTS / 2;

/// Why a history file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BadFile {
    /// It has no bytes at all.
    Empty,
    /// It ends early: `len` bytes where at least `expected` are needed.
    Truncated { len: usize, expected: usize },
    /// It is not a history file: the magic is wrong.
    Foreign,
    /// A newer version of the crate wrote it, in a format this one does not read.
    FutureVersion(u16),
    /// It is damaged: the checksum or a value is wrong.
    Corrupt(String),
}

impl fmt::Display for BadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadFile::Empty => f.write_str("the file is empty"),
            BadFile::Truncated { len, expected } => {
                write!(f, "truncated: {len} bytes, expected {expected}")
            }
            BadFile::Foreign => f.write_str("not a tower-status history file (wrong magic)"),
            BadFile::FutureVersion(v) => write!(
                f,
                "written in format version {v} by a newer version; this one reads up to {VERSION}"
            ),
            BadFile::Corrupt(why) => write!(f, "corrupt: {why}"),
        }
    }
}

/// A history file that could not be read.
#[derive(Debug)]
pub(crate) struct LoadError {
    path: PathBuf,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Io(io::Error),
    Bad(BadFile),
}

impl LoadError {
    /// The file.
    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// What is wrong with its content; `None` when it could not be read
    /// (then it should stay where it is: the content may be fine).
    pub(crate) fn bad_file(&self) -> Option<&BadFile> {
        match &self.cause {
            Cause::Bad(bad) => Some(bad),
            Cause::Io(_) => None,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "history file {}: ", self.path.display())?;
        match &self.cause {
            Cause::Io(e) => write!(f, "cannot be read: {e}"),
            Cause::Bad(bad) => bad.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Io(e) => Some(e),
            Cause::Bad(_) => None,
        }
    }
}

impl History {
    /// The history in the file format.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let live: Vec<&Slot> = match self.head {
            Some(head) => (head.saturating_sub(SLOTS as u32 - 1)..=head)
                .filter_map(|m| self.slot(m))
                .filter(|s| *s != &Slot::at(s.minute))
                .collect(),
            None => Vec::new(),
        };
        let names: Vec<(usize, &str)> = self
            .names
            .iter()
            .enumerate()
            .filter_map(|(k, n)| Some((k, n.as_deref()?)))
            .collect();
        let mut p = Vec::with_capacity(
            32 + names.iter().map(|(_, n)| 3 + n.len()).sum::<usize>() + live.len() * SLOT_BYTES,
        );
        p.extend(self.head.unwrap_or(NO_MINUTE).to_le_bytes());
        p.extend(threshold_ns(self.settings).to_le_bytes());
        p.extend(self.dropped.to_le_bytes());
        p.push(names.len() as u8);
        for (k, name) in names {
            p.push(k as u8);
            p.extend((name.len() as u16).to_le_bytes());
            p.extend(name.as_bytes());
        }
        p.extend((live.len() as u16).to_le_bytes());
        for s in live {
            let t = s.traffic;
            for n in [s.minute, t.requests, t.errors, t.fast, t.p50_us, t.p99_us] {
                p.extend(n.to_le_bytes());
            }
            p.push(s.overall);
            p.extend(s.components);
        }

        let mut out = Vec::with_capacity(HEADER + p.len());
        out.extend(MAGIC);
        out.extend(VERSION.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend((p.len() as u32).to_le_bytes());
        let sum = checksum(&out, &p);
        out.extend(sum);
        out.extend(p);
        out
    }

    /// Reads a history written by [`to_bytes`](Self::to_bytes), whole or
    /// not at all. Fast counts taken at another latency threshold than
    /// `settings`' are kept as unknown.
    pub(crate) fn from_bytes(bytes: &[u8], settings: Settings) -> Result<History, BadFile> {
        if bytes.is_empty() {
            return Err(BadFile::Empty);
        }
        let magic = &bytes[..bytes.len().min(MAGIC.len())];
        if magic != &MAGIC[..magic.len()] {
            return Err(BadFile::Foreign);
        }
        if bytes.len() < HEADER {
            return Err(BadFile::Truncated {
                len: bytes.len(),
                expected: HEADER,
            });
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version > VERSION {
            return Err(BadFile::FutureVersion(version));
        }
        if version == 0 {
            return Err(BadFile::Corrupt("format version 0".into()));
        }
        let len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        let payload = &bytes[HEADER..];
        if payload.len() < len {
            return Err(BadFile::Truncated {
                len: bytes.len(),
                expected: HEADER + len,
            });
        }
        if payload.len() > len {
            return Err(BadFile::Corrupt(format!(
                "{} bytes after the end of the history",
                payload.len() - len
            )));
        }
        if checksum(&bytes[..16], payload) != bytes[16..HEADER] {
            return Err(BadFile::Corrupt("checksum mismatch".into()));
        }
        if bytes[10..12] != [0, 0] {
            return Err(BadFile::Corrupt("reserved header bytes set".into()));
        }
        parse(payload, settings).map_err(BadFile::Corrupt)
    }

    /// Writes the history to `path` atomically (see [`save_bytes`]).
    #[cfg_attr(not(test), allow(dead_code))] // Used by the tests.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        save_bytes(path, &self.to_bytes())
    }

    /// Reads the history saved at `path`: `Ok(None)` when there is no
    /// such file, an error naming the file and why when it cannot be read
    /// or is not a good history file (then start empty, and
    /// [`move_aside`] a bad one).
    pub(crate) fn load(path: &Path, settings: Settings) -> Result<Option<History>, LoadError> {
        let error = |cause| LoadError {
            path: path.to_owned(),
            cause,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(Cause::Io(e))),
        };
        History::from_bytes(&bytes, settings)
            .map(Some)
            .map_err(|bad| error(Cause::Bad(bad)))
    }
}

/// Writes `bytes` (a history's [`to_bytes`](History::to_bytes)) to `path`
/// atomically: into a new file in the same directory, synced, then renamed
/// over `path`, and the directory synced (on Unix). A reader sees the old
/// file or the new one, never a part; a failed write leaves the old file
/// as it was. Blocking I/O: from async code, off the runtime's threads.
pub(crate) fn save_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        SAVES.fetch_add(1, Relaxed)
    ));
    let tmp = dir.join(tmp_name);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable once the directory is synced; where a
    // directory cannot be synced, it is as durable as it gets.
    #[cfg(unix)]
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// Renames a bad history file to `<path>.corrupt-<unix seconds>` (with
/// `-1`, `-2`, ... if that is taken), so the next save does not overwrite
/// it and someone can look at it. Returns the new path.
pub(crate) fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mut base = path.as_os_str().to_owned();
    base.push(format!(".corrupt-{secs}"));
    let mut target = PathBuf::from(&base);
    let mut n = 0;
    while target.exists() {
        n += 1;
        let mut name = base.clone();
        name.push(format!("-{n}"));
        target = PathBuf::from(name);
    }
    std::fs::rename(path, &target)?;
    Ok(target)
}

/// The latency threshold as the file stores it.
fn threshold_ns(settings: Settings) -> u64 {
    settings.latency_threshold.map_or(u64::MAX, |t| {
        u64::try_from(t.as_nanos()).unwrap_or(u64::MAX - 1)
    })
}

fn checksum(header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(header);
    hash.update(payload);
    hash.finalize().into()
}

/// Reads values off the front of a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("the payload ends inside {what}"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }
}

/// The payload, every value checked.
fn parse(payload: &[u8], settings: Settings) -> Result<History, String> {
    let mut r = Reader(payload);
    let mut history = History::new(settings);
    let head = r.u32("the newest minute")?;
    history.head = (head != NO_MINUTE).then_some(head);
    let threshold = r.u64("the latency threshold")?;
    let same_threshold = threshold_ns(settings) == threshold;
    history.dropped = r.u64("the dropped count")?;

    let names = r.u8("the count of names")?;
    if usize::from(names) > MAX_COMPONENTS {
        return Err(format!("{names} component names, at most {MAX_COMPONENTS}"));
    }
    for _ in 0..names {
        let k = usize::from(r.u8("a name's column")?);
        let len = usize::from(r.u16("a name's length")?);
        let name = std::str::from_utf8(r.take(len, "a name")?)
            .map_err(|_| "a component name is not UTF-8".to_owned())?;
        if k >= MAX_COMPONENTS || len > MAX_NAME_LEN {
            return Err(format!(
                "component column {k} or name length {len} out of range"
            ));
        }
        if history.names[k].is_some() || history.names.iter().flatten().any(|n| &**n == name) {
            return Err(format!("component column {k} or name {name:?} given twice"));
        }
        history.names[k] = Some(name.into());
    }
    let named = history
        .names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.is_some())
        .fold(0u64, |mask, (k, _)| mask | 1 << k);

    let count = usize::from(r.u16("the count of slots")?);
    if count > SLOTS {
        return Err(format!("{count} slots, at most {SLOTS}"));
    }
    if count > 0 && history.head.is_none() {
        return Err("slots without a newest minute".into());
    }
    for _ in 0..count {
        let mut fields = [0u32; 6];
        for f in &mut fields {
            *f = r.u32("a slot")?;
        }
        let [minute, requests, errors, fast, p50_us, p99_us] = fields;
        let overall = r.u8("a slot")?;
        let components: [u8; MAX_COMPONENTS / 2] = r.array("a slot")?;
        let slot = Slot {
            minute,
            traffic: MinuteTraffic {
                requests,
                errors,
                fast: if same_threshold { fast } else { UNKNOWN },
                p50_us,
                p99_us,
            },
            overall,
            components,
        };
        check_slot(&slot, head, named, fast)?;
        let place = &mut history.slots[minute as usize % SLOTS];
        if place.minute != NO_MINUTE {
            return Err(format!("minute {minute} given twice"));
        }
        *place = slot;
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the slots", r.0.len()));
    }
    Ok(history)
}

fn check_slot(slot: &Slot, head: u32, named: u64, fast: u32) -> Result<(), String> {
    let minute = slot.minute;
    if head.checked_sub(minute).is_none_or(|d| d >= SLOTS as u32) {
        return Err(format!("minute {minute} is not within a day of {head}"));
    }
    let t = slot.traffic;
    if t.errors > t.requests || (fast != UNKNOWN && fast > t.requests) {
        return Err(format!(
            "minute {minute}: more errors or fast requests than requests"
        ));
    }
    if slot.overall > MAX_CODE || (0..MAX_COMPONENTS).any(|k| slot.component(k) > MAX_CODE) {
        return Err(format!("minute {minute}: a status out of range"));
    }
    if (0..MAX_COMPONENTS).any(|k| slot.component(k) != 0 && named & (1 << k) == 0) {
        return Err(format!(
            "minute {minute}: a status for an unnamed component"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::history::slo::Objective;
    use crate::history::testing::{at, stamp, FakeRecorder, Rng};
    use crate::report::Status;

    fn settings() -> Settings {
        Settings {
            latency_threshold: Some(Duration::from_millis(300)),
        }
    }

    /// A day and a bit of minutes: statuses, traffic, more components
    /// than fit, a name that is not ASCII.
    fn a_day(minutes: u64) -> History {
        let mut history = History::new(settings());
        let mut rec = FakeRecorder::new();
        let mut rng = Rng::new(99);
        let names: Vec<String> = (0..70).map(|i| format!("dépendance-{i}")).collect();
        history.observe(
            at(0, 0),
            Status::Ok,
            names.iter().map(|n| (n.as_str(), Status::Ok)),
        );
        for minute in 0..minutes {
            if rng.below(8) == 0 {
                continue;
            }
            let status = [
                Status::Ok,
                Status::Degraded,
                Status::Down,
                Status::Maintenance,
            ][rng.below(4) as usize];
            let k = rng.below(64) as usize;
            history.observe(
                at(minute, 10),
                status,
                [(names[k].as_str(), status), ("db", Status::Ok)],
            );
            rec.requests(rng.below(1000), rng.below(600) as f64, false)
                .requests(rng.below(20), 50.0, true)
                .aborted(rng.below(3), 10.0);
            history.record_traffic(at(minute, 10), rec.snapshot());
        }
        history
    }

    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tower-status-history-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Everything the history serves at `now`, to compare two of them.
    fn served(history: &History, now: SystemTime) -> String {
        let objectives = [
            Objective::availability(0.999),
            Objective::latency(Duration::from_millis(300), 0.99),
        ];
        let reports: Vec<_> = objectives.iter().map(|o| o.report(history, now)).collect();
        serde_json::to_string(&(history.series(now, Duration::from_secs(86_400)), reports)).unwrap()
    }

    #[test]
    fn a_day_round_trips_through_bytes_and_a_file() {
        let history = a_day(1500);
        let now = at(1499, 30);
        let bytes = history.to_bytes();
        assert!(bytes.len() < 84 * 1024, "{} bytes", bytes.len());
        let started = Instant::now();
        let back = History::from_bytes(&bytes, settings()).unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(100), "{took:?}");
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(served(&back, now), served(&history, now));
        assert_eq!(back.components_dropped(), history.components_dropped());
        assert!(history.components_dropped() > 0);

        let dir = scratch_dir("round-trip");
        let path = dir.join("history.bin");
        assert!(History::load(&path, settings()).unwrap().is_none());
        History::new(settings()).save(&path).unwrap();
        history.save(&path).unwrap(); // over the older file
        let loaded = History::load(&path, settings()).unwrap().unwrap();
        assert_eq!(loaded.to_bytes(), bytes);
        // No temporary file is left behind.
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1);

        // A save that fails leaves the file it would replace, and no
        // temporary file.
        let occupied = dir.join("occupied");
        std::fs::create_dir(&occupied).unwrap();
        std::fs::write(occupied.join("keep"), b"x").unwrap();
        assert!(history.save(&occupied).is_err());
        assert_eq!(std::fs::read(occupied.join("keep")).unwrap(), b"x");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        assert!(save_bytes(Path::new("/"), &bytes).is_err());

        // An empty history too.
        let empty = History::new(Settings::default());
        let back = History::from_bytes(&empty.to_bytes(), Settings::default()).unwrap();
        assert_eq!(back.head, None);
        assert_eq!(back.to_bytes(), empty.to_bytes());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_restart_mid_minute_keeps_the_minute() {
        let mut before = History::new(settings());
        let mut rec = FakeRecorder::new();
        rec.requests(100, 10.0, false).requests(5, 900.0, true);
        before.record_traffic(at(7, 5), rec.snapshot());
        before.observe(at(7, 5), Status::Down, [("db", Status::Down)]);
        let mut after = History::from_bytes(&before.to_bytes(), settings()).unwrap();
        // The new process's recorder starts at zero.
        let mut fresh = FakeRecorder::new();
        fresh.requests(50, 10.0, false);
        after.record_traffic(at(7, 40), fresh.snapshot());
        after.observe(at(7, 40), Status::Ok, [("db", Status::Ok)]);
        let slot = after.slot(stamp(7)).unwrap();
        assert_eq!(
            (
                slot.traffic.requests,
                slot.traffic.errors,
                slot.traffic.fast
            ),
            (155, 5, 150)
        );
        assert_eq!(
            slot.traffic.p99_us,
            before.slot(stamp(7)).unwrap().traffic.p99_us
        );
        assert_eq!(slot.overall, 3, "the worst of the minute, down");
    }

    #[test]
    fn fast_counts_of_another_threshold_are_not_used() {
        let history = a_day(120);
        let now = at(119, 59);
        let slo = Objective::latency(Duration::from_millis(300), 0.99);
        assert!(slo.budget_left(&history, now).is_some());
        let other = Settings {
            latency_threshold: Some(Duration::from_millis(250)),
        };
        let back = History::from_bytes(&history.to_bytes(), other).unwrap();
        let slot = back.slot(stamp(100)).unwrap();
        assert_eq!(slot.traffic.fast, UNKNOWN);
        let slower = Objective::latency(Duration::from_millis(250), 0.99);
        assert_eq!(slower.report(&back, now).requests, 0);
        assert_eq!(slower.budget_left(&back, now), None);
        // Availability is unaffected.
        let available = Objective::availability(0.999);
        assert_eq!(
            available.report(&back, now),
            available.report(&history, now)
        );
    }

    /// `bytes` with the header's checksum made right again.
    fn resigned(mut bytes: Vec<u8>) -> Vec<u8> {
        let sum = checksum(&bytes[..16], &bytes[HEADER..]);
        bytes[16..HEADER].copy_from_slice(&sum);
        bytes
    }

    #[test]
    fn each_kind_of_bad_file_is_rejected_whole() {
        let bytes = a_day(1500).to_bytes();
        let read = |b: &[u8]| History::from_bytes(b, settings()).map(|_| ());

        assert_eq!(read(&[]), Err(BadFile::Empty));
        for cut in [3, 8, 20, 47, 48, 100, bytes.len() / 2, bytes.len() - 1] {
            let expected = if cut < HEADER { HEADER } else { bytes.len() };
            assert_eq!(
                read(&bytes[..cut]),
                Err(BadFile::Truncated { len: cut, expected }),
                "cut at {cut}"
            );
        }
        assert_eq!(read(b"{\"minutes\":[]}"), Err(BadFile::Foreign));
        assert_eq!(read(b"\x89PNG\r\n\x1a\n and so on"), Err(BadFile::Foreign));
        assert_eq!(
            read(b"TW"),
            Err(BadFile::Truncated {
                len: 2,
                expected: HEADER
            })
        );

        let mut future = bytes.clone();
        future[8..10].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(read(&future), Err(BadFile::FutureVersion(2)));

        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(read(&longer), Err(BadFile::Corrupt(_))));

        // A flipped byte anywhere: in the payload the checksum finds it.
        for i in [
            0,
            9,
            11,
            14,
            20,
            HEADER,
            HEADER + 7,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            let err = read(&flipped).unwrap_err();
            if i >= HEADER {
                assert_eq!(
                    err,
                    BadFile::Corrupt("checksum mismatch".into()),
                    "byte {i}"
                );
            }
        }
        // Every byte of a small file, every bit.
        let mut small = History::new(settings());
        small.observe(at(0, 0), Status::Ok, [("db", Status::Degraded)]);
        small.record_traffic(
            at(0, 0),
            FakeRecorder::new().requests(3, 1.0, false).snapshot(),
        );
        let small = small.to_bytes();
        for i in 0..small.len() {
            for bit in 0..8 {
                let mut flipped = small.clone();
                flipped[i] ^= 1 << bit;
                assert!(read(&flipped).is_err(), "byte {i}, bit {bit}");
            }
        }

        // Values out of range are caught even under a right checksum.
        let slot_at = |bytes: &[u8]| bytes.len() - SLOT_BYTES;
        let mut bad_status = small.clone();
        let overall = slot_at(&small) + 24;
        bad_status[overall] = 9;
        assert_eq!(
            read(&resigned(bad_status)),
            Err(BadFile::Corrupt(format!(
                "minute {}: a status out of range",
                stamp(0)
            )))
        );
        let mut unnamed = small.clone();
        let components = slot_at(&small) + 25;
        unnamed[components + 5] = 0x01;
        assert!(matches!(read(&resigned(unnamed)), Err(BadFile::Corrupt(_))));
        let mut more_errors = small.clone();
        let errors = slot_at(&small) + 8;
        more_errors[errors] = 200;
        assert!(matches!(
            read(&resigned(more_errors)),
            Err(BadFile::Corrupt(_))
        ));
        let mut old_minute = small.clone();
        let minute = slot_at(&small);
        old_minute[minute..minute + 4].copy_from_slice(&(stamp(0) - 1440).to_le_bytes());
        assert!(matches!(
            read(&resigned(old_minute)),
            Err(BadFile::Corrupt(_))
        ));
        let mut reserved = small.clone();
        reserved[10] = 1;
        assert_eq!(
            read(&resigned(reserved)),
            Err(BadFile::Corrupt("reserved header bytes set".into()))
        );
    }

    #[test]
    fn a_bad_file_is_named_and_moved_aside() {
        let dir = scratch_dir("bad-file");
        let path = dir.join("history.bin");
        let good = a_day(30).to_bytes();
        let cases: [(&[u8], &str); 4] = [
            (&[], "the file is empty"),
            (&good[..100], "truncated: 100 bytes, expected"),
            (b"not a history", "wrong magic"),
            (&good[..], ""),
        ];
        let mut moved = Vec::new();
        for (i, (content, why)) in cases.into_iter().enumerate() {
            let mut content = content.to_vec();
            if i == 3 {
                content[8] = 7; // version 7
            }
            std::fs::write(&path, &content).unwrap();
            let err = History::load(&path, settings()).unwrap_err();
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("history file {}: ", path.display())),
                "{text}"
            );
            assert!(text.contains(why), "{text}");
            assert_eq!(err.path(), path);
            assert!(err.bad_file().is_some());
            if i == 3 {
                assert_eq!(err.bad_file(), Some(&BadFile::FutureVersion(7)));
                assert!(text.contains("format version 7"), "{text}");
            }
            let aside = move_aside(&path).unwrap();
            assert!(!path.exists());
            assert_eq!(std::fs::read(&aside).unwrap(), content);
            let name = aside.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(name.starts_with("history.bin.corrupt-"), "{name}");
            moved.push(name);
            // Starting afresh: no file, an empty history.
            assert!(History::load(&path, settings()).unwrap().is_none());
        }
        moved.sort_unstable();
        moved.dedup();
        assert_eq!(moved.len(), 4, "each moved to its own name: {moved:?}");

        // A file that cannot be read is an error, not a bad file.
        let err = History::load(&dir, settings()).unwrap_err();
        assert!(err.bad_file().is_none());
        assert!(err.to_string().contains("cannot be read"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_slot_layout_is_what_the_docs_say() {
        assert_eq!(SLOT_BYTES, 57);
        let mut h = History::new(Settings::default());
        h.observe(
            at(3, 0),
            Status::Down,
            [("a", Status::Ok), ("b", Status::Degraded)],
        );
        let bytes = h.to_bytes();
        assert_eq!(&bytes[..8], b"TWSTHIST");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), VERSION);
        // head, threshold, dropped, names (1 + 2 * (1 + 2 + 1)), slots (2 + 57).
        let payload = 4 + 8 + 8 + 1 + 2 * 4 + 2 + 57;
        assert_eq!(bytes.len(), HEADER + payload);
        let slot = &bytes[bytes.len() - SLOT_BYTES..];
        assert_eq!(&slot[..4], &stamp(3).to_le_bytes());
        assert_eq!(&slot[8..12], &0u32.to_le_bytes(), "errors");
        assert_eq!(&slot[12..16], &0u32.to_le_bytes(), "fast, no traffic");
        assert_eq!(slot[24], 3, "down");
        assert_eq!(slot[25], 0x21, "a ok (low half), b degraded (high half)");

        // A full day with 64 components: the size the docs give.
        let names: Vec<String> = (0..64).map(|i| format!("c{i}")).collect();
        let mut full = History::new(settings());
        for minute in 0..1440 {
            let components = names.iter().map(|n| (n.as_str(), Status::Ok));
            full.observe(at(minute, 0), Status::Ok, components);
        }
        let bytes = full.to_bytes();
        let name_bytes: usize = names.iter().map(String::len).sum();
        assert_eq!(bytes.len(), 82_343 + name_bytes);
        let started = Instant::now();
        let back = History::from_bytes(&bytes, settings()).unwrap();
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(back.to_bytes(), bytes);
    }
}
