//! What `enamel segment` writes: label maps with the input's geometry, one STL per tooth, the
//! preview and `report.json`. Every file goes to a temporary name first and is renamed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Segmentation, ToothInstance};
use crate::io::{write_volume, Volume, Voxels};
use crate::mesh::{label_surfaces, write_stl};
use crate::nn::checkpoint::write_atomic;

/// Which optional outputs to write.
#[derive(Clone, Copy, Debug)]
pub struct OutputOptions {
    pub probabilities: bool,
    pub meshes: bool,
    pub preview: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            probabilities: false,
            meshes: true,
            preview: true,
        }
    }
}

/// What the report says besides the teeth.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunInfo {
    pub input: String,
    pub binary_checkpoint: String,
    pub categories_checkpoint: String,
    pub device: String,
    /// Peak device memory (device backends) or peak resident memory of the process (cpu).
    pub peak_memory_bytes: u64,
}

#[derive(Serialize)]
struct Timing<'a> {
    phase: &'a str,
    seconds: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    run: &'a RunInfo,
    sizes: [usize; 3],
    spacing_mm: [f64; 3],
    teeth: &'a [ToothInstance],
    midline_x_mm: f64,
    occlusal_z_mm: Option<f64>,
    removed_island_voxels: usize,
    timings: Vec<Timing<'a>>,
    files: Vec<String>,
}

/// Writes the outputs of `segmentation` of `image` into `dir`; returns the files written.
pub fn write_outputs(
    dir: &Path,
    image: &Volume,
    segmentation: &Segmentation,
    run: &RunInfo,
    options: &OutputOptions,
    mut timings: Vec<(&'static str, f64)>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = std::time::Instant::now();
    let mut files = Vec::new();
    let mut volume = |name: &str, voxels: Voxels, channels: usize| -> Result<()> {
        let path = dir.join(name);
        let mut v = image.with_voxels(voxels);
        v.channels = channels;
        write_volume(&path, &v).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };
    volume(
        "categories.nrrd",
        Voxels::U8(segmentation.categories.clone()),
        1,
    )?;
    volume(
        "instances.nrrd",
        Voxels::U8(segmentation.instances.labels.clone()),
        1,
    )?;
    if let (true, Some(maps)) = (options.probabilities, &segmentation.probabilities) {
        // One channel per map, channel fastest: P(tooth), then the categories softmax.
        let count = image.voxel_count();
        let mut interleaved = Vec::with_capacity(count * maps.len());
        for v in 0..count {
            interleaved.extend(maps.iter().map(|m| m.data[v]));
        }
        volume("probabilities.nrrd", Voxels::F32(interleaved), maps.len())?;
    }

    if options.meshes {
        let labels = image.with_voxels(Voxels::U8(segmentation.instances.labels.clone()));
        let teeth = &segmentation.instances.teeth;
        let fdi: Vec<u32> = teeth.iter().map(|t| u32::from(t.fdi)).collect();
        for (tooth, mesh) in teeth.iter().zip(label_surfaces(&labels, &fdi)) {
            let path = dir.join(format!("tooth_{}.stl", tooth.fdi));
            write_stl(&path, &mesh, &format!("tooth {}", tooth.fdi))
                .with_context(|| format!("writing {}", path.display()))?;
            files.push(path);
        }
    }
    if options.preview {
        let path = dir.join("preview.png");
        let png = super::preview::preview_png(image, &segmentation.instances.labels);
        write_atomic(&path, &png).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
    }
    timings.push(("writing outputs", started.elapsed().as_secs_f64()));

    let path = dir.join("report.json");
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.push("report.json".into());
    let report = Report {
        run,
        sizes: image.sizes,
        spacing_mm: image.spacing,
        teeth: &segmentation.instances.teeth,
        midline_x_mm: segmentation.instances.midline_x,
        occlusal_z_mm: segmentation.instances.occlusal_z,
        removed_island_voxels: segmentation.instances.removed.len(),
        timings: timings
            .into_iter()
            .map(|(phase, seconds)| Timing { phase, seconds })
            .collect(),
        files: names,
    };
    let json = serde_json::to_string_pretty(&report)?;
    write_atomic(&path, json.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    files.push(path);
    Ok(files)
}
