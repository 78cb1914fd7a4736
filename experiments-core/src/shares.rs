//! Expected shares: which fraction of the buckets each variant of an experiment gets when
//! every call is targeted and no override applies (what `experiments simulate` compares the
//! observed shares with). Computed from the bucket limits the parser precomputed, never bucket
//! by bucket, so the cost does not depend on `num_buckets`.

use crate::experiment::{Body, Experiment};
use crate::variant_set::VariantSet;

impl Experiment {
    /// The fraction of the buckets (`0.0..=1.0`) each variant gets when every call is
    /// targeted and no override applies, one `(variant, share)` per variant in config order
    /// (r2: the sorted order r2 buckets in). `None` when the experiment is not bucketed
    /// (forced variants, unknown types, invalid experiments). A variant name
    /// listed twice gets all its buckets in its first slot, as a lookup by name does; buckets
    /// whose choice raises count for no variant. Computed from the bucket limits, not bucket
    /// by bucket: O(v log v) for v variants, whatever `num_buckets` is.
    pub fn expected_shares(&self) -> Option<Vec<(String, f64)>> {
        let names = self.variant_names();
        let (n, counts): (u64, Vec<u64>) = match &self.body {
            Ok(Body::R2(r2)) => {
                // 1000 buckets, each mapped to its variant's first slot by binary search.
                let index = first_slots(&names);
                let mut counts = vec![0u64; names.len()];
                for b in 0..crate::r2::R2_BUCKETS {
                    if let Some(slot) = r2.variant_of_bucket(b).and_then(|v| slot_of(&index, v)) {
                        counts[slot] += 1;
                    }
                }
                (crate::r2::R2_BUCKETS, counts)
            }
            Ok(Body::Simple(s)) => {
                let n = s.num_buckets.get();
                let per_entry = bucket_counts(&s.variants, n);
                // `names()` lists the entries in order: fold duplicates into the first slot.
                let index = first_slots(&names);
                let mut counts = vec![0u64; names.len()];
                for (name, c) in names.iter().zip(per_entry) {
                    if let Some(slot) = slot_of(&index, name) {
                        counts[slot] += c;
                    }
                }
                (n, counts)
            }
            _ => return None,
        };
        Some(
            names
                .into_iter()
                .zip(counts)
                .map(|(v, c)| (v.to_owned(), c as f64 / n.max(1) as f64))
                .collect(),
        )
    }
}

/// `(name, first position)` for each distinct name, sorted by name: a name's slot is found
/// by binary search (see [`slot_of`]). O(v log v).
fn first_slots<'a>(names: &[&'a str]) -> Vec<(&'a str, usize)> {
    let mut index: Vec<(&str, usize)> = names.iter().copied().zip(0..).collect();
    // Sorting by (name, position) puts each name's first position first; dedup keeps it.
    index.sort_unstable();
    index.dedup_by(|later, first| later.0 == first.0);
    index
}

/// The first position of `name` in the table of [`first_slots`].
fn slot_of(index: &[(&str, usize)], name: &str) -> Option<usize> {
    index.binary_search_by(|(n, _)| (*n).cmp(name)).ok().map(|i| index[i].1)
}

/// How many of the buckets `0..n` each entry of a variant set wins (in `names()` order), as
/// [`choose`](crate::variant_set::VariantSet::choose) would pick them bucket by bucket;
/// buckets whose choice raises count for nobody. O(v log v) for v entries, independent of n.
fn bucket_counts(set: &VariantSet, n: u64) -> Vec<u64> {
    let n = i128::from(n);
    // The number of buckets in `[lo, hi)` within `0..n`.
    let span = |lo: i128, hi: i128| (hi.min(n) - lo.max(0)).max(0) as u64;
    match set {
        // `b < t0` gives the first; otherwise `b >= t1` gives the second. An unusable limit
        // raises for every bucket that reaches it.
        VariantSet::Single { t0, t1, .. } => {
            let Ok(t0) = *t0 else { return vec![0, 0] };
            let first = span(0, t0);
            let second = match *t1 {
                Ok(t1) => span(t1.max(t0), n),
                Err(_) => 0,
            };
            vec![first, second]
        }
        // The first entry whose end exceeds the bucket: entry i gets `[max(0, earlier ends),
        // end_i)`.
        VariantSet::Multi { entries } => {
            let mut covered = 0i128;
            entries
                .iter()
                .map(|(_, _, end)| {
                    let c = span(covered, *end);
                    covered = covered.max((*end).min(n));
                    c
                })
                .collect()
        }
        VariantSet::Rollout { limit, .. } => vec![span(0, *limit)],
        // The first range containing the bucket wins: each range gets the part of
        // `[lo, hi) ∩ [0, n)` no earlier range took. `taken` holds disjoint intervals
        // (start -> end); each is inserted once and removed at most once.
        VariantSet::Range { entries } => {
            let mut taken: std::collections::BTreeMap<i128, i128> =
                std::collections::BTreeMap::new();
            let mut counts = vec![0u64; entries.len()];
            for ((_, bounds), count) in entries.iter().zip(&mut counts) {
                // Buckets no earlier range took raise here, so no later range gets them.
                let Ok((lo, hi)) = *bounds else { break };
                let (a, b) = (lo.max(0), hi.min(n));
                if a >= b {
                    continue;
                }
                let (mut start, mut end, mut already) = (a, b, 0i128);
                if let Some((&s, &e)) = taken.range(..a).next_back()
                    && e > a
                {
                    already += e.min(b) - a;
                    start = s;
                    end = end.max(e);
                    taken.remove(&s);
                }
                while let Some((&s, &e)) = taken.range(a..b).next() {
                    already += e.min(b) - s;
                    end = end.max(e);
                    taken.remove(&s);
                }
                taken.insert(start, end);
                *count = (b - a - already) as u64;
            }
            counts
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::error::EvalError;
    use crate::variant_set::Choice;

    /// A deterministic xorshift generator for the brute-force comparisons.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        /// A bucket bound around `0..n`, sometimes outside it.
        pub(crate) fn bound(&mut self, n: i128) -> i128 {
            self.below(n as u64 + 8) as i128 - 4
        }

        /// A bound, or (one time in eight) the error an unusable bound raises.
        pub(crate) fn maybe_bound(&mut self, n: i128) -> Result<i128, EvalError> {
            if self.below(8) == 0 { Err(EvalError::InfinityToInt) } else { Ok(self.bound(n)) }
        }
    }

    /// Bucket by bucket, each chosen variant counted in its name's first slot.
    fn counts_bucket_by_bucket(set: &VariantSet, n: u64) -> Vec<u64> {
        let names = set.names();
        let mut counts = vec![0; names.len()];
        for b in 0..n {
            if let Ok(Choice { variant: Some(v), .. }) = set.choose(b) {
                counts[names.iter().position(|x| *x == v).unwrap()] += 1;
            }
        }
        counts
    }

    /// [`bucket_counts`] folded into the first slot of each name, as `expected_shares` does.
    fn counts_from_limits(set: &VariantSet, n: u64) -> Vec<u64> {
        let names = set.names();
        let index = first_slots(&names);
        let mut counts = vec![0; names.len()];
        for (name, c) in names.iter().zip(bucket_counts(set, n)) {
            counts[slot_of(&index, name).unwrap()] += c;
        }
        counts
    }

    #[test]
    fn bucket_counts_agree_with_choosing_bucket_by_bucket() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let pool = ["a", "b", "c", "d"];
        for round in 0..4000 {
            let n = 1 + rng.below(24);
            let m = n as i128;
            let len = 1 + rng.below(7) as usize;
            let mut name = || -> Box<str> { pool[rng.below(4) as usize].into() };
            let names: Vec<Box<str>> = (0..len).map(|_| name()).collect();
            let set = match round % 4 {
                0 => VariantSet::Single {
                    names: [names[0].clone(), names[len - 1].clone()],
                    t0: rng.maybe_bound(m),
                    t1: rng.maybe_bound(m),
                },
                1 => VariantSet::Multi {
                    entries: names.into_iter().map(|v| (v, rng.bound(m), rng.bound(m))).collect(),
                },
                2 => VariantSet::Rollout { name: names[0].clone(), limit: rng.bound(m) },
                _ => VariantSet::Range {
                    entries: names
                        .into_iter()
                        .map(|v| {
                            let b = match rng.below(8) {
                                0 => Err(EvalError::InfinityToInt),
                                _ => Ok((rng.bound(m), rng.bound(m))),
                            };
                            (v, b)
                        })
                        .collect(),
                },
            };
            assert_eq!(
                counts_from_limits(&set, n),
                counts_bucket_by_bucket(&set, n),
                "round {round}, {n} buckets: {set:?}"
            );
        }
    }

    pub(crate) fn range_experiment(num_buckets: u64, variants: Vec<Value>) -> Experiment {
        let cfg = json!({"id": 1, "name": "r", "type": "range_variant", "start_ts": 0,
            "stop_ts": 4_102_444_800u64, "experiment": {"experiment_version": 1,
            "num_buckets": num_buckets, "variants": variants}});
        Experiment::parse("r", &cfg).unwrap()
    }

    /// `k` contiguous ranges covering `[0, 1)`.
    fn tiling(k: usize) -> Vec<Value> {
        (0..k)
            .map(|i| {
                json!({"name": format!("v{i}"), "range_start": i as f64 / k as f64,
                    "range_end": (i + 1) as f64 / k as f64})
            })
            .collect()
    }

    #[test]
    fn expected_shares_of_many_ranges_come_from_the_limits() {
        // 40,000 ranges over a million buckets: bucket by bucket with a scan of the ranges
        // per bucket this was 4·10^10 steps (minutes); from the limits it is a sort.
        let k = 40_000;
        let shares = range_experiment(1_000_000, tiling(k)).expected_shares().unwrap();
        assert_eq!(shares.len(), k);
        assert_eq!(shares[0], ("v0".to_owned(), 25.0 / 1_000_000.0));
        assert!((shares.iter().map(|(_, s)| s).sum::<f64>() - 1.0).abs() < 1e-9);
        // Past a million buckets the shares used to be unknown; they are exact now.
        let shares = range_experiment(1 << 40, tiling(4)).expected_shares().unwrap();
        assert_eq!(shares.iter().map(|(_, s)| *s).collect::<Vec<_>>(), [0.25; 4]);
    }
}
