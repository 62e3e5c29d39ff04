//! The crate's deterministic random numbers. A seed gives the same values on every platform
//! and with every dependency version, which the phantom, weight initialisation and patch
//! sampling rely on:
//! - [`Rng`], a sequential xoshiro256** stream seeded through [`splitmix64`];
//! - [`coordinate_hash`], [`signed_unit`] and [`portable_normal`], counter-based values that
//!   are the same whatever order (or thread) they are computed in, with no libm call.

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finaliser: a bijective, well-mixed map of 64-bit words.
pub fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One step of the SplitMix64 generator: advances `state` and returns the next word.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN_GAMMA);
    mix64(*state)
}

/// Hash of a seed, a stream tag and up to three integer coordinates.
pub fn coordinate_hash(seed: u64, stream: u64, a: i64, b: i64, c: i64) -> u64 {
    let mut h = mix64(seed ^ stream.wrapping_mul(GOLDEN_GAMMA));
    h = mix64(h ^ (a as u64));
    h = mix64(h ^ (b as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    mix64(h ^ (c as u64).wrapping_mul(0xABC9_8388_FB8F_AC03))
}

/// A value in [-1, 1] from a hash word.
pub fn signed_unit(word: u64) -> f64 {
    (word >> 11) as f64 * (2.0 / (1u64 << 53) as f64) - 1.0
}

/// An approximately standard-normal value for `(seed, index)`: the Irwin–Hall sum of eight
/// 16-bit uniforms, centred and scaled to unit variance. Bounded at ±4.9 σ; needs no
/// logarithm or cosine, so it is bit-identical everywhere (unlike [`Rng::normal`]).
pub fn portable_normal(seed: u64, index: u64) -> f64 {
    // 1 / sqrt(8 / 12): the standard deviation of a sum of eight U(0, 1).
    const INV_STD: f64 = 1.224_744_871_391_589;
    let first = coordinate_hash(seed, 0x006E_6F69_7365, index as i64, 0, 0);
    let second = mix64(first ^ 0x5851_F42D_4C95_7F2D);
    let mut sum = 0.0;
    for word in [first, second] {
        for part in 0..4 {
            sum += (((word >> (16 * part)) & 0xFFFF) as f64 + 0.5) / 65536.0;
        }
    }
    (sum - 4.0) * INV_STD
}

/// xoshiro256** (Blackman and Vigna).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut s = seed;
        Rng {
            state: [
                splitmix64(&mut s),
                splitmix64(&mut s),
                splitmix64(&mut s),
                splitmix64(&mut s),
            ],
        }
    }

    /// An independent stream for `(seed, stream)`, e.g. one per tooth, so that adding a draw
    /// to one stream does not shift the draws of every other.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Rng::new(coordinate_hash(seed, stream, 0, 0, 0))
    }

    /// The full state, to save in a checkpoint and restore with [`Rng::from_state`].
    pub fn state(&self) -> [u64; 4] {
        self.state
    }

    pub fn from_state(state: [u64; 4]) -> Self {
        Rng { state }
    }

    pub fn next_u64(&mut self) -> u64 {
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

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in [-half_width, half_width).
    pub fn symmetric(&mut self, half_width: f64) -> f64 {
        self.range(-half_width, half_width)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Uniform integer in [0, n); n must be positive.
    pub fn below(&mut self, n: usize) -> usize {
        // Multiply-shift keeps the bias below 2^-64 · n, far under anything measurable here.
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller; uses libm, see [`portable_normal`] for bit-identical
    /// values across platforms).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_uniform_in_range() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mean: f64 = (0..10_000).map(|_| a.uniform()).sum::<f64>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!((0..1000).all(|_| a.below(7) < 7));
    }

    #[test]
    fn splitmix64_matches_the_reference_values() {
        // Reference: SplitMix64 (Steele, Lea, Flood) from state 0.
        let mut state = 0;
        assert_eq!(splitmix64(&mut state), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut state), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(&mut state), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn xoshiro_matches_the_reference_sequence() {
        // Reference: xoshiro256** by Blackman and Vigna, state {1, 2, 3, 4}.
        let mut rng = Rng::from_state([1, 2, 3, 4]);
        let expected = [11520u64, 0, 1509978240, 1215971899390074240];
        for value in expected {
            assert_eq!(rng.next_u64(), value);
        }
    }

    #[test]
    fn portable_normal_has_unit_variance_and_zero_mean() {
        let n = 200_000u64;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for i in 0..n {
            let x = portable_normal(7, i);
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
        let a: Vec<u64> = (0..4).map(|_| Rng::for_stream(1, 2).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        assert_ne!(
            Rng::for_stream(1, 2).next_u64(),
            Rng::for_stream(1, 3).next_u64()
        );
        assert_ne!(
            Rng::for_stream(1, 2).next_u64(),
            Rng::for_stream(2, 2).next_u64()
        );
    }
}
