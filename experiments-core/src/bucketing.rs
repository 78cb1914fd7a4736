//! SHA-1 bucketing: `int(sha1(f"{seed}{value}").hexdigest(), 16) % num_buckets`.

use std::fmt;

use serde_json::Value;

use crate::error::EvalError;
use crate::py;

const INIT: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    sha1::compress(
        state,
        std::slice::from_ref(sha1::digest::generic_array::GenericArray::from_slice(block)),
    );
}

/// A SHA-1 computation in progress: the state after the full blocks so far, and the
/// partial block. Small and `Copy`, so a precomputed seed prefix is copied per call.
#[derive(Clone, Copy)]
struct Sha1Stream {
    state: [u32; 5],
    block: [u8; 64],
    filled: usize,
    total: u64,
}

impl Sha1Stream {
    fn new() -> Self {
        Sha1Stream { state: INIT, block: [0; 64], filled: 0, total: 0 }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        while !bytes.is_empty() {
            let n = (64 - self.filled).min(bytes.len());
            self.block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == 64 {
                compress(&mut self.state, &self.block);
                self.block = [0; 64];
                self.filled = 0;
            }
        }
    }

    /// Pads and returns the final state (the digest as five big-endian words).
    fn finish(mut self) -> [u32; 5] {
        let bits = self.total.wrapping_mul(8);
        self.block[self.filled] = 0x80;
        self.block[self.filled + 1..].fill(0);
        if self.filled >= 56 {
            compress(&mut self.state, &self.block);
            self.block = [0; 64];
        }
        self.block[56..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &self.block);
        self.state
    }
}

impl fmt::Write for Sha1Stream {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.update(s.as_bytes());
        Ok(())
    }
}

/// A bucketing seed with the SHA-1 state after the seed bytes precomputed: the bucket of a
/// value is `int(sha1(seed + value).hexdigest(), 16) % n`, computed from the seed's state with
/// one compression for short values and no allocation. Shared by both dialects (baseplate
/// seeds are `bucket_seed` or `id.name.shuffle_version`; reddit-decider's are always
/// `id.name.shuffle_version`).
#[derive(Clone)]
pub struct Seed {
    text: Box<str>,
    prefix: Sha1Stream,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Seed").field(&self.text).finish()
    }
}

impl Seed {
    /// Precomputes the SHA-1 state after `text`.
    pub fn new(text: String) -> Self {
        let mut prefix = Sha1Stream::new();
        prefix.update(text.as_bytes());
        Seed { text: text.into_boxed_str(), prefix }
    }

    /// The seed text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The bucket of `value` (hashed as Python `str(value)`) modulo `m`;
    /// `Err(RecursionLimit)` when `value` nests too deep for `str()` (Python raises
    /// `RecursionError` there).
    pub(crate) fn bucket(&self, value: &Value, m: &Modulus) -> Result<u64, EvalError> {
        match value {
            Value::String(s) => Ok(self.bucket_str(s, m)),
            other => {
                let mut result = Ok(());
                let bucket = self.bucket_with(m, |h| {
                    result = py::write_str(h, other);
                    Ok(())
                });
                result.map(|()| bucket)
            }
        }
    }

    /// The bucket of the seed followed by `s`, modulo `m`.
    pub fn bucket_str(&self, s: &str, m: &Modulus) -> u64 {
        {
            let (f, v) = (self.prefix.filled, s.len());
            if f + v + 9 <= 64 {
                // One block: the prefix bytes (zeros after them), the value, the padding.
                let mut block = self.prefix.block;
                block[f..f + v].copy_from_slice(s.as_bytes());
                block[f + v] = 0x80;
                let bits = (self.prefix.total + v as u64).wrapping_mul(8);
                block[56..].copy_from_slice(&bits.to_be_bytes());
                let mut state = self.prefix.state;
                compress(&mut state, &block);
                return m.reduce(&state);
            }
        }
        let mut h = self.prefix;
        h.update(s.as_bytes());
        m.reduce(&h.finish())
    }

    /// The bucket of the seed followed by whatever `write` writes (a value formatted straight
    /// into the hash, without an intermediate string), modulo `m`.
    pub fn bucket_with(
        &self,
        m: &Modulus,
        write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result,
    ) -> u64 {
        let mut h = self.prefix;
        // Writing into a hasher cannot fail.
        let _ = write(&mut h);
        m.reduce(&h.finish())
    }
}

/// A number of buckets with the powers of 2^32 modulo it precomputed, so reducing a 160-bit
/// digest costs five multiplications and one division.
#[derive(Clone, Copy, Debug)]
pub struct Modulus {
    n: u64,
    /// Lemire's `fastmod` multiplier, `floor(2^128 / n) + 1`.
    magic: u128,
    /// `2^(32 * (4 - i)) mod n` for the five big-endian digest words.
    powers: [u64; 5],
}

impl Modulus {
    /// Precomputes the reduction for `n` buckets (`0` is treated as `1`).
    pub fn new(n: u64) -> Self {
        let n = n.max(1);
        let mut powers = [0u64; 5];
        let mut p = 1u128 % u128::from(n);
        for slot in powers.iter_mut().rev() {
            *slot = p as u64;
            p = (p << 32) % u128::from(n);
        }
        Modulus { n, powers, magic: (u128::MAX / u128::from(n)).wrapping_add(1) }
    }

    /// The number of buckets.
    pub fn get(&self) -> u64 {
        self.n
    }

    /// `a % n` without a division ("Faster Remainder by Direct Computation", Lemire et
    /// al. 2019, the 64-bit variant with a 128-bit multiplier).
    fn fastmod(&self, a: u64) -> u64 {
        if self.n == 1 {
            return 0;
        }
        let low = self.magic.wrapping_mul(u128::from(a));
        let d = u128::from(self.n);
        let bottom = ((low & u128::from(u64::MAX)) * d) >> 64;
        let top = (low >> 64) * d;
        ((bottom + top) >> 64) as u64
    }

    /// The digest (five big-endian words) modulo `n`, as Python's big-int `%`.
    pub fn reduce(&self, words: &[u32; 5]) -> u64 {
        let n = self.n;
        if n < 1 << 29 {
            // Each product < 2^32 * 2^29; five of them stay below 2^64.
            let sum: u64 = words.iter().zip(self.powers).map(|(&w, p)| u64::from(w) * p).sum();
            return self.fastmod(sum);
        }
        let n = u128::from(n);
        let sum: u128 =
            words.iter().zip(self.powers).map(|(&w, p)| u128::from(w) * u128::from(p) % n).sum();
        (sum % n) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fastmod_agrees_with_division() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for n in [1u64, 2, 3, 7, 10, 100, 999, 1000, 1001, 65_537, 1 << 20, (1 << 29) - 1] {
            let m = Modulus::new(n);
            for a in [0, 1, n - 1, n, n + 1, u64::MAX, u64::MAX - 1, 1 << 63] {
                assert_eq!(m.fastmod(a), a % n, "{a} % {n}");
            }
            for _ in 0..20_000 {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                assert_eq!(m.fastmod(x), x % n, "{x} % {n}");
            }
        }
    }

    #[test]
    fn reference_buckets() {
        // python3: int(hashlib.sha1(b"seedt2_1").hexdigest(), 16) % 1000 == 716
        let seed = Seed::new("seed".into());
        assert_eq!(seed.bucket(&json!("t2_1"), &Modulus::new(1000)), Ok(716));
        // Large moduli use the 128-bit path and agree with Python's big-int modulo:
        // int(hashlib.sha1(b"seedt2_1").hexdigest(), 16) % (2**40 + 15) == 291140003599
        assert_eq!(seed.bucket(&json!("t2_1"), &Modulus::new((1 << 40) + 15)), Ok(291140003599));
        // Non-strings hash as str(): 1 -> "1", 1.0 -> "1.0", True -> "True".
        let one = Seed::new("s".into());
        assert_ne!(
            one.bucket(&json!(1), &Modulus::new(1 << 31)),
            one.bucket(&json!(1.0), &Modulus::new(1 << 31))
        );
        assert_eq!(
            one.bucket(&json!(1), &Modulus::new(1 << 31)),
            one.bucket(&json!("1"), &Modulus::new(1 << 31))
        );
        assert_eq!(
            one.bucket(&json!(true), &Modulus::new(1 << 31)),
            one.bucket(&json!("True"), &Modulus::new(1 << 31))
        );
        // Long values take the streaming path and agree with hashlib:
        // int(hashlib.sha1(("seed" + "x" * 100).encode()).hexdigest(), 16) % 1000 == 82
        assert_eq!(seed.bucket(&json!("x".repeat(100)), &Modulus::new(1000)), Ok(82));
        // A seed longer than a block is precomputed across blocks.
        // int(hashlib.sha1(("s" * 70 + "t2_1").encode()).hexdigest(), 16) % 1000
        let long = Seed::new("s".repeat(70));
        assert_eq!(long.bucket(&json!("t2_1"), &Modulus::new(1000)), Ok(677));
    }
}
