//! `enamel eval PRED GT`: Dice, IoU and HD95 per class between two label maps.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;

use enamel::metrics::{evaluate_files, Evaluation};
use enamel::nn::checkpoint::write_atomic;

#[derive(clap::Args)]
pub struct EvalArgs {
    /// The predicted label map.
    pub pred: PathBuf,
    /// The ground-truth label map, on the same grid.
    pub gt: PathBuf,
    /// Also write the metrics as JSON to this file (`-` for standard output, instead of the
    /// table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Evaluate labels 1..N−1 (N counts the background, as in training), including those
    /// absent from both maps; default: every nonzero label found in either map.
    #[arg(long)]
    pub classes: Option<u32>,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let classes: Option<Vec<u32>> = args.classes.map(|n| (1..n).collect());
    let evaluation = evaluate_files(&args.pred, &args.gt, classes.as_deref())?;

    let to_stdout = args.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&evaluation)? + "\n";
        if to_stdout {
            print!("{json}");
        } else {
            write_atomic(path, json.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if !to_stdout {
        print!("{}", table(&evaluation));
    }
    Ok(())
}

/// The metrics as a text table with one row per class and a row for the mean.
pub fn table(evaluation: &Evaluation) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "{:>6}  {:>11}  {:>10}  {:>7}  {:>7}  {:>9}",
        "class", "voxels_pred", "voxels_gt", "dice", "iou", "hd95_mm"
    )
    .ok();
    for c in &evaluation.classes {
        writeln!(
            out,
            "{:>6}  {:>11}  {:>10}  {:>7.4}  {:>7.4}  {:>9.3}",
            c.label, c.voxels_pred, c.voxels_gt, c.dice, c.iou, c.hd95_mm
        )
        .ok();
    }
    match &evaluation.mean {
        Some(m) => writeln!(
            out,
            "{:>6}  {:>11}  {:>10}  {:>7.4}  {:>7.4}  {:>9.3}   (over {} classes present)",
            "mean", "", "", m.dice, m.iou, m.hd95_mm, m.classes
        ),
        None => writeln!(out, "no class is present in either map"),
    }
    .ok();
    out
}
