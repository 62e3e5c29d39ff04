//! The epoch loop around [`Trainer::train_step`]: progress, validation, checkpoints, metrics,
//! and a clean stop on Ctrl-C.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

use super::data::Sample;
use super::run_dir::{self, EpochMetrics};
use super::trainer::Trainer;
use super::validate::validate;

pub struct RunOptions {
    pub out: PathBuf,
    /// Set by Ctrl-C: `last` is saved and the loop returns.
    pub stop: Arc<AtomicBool>,
    /// Stop after this many steps in total WITHOUT saving, as a kill would (a test hook for
    /// kill-and-resume).
    pub abort_after_steps: Option<u64>,
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Finished,
    Interrupted,
    Aborted,
}

/// Trains until `config.epochs` epochs are complete; returns the rows written to metrics.csv.
pub fn run(
    trainer: &mut Trainer,
    samples: &[Sample],
    options: &RunOptions,
    mut best_dice: f64,
) -> Result<(Ended, Vec<EpochMetrics>)> {
    let classes = trainer.config.stage.classes();
    let steps = trainer.config.steps_per_epoch;
    let voxels_per_step =
        (trainer.config.batch * trainer.config.patch.iter().product::<usize>()) as f64;
    let mut rows = Vec::new();

    while trainer.epoch < trainer.config.epochs {
        let epoch = trainer.epoch + 1;
        let bar = if options.progress {
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", trainer.config.epochs));
            bar
        } else {
            ProgressBar::hidden()
        };

        let (mut loss_sum, mut seconds, mut skipped) = (0.0, 0.0, 0);
        for step in 0..steps {
            if options.abort_after_steps.is_some_and(|n| trainer.step >= n) {
                bar.abandon();
                return Ok((Ended::Aborted, rows));
            }
            if options.stop.load(Ordering::SeqCst) {
                bar.abandon_with_message("interrupted: saving last");
                run_dir::save(trainer, &options.out.join("last.safetensors"), best_dice)?;
                return Ok((Ended::Interrupted, rows));
            }
            let report = trainer.train_step(samples)?;
            loss_sum += report.loss;
            seconds += report.seconds;
            skipped += usize::from(!report.applied);
            bar.set_position(step as u64 + 1);
            bar.set_message(format!(
                "loss {:.4} | {:.2} Mvox/s",
                report.loss,
                voxels_per_step / report.seconds / 1e6
            ));
        }
        bar.finish_and_clear();
        trainer.epoch = epoch;

        let dice = if trainer.config.validation.is_empty() && trainer.config.half.is_none() {
            Vec::new()
        } else {
            let backend = trainer.backend().clone();
            validate(&mut trainer.net, &trainer.config, backend)?
        };
        let foreground: Vec<f64> = dice.iter().skip(1).flatten().copied().collect();
        let mean_fg = if foreground.is_empty() {
            f64::NAN
        } else {
            foreground.iter().sum::<f64>() / foreground.len() as f64
        };

        let row = EpochMetrics {
            epoch,
            loss: loss_sum / steps as f64,
            dice,
            lr: trainer.optimizer.lr(),
            loss_scale: trainer.scaler.scale,
            step_seconds: seconds / steps as f64,
            peak_memory_bytes: run_dir::peak_memory_on(trainer.backend().as_ref()),
            skipped_steps: skipped,
        };
        if mean_fg.is_finite() && mean_fg > best_dice {
            best_dice = mean_fg;
            run_dir::save(trainer, &options.out.join("best.safetensors"), best_dice)?;
        }
        run_dir::save(trainer, &options.out.join("last.safetensors"), best_dice)?;
        let every = trainer.config.checkpoint_every;
        if every > 0 && epoch.is_multiple_of(every) {
            run_dir::save(
                trainer,
                &options.out.join(format!("epoch_{epoch}.safetensors")),
                best_dice,
            )?;
        }
        run_dir::append_metrics(&options.out, classes, &row)?;
        info!(
            "epoch {epoch}/{}: loss {:.4}, validation Dice (foreground mean) {}, {:.2} s/step, \
             {:.2} Mvoxel/s{}",
            trainer.config.epochs,
            row.loss,
            if mean_fg.is_finite() {
                format!("{mean_fg:.4}")
            } else {
                "n/a".into()
            },
            row.step_seconds,
            voxels_per_step / row.step_seconds.max(1e-12) / 1e6,
            if skipped > 0 {
                format!(", {skipped} steps skipped (inf/NaN gradients)")
            } else {
                String::new()
            }
        );
        rows.push(row);
    }
    Ok((Ended::Finished, rows))
}
