//! Tensors: a shape, a storage dtype and the values, on the host or resident in a device's
//! memory.
//!
//! A device backend returns its results resident ([`Tensor::resident`]), so the next op on
//! that device reads them where they are; host code that looks at the values (the CPU backend,
//! checks, writers) gets them copied back once, on first access, and kept.
//!
//! Activations are 5-D `N,C,D,H,W`; parameters keep PyTorch's shapes (`out,in,kd,kh,kw` for a
//! convolution weight, `C` for a bias). Storage is f32 or f16; arithmetic is always f32, so
//! every op reads its inputs through [`Tensor::to_f32_vec`] or [`Tensor::f32_slice`].

mod error;
mod resident;

pub use error::{dims5, invalid, TensorError};
pub use resident::ResidentBuffer;

use std::sync::{Arc, OnceLock};

use half::f16;

pub type Result<T> = std::result::Result<T, TensorError>;

/// How the values of a tensor are stored. Arithmetic is f32 whatever the storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    /// Label maps (class indices).
    U8,
    /// Indices, e.g. the argmax positions of a max-pool.
    I32,
    /// Double precision: the CPU backend's reference mode, for checks against float64
    /// fixtures. The engine's own storage is f32 or f16.
    F64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::U8 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::U8 => "u8",
            DType::I32 => "i32",
            DType::F64 => "f64",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    U8(Vec<u8>),
    I32(Vec<i32>),
    F64(Vec<f64>),
}

impl HostData {
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::U8(v) => v.len(),
            HostData::I32(v) => v.len(),
            HostData::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HostData {
    fn zeros(dtype: DType, n: usize) -> HostData {
        match dtype {
            DType::F32 => HostData::F32(vec![0.0; n]),
            DType::F16 => HostData::F16(vec![f16::ZERO; n]),
            DType::U8 => HostData::U8(vec![0; n]),
            DType::I32 => HostData::I32(vec![0; n]),
            DType::F64 => HostData::F64(vec![0.0; n]),
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            HostData::F32(v) => bytemuck::cast_slice_mut(v),
            HostData::F16(v) => bytemuck::cast_slice_mut(v),
            HostData::U8(v) => v,
            HostData::I32(v) => bytemuck::cast_slice_mut(v),
            HostData::F64(v) => bytemuck::cast_slice_mut(v),
        }
    }
}

/// A dense row-major tensor.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Storage,
}

#[derive(Clone)]
enum Storage {
    Host(HostData),
    Resident(Resident),
}

/// Values in device memory, with their host copy once something asked for it.
#[derive(Clone)]
struct Resident {
    dtype: DType,
    buffer: Arc<dyn ResidentBuffer>,
    host: OnceLock<HostData>,
}

impl Resident {
    fn read(&self, n: usize) -> std::result::Result<HostData, String> {
        let mut data = HostData::zeros(self.dtype, n);
        self.buffer.read(data.bytes_mut())?;
        Ok(data)
    }

    fn host(&self, shape: &[usize]) -> &HostData {
        self.host.get_or_init(|| {
            let n = shape.iter().product();
            self.read(n).unwrap_or_else(|e| {
                // A failed copy means the device itself failed (a faulting kernel leaves a CUDA
                // context unusable); the infallible accessors cannot go on. Code that can
                // report it calls `Tensor::to_host` first.
                panic!(
                    "reading a {} tensor of shape {shape:?} back from the device failed: {e}",
                    self.dtype.name()
                )
            })
        })
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = match &self.data {
            Storage::Host(_) => "host",
            Storage::Resident(_) => "device",
        };
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype())
            .field("on", &place)
            .finish()
    }
}

/// Equal shapes and equal values (device values are read back to compare).
impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.shape == other.shape && self.host() == other.host()
    }
}

/// The product of a shape's dimensions, or an error when it overflows `usize`.
pub fn numel(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |acc, &d| {
        acc.checked_mul(d).ok_or_else(|| TensorError::TooLarge {
            shape: shape.to_vec(),
        })
    })
}

impl Tensor {
    pub fn from_f32(shape: &[usize], values: Vec<f32>) -> Result<Self> {
        check_len(shape, values.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Host(HostData::F32(values)),
        })
    }

    pub fn from_f16(shape: &[usize], values: Vec<f16>) -> Result<Self> {
        check_len(shape, values.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Host(HostData::F16(values)),
        })
    }

    /// Values computed in f32 and stored as `dtype` (rounded to nearest when f16).
    pub fn from_f32_as(shape: &[usize], values: Vec<f32>, dtype: DType) -> Result<Self> {
        Ok(Self::from_f32(shape, values)?.into_dtype(dtype))
    }

    pub fn from_u8(shape: &[usize], values: Vec<u8>) -> Result<Self> {
        check_len(shape, values.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Host(HostData::U8(values)),
        })
    }

    pub fn from_f64(shape: &[usize], values: Vec<f64>) -> Result<Self> {
        check_len(shape, values.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Host(HostData::F64(values)),
        })
    }

    pub fn from_i32(shape: &[usize], values: Vec<i32>) -> Result<Self> {
        check_len(shape, values.len())?;
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Host(HostData::I32(values)),
        })
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Result<Self> {
        Self::full(shape, 0.0, dtype)
    }

    pub fn full(shape: &[usize], value: f32, dtype: DType) -> Result<Self> {
        let n = numel(shape)?;
        let data = match dtype {
            DType::F32 => HostData::F32(vec![value; n]),
            DType::F16 => HostData::F16(vec![f16::from_f32(value); n]),
            DType::U8 => HostData::U8(vec![value as u8; n]),
            DType::I32 => HostData::I32(vec![value as i32; n]),
            DType::F64 => HostData::F64(vec![value as f64; n]),
        };
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Host(data),
        })
    }

    /// A tensor whose `dtype` values live in `buffer`, in device memory. Its shape is checked
    /// against the buffer's size.
    pub fn resident(
        shape: &[usize],
        dtype: DType,
        buffer: Arc<dyn ResidentBuffer>,
    ) -> Result<Self> {
        let bytes = numel(shape)?.checked_mul(dtype.size());
        if bytes != Some(buffer.len_bytes()) {
            return Err(TensorError::DataLength {
                shape: shape.to_vec(),
                expected: numel(shape)?,
                got: buffer.len_bytes() / dtype.size(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Storage::Resident(Resident {
                dtype,
                buffer,
                host: OnceLock::new(),
            }),
        })
    }

    /// The device buffer of a resident tensor, or `None` for one on the host.
    pub fn resident_buffer(&self) -> Option<&Arc<dyn ResidentBuffer>> {
        match &self.data {
            Storage::Host(_) => None,
            Storage::Resident(r) => Some(&r.buffer),
        }
    }

    /// A host copy: the values read back from the device when resident, with an error (not a
    /// panic, as the other accessors would) when the device fails.
    pub fn to_host(&self) -> Result<Tensor> {
        let data = match &self.data {
            Storage::Host(d) => d.clone(),
            Storage::Resident(r) => match r.host.get() {
                Some(d) => d.clone(),
                None => r
                    .read(self.numel())
                    .map_err(|message| TensorError::Invalid {
                        op: "read back from the device",
                        message,
                    })?,
            },
        };
        Ok(Tensor {
            shape: self.shape.clone(),
            data: Storage::Host(data),
        })
    }

    /// As [`Tensor::to_host`], without a copy when the tensor is already on the host.
    pub fn into_host(self) -> Result<Tensor> {
        match self.data {
            Storage::Host(_) => Ok(self),
            Storage::Resident(_) => self.to_host(),
        }
    }

    /// The values on the host (read back from the device on first access).
    fn host(&self) -> &HostData {
        match &self.data {
            Storage::Host(d) => d,
            Storage::Resident(r) => r.host(&self.shape),
        }
    }

    /// The values on the host, for changing them: a resident tensor becomes a host tensor.
    fn host_mut(&mut self) -> &mut HostData {
        if let Storage::Resident(r) = &mut self.data {
            r.host(&self.shape);
            let data = r.host.take().expect("read back just above");
            self.data = Storage::Host(data);
        }
        match &mut self.data {
            Storage::Host(d) => d,
            Storage::Resident(_) => unreachable!("made a host tensor just above"),
        }
    }

    pub fn scalar(value: f32) -> Self {
        Tensor {
            shape: vec![1],
            data: Storage::Host(HostData::F32(vec![value])),
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        let data = match &self.data {
            Storage::Host(d) => d,
            Storage::Resident(r) => return r.dtype,
        };
        match data {
            HostData::F32(_) => DType::F32,
            HostData::F16(_) => DType::F16,
            HostData::U8(_) => DType::U8,
            HostData::I32(_) => DType::I32,
            HostData::F64(_) => DType::F64,
        }
    }

    pub fn numel(&self) -> usize {
        match &self.data {
            Storage::Host(d) => d.len(),
            // The shape was checked against the buffer when the tensor was made.
            Storage::Resident(_) => self.shape.iter().product(),
        }
    }

    /// The values on the host (read back from the device on first access).
    pub fn data(&self) -> &HostData {
        self.host()
    }

    /// The shape as `[N, C, D, H, W]`, or an error naming the op when the tensor is not 5-D.
    pub fn dims5(&self, op: &'static str) -> Result<[usize; 5]> {
        dims5(op, &self.shape)
    }

    /// The f32 values when the storage is f32, without a copy.
    pub fn f32_slice(&self) -> Option<&[f32]> {
        match self.host() {
            HostData::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn f32_slice_mut(&mut self) -> Option<&mut [f32]> {
        match self.host_mut() {
            HostData::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn u8_slice(&self) -> Option<&[u8]> {
        match self.host() {
            HostData::U8(v) => Some(v),
            _ => None,
        }
    }

    pub fn i32_slice(&self) -> Option<&[i32]> {
        match self.host() {
            HostData::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The values widened to f32 (a copy).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        self.as_f32().into_owned()
    }

    /// The values as f32, borrowed when stored as f32 and converted otherwise.
    pub fn as_f32(&self) -> std::borrow::Cow<'_, [f32]> {
        use std::borrow::Cow;
        match self.host() {
            HostData::F32(v) => Cow::Borrowed(v),
            HostData::F16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
            HostData::U8(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
            HostData::I32(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
            HostData::F64(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        }
    }

    /// The values as f64, borrowed when stored as f64 and converted otherwise.
    pub fn as_f64(&self) -> std::borrow::Cow<'_, [f64]> {
        use std::borrow::Cow;
        match self.host() {
            HostData::F64(v) => Cow::Borrowed(v),
            HostData::F32(v) => Cow::Owned(v.iter().map(|&x| x as f64).collect()),
            HostData::F16(v) => Cow::Owned(v.iter().map(|x| x.to_f64()).collect()),
            HostData::U8(v) => Cow::Owned(v.iter().map(|&x| x as f64).collect()),
            HostData::I32(v) => Cow::Owned(v.iter().map(|&x| x as f64).collect()),
        }
    }

    /// The same values stored as `dtype`, without a copy when it is already so stored.
    pub fn into_dtype(self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            self
        } else {
            self.to_dtype(dtype)
        }
    }

    /// The same values stored as `dtype` (f16 rounds to nearest; integers truncate).
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            return self.clone();
        }
        let data = match dtype {
            DType::F64 => HostData::F64(self.as_f64().into_owned()),
            DType::F32 => HostData::F32(self.as_f32().into_owned()),
            DType::F16 => HostData::F16(self.as_f32().iter().map(|&v| f16::from_f32(v)).collect()),
            DType::U8 => HostData::U8(self.as_f64().iter().map(|&v| v as u8).collect()),
            DType::I32 => HostData::I32(self.as_f64().iter().map(|&v| v as i32).collect()),
        };
        Tensor {
            shape: self.shape.clone(),
            data: Storage::Host(data),
        }
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape)? != self.numel() {
            return Err(TensorError::Reshape {
                from: self.shape,
                to: shape.to_vec(),
            });
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Sum of all elements, accumulated in f64 whatever the storage.
    pub fn sum(&self) -> f64 {
        match self.host() {
            HostData::F32(v) => v.iter().map(|&x| x as f64).sum(),
            HostData::F16(v) => v.iter().map(|x| x.to_f64()).sum(),
            HostData::U8(v) => v.iter().map(|&x| x as f64).sum(),
            HostData::I32(v) => v.iter().map(|&x| x as f64).sum(),
            HostData::F64(v) => v.iter().sum(),
        }
    }

    /// Mean of all elements, accumulated in f64; 0 for an empty tensor.
    pub fn mean(&self) -> f64 {
        if self.numel() == 0 {
            0.0
        } else {
            self.sum() / self.numel() as f64
        }
    }

    /// An error unless `other` has exactly this tensor's shape.
    pub fn expect_same_shape(&self, op: &'static str, other: &Tensor) -> Result<()> {
        same_shape(op, &self.shape, &other.shape)
    }
}

/// An error naming `op` unless the two shapes are equal.
pub fn same_shape(op: &'static str, left: &[usize], right: &[usize]) -> Result<()> {
    if left != right {
        return Err(TensorError::ShapeMismatch {
            op,
            left: left.to_vec(),
            right: right.to_vec(),
        });
    }
    Ok(())
}

fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let n = numel(shape)?;
    if n != len {
        return Err(TensorError::DataLength {
            shape: shape.to_vec(),
            expected: n,
            got: len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_sum_of_many_ones_is_exact() {
        let t = Tensor::full(&[1, 1, 72, 120, 120], 1.0, DType::F16).unwrap();
        assert_eq!(t.numel(), 1_036_800);
        assert_eq!(t.sum(), 1_036_800.0);
        let m = Tensor::full(&[1, 1, 1, 1, 70_000], 1.0, DType::F16).unwrap();
        assert_eq!(m.mean(), 1.0);
    }

    #[test]
    fn wrong_length_is_an_error() {
        let err = Tensor::from_f32(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert!(err.to_string().contains("[2, 3]"), "{err}");
    }

    #[test]
    fn f16_round_trip_keeps_shape() {
        let t = Tensor::from_f32(&[1, 1, 1, 1, 3], vec![0.5, -2.0, 1000.0]).unwrap();
        let h = t.to_dtype(DType::F16);
        assert_eq!(h.dtype(), DType::F16);
        assert_eq!(h.to_f32_vec(), vec![0.5, -2.0, 1000.0]);
    }
}
