//! The one computation behind the CPU convolution passes: a strided 3-D cross-correlation
//!
//! ```text
//! out[n, co, o] = sum over ci, kk of inp[n, ci, o * stride + kk - pad] * weight[co, ci, kk]
//! ```
//!
//! (zero outside the input), computed tile by tile. A tile is a slab of a few output planes
//! times a block of whole output rows of one image. Its input planes are unfolded once into a
//! per-task buffer `[plane, ci, kh, kw, position]` small enough to stay in L2; the im2col
//! matrix of each output plane of the slab is then a contiguous window of that buffer (rows
//! `(kd, ci, kh, kw)`), so one single-threaded gemm per output plane does the arithmetic with
//! the weight reordered to `[co, kd, ci, kh, kw]`. Rayon spreads the tiles over the cores. The
//! volume is never unfolded as a whole, and neighbouring output planes share unfolded planes
//! instead of each unfolding all `k` of theirs.
//!
//! conv3d forward and input gradient and the input gradient of conv_transpose3d are
//! [`Correlation::forward`]; the weight gradients of both are [`Correlation::weight_grad`].

use crate::ops::Real;
use gemm::Parallelism;
use rayon::prelude::*;

/// Groups the weight gradient's tasks are summed in (fixed, so results do not depend on the
/// number of threads or their scheduling; enough for 16 cores).
const WEIGHT_GRAD_GROUPS: usize = 16;

/// Elements of one tile's unfolded planes (1 MiB in f32): small enough for the 2 MiB L2 next
/// to gemm's packed weights, large enough for several planes. On the 18-channel layers of
/// net A (measured on a busy machine) 1 MiB beat 384 KiB, 768 KiB, 1.25 MiB and 2 MiB.
const TILE_COL_ELEMS: usize = 256 * 1024;

/// Fewest output positions per tile, so that a wide weight matrix (many input channels)
/// still leaves gemm a useful number of rows.
const MIN_TILE_POSITIONS: usize = 240;

/// A strided 3-D cross-correlation of `n` images. `pad` may be negative (the input gradient
/// of a convolution padded by more than `k - 1` crops instead of padding).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Correlation {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub input: [usize; 3],
    pub output: [usize; 3],
    pub k: usize,
    pub stride: usize,
    pub pad: isize,
}

/// A pointer that tasks writing provably disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
pub(crate) struct SharedMut<T>(pub *mut T);

// SAFETY: every user writes only the elements of its own tile (stated at each use).
unsafe impl<T> Send for SharedMut<T> {}
unsafe impl<T> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so that closures capture the whole wrapper, not its field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// The indices `i` in `0..count` with `0 <= i * stride + offset < bound`, as a range.
pub(crate) fn valid_range(
    count: usize,
    bound: usize,
    stride: usize,
    offset: isize,
) -> (usize, usize) {
    let lo = if offset >= 0 { 0 } else { (-offset) as usize }.div_ceil(stride);
    let last = bound as isize - 1 - offset;
    let hi = if last < 0 {
        0
    } else {
        (last as usize / stride + 1).min(count)
    };
    (lo.min(hi), hi)
}

/// `out[c] = sum over images and voxels of g[n, c, ..]`, accumulated in f64.
pub(crate) fn channel_sums<T: Real>(
    g: &[T],
    n: usize,
    channels: usize,
    volume: usize,
    out: &mut [T],
) {
    assert_eq!(g.len(), n * channels * volume);
    assert_eq!(out.len(), channels);
    out.par_iter_mut().enumerate().for_each(|(c, sum)| {
        let mut lanes = [0f64; 8];
        for img in 0..n {
            let plane = &g[(img * channels + c) * volume..][..volume];
            let mut chunks = plane.chunks_exact(8);
            for chunk in &mut chunks {
                for (lane, v) in lanes.iter_mut().zip(chunk) {
                    *lane += v.f64();
                }
            }
            lanes[0] += chunks.remainder().iter().map(|v| v.f64()).sum::<f64>();
        }
        *sum = T::of(lanes.iter().sum());
    });
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// How the output of one image is cut into tiles: blocks of `rows` output rows, in slabs of
/// `planes` output planes. A slab unfolds its input planes once and every output plane of
/// the slab reads its window from them (stride 1, k = 3: 6 unfolded planes serve 4 output
/// planes, instead of 27 unfolded rows per output position, 13.5).
#[derive(Clone, Copy, Debug)]
struct Tiling {
    rows: usize,
    planes: usize,
    row_blocks: usize,
    slabs: usize,
}

/// One tile: image, first output plane and count, first output row and count.
#[derive(Clone, Copy, Debug)]
struct Tile {
    img: usize,
    od0: usize,
    planes: usize,
    r0: usize,
    rows: usize,
}

impl Tiling {
    fn tasks(&self, n: usize) -> usize {
        n * self.slabs * self.row_blocks
    }
}

impl Correlation {
    fn input_volume(&self) -> usize {
        self.input.iter().product()
    }

    fn output_volume(&self) -> usize {
        self.output.iter().product()
    }

    /// Unfolded rows per input plane: one per (input channel, kh, kw).
    fn plane_rows(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Rows of the im2col matrix of one output position: (kd, ci, kh, kw).
    fn col_rows(&self) -> usize {
        self.k * self.plane_rows()
    }

    /// A 1×1×1 kernel on an unchanged grid reads the input itself as its im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.pad == 0 && self.input == self.output
    }

    /// Input planes a slab of `planes` output planes reads.
    fn slab_inputs(&self, planes: usize) -> usize {
        (planes - 1) * self.stride + self.k
    }

    fn tiling(&self) -> Tiling {
        let [od, oh, ow] = self.output;
        // gemm repacks the unfolded matrix unless its row length is a multiple of the SIMD
        // width (16 f32 with AVX-512), so whole rows are taken in steps that keep that.
        let step = 16 / gcd(ow, 16);
        let mut rows = (MIN_TILE_POSITIONS.div_ceil(ow).div_ceil(step) * step).clamp(1, oh);
        let per_plane = self.plane_rows() * rows * ow;
        let fit = (TILE_COL_ELEMS / per_plane).max(self.k);
        let mut planes = ((fit - self.k) / self.stride + 1).clamp(1, od);

        // Several tasks per core (up to 16 cores), so that no core idles at the end of a small
        // layer. A constant, not the thread count: the tiling decides how the weight gradient
        // is summed, and results must not depend on the machine's core count.
        let wanted = 4 * WEIGHT_GRAD_GROUPS;
        let tiling = |rows: usize, planes: usize| Tiling {
            rows,
            planes,
            row_blocks: oh.div_ceil(rows),
            slabs: od.div_ceil(planes),
        };
        while planes > 1 && tiling(rows, planes).tasks(self.n) < wanted {
            planes -= 1;
        }
        while rows > 1 && tiling(rows, planes).tasks(self.n) < wanted {
            rows -= 1;
        }
        tiling(rows, planes)
    }

    fn tile(&self, tiling: &Tiling, t: usize) -> Tile {
        let per_image = tiling.slabs * tiling.row_blocks;
        let (img, rest) = (t / per_image, t % per_image);
        let (slab, block) = (rest / tiling.row_blocks, rest % tiling.row_blocks);
        let (od0, r0) = (slab * tiling.planes, block * tiling.rows);
        Tile {
            img,
            od0,
            planes: tiling.planes.min(self.output[0] - od0),
            r0,
            rows: tiling.rows.min(self.output[1] - r0),
        }
    }

    /// Unfolds the input planes of a tile into `col`, laid out `[plane, ci, kh, kw, position]`
    /// with `tile.rows * ow` positions; zero where the kernel reaches outside the input.
    fn unfold<T: Real>(&self, image: &[T], tile: &Tile, col: &mut [T]) {
        let [id, ih, iw] = self.input;
        let ow = self.output[2];
        let (k, s, pad) = (self.k, self.stride, self.pad);
        let positions = tile.rows * ow;
        let mut col_rows = col.chunks_exact_mut(positions);

        for j in 0..self.slab_inputs(tile.planes) {
            let zd = (tile.od0 * s + j) as isize - pad;
            let depth_inside = zd >= 0 && zd < id as isize;
            for ci in 0..self.cin {
                let plane: &[T] = if depth_inside {
                    &image[(ci * id + zd as usize) * ih * iw..][..ih * iw]
                } else {
                    &[]
                };
                for kh in 0..k {
                    let offset_h = (tile.r0 * s + kh) as isize - pad;
                    let (rlo, rhi) = if depth_inside {
                        valid_range(tile.rows, ih, s, offset_h)
                    } else {
                        (0, 0)
                    };
                    for kw in 0..k {
                        let dst = col_rows.next().expect("unfold buffer too short");
                        let offset_w = kw as isize - pad;
                        let (lo, hi) = valid_range(ow, iw, s, offset_w);
                        if rlo == rhi || lo == hi {
                            dst.fill(T::zero());
                            continue;
                        }
                        dst[..rlo * ow].fill(T::zero());
                        dst[rhi * ow..].fill(T::zero());
                        let first_h = (rlo as isize * s as isize + offset_h) as usize;
                        if s == 1 && iw == ow {
                            // Rows are contiguous in both: one copy, then re-zero the borders.
                            let from = (first_h * iw) as isize + lo as isize + offset_w;
                            let len = (rhi - rlo - 1) * ow + hi - lo;
                            let from = from as usize;
                            dst[rlo * ow + lo..][..len].copy_from_slice(&plane[from..from + len]);
                            for row in dst[rlo * ow..rhi * ow].chunks_exact_mut(ow) {
                                row[..lo].fill(T::zero());
                                row[hi..].fill(T::zero());
                            }
                            continue;
                        }
                        for (r, row) in dst[rlo * ow..rhi * ow].chunks_exact_mut(ow).enumerate() {
                            let src = &plane[(first_h + r * s) * iw..][..iw];
                            row[..lo].fill(T::zero());
                            row[hi..].fill(T::zero());
                            for (o, v) in row[lo..hi].iter_mut().enumerate() {
                                *v = src[(((lo + o) * s) as isize + offset_w) as usize];
                            }
                        }
                    }
                }
            }
        }
    }

    /// The im2col matrix of output plane `tile.od0 + t` is `col_rows()` rows of `positions`
    /// starting at `base + t * step`, `row_stride` apart. Fills `col` unless pointwise.
    fn windows<T: Real>(
        &self,
        image: &[T],
        tile: &Tile,
        col: &mut Vec<T>,
    ) -> (*const T, usize, usize) {
        let [_, oh, ow] = self.output;
        if self.is_pointwise() {
            let base = image[(tile.od0 * oh + tile.r0) * ow..].as_ptr();
            return (base, oh * ow, self.input_volume());
        }
        let positions = tile.rows * ow;
        col.resize(
            self.slab_inputs(tile.planes) * self.plane_rows() * positions,
            T::zero(),
        );
        self.unfold(image, tile, col);
        (
            col.as_ptr(),
            self.stride * self.plane_rows() * positions,
            positions,
        )
    }

    /// The weight `[cout, cin, kd, kh, kw]` reordered to `[cout, kd, cin, kh, kw]`, the row
    /// order of the unfolded windows (and back with `inverse`).
    fn reorder<T: Real>(&self, weight: &[T], inverse: bool) -> Vec<T> {
        let (k, k2) = (self.k, self.k * self.k);
        let mut out = vec![T::zero(); weight.len()];
        for co in 0..self.cout {
            for ci in 0..self.cin {
                for kd in 0..k {
                    let standard = ((co * self.cin + ci) * k + kd) * k2;
                    let windowed = ((co * k + kd) * self.cin + ci) * k2;
                    let (from, to) = if inverse {
                        (windowed, standard)
                    } else {
                        (standard, windowed)
                    };
                    out[to..to + k2].copy_from_slice(&weight[from..from + k2]);
                }
            }
        }
        out
    }

    /// `out = correlation(inp, weight) + bias` (overwrites `out`). `weight` is `[cout, cin, k^3]`.
    pub fn forward<T: Real>(&self, inp: &[T], weight: &[T], bias: Option<&[T]>, out: &mut [T]) {
        let (ivol, ovol, kc) = (self.input_volume(), self.output_volume(), self.col_rows());
        assert_eq!(
            inp.len(),
            self.n * self.cin * ivol,
            "correlation input length"
        );
        assert_eq!(weight.len(), self.cout * kc, "correlation weight length");
        assert_eq!(
            out.len(),
            self.n * self.cout * ovol,
            "correlation output length"
        );
        if let Some(b) = bias {
            assert_eq!(b.len(), self.cout, "correlation bias length");
        }

        let weight = self.reorder(weight, false);
        let tiling = self.tiling();
        let [_, oh, ow] = self.output;
        let out_ptr = SharedMut(out.as_mut_ptr());

        (0..tiling.tasks(self.n))
            .into_par_iter()
            .for_each_init(Vec::new, |col, t| {
                let tile = self.tile(&tiling, t);
                let image = &inp[tile.img * self.cin * ivol..][..self.cin * ivol];
                let (base, step, row_stride) = self.windows(image, &tile, col);
                let positions = tile.rows * ow;

                for plane in 0..tile.planes {
                    let p0 = ((tile.od0 + plane) * oh + tile.r0) * ow;
                    // SAFETY: this tile alone writes positions p0..p0 + positions of each output
                    // channel of image `img`; the window lies inside `col` or `inp`.
                    unsafe {
                        let dst = out_ptr.get().add(tile.img * self.cout * ovol + p0);
                        gemm::gemm(
                            self.cout,
                            positions,
                            kc,
                            dst,
                            1,
                            ovol as isize,
                            false,
                            weight.as_ptr(),
                            1,
                            kc as isize,
                            base.add(plane * step),
                            1,
                            row_stride as isize,
                            T::zero(),
                            T::one(),
                            false,
                            false,
                            false,
                            Parallelism::None,
                        );
                        if let Some(b) = bias {
                            for (co, &b_co) in b.iter().enumerate() {
                                let row =
                                    std::slice::from_raw_parts_mut(dst.add(co * ovol), positions);
                                row.iter_mut().for_each(|v| *v += b_co);
                            }
                        }
                    }
                }
            });
    }

    /// `dweight[co, ci, kk] = sum over n, o of gout[n, co, o] * inp[n, ci, o*stride + kk - pad]`
    /// (overwrites `dweight`). Each rayon task sums into its own buffer; the buffers are added
    /// at the end.
    // TODO: this pass runs at about half the speed of `forward`: the reduction runs along the
    // positions, which are contiguous in both operands, so gemm repacks every unfolded window
    // with a scalar transposing copy. An unfold that writes `[position, row]` with SIMD
    // transposes (AVX-512 intrinsics) would remove that copy.
    pub fn weight_grad<T: Real>(&self, inp: &[T], gout: &[T], dweight: &mut [T]) {
        let (ivol, ovol, kc) = (self.input_volume(), self.output_volume(), self.col_rows());
        assert_eq!(
            inp.len(),
            self.n * self.cin * ivol,
            "correlation input length"
        );
        assert_eq!(
            gout.len(),
            self.n * self.cout * ovol,
            "correlation gradient length"
        );
        assert_eq!(
            dweight.len(),
            self.cout * kc,
            "correlation weight-gradient length"
        );

        let tiling = self.tiling();
        let [_, oh, ow] = self.output;
        let len = dweight.len();

        // Tasks are dealt to a fixed number of contiguous groups, each summed in task order,
        // and the groups are added in group order: the result does not depend on how rayon
        // schedules them, so a resumed training run repeats its losses bit for bit.
        let tasks = tiling.tasks(self.n);
        let groups = WEIGHT_GRAD_GROUPS.min(tasks).max(1);
        let partials: Vec<Vec<T>> = (0..groups)
            .into_par_iter()
            .map(|g| {
                let mut acc = vec![T::zero(); len];
                let mut col = Vec::new();
                for t in (g * tasks / groups)..((g + 1) * tasks / groups) {
                    let tile = self.tile(&tiling, t);
                    let image = &inp[tile.img * self.cin * ivol..][..self.cin * ivol];
                    let (base, step, row_stride) = self.windows(image, &tile, &mut col);
                    let positions = tile.rows * ow;

                    for plane in 0..tile.planes {
                        let p0 = ((tile.od0 + plane) * oh + tile.r0) * ow;
                        let grad = &gout[tile.img * self.cout * ovol + p0..];
                        // SAFETY: `grad` holds `cout` rows of `positions` at stride `ovol`, the
                        // window `kc` rows of `positions` at `row_stride`; `acc` is `cout x kc`
                        // and owned by this group.
                        unsafe {
                            gemm::gemm(
                                self.cout,
                                kc,
                                positions,
                                acc.as_mut_ptr(),
                                1,
                                kc as isize,
                                true,
                                grad.as_ptr(),
                                1,
                                ovol as isize,
                                base.add(plane * step),
                                row_stride as isize,
                                1,
                                T::one(),
                                T::one(),
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                    }
                }
                acc
            })
            .collect();
        let mut total = vec![T::zero(); len];
        for part in &partials {
            total.iter_mut().zip(part).for_each(|(x, y)| *x += *y);
        }
        dweight.copy_from_slice(&self.reorder(&total, true));
    }
}

#[cfg(test)]
mod tests {
    use super::Correlation;

    #[test]
    fn deep_volumes_share_unfolded_planes_between_output_planes() {
        let deep = |stride, input| Correlation {
            n: 1,
            cin: 2,
            cout: 3,
            input,
            output: [161, 9, 10],
            k: 3,
            stride,
            pad: 1,
        };
        for c in [deep(1, [161, 9, 10]), deep(2, [321, 17, 19])] {
            let tiling = c.tiling();
            assert!(tiling.planes > 1 && tiling.slabs > 1, "{c:?}: {tiling:?}");
            assert!(tiling.slabs * tiling.planes >= 161, "{tiling:?}");
        }
    }
}
