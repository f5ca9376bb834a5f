//! The parsers of what the kerchunk-nos pipeline is told from outside:
//! SNS/SQS/S3 event messages ([`message`]), OFS object keys ([`ofs_key`]),
//! and the rules every object key must pass ([`key`]). No I/O and no AWS
//! SDK: the `ingest` crate re-exports these modules, and the fuzz crate
//! depends on this crate directly without compiling the SDK.

#![forbid(unsafe_code)]

pub mod key;
pub mod message;
pub mod ofs_key;

/// xorshift64*: a deterministic, dependency-free input generator for the
/// no-panic tests of the parsers.
#[cfg(test)]
pub(crate) mod test_rng {
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        pub fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
        }
    }
}
