//! SHA-1 bucketing: `int(sha1(f"{seed}{value}").hexdigest(), 16) % num_buckets`.

use std::fmt;

use serde_json::Value;
use sha1::{Digest, Sha1};

use crate::py;

/// A bucketing seed with the SHA-1 state after the seed bytes precomputed.
#[derive(Clone)]
pub(crate) struct Seed {
    text: Box<str>,
    prefix: Sha1,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Seed").field(&self.text).finish()
    }
}

/// Feeds formatted text straight into the hasher.
struct HashWriter<'a>(&'a mut Sha1);

impl fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

impl Seed {
    pub(crate) fn new(text: String) -> Self {
        let mut prefix = Sha1::new();
        prefix.update(text.as_bytes());
        Seed {
            text: text.into_boxed_str(),
            prefix,
        }
    }

    /// The seed text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The bucket of `value` (hashed as Python `str(value)`) among `num_buckets`.
    pub(crate) fn bucket(&self, value: &Value, num_buckets: u64) -> u64 {
        let mut hasher = self.prefix.clone();
        match value {
            Value::String(s) => hasher.update(s.as_bytes()),
            other => {
                // Writing into a hasher cannot fail.
                let _ = py::write_str(&mut HashWriter(&mut hasher), other);
            }
        }
        let digest: [u8; 20] = hasher.finalize().into();
        mod_digest(&digest, num_buckets)
    }
}

/// The 160-bit big-endian digest modulo `n` (`n > 0`).
fn mod_digest(digest: &[u8; 20], n: u64) -> u64 {
    let words = digest
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])));
    if n <= u64::from(u32::MAX) {
        words.fold(0u64, |r, w| ((r << 32) | w) % n)
    } else {
        let n = u128::from(n);
        words.fold(0u128, |r, w| ((r << 32) | u128::from(w)) % n) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_buckets() {
        // python3: int(hashlib.sha1(b"seedt2_1").hexdigest(), 16) % 1000 == 716
        let seed = Seed::new("seed".into());
        assert_eq!(seed.bucket(&json!("t2_1"), 1000), 716);
        // Large moduli use the 128-bit path and agree with Python's big-int modulo:
        // int(hashlib.sha1(b"seedt2_1").hexdigest(), 16) % (2**40 + 15) == 291140003599
        assert_eq!(seed.bucket(&json!("t2_1"), (1 << 40) + 15), 291140003599);
        // Non-strings hash as str(): 1 -> "1", 1.0 -> "1.0", True -> "True".
        let one = Seed::new("s".into());
        assert_ne!(
            one.bucket(&json!(1), 1 << 31),
            one.bucket(&json!(1.0), 1 << 31)
        );
        assert_eq!(
            one.bucket(&json!(1), 1 << 31),
            one.bucket(&json!("1"), 1 << 31)
        );
        assert_eq!(
            one.bucket(&json!(true), 1 << 31),
            one.bucket(&json!("True"), 1 << 31)
        );
    }
}
