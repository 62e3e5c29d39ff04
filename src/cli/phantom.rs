//! `enamel phantom`: writes a synthetic jaw phantom (CT-like image and exact tooth labels).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use enamel::io::write_volume;
use enamel::phantom::{generate, PhantomConfig};
use tracing::info;

#[derive(clap::Args)]
pub struct PhantomArgs {
    /// Folder for image.nrrd, teeth.nrrd, categories.nrrd and instances.nrrd (created if
    /// needed).
    #[arg(long)]
    pub out: PathBuf,

    /// Seed of every random choice: arch shape, tooth sizes and poses, missing teeth, noise.
    #[arg(long, default_value_t = PhantomConfig::default().seed)]
    pub seed: u64,

    /// Grid size D,H,W (as a PyTorch array): D slices along z (index k, inferior→superior),
    /// H rows along y (index j, anterior→posterior), W columns along x (index i, patient
    /// right→left).
    #[arg(long, default_value = "168,120,120", value_parser = parse_dhw)]
    pub size: [usize; 3],

    /// Isotropic voxel size in millimetres.
    #[arg(long, default_value_t = PhantomConfig::default().spacing)]
    pub spacing: f64,

    /// Standard deviation of the image noise in HU (0: none).
    #[arg(long, default_value_t = PhantomConfig::default().noise_hu)]
    pub noise: f32,

    /// Standard deviation of the Gaussian blur in millimetres (0: none).
    #[arg(long, default_value_t = PhantomConfig::default().blur_mm)]
    pub blur: f32,

    /// Probability that a tooth (other than a third molar) is missing.
    #[arg(long, default_value_t = PhantomConfig::default().missing_tooth_prob)]
    pub missing_prob: f32,

    /// Probability that a third molar is missing.
    #[arg(long, default_value_t = PhantomConfig::default().third_molar_missing_prob)]
    pub third_molar_missing_prob: f32,

    /// Probability that a tooth carries a metal inlay.
    #[arg(long, default_value_t = PhantomConfig::default().metal_prob)]
    pub metal_prob: f32,
}

/// Parses `D,H,W` into three positive integers.
fn parse_dhw(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let wrong = || format!("size `{text}` must be three positive integers D,H,W, e.g. 168,120,120");
    if parts.len() != 3 {
        return Err(wrong());
    }
    let mut dhw = [0usize; 3];
    for (value, part) in dhw.iter_mut().zip(&parts) {
        *value = part.parse().map_err(|_| wrong())?;
        if *value == 0 {
            return Err(wrong());
        }
    }
    Ok(dhw)
}

pub fn run(args: PhantomArgs) -> anyhow::Result<()> {
    let config = PhantomConfig {
        seed: args.seed,
        sizes: PhantomConfig::sizes_from_dhw(args.size),
        spacing: args.spacing,
        noise_hu: args.noise,
        blur_mm: args.blur,
        missing_tooth_prob: args.missing_prob,
        third_molar_missing_prob: args.third_molar_missing_prob,
        metal_prob: args.metal_prob,
    };
    let start = Instant::now();
    let phantom = generate(&config).context("cannot generate the phantom")?;
    info!(
        "phantom: seed {}, sizes (i, j, k) {:?} at {} mm, anatomy at {:.2} of real size, {} \
         teeth, missing {:?}, {:.2} s",
        config.seed,
        config.sizes,
        config.spacing,
        phantom.scale,
        phantom.tooth_list.len(),
        phantom.missing,
        start.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    for (name, volume) in [
        ("image.nrrd", &phantom.image),
        ("teeth.nrrd", &phantom.teeth),
        ("categories.nrrd", &phantom.categories),
        ("instances.nrrd", &phantom.instances),
    ] {
        let path = args.out.join(name);
        write_volume(&path, volume).with_context(|| format!("cannot write {}", path.display()))?;
    }
    info!(
        "wrote image, teeth, categories and instances to {}",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_read_as_d_h_w_and_maps_to_i_j_k() {
        let dhw = parse_dhw("168, 120,96").unwrap();
        assert_eq!(dhw, [168, 120, 96]);
        assert_eq!(PhantomConfig::sizes_from_dhw(dhw), [96, 120, 168]);
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_value() {
        for text in [
            "168,120",
            "168,120,120,1",
            "168,x,120",
            "0,120,120",
            "-1,2,3",
        ] {
            let err = parse_dhw(text).unwrap_err();
            assert!(err.contains(text), "{err}");
        }
    }
}
