//! Segmenting a scan: the two-stage cascade over sliding windows, then tooth instances with
//! FDI numbers, label maps, meshes, a preview and a report (`enamel segment`).
//!
//! A stage is anything that turns an image volume into per-class probabilities
//! ([`StagePredictor`]): a trained U-Net over sliding windows ([`NetPredictor`]), or a label
//! map standing in for a perfect network ([`LabelPredictor`], so the post-processing can be
//! checked on its own against a phantom's truth).

pub mod components;
pub mod instances;
pub mod output;
mod png;
pub mod preview;
mod watershed;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::backend::Backend;
use crate::infer::{sliding_window, NetModel};
use crate::io::Volume;
use crate::nn::{checkpoint, UNet, UNetConfig};
use crate::preprocess::Array3;
use crate::tensor::DType;
use crate::train::{run_dir, Intensity};

pub use instances::{InstanceOptions, Instances, ToothInstance};

/// One stage of the cascade: per-class probabilities for every voxel of an image. One
/// channel means the probability of tooth (a sigmoid); more are a softmax over classes.
pub trait StagePredictor {
    fn classes(&self) -> usize;
    fn predict(
        &mut self,
        image: &Volume,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Array3>>;
}

/// A trained U-Net run over sliding windows, with the preprocessing it was trained with.
pub struct NetPredictor {
    pub net: UNet,
    pub backend: Arc<dyn Backend>,
    pub dtype: DType,
    /// Window size D,H,W.
    pub patch: [usize; 3],
    pub overlap: f64,
    pub intensity: Intensity,
}

impl NetPredictor {
    /// A predictor from a checkpoint: the network, the training patch and the intensity
    /// preprocessing come from its recorded configuration; `patch` overrides the patch, and
    /// `fallback` gives the network for a checkpoint that records none (a PyTorch
    /// state_dict), which then needs `patch` too.
    pub fn from_checkpoint(
        path: &Path,
        backend: Arc<dyn Backend>,
        patch: Option<[usize; 3]>,
        fallback: Option<UNetConfig>,
    ) -> Result<Self> {
        let (net, metadata) = checkpoint::load(path, fallback)
            .with_context(|| format!("loading checkpoint {}", path.display()))?;
        let recorded = run_dir::recorded_config(&metadata)
            .with_context(|| format!("reading the configuration of {}", path.display()))?;
        let patch = match (patch, &recorded) {
            (Some(p), _) => p,
            (None, Some(config)) => config.patch,
            (None, None) => bail!(
                "{} records no training configuration: give the window size with --patch D,H,W",
                path.display()
            ),
        };
        net.config
            .check_input(&[1, 1, patch[0], patch[1], patch[2]])?;
        Ok(NetPredictor {
            net,
            backend,
            dtype: DType::F32,
            patch,
            overlap: 0.5,
            intensity: recorded.map(|c| c.intensity).unwrap_or_default(),
        })
    }
}

impl StagePredictor for NetPredictor {
    fn classes(&self) -> usize {
        self.net.config.out_channels
    }

    fn predict(
        &mut self,
        image: &Volume,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Array3>> {
        let mut x = Array3::from_volume(image)?;
        self.intensity.apply(&mut x);
        let mut model = NetModel {
            net: &mut self.net,
            backend: self.backend.clone(),
            dtype: self.dtype,
        };
        Ok(sliding_window(
            &mut model,
            &x,
            self.patch,
            self.overlap,
            progress,
        )?)
    }
}

/// A label map as a perfect model: probability 1 for each voxel's class. With one class
/// (the binary stage) every nonzero label is tooth.
pub struct LabelPredictor {
    pub labels: Array3,
    pub classes: usize,
}

impl StagePredictor for LabelPredictor {
    fn classes(&self) -> usize {
        self.classes
    }

    fn predict(
        &mut self,
        image: &Volume,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Array3>> {
        if image.sizes != self.labels.sizes {
            bail!(
                "the label model's grid {:?} differs from the image's {:?}",
                self.labels.sizes,
                image.sizes
            );
        }
        let channel = |hit: &dyn Fn(f32) -> bool| Array3 {
            sizes: self.labels.sizes,
            data: self
                .labels
                .data
                .iter()
                .map(|&l| if hit(l) { 1.0 } else { 0.0 })
                .collect(),
        };
        let out = if self.classes == 1 {
            vec![channel(&|l| l != 0.0)]
        } else {
            (0..self.classes)
                .map(|c| channel(&|l| l == c as f32))
                .collect()
        };
        progress(1, 1);
        Ok(out)
    }
}

/// How a scan is segmented after the networks.
#[derive(Clone, Copy, Debug)]
pub struct SegmentOptions {
    /// Tooth where the binary stage's probability exceeds this.
    pub threshold: f32,
    pub instances: InstanceOptions,
    /// Keep the probability maps in the result.
    pub keep_probabilities: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            threshold: 0.5,
            instances: InstanceOptions::default(),
            keep_probabilities: false,
        }
    }
}

/// Everything `segment` finds in one scan.
pub struct Segmentation {
    /// Tooth category per voxel (0 background, 1..=8), islands removed.
    pub categories: Vec<u8>,
    pub instances: Instances,
    /// P(tooth) from the binary stage, then the categories stage's class probabilities.
    pub probabilities: Option<Vec<Array3>>,
    /// Seconds per phase, in order.
    pub timings: Vec<(&'static str, f64)>,
}

/// The cascade on `image`: tooth where the binary stage says so, there the most likely of the
/// eight categories, then instances.
pub fn segment(
    image: &Volume,
    binary: &mut dyn StagePredictor,
    categories: &mut dyn StagePredictor,
    options: &SegmentOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Segmentation> {
    if image.channels != 1 {
        bail!(
            "the image has {} values per voxel; segment takes a scalar volume",
            image.channels
        );
    }
    if binary.classes() != 1 {
        bail!(
            "the binary stage must have one output channel, it has {}",
            binary.classes()
        );
    }
    if categories.classes() != 9 {
        bail!(
            "the categories stage must have 9 output channels (background + 8 categories), it \
             has {}",
            categories.classes()
        );
    }
    let mut timings = Vec::new();
    let clock = Instant::now();
    let tooth = binary
        .predict(image, &mut |done, total| progress("binary", done, total))?
        .remove(0);
    timings.push(("binary stage", clock.elapsed().as_secs_f64()));

    let clock = Instant::now();
    let scores = categories.predict(image, &mut |done, total| {
        progress("categories", done, total)
    })?;
    timings.push(("categories stage", clock.elapsed().as_secs_f64()));

    let clock = Instant::now();
    let mut labels: Vec<u8> = (0..tooth.data.len())
        .map(|v| {
            if tooth.data[v] <= options.threshold {
                return 0;
            }
            let mut best = (1u8, f32::NEG_INFINITY);
            for (c, s) in scores.iter().enumerate().skip(1) {
                if s.data[v] > best.1 {
                    best = (c as u8, s.data[v]);
                }
            }
            best.0
        })
        .collect();
    let instances = instances::instances(image, &mut labels, &options.instances);
    timings.push(("instances", clock.elapsed().as_secs_f64()));

    let probabilities = options.keep_probabilities.then(|| {
        let mut all = vec![tooth];
        all.extend(scores);
        all
    });
    Ok(Segmentation {
        categories: labels,
        instances,
        probabilities,
        timings,
    })
}
