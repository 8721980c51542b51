//! Log-linear latency histogram layout.
//!
//! Values (nanoseconds) below 16 get a bucket each; above that, every power of
//! two is split into 16 linear sub-buckets, so a bucket is at most 1/16 of its
//! lower bound wide: a percentile read at a bucket's midpoint is within ~3.2%
//! of the true value. Values from 2^40 ns (~18 minutes) up share the last
//! bucket. The layout is fixed, so memory never grows with traffic.

/// log2 of the sub-buckets per power of two.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Values at or above `2^MAX_EXP` ns are clamped into the last bucket.
const MAX_EXP: u32 = 40;

/// Number of buckets.
pub(crate) const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) as usize) * SUB as usize;

/// Bucket index of a value in nanoseconds.
#[inline(always)]
pub(crate) fn index(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let v = ns.min((1u64 << MAX_EXP) - 1);
    let exp = 63 - v.leading_zeros();
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as usize) * SUB as usize + sub as usize
}

/// Smallest value that lands in bucket `i`.
pub(crate) fn lower_bound(i: usize) -> u64 {
    let sub = SUB as usize;
    if i < sub {
        return i as u64;
    }
    let exp = (i / sub) as u32 + SUB_BITS - 1;
    (SUB + (i % sub) as u64) << (exp - SUB_BITS)
}

/// Largest value that lands in bucket `i` (the last bucket is open-ended).
pub(crate) fn upper_bound(i: usize) -> u64 {
    if i + 1 >= BUCKETS {
        return u64::MAX;
    }
    lower_bound(i + 1) - 1
}

/// Value reported for bucket `i`: its midpoint.
fn midpoint(i: usize) -> u64 {
    let lo = lower_bound(i);
    if i + 1 >= BUCKETS {
        return lo;
    }
    lo + (upper_bound(i) - lo) / 2
}

/// The value at quantile `q` (0..=1) of `counts`, clamped to `max`, or `None`
/// when the histogram is empty: one rank, one scan. The plain definition
/// that tests hold [`quantiles`] to.
#[cfg(test)]
pub(crate) fn quantile(counts: &[u64], q: f64, max: u64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    // Rank of the wanted sample, 1-based: ceil(q * total), at least 1.
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(midpoint(i).min(max));
        }
    }
    Some(max)
}

/// The values at the quantiles `qs` (0..=1, ascending) of the bucket counts
/// `counts`, whose sum is `total`, each clamped to `max`, in one pass; `None`
/// when the histogram is empty.
pub(crate) fn quantiles<const N: usize>(
    counts: impl IntoIterator<Item = u64>,
    total: u64,
    qs: [f64; N],
    max: u64,
) -> Option<[u64; N]> {
    if total == 0 {
        return None;
    }
    // Rank of each wanted sample, 1-based: ceil(q * total), at least 1.
    let ranks = qs.map(|q| ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1));
    let mut values = [max; N];
    let mut next = 0;
    let mut seen = 0u64;
    for (i, c) in counts.into_iter().enumerate() {
        seen += c;
        while next < N && seen >= ranks[next] {
            values[next] = midpoint(i).min(max);
            next += 1;
        }
        if next == N {
            break;
        }
    }
    Some(values)
}

/// Upper bound of the highest non-empty bucket.
#[cfg(test)]
pub(crate) fn highest(counts: &[u64]) -> Option<u64> {
    counts.iter().rposition(|&c| c > 0).map(upper_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_its_bucket() {
        let mut v = 0u64;
        while v < (1u64 << MAX_EXP) {
            let i = index(v);
            assert!(i < BUCKETS, "{v} -> {i}");
            assert!(lower_bound(i) <= v && v <= upper_bound(i), "{v} in {i}");
            v = v * 5 / 4 + 1;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn buckets_are_contiguous() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(upper_bound(i) + 1, lower_bound(i + 1), "bucket {i}");
            assert_eq!(index(lower_bound(i)), i);
            assert_eq!(index(upper_bound(i)), i);
        }
    }

    #[test]
    fn relative_error_is_within_a_few_percent() {
        for v in [
            17u64,
            100,
            999,
            12_345,
            1_000_000,
            90_000_000,
            7_000_000_000,
        ] {
            let mid = midpoint(index(v)) as f64;
            let err = (mid - v as f64).abs() / v as f64;
            assert!(err <= 0.035, "{v}: {err}");
        }
    }

    #[test]
    fn quantiles() {
        let mut counts = vec![0u64; BUCKETS];
        for v in 1..=100u64 {
            counts[index(v * 1_000_000)] += 1;
        }
        let p50 = quantile(&counts, 0.5, u64::MAX).unwrap() as f64 / 1e6;
        let p99 = quantile(&counts, 0.99, u64::MAX).unwrap() as f64 / 1e6;
        assert!((p50 - 50.0).abs() / 50.0 < 0.035, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.035, "{p99}");
        assert_eq!(quantile(&[0; BUCKETS], 0.5, 0), None);
        assert_eq!(quantile(&counts, 1.0, 42), Some(42));
    }
}
