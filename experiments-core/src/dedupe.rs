//! The per-request set of bucketing-event keys (`f"{name}:{bucket_val}:{str(value)}"`).
//!
//! Keys are compared as the exact strings baseplate builds, so `1` and `"1"` collide as they
//! do in Python. Storage is inline for typical requests (no heap allocation for up to
//! [`INLINE_KEYS`] keys totalling [`INLINE_BYTES`] bytes, found by a scan of their hashes) and
//! kept across [`Dedupe::clear`]. Past [`INLINE_KEYS`] keys an open-addressing index over the
//! same hashes takes over, so a request that logs `n` events costs O(n) in all.

use std::fmt::{self, Write};
use std::hash::Hasher;

use rustc_hash::FxHasher;
use serde_json::Value;
use smallvec::SmallVec;

use crate::error::EvalError;
use crate::py;

/// Keys stored without heap allocation.
pub const INLINE_KEYS: usize = 16;
/// Key bytes stored without heap allocation.
pub const INLINE_BYTES: usize = 512;

/// A set of dedupe keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct Dedupe {
    bytes: SmallVec<[u8; INLINE_BYTES]>,
    /// (hash, start, len) of each key in `bytes`.
    keys: SmallVec<[(u64, u32, u32); INLINE_KEYS]>,
    /// Once there are more than [`INLINE_KEYS`] keys: slots of an open-addressing table
    /// (linear probing, at most half full) holding `index + 1` into `keys`, `0` when free.
    /// Empty (and unused) below that; its allocation is kept across [`Dedupe::clear`].
    table: Vec<u32>,
}

struct ArenaWriter<'a>(&'a mut SmallVec<[u8; INLINE_BYTES]>);

impl Write for ArenaWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Dedupe {
    /// Inserts `prefix + str(value)`; returns `Ok(false)` when it was already present, and
    /// `Err(RecursionLimit)` (nothing inserted) when `value` nests too deep for `str()`.
    pub(crate) fn insert(&mut self, prefix: &str, value: &Value) -> Result<bool, EvalError> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(prefix.as_bytes());
        match value {
            Value::String(s) => self.bytes.extend_from_slice(s.as_bytes()),
            other => {
                if let Err(e) = py::write_str(&mut ArenaWriter(&mut self.bytes), other) {
                    self.bytes.truncate(start);
                    return Err(e);
                }
            }
        }
        let key = &self.bytes[start..];
        let mut h = FxHasher::default();
        h.write(key);
        let hash = h.finish();
        if self.find(hash, start).is_some() {
            self.bytes.truncate(start);
            return Ok(false);
        }
        let len = (self.bytes.len() - start) as u32;
        self.keys.push((hash, start as u32, len));
        if self.keys.len() > INLINE_KEYS {
            if self.table.is_empty() || self.keys.len() * 2 > self.table.len() {
                self.rebuild();
            } else {
                let i = self.keys.len() - 1;
                self.place(hash, i);
            }
        }
        Ok(true)
    }

    /// The index of the stored key equal to the bytes from `start` on (the candidate, just
    /// written at the end of the arena), if any.
    fn find(&self, hash: u64, start: usize) -> Option<usize> {
        let key = &self.bytes[start..];
        let same = |&(kh, s, l): &(u64, u32, u32)| {
            kh == hash && &self.bytes[s as usize..(s + l) as usize] == key
        };
        if self.table.is_empty() {
            return self.keys.iter().position(same);
        }
        let mask = self.table.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let i = self.table[slot].checked_sub(1)? as usize;
            if self.keys.get(i).is_some_and(same) {
                return Some(i);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Puts key `i` (with `hash`) into the first free slot of its probe sequence.
    fn place(&mut self, hash: u64, i: usize) {
        let mask = self.table.len() - 1;
        let mut slot = hash as usize & mask;
        while self.table[slot] != 0 {
            slot = (slot + 1) & mask;
        }
        self.table[slot] = i as u32 + 1;
    }

    /// Sizes the table for twice the keys (at least 64 slots) and re-inserts them all.
    fn rebuild(&mut self) {
        let size = (self.keys.len() * 4).next_power_of_two().max(64);
        self.table.clear();
        self.table.resize(size, 0);
        for i in 0..self.keys.len() {
            self.place(self.keys[i].0, i);
        }
    }

    /// Number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Removes every key, keeping the storage (the index is emptied, its allocation kept).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.keys.clear();
        self.table.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_collide_like_python_strings() {
        let mut d = Dedupe::default();
        assert_eq!(d.insert("exp:user_id:", &json!(1)), Ok(true));
        assert_eq!(d.insert("exp:user_id:", &json!("1")), Ok(false));
        assert_eq!(d.insert("exp:user_id:", &json!(1.0)), Ok(true));
        assert_eq!(d.insert("exp:", &json!("user_id:True")), Ok(true));
        assert_eq!(d.insert("exp:user_id:", &json!(true)), Ok(false));
        assert_eq!(d.len(), 3);
        d.clear();
        assert_eq!(d.len(), 0);
        assert_eq!(d.insert("exp:user_id:", &json!(1)), Ok(true));
    }

    /// A request evaluating a million experiments: every insert and lookup past the inline
    /// capacity goes through a hash index (minutes while it was a linear scan).
    #[test]
    fn a_million_keys_in_linear_time() {
        let mut d = Dedupe::default();
        let n = 1_000_000u32;
        for i in 0..n {
            assert_eq!(d.insert(&format!("exp_{i}:user_id:"), &json!("t2_1")), Ok(true));
        }
        for i in (0..n).step_by(7) {
            assert_eq!(d.insert(&format!("exp_{i}:user_id:"), &json!("t2_1")), Ok(false));
        }
        assert_eq!(d.len(), n as usize);
        d.clear();
        assert_eq!(d.len(), 0);
        for i in 0..100 {
            assert_eq!(d.insert("exp:user_id:", &json!(i)), Ok(true));
            assert_eq!(d.insert("exp:user_id:", &json!(i.to_string())), Ok(false));
        }
    }
}
