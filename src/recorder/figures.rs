//! The report's traffic figures, computed from recorder snapshots: the
//! one place where histogram buckets become counts, rates and percentiles.

use std::time::Duration;

use super::{histogram, Snapshot};
use crate::report::{Latency, LatencyHistogram, Traffic, HISTOGRAM_BOUNDS};

const CLASS_NAMES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

fn ms(ns: u64) -> f64 {
    // Three decimals: microsecond resolution is all the histogram supports.
    (ns as f64 / 1_000.0).round() / 1_000.0
}

/// Traffic from the snapshot since start and the window's counts over `span`.
pub(crate) fn traffic(total: &Snapshot, window: &Snapshot, span: Duration) -> Traffic {
    let by_class = CLASS_NAMES
        .iter()
        .zip(total.classes())
        .filter(|(_, &n)| n > 0)
        .map(|(name, &n)| ((*name).to_owned(), n))
        .collect();
    let finished = total.finished();
    let window_total = window.finished();
    let secs = span.as_secs_f64();
    Traffic {
        total: finished,
        in_flight: total.started.saturating_sub(finished),
        errors: total.errors,
        aborted: total.aborted(),
        by_class,
        window_seconds: (secs * 1000.0).round() / 1000.0,
        window_total,
        rate_per_second: if secs > 0.0 {
            (window_total as f64 / secs * 1000.0).round() / 1000.0
        } else {
            0.0
        },
        error_rate: if window_total > 0 {
            (window.errors as f64 / window_total as f64 * 10_000.0).round() / 10_000.0
        } else {
            0.0
        },
    }
}

/// Latency of the requests recorded between the snapshots `base` and
/// `now`, read from the differences of their buckets in place: the same
/// figures as from `now.since(base)`, without allocating, and only over
/// the buckets up to the highest that changed.
pub(crate) fn latency_between(now: &Snapshot, base: &Snapshot) -> Latency {
    // As `since` pairs them: bucket by bucket, up to the shorter.
    let n = now.buckets.len().min(base.buckets.len());
    let (now_b, base_b) = (&now.buckets[..n], &base.buckets[..n]);
    let Some(hi) = highest_changed(now_b, base_b) else {
        return Latency::default();
    };
    let diffs = || {
        now_b[..=hi]
            .iter()
            .zip(&base_b[..=hi])
            .map(|(a, b)| a.saturating_sub(*b))
    };
    let count: u64 = diffs().sum();
    // The exact maximum is since start; the window's own highest bucket bounds it.
    let max = histogram::upper_bound(hi).min(now.max_ns);
    let [p50, p90, p99] =
        histogram::quantiles(diffs(), count, [0.5, 0.9, 0.99], max).unwrap_or([0; 3]);
    Latency {
        count,
        mean: now
            .sum_ns
            .saturating_sub(base.sum_ns)
            .checked_div(count)
            .map_or(0.0, ms),
        p50: ms(p50),
        p90: ms(p90),
        p99: ms(p99),
        max: ms(max),
    }
}

/// Index of the highest bucket where `now` exceeds `base` (same lengths).
fn highest_changed(now: &[u64], base: &[u64]) -> Option<usize> {
    // Blocks of 8 from the top, each compared whole (branch-free xor, so
    // it vectorizes even on baseline x86-64), searched only when something
    // differs: the upper buckets (seconds and more) are usually empty.
    const BLOCK: usize = 8;
    let last = |a: &[u64], b: &[u64]| a.iter().zip(b).rposition(|(x, y)| x > y);
    let blocks = now.rchunks_exact(BLOCK).zip(base.rchunks_exact(BLOCK));
    for (k, (a, b)) in blocks.enumerate() {
        let mut differs = 0;
        for i in 0..BLOCK {
            differs |= a[i] ^ b[i];
        }
        if differs != 0 {
            if let Some(i) = last(a, b) {
                return Some(now.len() - (k + 1) * BLOCK + i);
            }
        }
    }
    // The lowest `len % BLOCK` buckets.
    let rest = now.len() % BLOCK;
    last(&now[..rest], &base[..rest])
}

/// Cumulative buckets since start, at [`HISTOGRAM_BOUNDS`].
pub(crate) fn cumulative_histogram(total: &Snapshot) -> LatencyHistogram {
    let mut buckets = Vec::with_capacity(HISTOGRAM_BOUNDS.len());
    let mut i = 0;
    let mut seen = 0u64;
    for &le in &HISTOGRAM_BOUNDS {
        let le_ns = (le * 1e9) as u64;
        while i < total.buckets.len() && histogram::upper_bound(i) <= le_ns {
            seen += total.buckets[i];
            i += 1;
        }
        buckets.push((le, seen));
    }
    LatencyHistogram {
        buckets,
        sum_seconds: total.sum_ns as f64 / 1e9,
        count: total.buckets.iter().sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `Latency` was computed as before `between`: from the window's
    /// own snapshot, one scan per figure.
    fn from_window(window: &Snapshot) -> Latency {
        let count: u64 = window.buckets.iter().sum();
        let max = histogram::highest(&window.buckets).map_or(0, |hi| hi.min(window.max_ns));
        let q = |p| ms(histogram::quantile(&window.buckets, p, max).unwrap_or(0));
        Latency {
            count,
            mean: window.sum_ns.checked_div(count).map_or(0.0, ms),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: ms(max),
        }
    }

    #[test]
    fn between_matches_the_window_snapshot() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut base = Snapshot::zero();
        let mut now = Snapshot::zero();
        assert_eq!(latency_between(&now, &base), from_window(&now.since(&base)));
        for round in 0..200 {
            base = now.clone();
            let n = next() % (1 + round * 3);
            for _ in 0..n {
                let ns = next() % (1u64 << (next() % 38));
                now.buckets[histogram::index(ns)] += 1;
                now.sum_ns += ns;
                now.max_ns = now.max_ns.max(ns);
            }
            if round % 7 == 0 {
                base = Snapshot::zero();
            }
            assert_eq!(
                latency_between(&now, &base),
                from_window(&now.since(&base)),
                "round {round}"
            );
        }
    }
}
