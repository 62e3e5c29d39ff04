//! What every op of the device backend needs around a launch: kernel names per storage type,
//! grid shapes, storage checks, and the two-step reductions (per-block partials, then a sum per
//! row in f64) of `kernels/batch_norm.cu` and `kernels/dice.cu`.

use std::borrow::Cow;

use super::{Device, DeviceTensor};
use crate::launch::{DevicePtr, KernelArgs, LaunchConfig};
pub(super) use crate::tensor::{dims5, invalid};
use crate::tensor::{DType, Result, Tensor};

/// Threads per block of every launch here (a multiple of 32, as `block_sum` needs).
pub(super) const BLOCK: u32 = 256;

/// Blocks of a grid-stride launch: enough to fill any GPU, few enough to keep per-thread loops.
const MAX_BLOCKS: usize = 4096;

/// Most blocks sharing one row of a reduction; their partials are added by one thread.
const MAX_PARTS: usize = 128;

/// The storage type of a float tensor, or an error naming the op.
pub(super) fn float_dtype(op: &'static str, t: &Tensor) -> Result<DType> {
    match t.dtype() {
        d @ (DType::F32 | DType::F16) => Ok(d),
        other => Err(invalid(
            op,
            format!("expected f32 or f16 storage, got {}", other.name()),
        )),
    }
}

/// `base_f32` or `base_f16`.
pub(super) fn kernel(base: &str, dtype: DType) -> String {
    let suffix = if dtype == DType::F16 { "f16" } else { "f32" };
    format!("{base}_{suffix}")
}

/// A 1-D grid-stride launch over `elements`.
pub(super) fn grid_1d(elements: usize) -> LaunchConfig {
    let blocks = elements.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS);
    LaunchConfig {
        grid: [blocks as u32, 1, 1],
        block: [BLOCK, 1, 1],
        shared_bytes: 0,
    }
}

/// A 2-D grid-stride launch: y over `planes` (samples or (n, c) planes), x over the
/// `per_plane` elements of each.
pub(super) fn grid_planes(planes: usize, per_plane: usize) -> LaunchConfig {
    let blocks = per_plane.div_ceil(BLOCK as usize).clamp(1, MAX_BLOCKS / 4);
    LaunchConfig {
        grid: [blocks as u32, planes.clamp(1, 65535) as u32, 1],
        block: [BLOCK, 1, 1],
        shared_bytes: 0,
    }
}

/// Blocks per row of a reduction over `values` values per row.
pub(super) fn parts_for(values: usize) -> usize {
    values.div_ceil(BLOCK as usize * 4).clamp(1, MAX_PARTS)
}

/// Offsets in i64 for `long long` kernel parameters; every size here came from a tensor that
/// exists, so it fits.
pub(super) fn i64_of(v: usize) -> i64 {
    v as i64
}

/// Per-channel counts in i32 for `int` kernel parameters, or an error naming the op.
pub(super) fn i32_of(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| invalid(op, format!("{what} = {v} exceeds the kernels' i32")))
}

impl Device {
    /// Runs reduction `kernel` over a grid of (`parts`, `grid_y`) blocks with arguments
    /// `inputs..., partial, tail...`; the kernel writes `rows` rows of `parts` partials, which
    /// are summed per row in f64 and returned.
    pub(super) fn reduce_rows(
        &self,
        op: &'static str,
        kernel: &str,
        inputs: &[DevicePtr],
        tail: impl FnOnce(KernelArgs) -> KernelArgs,
        (parts, grid_y, rows): (usize, usize, usize),
    ) -> Result<Vec<f64>> {
        let partial = self.alloc(op, &[rows * parts], DType::F32)?;
        let mut args = KernelArgs::new();
        for &p in inputs {
            args = args.ptr(p);
        }
        args = tail(args.ptr(partial.ptr()));
        let grid_y = u32::try_from(grid_y).map_err(|_| invalid(op, "too many channels".into()))?;
        let config = LaunchConfig {
            grid: [parts as u32, grid_y, 1],
            block: [BLOCK, 1, 1],
            shared_bytes: 0,
        };
        // SAFETY: the inputs are live buffers sized by the caller for the kernel's extents,
        // and `partial` holds the `rows * parts` floats the kernel writes.
        unsafe { self.launch(op, kernel, config, &args) }?;

        let sums = self.alloc(op, &[rows], DType::F64)?;
        let args = KernelArgs::new()
            .ptr(partial.ptr())
            .i32(parts as i32)
            .i32(i32_of(op, "rows", rows)?)
            .ptr(sums.ptr());
        let config = LaunchConfig {
            grid: [rows.div_ceil(128).max(1) as u32, 1, 1],
            block: [128, 1, 1],
            shared_bytes: 0,
        };
        // SAFETY: `partial` holds rows * parts floats, `sums` rows doubles.
        unsafe { self.launch(op, "sum_partials", config, &args) }?;
        Ok(self.download(op, &sums)?.as_f64().into_owned())
    }

    /// `t` stored as `dtype` (f32 or f16): itself when it already is, else converted by the
    /// cast kernels when it is resident here and on the host otherwise.
    pub(super) fn as_storage<'a>(
        &self,
        op: &'static str,
        t: &'a Tensor,
        dtype: DType,
    ) -> Result<Cow<'a, Tensor>> {
        if t.dtype() == dtype {
            return Ok(Cow::Borrowed(t));
        }
        if self.holds(t) {
            return self.cast(t, dtype).map(Cow::Owned);
        }
        float_dtype(op, t)?;
        Ok(Cow::Owned(t.to_dtype(dtype)))
    }

    /// Both inputs, which must be f32 or f16, in one storage type for a kernel that reads them
    /// alike: unchanged when they match, else both widened to f32 (the result is stored back
    /// with `restore`).
    pub(super) fn common_storage<'a>(
        &self,
        op: &'static str,
        a: &'a Tensor,
        b: &'a Tensor,
    ) -> Result<(Cow<'a, Tensor>, Cow<'a, Tensor>, DType)> {
        float_dtype(op, a)?;
        float_dtype(op, b)?;
        if a.dtype() == b.dtype() {
            return Ok((Cow::Borrowed(a), Cow::Borrowed(b), a.dtype()));
        }
        let a = self.as_storage(op, a, DType::F32)?;
        let b = self.as_storage(op, b, DType::F32)?;
        Ok((a, b, DType::F32))
    }

    /// `t` in storage type `dtype` (a no-op when it already is).
    pub(super) fn restore(&self, op: &'static str, t: Tensor, dtype: DType) -> Result<Tensor> {
        match self.as_storage(op, &t, dtype)? {
            Cow::Borrowed(_) => Ok(t),
            Cow::Owned(converted) => Ok(converted),
        }
    }

    /// Launches the element-wise `kernel(inputs..., output, scalars..., n)`; the output, of
    /// `shape` in `dtype`, stays on the device.
    pub(super) fn map_elements(
        &self,
        op: &'static str,
        kernel: &str,
        inputs: &[&DeviceTensor],
        scalars: impl FnOnce(KernelArgs) -> KernelArgs,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Tensor> {
        let y = self.alloc(op, shape, dtype)?;
        let n = y.numel();
        let mut args = KernelArgs::new();
        for input in inputs {
            args = args.ptr(input.ptr());
        }
        args = scalars(args.ptr(y.ptr())).i64(i64_of(n));
        // SAFETY: every input holds `n` values of `dtype` (checked by the callers), as does `y`.
        unsafe { self.launch(op, kernel, grid_1d(n), &args) }?;
        self.keep(op, y)
    }
}
