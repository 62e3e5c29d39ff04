//! Channel concatenation of two `N,C,D,H,W` tensors on the CPU: per sample the `Ca` channel
//! blocks of `a` and then the `Cb` of `b`, each a contiguous run of `Ca·D·H·W` values. The copies
//! are memory bound (one `memcpy` per sample and input), so they run on one thread.

/// `y = cat([a, b], dim=1)` for `n` samples; a sample of `a` holds `a_block = Ca·D·H·W` values,
/// one of `b` holds `b_block`.
pub fn forward<T: Copy>(n: usize, a: &[T], a_block: usize, b: &[T], b_block: usize, y: &mut [T]) {
    let block = a_block + b_block;
    for i in 0..n {
        let out = &mut y[i * block..(i + 1) * block];
        out[..a_block].copy_from_slice(&a[i * a_block..(i + 1) * a_block]);
        out[a_block..].copy_from_slice(&b[i * b_block..(i + 1) * b_block]);
    }
}

/// The backward of [`forward`]: splits `gy` back into `da` (the first `a_block` values of each
/// sample) and `db`.
pub fn backward<T: Copy>(
    n: usize,
    gy: &[T],
    a_block: usize,
    b_block: usize,
    da: &mut [T],
    db: &mut [T],
) {
    let block = a_block + b_block;
    for i in 0..n {
        let g = &gy[i * block..(i + 1) * block];
        da[i * a_block..(i + 1) * a_block].copy_from_slice(&g[..a_block]);
        db[i * b_block..(i + 1) * b_block].copy_from_slice(&g[a_block..]);
    }
}
