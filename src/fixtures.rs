//! Reader for the PyTorch float64 reference fixtures (`manifest.json` + one safetensors file
//! per case) and the tolerance rule they come with. Tests find the folder through the
//! environment variable `ENAMEL_FIXTURES`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::ops::Real;

#[derive(Debug, Error)]
pub enum FixtureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("case `{case}`: tensor `{name}` is missing")]
    Missing { case: String, name: String },
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol_rel: f64,
    pub atol_abs: f64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Tolerances {
    pub f64: Tolerance,
    pub f32: Tolerance,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TensorMeta {
    pub shape: Vec<usize>,
    pub role: String,
    #[serde(default)]
    pub exact: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct CaseMeta {
    pub name: String,
    pub file: String,
    pub op: String,
    pub params: serde_json::Value,
    pub tolerance: Tolerances,
    pub tensors: HashMap<String, TensorMeta>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub variant: String,
    pub parameter_counts: HashMap<String, usize>,
    pub cases: Vec<CaseMeta>,
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The tolerance for U-Net parameter gradients computed in f32 (5% of the tensor's largest
/// magnitude). The fixtures' own f32 tolerance fits PyTorch's summation order; one pre-ReLU
/// value within f32 rounding of zero (unet_A has a conv output of 4.5e-7) can flip its ReLU
/// mask against the f64 reference under another order and move a channel's gradients by a
/// few percent. A wrong op moves them by far more; the f64 reference mode of the CPU backend
/// is held to the strict f64 tolerance.
pub const F32_UNET_GRADIENT: Tolerance = Tolerance {
    rtol: 0.0,
    atol_rel: 0.05,
    atol_abs: 0.0,
};

/// The fixture folder named by `ENAMEL_FIXTURES`, or `None` (tests then report a skip).
pub fn fixture_dir() -> Option<PathBuf> {
    std::env::var_os("ENAMEL_FIXTURES")
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

/// Tells the person running the tests that `test` did not run, and why. Written straight to
/// stderr: the test harness captures `println!`/`eprintln!` of passing tests, and a skip that
/// nobody sees is no better than a test that cannot fail.
pub fn report_skip(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped {test}: {why}");
}

/// The outcome of comparing one tensor with its reference: `Err` describes the mismatches.
pub type Check = Result<(), String>;

/// Runs every case of `ops` through `in_f64` and `in_f32` (typically one generic function
/// instantiated twice) and panics listing every mismatch the runs return. Reports a skip when
/// `ENAMEL_FIXTURES` is unset; fails when the set holds no case of these ops.
pub fn run_cases(
    test: &str,
    ops: &[&str],
    in_f64: impl Fn(&Case) -> Vec<Check>,
    in_f32: impl Fn(&Case) -> Vec<Check>,
) {
    let Some(manifest) = manifest_or_skip(test) else {
        return;
    };
    let mut names = Vec::new();
    let mut failures = Vec::new();
    for meta in manifest.cases(ops) {
        let case = manifest
            .open(meta)
            .unwrap_or_else(|e| panic!("{test}: {e}"));
        let checks = in_f64(&case).into_iter().chain(in_f32(&case));
        failures.extend(checks.filter_map(Result::err));
        names.push(meta.name.as_str());
    }
    assert!(
        !names.is_empty(),
        "{test}: the fixture set holds no case of {ops:?}"
    );
    assert!(
        failures.is_empty(),
        "{test}: fixture mismatches:\n{}",
        failures.join("\n")
    );
    println!("{test}: fixture cases passed in f64 and f32: {names:?}");
}

/// The manifest of `ENAMEL_FIXTURES`, or `None` after reporting that `test` was skipped.
pub fn manifest_or_skip(test: &str) -> Option<Manifest> {
    let Some(dir) = fixture_dir() else {
        report_skip(
            test,
            "ENAMEL_FIXTURES is not set (e.g. ENAMEL_FIXTURES=../shared/fixtures)",
        );
        return None;
    };
    match Manifest::load(&dir) {
        Ok(m) => Some(m),
        Err(e) => panic!("ENAMEL_FIXTURES is set but unreadable: {e}"),
    }
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest, FixtureError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|source| FixtureError::Io {
            path: path.clone(),
            source,
        })?;
        let mut manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| FixtureError::Format {
                path: path.clone(),
                message: e.to_string(),
            })?;
        manifest.dir = dir.to_path_buf();
        Ok(manifest)
    }

    /// Every case whose op is one of `ops`.
    pub fn cases<'a>(&'a self, ops: &'a [&str]) -> impl Iterator<Item = &'a CaseMeta> + 'a {
        self.cases
            .iter()
            .filter(move |c| ops.contains(&c.op.as_str()))
    }

    pub fn open(&self, case: &CaseMeta) -> Result<Case, FixtureError> {
        Case::load(&self.dir.join(&case.file), case.clone())
    }
}

/// One case's tensors, all widened to f64.
pub struct Case {
    pub meta: CaseMeta,
    pub tensors: HashMap<String, (Vec<usize>, Vec<f64>)>,
}

impl Case {
    fn load(path: &Path, meta: CaseMeta) -> Result<Case, FixtureError> {
        let bytes = std::fs::read(path).map_err(|source| FixtureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| FixtureError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F64 {
                return Err(FixtureError::Format {
                    path: path.to_path_buf(),
                    message: format!("tensor {name} is {:?}, fixtures are F64", view.dtype()),
                });
            }
            let values = view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")))
                .collect();
            tensors.insert(name, (view.shape().to_vec(), values));
        }
        Ok(Case { meta, tensors })
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    pub fn get(&self, name: &str) -> Result<&(Vec<usize>, Vec<f64>), FixtureError> {
        self.tensors.get(name).ok_or_else(|| FixtureError::Missing {
            case: self.meta.name.clone(),
            name: name.into(),
        })
    }

    /// Whether the case holds a tensor `name` (some tensors are optional, e.g. a bias).
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> &[usize] {
        &self.get(name).expect("fixture tensor").0
    }

    /// The shape of tensor `name` as an array of its `N` dimensions; panics naming the case
    /// when the tensor has another rank.
    pub fn dims<const N: usize>(&self, name: &str) -> [usize; N] {
        let shape = self.shape(name);
        shape.try_into().unwrap_or_else(|_| {
            panic!(
                "{}: tensor {name} has shape {shape:?}, expected {N} dimensions",
                self.name()
            )
        })
    }

    /// Tensor `name` rounded to `T` (an f32 run sees its inputs rounded to f32 first).
    pub fn values<T: Real>(&self, name: &str) -> Vec<T> {
        self.f64(name).iter().map(|&v| T::of(v)).collect()
    }

    pub fn f64(&self, name: &str) -> &[f64] {
        &self.get(name).expect("fixture tensor").1
    }

    pub fn f32(&self, name: &str) -> Vec<f32> {
        self.f64(name).iter().map(|&v| v as f32).collect()
    }

    pub fn param_f64(&self, key: &str) -> Option<f64> {
        self.meta.params.get(key).and_then(|v| v.as_f64())
    }

    pub fn param_usize(&self, key: &str) -> Option<usize> {
        self.meta
            .params
            .get(key)
            .and_then(|v| v.as_u64())
            .and_then(|v| usize::try_from(v).ok())
    }

    /// Compares `got`, computed in `T`, with reference tensor `name` under the tolerance of
    /// `T`'s precision (or exactly when the tensor is marked exact), returning a description
    /// of the first failures.
    pub fn check<T: Real>(&self, name: &str, got: &[T]) -> Check {
        let got: Vec<f64> = got.iter().map(|&v| v.f64()).collect();
        let (precision, tol) = if std::mem::size_of::<T>() == 8 {
            ("f64", self.meta.tolerance.f64)
        } else {
            ("f32", self.meta.tolerance.f32)
        };
        self.check_with(name, &got, tol)
            .map_err(|e| format!("[{precision}] {e}"))
    }

    /// [`Case::check`] in f32.
    pub fn check_f32(&self, name: &str, got: &[f32]) -> Result<(), String> {
        self.check(name, got)
    }

    /// [`Case::check`] in f64.
    pub fn check_f64(&self, name: &str, got: &[f64]) -> Result<(), String> {
        self.check(name, got)
    }

    pub fn check_with(&self, name: &str, got: &[f64], tol: Tolerance) -> Result<(), String> {
        let exact = self
            .meta
            .tensors
            .get(name)
            .map(|m| m.exact)
            .unwrap_or(false);
        let tol = if exact {
            Tolerance {
                rtol: 0.0,
                atol_rel: 0.0,
                atol_abs: 0.0,
            }
        } else {
            tol
        };
        compare(
            &format!("{}: {name}", self.meta.name),
            got,
            self.f64(name),
            tol,
        )
    }
}

/// The fixtures' rule: `|got − ref| ≤ rtol·|ref| + atol_rel·max|ref| + atol_abs` per element
/// (max over the finite references; a non-finite reference must be matched exactly).
pub fn compare(what: &str, got: &[f64], reference: &[f64], tol: Tolerance) -> Result<(), String> {
    if got.len() != reference.len() {
        return Err(format!(
            "{what}: {} values, reference has {}",
            got.len(),
            reference.len()
        ));
    }
    // An infinite reference would make every bound infinite: non-finite references must be
    // matched exactly (NaN by NaN) and do not count towards max|ref|.
    let max_ref = reference
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    for (i, (&g, &r)) in got.iter().zip(reference).enumerate() {
        let allowed = tol.rtol * r.abs() + tol.atol_rel * max_ref + tol.atol_abs;
        let err = (g - r).abs();
        let ok = if r.is_finite() {
            err <= allowed
        } else {
            g == r || (g.is_nan() && r.is_nan())
        };
        if !ok {
            worst = worst.max(err);
            if failures.len() < 5 {
                failures.push(format!(
                    "[{i}] got {g:.9e} ref {r:.9e} (allowed {allowed:.3e})"
                ));
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: worst error {worst:.3e}; first mismatches: {}",
            failures.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance {
        rtol: 1e-3,
        atol_rel: 1e-4,
        atol_abs: 0.0,
    };

    #[test]
    fn compare_applies_the_bound_per_element() {
        // Bound for element 0: 1e-3·2 + 1e-4·10 = 3e-3.
        assert!(compare("a", &[2.0029, 10.0], &[2.0, 10.0], TOL).is_ok());
        let err = compare("a", &[2.0031, 10.0], &[2.0, 10.0], TOL).unwrap_err();
        assert!(err.contains("[0]"), "{err}");
        assert!(compare("a", &[1.0], &[1.0, 2.0], TOL).is_err());
    }

    #[test]
    fn non_finite_references_must_match_exactly() {
        let inf = f64::INFINITY;
        assert!(compare("a", &[inf, 1.0], &[inf, 1.0], TOL).is_ok());
        assert!(compare("a", &[f64::NAN], &[f64::NAN], TOL).is_ok());
        // An infinite reference neither accepts a finite value nor loosens the others.
        assert!(compare("a", &[1e300, 1.0], &[inf, 1.0], TOL).is_err());
        assert!(compare("a", &[inf, 5.0], &[inf, 1.0], TOL).is_err());
        assert!(compare("a", &[f64::NAN], &[1.0], TOL).is_err());
        assert!(compare("a", &[1.0], &[f64::NAN], TOL).is_err());
    }
}
