//! Connected components of a label grid (6-connectivity: voxels that share a face).

/// One connected component: its voxels (flat indices, i fastest) and the label they carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub label: u32,
    pub voxels: Vec<usize>,
}

impl Component {
    /// Mean index position (i, j, k).
    pub fn centroid(&self, sizes: [usize; 3]) -> [f64; 3] {
        let mut sum = [0.0f64; 3];
        for &v in &self.voxels {
            let p = position(v, sizes);
            for a in 0..3 {
                sum[a] += p[a] as f64;
            }
        }
        let n = self.voxels.len().max(1) as f64;
        sum.map(|s| s / n)
    }
}

/// The (i, j, k) position of flat index `v`.
pub fn position(v: usize, sizes: [usize; 3]) -> [usize; 3] {
    let i = v % sizes[0];
    let j = (v / sizes[0]) % sizes[1];
    let k = v / (sizes[0] * sizes[1]);
    [i, j, k]
}

/// The face neighbours of flat index `v` inside the grid.
pub fn face_neighbours(v: usize, sizes: [usize; 3]) -> impl Iterator<Item = usize> {
    let [i, j, k] = position(v, sizes);
    let (si, sj, sk) = (sizes[0], sizes[1], sizes[2]);
    let plane = si * sj;
    [
        (i > 0).then(|| v - 1),
        (i + 1 < si).then(|| v + 1),
        (j > 0).then(|| v - si),
        (j + 1 < sj).then(|| v + si),
        (k > 0).then(|| v - plane),
        (k + 1 < sk).then(|| v + plane),
    ]
    .into_iter()
    .flatten()
}

/// Every connected region of equal nonzero labels, in order of its first voxel. Labels are
/// read through `label_of`, so any voxel type works.
pub fn components(
    count: usize,
    sizes: [usize; 3],
    label_of: impl Fn(usize) -> u32,
) -> Vec<Component> {
    debug_assert_eq!(count, sizes.iter().product::<usize>());
    let mut seen = vec![false; count];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..count {
        let label = label_of(start);
        if label == 0 || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut voxels = Vec::new();
        while let Some(v) = stack.pop() {
            voxels.push(v);
            for n in face_neighbours(v, sizes) {
                if !seen[n] && label_of(n) == label {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        voxels.sort_unstable();
        found.push(Component { label, voxels });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_connectivity_separates_diagonal_neighbours() {
        // 3×3×1: two 1-voxels touching only at a corner, and a 2 next to one of them.
        let sizes = [3, 3, 1];
        let labels = [1, 0, 0, 0, 1, 2, 0, 0, 2];
        let found = components(9, sizes, |v| labels[v]);
        assert_eq!(
            found,
            vec![
                Component {
                    label: 1,
                    voxels: vec![0]
                },
                Component {
                    label: 1,
                    voxels: vec![4]
                },
                Component {
                    label: 2,
                    voxels: vec![5, 8]
                },
            ]
        );
        assert_eq!(found[2].centroid(sizes), [2.0, 1.5, 0.0]);
    }

    #[test]
    fn a_snake_through_all_three_axes_is_one_component() {
        let sizes = [2, 2, 2];
        // 0 → 1 (i) → 3 (j) → 7 (k): one path of face steps.
        let on = [0usize, 1, 3, 7];
        let found = components(8, sizes, |v| u32::from(on.contains(&v)));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].voxels, vec![0, 1, 3, 7]);
    }
}
