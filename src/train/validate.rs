//! Validation: sliding-window prediction of whole volumes and hard Dice per class.

use std::sync::Arc;

use anyhow::Result;

use super::config::{Stage, TrainConfig};
use super::data::{half_of, load_pair};
use crate::backend::Backend;
use crate::infer::{argmax, sliding_window, NetModel};
use crate::nn::UNet;
use crate::ops::dice::hard_dice_per_class;
use crate::preprocess::Array3;
use crate::tensor::DType;

/// Hard Dice per class of two class maps; None for a class in neither.
pub fn dice_per_class(prediction: &Array3, target: &Array3, classes: usize) -> Vec<Option<f64>> {
    let p: Vec<u8> = prediction.data.iter().map(|&v| v as u8).collect();
    let t: Vec<u8> = target.data.iter().map(|&v| v as u8).collect();
    hard_dice_per_class(&p, &t, classes)
}

/// Mean hard Dice per class over the validation pairs and, when the run trains on one half of
/// each training pair, over the other halves (eval mode, overlap 0.5).
pub fn validate(
    net: &mut UNet,
    config: &TrainConfig,
    backend: Arc<dyn Backend>,
) -> Result<Vec<Option<f64>>> {
    let classes = config.stage.classes();
    let mut sums = vec![(0.0, 0usize); classes];
    let mut samples = Vec::new();
    for pair in &config.validation {
        samples.push(load_pair(pair, config.stage, &config.label_map, config.intensity)?.0);
    }
    if let Some(half) = config.half {
        for pair in &config.train {
            let (sample, volume) =
                load_pair(pair, config.stage, &config.label_map, config.intensity)?;
            samples.push(half_of(&sample, &volume, half.other())?);
        }
    }
    for sample in &samples {
        let mut model = NetModel {
            net,
            backend: backend.clone(),
            dtype: DType::F32,
        };
        let scores = sliding_window(&mut model, &sample.image, config.patch, 0.5, |_, _| {})?;
        let prediction = argmax(&scores);
        debug_assert!(config.stage == Stage::Categories || scores.len() == 1);
        for (c, d) in dice_per_class(&prediction, &sample.classes, classes)
            .into_iter()
            .enumerate()
        {
            if let Some(d) = d {
                sums[c].0 += d;
                sums[c].1 += 1;
            }
        }
    }
    Ok(sums
        .into_iter()
        .map(|(s, n)| (n > 0).then(|| s / n as f64))
        .collect())
}
