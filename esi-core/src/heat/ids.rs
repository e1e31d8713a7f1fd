//! Deterministic, seedable ids in UUID form for the embedded engines (stacks, resources,
//! monitoring targets).
//!
//! An id is a hash of the seed and a list of parts (for a resource: stack name, resource name
//! and how many times that resource was created), so it does not depend on the order in which
//! concurrent workers reach the engine: the same seed and the same history give the same ids.

/// A seeded id source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeededIds {
    seed: u64,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fnv1a(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for p in parts {
        for b in p.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl SeededIds {
    /// An id source with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededIds { seed }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// A version-4-shaped UUID (`8-4-4-4-12` lowercase hex) derived from the seed and `parts`.
    pub fn uuid(&self, parts: &[&str]) -> String {
        let h = fnv1a(self.seed, parts);
        let a = splitmix(h);
        let b = splitmix(a ^ self.seed.rotate_left(17));
        let hi = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
        let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff
        )
    }
}

impl Default for SeededIds {
    fn default() -> Self {
        SeededIds::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let ids = SeededIds::new(7);
        let a = ids.uuid(&["stack", "s1", "0"]);
        assert_eq!(a, SeededIds::new(7).uuid(&["stack", "s1", "0"]));
        assert_ne!(a, ids.uuid(&["stack", "s1", "1"]));
        assert_ne!(a, SeededIds::new(8).uuid(&["stack", "s1", "0"]));
        assert_ne!(ids.uuid(&["ab", "c"]), ids.uuid(&["a", "bc"]));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }
}
