//! What a phantom is asked for, what it is made of, and what can be wrong with a request.

/// Fewest voxels along any axis.
pub const MIN_SIZE: usize = 8;
/// Most voxels in one phantom (about 4 GB of working memory).
pub const MAX_VOXELS: usize = 1 << 28;
/// Largest blur accepted (mm).
pub const MAX_BLUR_MM: f32 = 10.0;

/// How to generate a phantom. `Default` is the 120 × 120 × 168 grid (i, j, k) of 0.5 mm
/// voxels with CT-like noise and blur.
#[derive(Clone, Debug, PartialEq)]
pub struct PhantomConfig {
    /// Everything random is drawn from this seed.
    pub seed: u64,
    /// Voxels along [i, j, k] = [x (right → left), y (anterior → posterior), z (inferior →
    /// superior)]: the W, H, D of a `D,H,W` size (see [`PhantomConfig::sizes_from_dhw`]).
    pub sizes: [usize; 3],
    /// Isotropic voxel size (mm).
    pub spacing: f64,
    /// Standard deviation of the image noise (HU); 0 for none.
    pub noise_hu: f32,
    /// Standard deviation of the Gaussian blur (mm); 0 for none.
    pub blur_mm: f32,
    /// Probability that a tooth other than a third molar is missing.
    pub missing_tooth_prob: f32,
    /// Probability that a third molar is missing.
    pub third_molar_missing_prob: f32,
    /// Probability that a tooth carries a metal inlay.
    pub metal_prob: f32,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            seed: 0,
            sizes: [120, 120, 168],
            spacing: 0.5,
            noise_hu: 40.0,
            blur_mm: 0.4,
            missing_tooth_prob: 0.08,
            third_molar_missing_prob: 0.4,
            metal_prob: 0.1,
        }
    }
}

impl PhantomConfig {
    /// Index sizes [i, j, k] from a size written `D,H,W` (the shape of the volume as a
    /// PyTorch array, slowest axis first): D slices along z, H rows along y, W columns
    /// along x. `168,120,120` gives `[120, 120, 168]`.
    pub fn sizes_from_dhw(dhw: [usize; 3]) -> [usize; 3] {
        [dhw[2], dhw[1], dhw[0]]
    }

    /// Checks every field; the error names the field, its value and what would be valid.
    pub fn validate(&self) -> Result<(), PhantomError> {
        if self.sizes.iter().any(|&n| n < MIN_SIZE) {
            return Err(PhantomError::SizeTooSmall {
                sizes: self.sizes,
                min: MIN_SIZE,
            });
        }
        let voxels = self
            .sizes
            .iter()
            .try_fold(1usize, |acc, &n| acc.checked_mul(n));
        if voxels.is_none_or(|v| v > MAX_VOXELS) {
            return Err(PhantomError::SizeTooLarge {
                sizes: self.sizes,
                max: MAX_VOXELS,
            });
        }
        if !(self.spacing.is_finite() && self.spacing > 0.0) {
            return Err(invalid(
                "spacing",
                self.spacing,
                "a positive number of millimetres",
            ));
        }
        if !(self.noise_hu.is_finite() && self.noise_hu >= 0.0) {
            return Err(invalid(
                "noise_hu",
                self.noise_hu,
                "a finite standard deviation ≥ 0",
            ));
        }
        if !(self.blur_mm.is_finite() && (0.0..=MAX_BLUR_MM).contains(&self.blur_mm)) {
            return Err(invalid("blur_mm", self.blur_mm, "between 0 and 10 mm"));
        }
        for (field, p) in [
            ("missing_tooth_prob", self.missing_tooth_prob),
            ("third_molar_missing_prob", self.third_molar_missing_prob),
            ("metal_prob", self.metal_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(field, p, "a probability between 0 and 1"));
            }
        }
        Ok(())
    }
}

fn invalid(
    field: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> PhantomError {
    PhantomError::InvalidField {
        field,
        value: value.to_string(),
        expected,
    }
}

/// Why a phantom could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhantomError {
    #[error("phantom field `{field}` is {value}; it must be {expected}")]
    InvalidField {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("phantom sizes {sizes:?} (i, j, k): every axis needs at least {min} voxels")]
    SizeTooSmall { sizes: [usize; 3], min: usize },
    #[error("phantom sizes {sizes:?} (i, j, k) exceed the limit of {max} voxels")]
    SizeTooLarge { sizes: [usize; 3], max: usize },
    #[error(
        "phantom sizes {sizes:?} (i, j, k) at {spacing} mm hold the jaw at {scale:.2} of real \
         size, so the narrowest crown would be {voxels:.1} voxels wide (at least {min} are \
         needed); use more voxels or a smaller spacing"
    )]
    TooCoarse {
        sizes: [usize; 3],
        spacing: f64,
        scale: f64,
        voxels: f64,
        min: f64,
    },
}

/// What a voxel is made of; the code stored in [`super::Phantom::tissues`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tissue {
    Air = 0,
    SoftTissue = 1,
    Trabecular = 2,
    Cortical = 3,
    Dentin = 4,
    Enamel = 5,
    Pulp = 6,
    Metal = 7,
}

impl Tissue {
    pub const ALL: [Tissue; 8] = [
        Tissue::Air,
        Tissue::SoftTissue,
        Tissue::Trabecular,
        Tissue::Cortical,
        Tissue::Dentin,
        Tissue::Enamel,
        Tissue::Pulp,
        Tissue::Metal,
    ];

    /// The tissue stored as `code`, if any.
    pub fn from_code(code: u8) -> Option<Tissue> {
        Tissue::ALL.get(usize::from(code)).copied()
    }

    /// Inclusive range of the image values of this tissue before blur and noise (HU).
    pub fn hu_range(self) -> (f64, f64) {
        match self {
            Tissue::Air => (-1000.0, -1000.0),
            Tissue::SoftTissue | Tissue::Pulp => (20.0, 60.0),
            Tissue::Trabecular => (300.0, 700.0),
            Tissue::Cortical => (1200.0, 1600.0),
            Tissue::Dentin => (1600.0, 2000.0),
            Tissue::Enamel => (2500.0, 3000.0),
            Tissue::Metal => (3000.0, 3500.0),
        }
    }

    /// True for the tissues that make up a tooth (fillings included).
    pub fn is_tooth(self) -> bool {
        matches!(
            self,
            Tissue::Dentin | Tissue::Enamel | Tissue::Pulp | Tissue::Metal
        )
    }
}
