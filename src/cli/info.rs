//! `enamel info FILE`: what a volume holds and where it lies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use enamel::io::{self, nrrd, Format, Volume};

/// Integer volumes with at most this many distinct values are treated as label maps.
const MAX_LABELS: usize = 256;

#[derive(clap::Args)]
pub struct InfoArgs {
    /// A volume: .nrrd, .nhdr, .nii or .nii.gz
    pub file: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    print!("{}", describe_file(&args.file)?);
    Ok(())
}

fn describe_file(path: &Path) -> anyhow::Result<String> {
    let (volume, notes) = match io::format_of(path)? {
        Format::Nrrd => {
            let n = nrrd::read_nrrd(path).with_context(|| format!("reading {}", path.display()))?;
            (n.volume, n.notes)
        }
        Format::Nifti => (io::read_volume(path)?, Vec::new()),
    };
    let mut out = format!("file:       {}\n", path.display());
    out.push_str(&describe(&volume));
    for note in notes {
        writeln!(out, "note:       {note}").ok();
    }
    Ok(out)
}

fn vec3(v: [f64; 3]) -> String {
    // Adding 0.0 turns −0 into 0 so that axes print cleanly.
    let v = v.map(|x| x + 0.0);
    format!("({:.6}, {:.6}, {:.6})", v[0], v[1], v[2])
}

/// The report for one volume (everything but the file name).
pub fn describe(v: &Volume) -> String {
    let mut out = String::new();
    writeln!(out, "type:       {}", v.voxels.type_name()).ok();
    let [i, j, k] = v.sizes;
    writeln!(
        out,
        "sizes:      {i} × {j} × {k} ({} voxels)",
        v.voxel_count()
    )
    .ok();
    if v.channels > 1 {
        writeln!(out, "channels:   {}", v.channels).ok();
    }
    writeln!(out, "spacing:    {} mm", vec3(v.spacing)).ok();
    writeln!(out, "origin:     {} mm (LPS)", vec3(v.origin)).ok();
    for (c, name) in ["i", "j", "k"].iter().enumerate() {
        let col = [v.direction[0][c], v.direction[1][c], v.direction[2][c]];
        writeln!(out, "direction {name}: {}", vec3(col)).ok();
    }
    for (key, value) in &v.key_values {
        writeln!(out, "{key}:={value}").ok();
    }

    let values = v.voxels.to_f64();
    let finite = values.iter().filter(|x| x.is_finite());
    let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    if min <= max {
        writeln!(out, "range:      {min} … {max}").ok();
    } else {
        writeln!(out, "range:      no finite values").ok();
    }

    let is_integer = !matches!(v.voxels.type_name(), "float" | "double");
    if is_integer && v.channels == 1 {
        let mut counts: BTreeMap<i128, usize> = BTreeMap::new();
        for x in &values {
            *counts.entry(*x as i128).or_default() += 1;
            if counts.len() > MAX_LABELS {
                break;
            }
        }
        if counts.len() <= MAX_LABELS {
            writeln!(out, "labels:     {} distinct values", counts.len()).ok();
            for (label, count) in counts {
                writeln!(out, "  {label:>6}: {count}").ok();
            }
        }
    }
    out
}
