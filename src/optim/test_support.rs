//! Test helpers shared by the op and optimizer tests: a reader for the PyTorch fixture set
//! named by `ENAMEL_FIXTURES` (manifest + safetensors, all F64) with its tolerance rule, and a
//! central-difference gradient check.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::ops::Real;

/// `|got − ref| <= rtol·|ref| + atol_rel·max|ref| + atol_abs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tolerance {
    pub rtol: f64,
    pub atol_rel: f64,
    pub atol_abs: f64,
}

impl Tolerance {
    fn from_json(v: &Value) -> Tolerance {
        let get = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        Tolerance {
            rtol: get("rtol"),
            atol_rel: get("atol_rel"),
            atol_abs: get("atol_abs"),
        }
    }
}

pub(crate) struct FixtureTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    pub exact: bool,
}

/// One case of the manifest with its tensors loaded.
pub(crate) struct Case {
    pub name: String,
    pub params: Value,
    tensors: HashMap<String, FixtureTensor>,
    tol_f64: Tolerance,
    tol_f32: Tolerance,
}

impl Case {
    pub fn tensor(&self, name: &str) -> &FixtureTensor {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("fixture {}: no tensor {name}", self.name))
    }

    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn dims5(&self, name: &str) -> [usize; 5] {
        let s = &self.tensor(name).shape;
        assert_eq!(s.len(), 5, "fixture {}: {name} has shape {s:?}", self.name);
        [s[0], s[1], s[2], s[3], s[4]]
    }

    /// The values rounded to `T` (the f32 run sees inputs rounded to f32 first).
    pub fn input<T: Real>(&self, name: &str) -> Vec<T> {
        self.tensor(name).values.iter().map(|&v| T::of(v)).collect()
    }

    pub fn param_f64(&self, key: &str) -> f64 {
        self.params
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("fixture {}: no numeric param {key}", self.name))
    }

    pub fn param_usize(&self, key: &str) -> usize {
        self.params
            .get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("fixture {}: no integer param {key}", self.name))
            as usize
    }

    pub fn tolerance<T>(&self) -> Tolerance {
        if std::mem::size_of::<T>() == 8 {
            self.tol_f64
        } else {
            self.tol_f32
        }
    }

    /// Compares `got` (computed in `T`) with the reference tensor `name`; tensors marked exact
    /// must match exactly. Returns a message with the first mismatches, or None.
    pub fn check<T: Real>(&self, name: &str, got: &[T]) -> Option<String> {
        let reference = self.tensor(name);
        let label = format!(
            "{} [{}] {name}",
            self.name,
            if size_of::<T>() == 8 { "f64" } else { "f32" }
        );
        if got.len() != reference.values.len() {
            return Some(format!(
                "{label}: {} values, reference has {}",
                got.len(),
                reference.values.len()
            ));
        }
        let tol = if reference.exact {
            Tolerance {
                rtol: 0.0,
                atol_rel: 0.0,
                atol_abs: 0.0,
            }
        } else {
            self.tolerance::<T>()
        };
        let max_ref = reference.values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mut bad = Vec::new();
        for (i, (&g, &r)) in got.iter().zip(&reference.values).enumerate() {
            let g = g.f64();
            let bound = tol.rtol * r.abs() + tol.atol_rel * max_ref + tol.atol_abs;
            let same_special = (g.is_nan() && r.is_nan()) || (g.is_infinite() && g == r);
            let within = (g - r).abs() <= bound;
            if !same_special && !within {
                bad.push(format!("[{i}] got {g:e} ref {r:e} (bound {bound:e})"));
            }
        }
        if bad.is_empty() {
            None
        } else {
            let n = bad.len();
            bad.truncate(5);
            Some(format!("{label}: {n} mismatches: {}", bad.join(", ")))
        }
    }
}

/// The cases of the fixture set whose op is one of `ops`, or None (after printing that the test
/// was skipped) when `ENAMEL_FIXTURES` is not set.
pub(crate) fn fixture_cases(ops: &[&str]) -> Option<Vec<Case>> {
    let Some(dir) = std::env::var_os("ENAMEL_FIXTURES") else {
        println!("skipped: ENAMEL_FIXTURES not set");
        return None;
    };
    let dir = PathBuf::from(dir);
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let manifest: Value = serde_json::from_str(&text).expect("manifest.json is not JSON");
    let cases = manifest["cases"]
        .as_array()
        .expect("manifest.json: no cases array");

    let mut out = Vec::new();
    for case in cases {
        let op = case["op"].as_str().unwrap_or_default();
        if !ops.contains(&op) {
            continue;
        }
        let name = case["name"].as_str().unwrap_or_default().to_string();
        let file = dir.join(case["file"].as_str().expect("case without file"));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));

        let mut tensors = HashMap::new();
        for (tname, meta) in case["tensors"].as_object().expect("case without tensors") {
            let view = st
                .tensor(tname)
                .unwrap_or_else(|e| panic!("{}: {tname}: {e}", file.display()));
            assert_eq!(
                view.dtype(),
                safetensors::Dtype::F64,
                "{}: {tname}",
                file.display()
            );
            let values = view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect();
            let exact = meta.get("exact").and_then(Value::as_bool).unwrap_or(false);
            tensors.insert(
                tname.clone(),
                FixtureTensor {
                    shape: view.shape().to_vec(),
                    values,
                    exact,
                },
            );
        }
        out.push(Case {
            name,
            params: case["params"].clone(),
            tensors,
            tol_f64: Tolerance::from_json(&case["tolerance"]["f64"]),
            tol_f32: Tolerance::from_json(&case["tolerance"]["f32"]),
        });
    }
    Some(out)
}

/// Runs `run` on every case of `ops` in f64 and in f32 and panics with all mismatches. Each run
/// returns its failures (None = pass). Fails when the set holds no case of these ops.
pub(crate) fn run_fixture_cases(ops: &[&str], run: impl Fn(&Case, bool) -> Vec<Option<String>>) {
    let Some(cases) = fixture_cases(ops) else {
        return;
    };
    assert!(
        !cases.is_empty(),
        "the fixture set holds no case of {ops:?}"
    );
    let mut failures = Vec::new();
    for case in &cases {
        for f64_run in [true, false] {
            failures.extend(run(case, f64_run).into_iter().flatten());
        }
    }
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert!(
        failures.is_empty(),
        "fixture mismatches:\n{}",
        failures.join("\n")
    );
    println!("fixture cases passed in f64 and f32: {names:?}");
}

/// Central differences of a scalar function: `(f(x + h·e_i) − f(x − h·e_i)) / 2h` for each `i`.
pub(crate) fn numeric_grad(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + h;
            let plus = f(&probe);
            probe[i] = x[i] - h;
            let minus = f(&probe);
            probe[i] = x[i];
            (plus - minus) / (2.0 * h)
        })
        .collect()
}

/// Asserts that an analytic gradient matches central differences within `tol` (relative to the
/// gradient's largest magnitude, and never looser than `tol` absolute).
pub(crate) fn assert_grad_close(what: &str, analytic: &[f64], numeric: &[f64], tol: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{what}: lengths");
    let scale = numeric.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= tol * scale,
            "{what}[{i}]: analytic {a:e}, numeric {n:e}"
        );
    }
}

/// A deterministic pseudo-random sequence in [-1, 1) for test inputs (splitmix64).
pub(crate) fn test_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}
