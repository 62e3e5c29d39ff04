//! Saving and loading the U-Net's state as safetensors, with PyTorch's names, so that a
//! PyTorch `state_dict` saved with `safetensors.torch.save_file` loads directly.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use thiserror::Error;

use super::state::Slot;
use super::unet::{UNet, UNetConfig};
use crate::tensor::Tensor;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: not a safetensors file: {message}")]
    Format { path: PathBuf, message: String },

    #[error("{path}: tensor `{name}` is missing")]
    Missing { path: PathBuf, name: String },

    #[error("{path}: tensor `{name}` has shape {got:?}, the network needs {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },

    #[error(
        "{path}: tensor `{name}` has dtype {dtype}, expected a floating-point or integer type"
    )]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },

    #[error("{path}: tensors not in the network: {names:?}")]
    Unexpected { path: PathBuf, names: Vec<String> },

    #[error("{path}: metadata field `{field}`: {message}")]
    Metadata {
        path: PathBuf,
        field: String,
        message: String,
    },
}

type Result<T> = std::result::Result<T, CheckpointError>;

/// Reads `bytes` of one safetensors tensor as f64, whatever its stored type.
fn to_f64(view: &TensorView<'_>) -> Option<Vec<f64>> {
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f64())
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        _ => return None,
    };
    Some(values)
}

/// Copies named values into the network's state. `names` may carry a prefix (e.g. `param.`)
/// which `prefix` strips. Entries whose shape PyTorch stores as `[]` also accept `[1]`.
pub fn load_state(
    net: &mut UNet,
    tensors: &SafeTensors<'_>,
    prefix: &str,
    path: &Path,
    strict: bool,
) -> Result<()> {
    let mut available: HashMap<String, TensorView<'_>> = HashMap::new();
    for (name, view) in tensors.tensors() {
        if let Some(short) = name.strip_prefix(prefix) {
            available.insert(short.to_string(), view);
        }
    }

    for (name, slot) in net.state_mut() {
        let view = available
            .remove(&name)
            .ok_or_else(|| CheckpointError::Missing {
                path: path.to_path_buf(),
                name: name.clone(),
            })?;
        let expected = slot.shape();
        let got = view.shape().to_vec();
        let scalar_ok = expected.is_empty() && (got.is_empty() || got == [1]);
        if got != expected && !scalar_ok {
            return Err(CheckpointError::Shape {
                path: path.to_path_buf(),
                name,
                got,
                expected,
            });
        }
        let values = to_f64(&view).ok_or_else(|| CheckpointError::Dtype {
            path: path.to_path_buf(),
            name: name.clone(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        match slot {
            Slot::Tensor(t) => {
                // Keep the parameter's storage type (f32 master weights, or f64 in the
                // reference mode).
                let dtype = t.dtype();
                *t = Tensor::from_f64(&expected, values)
                    .expect("shape checked above")
                    .into_dtype(dtype);
            }
            Slot::Floats(f) => *f = values,
            Slot::Count(c) => *c = values[0] as i64,
        }
    }

    available.retain(|name, _| !name.starts_with(TRAINING_PREFIX));
    if strict && !available.is_empty() {
        let mut names: Vec<String> = available.into_keys().collect();
        names.sort();
        return Err(CheckpointError::Unexpected {
            path: path.to_path_buf(),
            names,
        });
    }
    Ok(())
}

/// Names of tensors that a checkpoint may carry beside the network (training state), which
/// loading the network ignores.
pub const TRAINING_PREFIX: &str = "optim.";

/// The network's state as safetensors bytes: f32 tensors, i64 batch counters, and the
/// configuration (plus `extra` pairs) in the metadata.
pub fn state_bytes(net: &UNet, extra: &[(String, String)]) -> Vec<u8> {
    state_bytes_with(net, &[], extra)
}

/// As [`state_bytes`], with more f32 tensors (named under [`TRAINING_PREFIX`]).
pub fn state_bytes_with(
    net: &UNet,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    extra: &[(String, String)],
) -> Vec<u8> {
    let mut net = net.clone();
    let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = net
        .state_mut()
        .into_iter()
        .map(|(name, slot)| {
            let shape = slot.shape();
            match slot {
                Slot::Count(c) => (name, Dtype::I64, shape, c.to_le_bytes().to_vec()),
                other => {
                    let bytes = other
                        .values()
                        .iter()
                        .flat_map(|&v| (v as f32).to_le_bytes())
                        .collect();
                    (name, Dtype::F32, shape, bytes)
                }
            }
        })
        .collect();
    for (name, shape, values) in tensors {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        entries.push((name.clone(), Dtype::F32, shape.clone(), bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = entries
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            let view = TensorView::new(*dtype, shape.clone(), bytes).expect("sizes agree");
            (name.clone(), view)
        })
        .collect();
    let mut metadata: HashMap<String, String> = extra.iter().cloned().collect();
    metadata.insert(
        "enamel.unet".into(),
        serde_json::to_string(&net.config).expect("config serialises"),
    );
    safetensors::serialize(views, Some(metadata)).expect("serialising in-memory tensors")
}

/// Writes `bytes` to `path` through a temporary file in the same folder, renamed into place,
/// so that a crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn save(net: &UNet, path: &Path, extra: &[(String, String)]) -> Result<()> {
    write_atomic(path, &state_bytes(net, extra)).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads a checkpoint. The configuration comes from enamel's metadata when present, else from
/// `config` (a plain PyTorch state_dict carries none).
pub fn load(path: &Path, config: Option<UNetConfig>) -> Result<(UNet, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let config = match metadata.get("enamel.unet") {
        Some(json) => serde_json::from_str(json).map_err(|e| CheckpointError::Metadata {
            path: path.to_path_buf(),
            field: "enamel.unet".into(),
            message: e.to_string(),
        })?,
        None => config.ok_or_else(|| CheckpointError::Metadata {
            path: path.to_path_buf(),
            field: "enamel.unet".into(),
            message: "absent (not an enamel checkpoint): give the network's configuration".into(),
        })?,
    };
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut net = UNet::new(config, 0).map_err(|e| CheckpointError::Metadata {
        path: path.to_path_buf(),
        field: "enamel.unet".into(),
        message: e.to_string(),
    })?;
    load_state(&mut net, &tensors, "", path, true)?;
    Ok((net, metadata))
}

/// The f32 tensors of a checkpoint whose names start with [`TRAINING_PREFIX`].
pub fn load_training_tensors(path: &Path) -> Result<HashMap<String, Vec<f32>>> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = HashMap::new();
    for (name, view) in tensors.tensors() {
        if name.starts_with(TRAINING_PREFIX) {
            let values = to_f64(&view).ok_or_else(|| CheckpointError::Dtype {
                path: path.to_path_buf(),
                name: name.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            out.insert(name, values.into_iter().map(|v| v as f32).collect());
        }
    }
    Ok(out)
}
