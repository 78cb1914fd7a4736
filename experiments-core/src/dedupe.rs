//! The per-request set of bucketing-event keys (`f"{name}:{bucket_val}:{str(value)}"`).
//!
//! Keys are compared as the exact strings baseplate builds, so `1` and `"1"` collide as they
//! do in Python. Storage is inline for typical requests (no heap allocation for up to
//! [`INLINE_KEYS`] keys totalling [`INLINE_BYTES`] bytes) and kept across [`Dedupe::clear`].

use std::fmt::{self, Write};
use std::hash::Hasher;

use rustc_hash::FxHasher;
use serde_json::Value;
use smallvec::SmallVec;

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
}

struct ArenaWriter<'a>(&'a mut SmallVec<[u8; INLINE_BYTES]>);

impl Write for ArenaWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Dedupe {
    /// Inserts `prefix + str(value)`; returns `false` when it was already present.
    pub(crate) fn insert(&mut self, prefix: &str, value: &Value) -> bool {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(prefix.as_bytes());
        match value {
            Value::String(s) => self.bytes.extend_from_slice(s.as_bytes()),
            other => {
                let _ = py::write_str(&mut ArenaWriter(&mut self.bytes), other);
            }
        }
        let key = &self.bytes[start..];
        let mut h = FxHasher::default();
        h.write(key);
        let hash = h.finish();
        let exists = self
            .keys
            .iter()
            .any(|&(kh, s, l)| kh == hash && &self.bytes[s as usize..(s + l) as usize] == key);
        if exists {
            self.bytes.truncate(start);
            return false;
        }
        let len = (self.bytes.len() - start) as u32;
        self.keys.push((hash, start as u32, len));
        true
    }

    /// Number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Removes every key, keeping the storage.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_collide_like_python_strings() {
        let mut d = Dedupe::default();
        assert!(d.insert("exp:user_id:", &json!(1)));
        assert!(!d.insert("exp:user_id:", &json!("1")));
        assert!(d.insert("exp:user_id:", &json!(1.0)));
        assert!(d.insert("exp:", &json!("user_id:True")));
        assert!(!d.insert("exp:user_id:", &json!(true)));
        assert_eq!(d.len(), 3);
        d.clear();
        assert_eq!(d.len(), 0);
        assert!(d.insert("exp:user_id:", &json!(1)));
    }
}
