//! A scalar (or multi-channel) volume with its place in the world.

/// Voxel values in the type they were stored with.
#[derive(Clone, Debug, PartialEq)]
pub enum Voxels {
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Voxels {
    pub fn len(&self) -> usize {
        match self {
            Voxels::I8(v) => v.len(),
            Voxels::U8(v) => v.len(),
            Voxels::I16(v) => v.len(),
            Voxels::U16(v) => v.len(),
            Voxels::I32(v) => v.len(),
            Voxels::U32(v) => v.len(),
            Voxels::I64(v) => v.len(),
            Voxels::U64(v) => v.len(),
            Voxels::F32(v) => v.len(),
            Voxels::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value converted to f32 (large integers lose precision, as in any f32 pipeline).
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Voxels::I8(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::U8(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::I16(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::U16(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::I32(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::U32(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::I64(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::U64(v) => v.iter().map(|&x| x as f32).collect(),
            Voxels::F32(v) => v.clone(),
            Voxels::F64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// Every value converted to f64 (exact for all integer types up to 2^53).
    pub fn to_f64(&self) -> Vec<f64> {
        match self {
            Voxels::I8(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::U8(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::I16(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::U16(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::U32(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::U64(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Voxels::F64(v) => v.clone(),
        }
    }

    /// The NRRD name of the stored type (`int16`, `uint8`, `float`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Voxels::I8(_) => "int8",
            Voxels::U8(_) => "uint8",
            Voxels::I16(_) => "int16",
            Voxels::U16(_) => "uint16",
            Voxels::I32(_) => "int32",
            Voxels::U32(_) => "uint32",
            Voxels::I64(_) => "int64",
            Voxels::U64(_) => "uint64",
            Voxels::F32(_) => "float",
            Voxels::F64(_) => "double",
        }
    }
}

/// A volume: voxels in index order (i fastest, then j, then k; channels fastest of all when
/// `channels > 1`), and the geometry that maps an index to world millimetres:
/// `world = origin + direction · (spacing ⊙ index)`.
///
/// `direction` holds the unit axis directions as its COLUMNS: `direction[r][c]` is row r of
/// column c, so the world direction of index axis c is `(direction[0][c], direction[1][c],
/// direction[2][c])`. World space is LPS (as in 3D Slicer's files and DICOM).
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Sizes of the spatial index axes `[i, j, k]`.
    pub sizes: [usize; 3],
    /// Values per voxel (1 for a scalar volume).
    pub channels: usize,
    pub voxels: Voxels,
    /// Voxel size along each index axis in millimetres (the norm of each space direction).
    pub spacing: [f64; 3],
    /// World position of voxel (0,0,0), in millimetres, LPS.
    pub origin: [f64; 3],
    /// Unit axis directions as columns (see the type's documentation).
    pub direction: [[f64; 3]; 3],
    /// `key:=value` pairs read from or to be written to a file, in order.
    pub key_values: Vec<(String, String)>,
}

impl Volume {
    /// A volume with identity directions, zero origin and the given spacing.
    pub fn new(sizes: [usize; 3], voxels: Voxels, spacing: [f64; 3]) -> Self {
        Volume {
            sizes,
            channels: 1,
            voxels,
            spacing,
            origin: [0.0; 3],
            direction: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            key_values: Vec::new(),
        }
    }

    pub fn voxel_count(&self) -> usize {
        self.sizes[0] * self.sizes[1] * self.sizes[2]
    }

    /// Flat position of voxel (i, j, k) of channel 0.
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        ((k * self.sizes[1] + j) * self.sizes[0] + i) * self.channels
    }

    /// World position (mm, LPS) of a continuous index.
    pub fn index_to_world(&self, index: [f64; 3]) -> [f64; 3] {
        let mut world = self.origin;
        for (r, w) in world.iter_mut().enumerate() {
            for (c, x) in index.iter().enumerate() {
                *w += self.direction[r][c] * self.spacing[c] * x;
            }
        }
        world
    }

    /// A new volume with the same geometry and other voxels (e.g. a label map for an image).
    pub fn with_voxels(&self, voxels: Voxels) -> Self {
        Volume {
            sizes: self.sizes,
            channels: 1,
            voxels,
            spacing: self.spacing,
            origin: self.origin,
            direction: self.direction,
            key_values: Vec::new(),
        }
    }
}
