//! The phantom's own random numbers: a seeded xoshiro256** stream for the anatomy and a
//! counter-based hash for per-voxel values. Written here (not taken from a crate) so that a
//! seed gives the same bytes on every platform and with every dependency version.

/// SplitMix64 finaliser: a bijective, well-mixed map of 64-bit words.
pub(crate) fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a seed, a stream tag and up to three integer coordinates. The same inputs give the
/// same word whatever order (or thread) they are computed in.
pub(crate) fn hash(seed: u64, stream: u64, a: i64, b: i64, c: i64) -> u64 {
    let mut h = mix64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    h = mix64(h ^ (a as u64));
    h = mix64(h ^ (b as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    mix64(h ^ (c as u64).wrapping_mul(0xABC9_8388_FB8F_AC03))
}

/// A value in [-1, 1] from a hash word.
pub(crate) fn signed_unit(word: u64) -> f64 {
    (word >> 11) as f64 * (2.0 / (1u64 << 53) as f64) - 1.0
}

/// An approximately standard-normal value for one voxel: the Irwin–Hall sum of eight 16-bit
/// uniforms, centred and scaled to unit variance. Bounded at ±4.9 σ; needs no logarithm or
/// cosine, so it is bit-identical everywhere.
pub(crate) fn normal_at(seed: u64, index: u64) -> f64 {
    // 1 / sqrt(8 / 12): the standard deviation of a sum of eight U(0, 1).
    const INV_STD: f64 = 1.224_744_871_391_589;
    let first = hash(seed, 0x006E_6F69_7365, index as i64, 0, 0);
    let second = mix64(first ^ 0x5851_F42D_4C95_7F2D);
    let mut sum = 0.0;
    for word in [first, second] {
        for part in 0..4 {
            sum += (((word >> (16 * part)) & 0xFFFF) as f64 + 0.5) / 65536.0;
        }
    }
    (sum - 4.0) * INV_STD
}

/// xoshiro256**: the sequential stream the anatomy is drawn from.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: [u64; 4],
}

impl Rng {
    /// An independent stream for `(seed, stream)`, e.g. one per tooth, so that adding a draw
    /// for one tooth does not shift every other tooth's draws.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut x = hash(seed, stream, 0, 0, 0);
        let mut state = [0u64; 4];
        for word in &mut state {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *word = mix64(x);
        }
        Rng { state }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in [-half_width, half_width).
    pub(crate) fn symmetric(&mut self, half_width: f64) -> f64 {
        self.range(-half_width, half_width)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoshiro_matches_the_reference_sequence() {
        // Reference: xoshiro256** by Blackman and Vigna, state {1, 2, 3, 4}.
        let mut rng = Rng {
            state: [1, 2, 3, 4],
        };
        let expected = [11520u64, 0, 1509978240, 1215971899390074240];
        for value in expected {
            assert_eq!(rng.next_u64(), value);
        }
    }

    #[test]
    fn normal_at_has_unit_variance_and_zero_mean() {
        let n = 200_000u64;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for i in 0..n {
            let x = normal_at(7, i);
            sum += x;
            sum_sq += x * x;
        }
        let mean = sum / n as f64;
        let var = sum_sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn streams_differ_and_repeat() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(1, 2).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        assert_ne!(Rng::new(1, 2).next_u64(), Rng::new(1, 3).next_u64());
        assert_ne!(Rng::new(1, 2).next_u64(), Rng::new(2, 2).next_u64());
    }
}
