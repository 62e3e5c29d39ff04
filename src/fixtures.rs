//! Reader for the PyTorch float64 reference fixtures (`manifest.json` + one safetensors file
//! per case) and the tolerance rule they come with. Tests find the folder through the
//! environment variable `ENAMEL_FIXTURES`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

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

    pub fn shape(&self, name: &str) -> &[usize] {
        &self.get(name).expect("fixture tensor").0
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

    /// Compares `got` with reference tensor `name` under the f32 tolerance (or exactly when
    /// the tensor is marked exact), returning a description of the first failures.
    pub fn check_f32(&self, name: &str, got: &[f32]) -> Result<(), String> {
        let g: Vec<f64> = got.iter().map(|&v| v as f64).collect();
        self.check_with(name, &g, self.meta.tolerance.f32)
    }

    /// As [`Case::check_f32`] with the f64 tolerance.
    pub fn check_f64(&self, name: &str, got: &[f64]) -> Result<(), String> {
        self.check_with(name, got, self.meta.tolerance.f64)
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

/// The fixtures' rule: `|got − ref| ≤ rtol·|ref| + atol_rel·max|ref| + atol_abs` per element.
pub fn compare(what: &str, got: &[f64], reference: &[f64], tol: Tolerance) -> Result<(), String> {
    if got.len() != reference.len() {
        return Err(format!(
            "{what}: {} values, reference has {}",
            got.len(),
            reference.len()
        ));
    }
    let max_ref = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    for (i, (&g, &r)) in got.iter().zip(reference).enumerate() {
        let allowed = tol.rtol * r.abs() + tol.atol_rel * max_ref + tol.atol_abs;
        let err = (g - r).abs();
        if err > allowed || g.is_nan() != r.is_nan() {
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
