//! Dice losses on the CPU. All sums run over the whole batch in f64, in parallel chunks that
//! are combined in a fixed order (the result does not depend on the thread count).
//!
//! For one class with probabilities `p`, target `t`, `I = Σp·t`, `S = Σp² + Σt² + ε`:
//! `dice = (2I + ε)/S` and `∂(1 − dice)/∂p = −2t/S + 2(2I + ε)·p/S²`.

use std::ops::Range;

use rayon::prelude::*;

use crate::ops::activation::cpu::{sigmoid, softmax_forward};
use crate::ops::batch_norm::cpu::{channel_sums, lane_sums, map_channel_blocks};
use crate::ops::Real;

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

/// `Σ f(range)` over `0..len` in chunks, combined in order.
fn chunked_sums<const K: usize>(
    len: usize,
    f: impl Fn(Range<usize>) -> [f64; K] + Sync,
) -> [f64; K] {
    let parts: Vec<[f64; K]> = (0..len.div_ceil(CHUNK))
        .into_par_iter()
        .map(|j| f(j * CHUNK..((j + 1) * CHUNK).min(len)))
        .collect();
    let mut total = [0.0; K];
    for p in parts {
        for k in 0..K {
            total[k] += p[k];
        }
    }
    total
}

/// `(a, b)` with `∂loss/∂p = −a·t + b·p` for a class with sums `I`, `S` and loss weight `w`.
fn dice_coefficients(intersection: f64, s: f64, eps: f64, w: f64) -> (f64, f64) {
    (w * 2.0 / s, w * 2.0 * (2.0 * intersection + eps) / (s * s))
}

/// Binary Dice loss of `p = sigmoid(logits)` against `target` (0/1, soft values allowed).
/// Writes `∂loss/∂logits` to `dlogits` and returns the loss.
pub fn binary_dice_loss<T: Real>(logits: &[T], target: &[T], eps: f64, dlogits: &mut [T]) -> f64 {
    let [pt, pp, tt] = chunked_sums(logits.len(), |r| {
        let mut sums = [0.0; 3];
        for (&x, &t) in logits[r.clone()].iter().zip(&target[r]) {
            let (p, t) = (sigmoid(x).f64(), t.f64());
            sums[0] += p * t;
            sums[1] += p * p;
            sums[2] += t * t;
        }
        sums
    });
    let s = pp + tt + eps;
    let loss = 1.0 - (2.0 * pt + eps) / s;

    let (a, b) = dice_coefficients(pt, s, eps, 1.0);
    let (a, b) = (T::of(a), T::of(b));
    dlogits
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(j, chunk)| {
            let r = j * CHUNK..j * CHUNK + chunk.len();
            for ((d, &x), &t) in chunk.iter_mut().zip(&logits[r.clone()]).zip(&target[r]) {
                let p = sigmoid(x);
                *d = (b * p - a * t) * p * (T::one() - p);
            }
        });
    loss
}

/// The result of [`categorical_dice_loss`].
#[derive(Clone, Debug, PartialEq)]
pub struct CategoricalDice {
    /// Mean of `1 − dice_c` over the present classes; 0 when no class is present.
    pub loss: f64,
    /// The soft Dice of each class, None for a class absent from the labels.
    pub dice: Vec<Option<f64>>,
}

/// Categorical Dice loss of `p = softmax(logits)` over channels against the label map `labels`
/// (`N·D·H·W` class indices, each `< C`). Writes `∂loss/∂logits` to `dlogits`. Absent classes
/// contribute no term but their logits still get gradient through the softmax; with no class
/// present at all (impossible for a valid non-empty label map) the loss and gradient are 0.
pub fn categorical_dice_loss<T: Real>(
    logits: &[T],
    dims: [usize; 5],
    labels: &[u8],
    eps: f64,
    dlogits: &mut [T],
) -> CategoricalDice {
    let [_, c, d, h, w] = dims;
    let s = d * h * w;
    let mut probs = vec![T::zero(); logits.len()];
    softmax_forward(logits, dims, &mut probs);

    // Per class: Σp·t, Σp², Σt (= Σt² for a 0/1 target).
    let sums = channel_sums(dims, |class, r| {
        let (block, v) = (r.start / s, r.start % s);
        let label_start = (block / c) * s + v;
        let labels = &labels[label_start..label_start + r.len()];
        lane_sums(&probs[r], labels, |p, l| {
            let (p, t) = (p.f64(), f64::from(u8::from(l as usize == class)));
            [p * t, p * p, t]
        })
    });
    let present = sums.iter().filter(|s| s[2] > 0.0).count();
    let mut dice = vec![None; c];
    if present == 0 {
        dlogits.fill(T::zero());
        return CategoricalDice { loss: 0.0, dice };
    }

    let weight = 1.0 / present as f64;
    let mut loss = 0.0;
    let mut coef = vec![(T::zero(), T::zero()); c];
    for (class, &[pt, pp, tt]) in sums.iter().enumerate() {
        if tt > 0.0 {
            let denom = pp + tt + eps;
            let dc = (2.0 * pt + eps) / denom;
            dice[class] = Some(dc);
            loss += weight * (1.0 - dc);
            let (a, b) = dice_coefficients(pt, denom, eps, weight);
            coef[class] = (T::of(a), T::of(b));
        }
    }

    // Softmax backward: dx_c = p_c·(dp_c − Σ_k p_k·dp_k) with dp_k = −a_k·t_k + b_k·p_k.
    let mut dot = vec![T::zero(); labels.len()];
    dot.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(j, chunk)| {
            for (k, out) in chunk.iter_mut().enumerate() {
                let voxel = j * CHUNK + k;
                let base = (voxel / s) * c * s + voxel % s;
                let label = labels[voxel] as usize;
                let mut acc = T::zero();
                for (class, &(a, b)) in coef.iter().enumerate() {
                    let p = probs[base + class * s];
                    acc += if class == label {
                        (b * p - a) * p
                    } else {
                        b * p * p
                    };
                }
                *out = acc;
            }
        });
    map_channel_blocks(dlogits, dims, |class, offset, chunk| {
        let (a, b) = coef[class];
        let (block, v) = (offset / s, offset % s);
        let voxel = (block / c) * s + v;
        let r = offset..offset + chunk.len();
        let per_voxel = dot[voxel..voxel + chunk.len()].iter().zip(&labels[voxel..]);
        for ((out, &p), (&dt, &l)) in chunk.iter_mut().zip(&probs[r]).zip(per_voxel) {
            let t = if l as usize == class {
                T::one()
            } else {
                T::zero()
            };
            *out = p * (b * p - a * t - dt);
        }
    });
    CategoricalDice { loss, dice }
}

/// The predicted class of every voxel: the first channel with the largest logit, or for a
/// single channel `logits > 0`. Returns `N·D·H·W` labels.
pub fn predict_labels<T: Real>(logits: &[T], dims: [usize; 5]) -> Vec<u8> {
    let [n, c, d, h, w] = dims;
    let s = d * h * w;
    (0..n * s)
        .into_par_iter()
        .map(|voxel| {
            let base = (voxel / s) * c * s + voxel % s;
            if c == 1 {
                return u8::from(logits[base] > T::zero());
            }
            let mut best = 0;
            for class in 1..c {
                if logits[base + class * s] > logits[base + best * s] {
                    best = class;
                }
            }
            best as u8
        })
        .collect()
}

/// The Dice `2|P∩T| / (|P| + |T|)` of each class between a hard prediction and the target,
/// None for a class in neither.
pub fn hard_dice_per_class(prediction: &[u8], target: &[u8], n_classes: usize) -> Vec<Option<f64>> {
    let mut counts = vec![[0u64; 3]; n_classes];
    for (&p, &t) in prediction.iter().zip(target) {
        let (p, t) = (p as usize, t as usize);
        if p < n_classes {
            counts[p][0] += 1;
        }
        if t < n_classes {
            counts[t][1] += 1;
        }
        if p == t && p < n_classes {
            counts[p][2] += 1;
        }
    }
    counts
        .iter()
        .map(|&[np, nt, both]| (np + nt > 0).then(|| 2.0 * both as f64 / (np + nt) as f64))
        .collect()
}
