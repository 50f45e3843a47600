//! Instrument tokens and their dense indices.
//!
//! Tokens are whatever the exchange uses (sparse 64-bit integers). At load the
//! engine interns every followed token to a dense [`InstrumentIdx`], so all
//! per-instrument state lives in vectors indexed by it.

/// The exchange's instrument identifier.
pub type InstrumentToken = u64;

/// The partition (0..`partitions`) of an instrument: a stable hash, so every
/// publisher, runner and shard agrees on it across releases and machines.
/// The Redis tick streams are split by it, and so are an engine's shards.
///
/// XXH3-64 of the token's little-endian bytes, modulo `partitions`. Changing
/// this reshuffles instruments between streams, so treat it as a format.
#[inline]
pub fn partition_of(instrument: InstrumentToken, partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    (xxhash_rust::xxh3::xxh3_64(&instrument.to_le_bytes()) % u64::from(partitions)) as u32
}

/// Dense index of an instrument, assigned at load in first-seen order. A
/// type of its own, so it cannot be passed where a strategy or model index
/// belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstrumentIdx(u32);

impl InstrumentIdx {
    pub const fn new(index: u32) -> Self {
        InstrumentIdx(index)
    }

    /// The index as a position in per-instrument vectors.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Direct-lookup tables beyond this many slots are not worth their memory.
const DIRECT_TABLE_LIMIT: u64 = 1 << 20;
const ABSENT: u32 = u32::MAX;

/// Token → dense index lookup, built once.
///
/// Small token spaces use a direct table (one load); large ones a sorted array
/// with binary search. Neither hashes nor allocates per lookup.
#[derive(Debug, Clone, Default)]
pub struct InstrumentIndex {
    tokens: Vec<InstrumentToken>,
    lookup: Lookup,
}

#[derive(Debug, Clone)]
enum Lookup {
    Direct(Vec<u32>),
    Sorted(Vec<(InstrumentToken, u32)>),
}

impl Default for Lookup {
    fn default() -> Self {
        Lookup::Direct(Vec::new())
    }
}

impl InstrumentIndex {
    /// Interns `tokens` in order; duplicates keep their first index.
    /// Sorts rather than inserting in order, so a list of `n` tokens costs
    /// O(n log n) however long (a config may list millions).
    pub fn new(tokens: impl IntoIterator<Item = InstrumentToken>) -> Self {
        // (token, where first seen): sorted, the first of each run is the
        // token's first occurrence.
        let mut seen: Vec<(InstrumentToken, usize)> = tokens
            .into_iter()
            .enumerate()
            .map(|(at, token)| (token, at))
            .collect();
        seen.sort_unstable();
        seen.dedup_by_key(|&mut (token, _)| token);
        let mut firsts: Vec<(usize, InstrumentToken)> =
            seen.into_iter().map(|(token, at)| (at, token)).collect();
        firsts.sort_unstable();
        let unique: Vec<InstrumentToken> = firsts.into_iter().map(|(_, token)| token).collect();
        let mut sorted: Vec<(InstrumentToken, u32)> = unique
            .iter()
            .enumerate()
            .map(|(idx, &token)| (token, u32::try_from(idx).unwrap_or(ABSENT - 1)))
            .collect();
        sorted.sort_unstable();
        let max = sorted.last().map_or(0, |&(t, _)| t);
        let lookup = if max < DIRECT_TABLE_LIMIT {
            let mut table = vec![ABSENT; max as usize + 1];
            for &(token, idx) in &sorted {
                table[token as usize] = idx;
            }
            Lookup::Direct(table)
        } else {
            Lookup::Sorted(sorted)
        };
        InstrumentIndex {
            tokens: unique,
            lookup,
        }
    }

    /// The dense index of `token`, if it is followed.
    #[inline]
    pub fn get(&self, token: InstrumentToken) -> Option<InstrumentIdx> {
        match &self.lookup {
            Lookup::Direct(table) => match table.get(usize::try_from(token).ok()?) {
                Some(&idx) if idx != ABSENT => Some(InstrumentIdx(idx)),
                _ => None,
            },
            Lookup::Sorted(sorted) => sorted
                .binary_search_by_key(&token, |&(t, _)| t)
                .ok()
                .map(|at| InstrumentIdx(sorted[at].1)),
        }
    }

    /// The token behind a dense index.
    pub fn token(&self, idx: InstrumentIdx) -> InstrumentToken {
        self.tokens[idx.index()]
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Tokens in index order.
    pub fn tokens(&self) -> &[InstrumentToken] {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_in_first_seen_order_with_both_lookups() {
        for tokens in [vec![256265, 12, 738561, 12], vec![u64::MAX, 5, 1 << 40, 5]] {
            let index = InstrumentIndex::new(tokens.iter().copied());
            assert_eq!(index.len(), 3);
            assert_eq!(index.get(tokens[0]), Some(InstrumentIdx(0)));
            assert_eq!(index.get(tokens[1]), Some(InstrumentIdx(1)));
            assert_eq!(index.get(tokens[2]), Some(InstrumentIdx(2)));
            assert_eq!(index.get(7), None);
            assert_eq!(index.token(InstrumentIdx(2)), tokens[2]);
        }
    }

    #[test]
    fn a_million_tokens_intern_quickly() {
        // Descending: every token would have gone to the front of a sorted
        // insert, a quadratic build.
        let tokens = (1..=1_000_000u64).rev().map(|t| t * 3);
        let started = std::time::Instant::now();
        let index = InstrumentIndex::new(tokens.chain([3, 6]));
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(index.len(), 1_000_000);
        assert_eq!(index.get(3_000_000), Some(InstrumentIdx(0)));
        assert_eq!(index.get(3), Some(InstrumentIdx(999_999)));
        assert_eq!(index.get(4), None);
    }
}
