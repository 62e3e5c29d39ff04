//! Test helpers shared by the convolution tests: seeded values, the tolerance rule of the
//! fixtures, and a small reader for the PyTorch fixture cases.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::PathBuf;

/// Seeded values in [-1, 1) (a 64-bit LCG; quality is irrelevant, reproducibility is not).
pub(crate) fn values(seed: u64, len: usize) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

pub(crate) fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

pub(crate) fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Tolerance {
    pub rtol: f64,
    pub atol_rel: f64,
    pub atol_abs: f64,
}

impl Tolerance {
    pub const F64: Tolerance = Tolerance {
        rtol: 1e-12,
        atol_rel: 1e-12,
        atol_abs: 0.0,
    };
    pub const F32: Tolerance = Tolerance {
        rtol: 1e-4,
        atol_rel: 1e-5,
        atol_abs: 0.0,
    };

    fn from_json(v: &serde_json::Value) -> Tolerance {
        let field = |name: &str| {
            v[name]
                .as_f64()
                .unwrap_or_else(|| panic!("tolerance {name}"))
        };
        Tolerance {
            rtol: field("rtol"),
            atol_rel: field("atol_rel"),
            atol_abs: field("atol_abs"),
        }
    }
}

/// Panics, listing the first mismatches, unless every element passes
/// `|got - want| <= rtol*|want| + atol_rel*max|want| + atol_abs`.
pub(crate) fn assert_close(what: &str, got: &[f64], want: &[f64], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let bad: Vec<String> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| {
            let bound = tol.rtol * w.abs() + tol.atol_rel * scale + tol.atol_abs;
            // NaN compares as None and fails.
            !matches!(
                (*g - *w).abs().partial_cmp(&bound),
                Some(Ordering::Less | Ordering::Equal)
            )
        })
        .map(|(i, (g, w))| format!("[{i}] got {g:e} want {w:e}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} of {} elements out of tolerance {tol:?}; first: {:?}",
        bad.len(),
        got.len(),
        &bad[..bad.len().min(5)]
    );
}

/// One case of the fixture manifest with its tensors loaded.
pub(crate) struct FixtureCase {
    pub name: String,
    pub params: serde_json::Value,
    pub f64_tol: Tolerance,
    pub f32_tol: Tolerance,
    pub tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
}

impl FixtureCase {
    pub fn tensor(&self, name: &str) -> &[f64] {
        match self.tensors.get(name) {
            Some((_, data)) => data,
            None => panic!("{}: tensor {name} missing", self.name),
        }
    }

    pub fn shape(&self, name: &str) -> &[usize] {
        match self.tensors.get(name) {
            Some((shape, _)) => shape,
            None => panic!("{}: tensor {name} missing", self.name),
        }
    }

    /// A per-axis parameter (`kernel_size`, `stride`, ...) that must be equal on all axes.
    pub fn cubic(&self, key: &str) -> usize {
        let axes: Vec<u64> = match &self.params[key] {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_u64()).collect(),
            v => v.as_u64().into_iter().collect(),
        };
        assert!(
            !axes.is_empty() && axes.iter().all(|&a| a == axes[0]),
            "{}: {key} = {} is not one size on all axes; these kernels take cubic kernels",
            self.name,
            self.params[key]
        );
        axes[0] as usize
    }
}

/// Every case of `op` in `$ENAMEL_FIXTURES/manifest.json`, or None (after saying so) when
/// the variable is not set.
pub(crate) fn fixture_cases(op: &str) -> Option<Vec<FixtureCase>> {
    let Some(dir) = std::env::var_os("ENAMEL_FIXTURES").map(PathBuf::from) else {
        println!("skipped: ENAMEL_FIXTURES not set");
        return None;
    };
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest.json parses");
    let cases = manifest["cases"]
        .as_array()
        .expect("manifest.json has a cases array");

    let loaded = cases
        .iter()
        .filter(|c| c["op"] == op)
        .map(|c| {
            let name = c["name"].as_str().expect("case name").to_string();
            let file = dir.join(c["file"].as_str().expect("case file"));
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let st = safetensors::SafeTensors::deserialize(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let tensors = st
                .tensors()
                .into_iter()
                .map(|(key, view)| {
                    assert_eq!(view.dtype(), safetensors::Dtype::F64, "{name}/{key}: dtype");
                    let data = view
                        .data()
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                        .collect();
                    (key, (view.shape().to_vec(), data))
                })
                .collect();
            FixtureCase {
                name,
                params: c["params"].clone(),
                f64_tol: Tolerance::from_json(&c["tolerance"]["f64"]),
                f32_tol: Tolerance::from_json(&c["tolerance"]["f32"]),
                tensors,
            }
        })
        .collect();
    Some(loaded)
}
