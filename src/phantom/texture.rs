//! Hounsfield-like values per tissue, with a smooth texture so that no tissue is flat. Before
//! blur and noise every value lies inside its tissue's range (see [`super::Tissue::hu_range`]).

use super::Tissue;
use crate::rng::{coordinate_hash, signed_unit};

/// Value noise in [−1, 1]: random values on a lattice of `cell` millimetres, blended with
/// smoothstep weights. `stream` separates independent textures.
pub(crate) fn value_noise(seed: u64, stream: u64, p: [f64; 3], cell: f64) -> f64 {
    let scaled = [p[0] / cell, p[1] / cell, p[2] / cell];
    let base = scaled.map(|c| c.floor());
    let weight = |a: usize| {
        let t = scaled[a] - base[a];
        t * t * (3.0 - 2.0 * t)
    };
    let w = [weight(0), weight(1), weight(2)];
    let cell_index = base.map(|c| c as i64);

    let mut sum = 0.0;
    for corner in 0..8 {
        let offset = [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1];
        let mut product = 1.0;
        for a in 0..3 {
            product *= if offset[a] == 1 { w[a] } else { 1.0 - w[a] };
        }
        let value = signed_unit(coordinate_hash(
            seed,
            stream,
            cell_index[0] + offset[0] as i64,
            cell_index[1] + offset[1] as i64,
            cell_index[2] + offset[2] as i64,
        ));
        sum += product * value;
    }
    sum
}

/// Per-tooth base values (drawn per tooth) used by dentin and enamel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ToothShades {
    pub dentin: f64,
    pub enamel: f64,
}

/// The value of `tissue` at model point `p` (mm), before blur and noise.
pub(crate) fn hounsfield(seed: u64, tissue: Tissue, p: [f64; 3], shades: ToothShades) -> f64 {
    let noise = |stream: u64, cell: f64| value_noise(seed, stream, p, cell);
    match tissue {
        Tissue::Air => -1000.0,
        Tissue::SoftTissue => 40.0 + 15.0 * noise(1, 4.0),
        Tissue::Pulp => 35.0 + 10.0 * noise(2, 4.0),
        // Two octaves give the spongy look of trabecular bone.
        Tissue::Trabecular => 500.0 + 190.0 * (0.6 * noise(3, 1.2) + 0.4 * noise(4, 0.6)),
        Tissue::Cortical => 1400.0 + 150.0 * noise(5, 3.0),
        Tissue::Dentin => shades.dentin + 60.0 * noise(6, 3.0),
        Tissue::Enamel => shades.enamel + 100.0 * noise(7, 2.0),
        Tissue::Metal => 3300.0 + 150.0 * noise(8, 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_noise_is_bounded_continuous_and_hits_the_lattice_values() {
        let at_lattice = value_noise(3, 1, [2.0, -4.0, 6.0], 2.0);
        let direct = signed_unit(coordinate_hash(3, 1, 1, -2, 3));
        assert!((at_lattice - direct).abs() < 1e-12);

        let mut previous = value_noise(3, 1, [0.0, 0.3, 0.7], 1.5);
        for step in 1..2000 {
            let x = step as f64 * 0.005;
            let v = value_noise(3, 1, [x, 0.3, 0.7], 1.5);
            assert!((-1.0..=1.0).contains(&v));
            assert!((v - previous).abs() < 0.02, "jump at x = {x}");
            previous = v;
        }
    }
}
