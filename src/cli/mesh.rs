//! `enamel mesh LABELS --out DIR`: one closed STL surface per label, in world millimetres.

use std::path::PathBuf;

use anyhow::Context;

use enamel::io::read_volume;
use enamel::mesh::{label_surfaces, labels_present, write_stl};

#[derive(clap::Args)]
pub struct MeshArgs {
    /// A label map: .nrrd, .nhdr, .nii or .nii.gz
    pub labels: PathBuf,
    /// Folder for the `tooth_<label>.stl` files (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Labels to mesh, comma-separated (default: every nonzero label in the map).
    #[arg(long = "labels", value_name = "LIST", value_delimiter = ',')]
    pub labels_to_mesh: Option<Vec<u32>>,
}

pub fn run(args: MeshArgs) -> anyhow::Result<()> {
    let volume = read_volume(&args.labels)?;
    let wanted = match args.labels_to_mesh {
        Some(list) => list,
        None => labels_present(&volume)
            .with_context(|| format!("reading labels from {}", args.labels.display()))?,
    };
    if wanted.is_empty() {
        println!(
            "{}: no nonzero labels, nothing to mesh",
            args.labels.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    for (label, mesh) in wanted.iter().zip(label_surfaces(&volume, &wanted)) {
        let path = args.out.join(format!("tooth_{label}.stl"));
        let summary = write_stl(&path, &mesh, &format!("label {label}"))?;
        let closed = match (summary.triangles, mesh.is_closed()) {
            (0, _) => "empty",
            (_, true) => "closed yes",
            (_, false) => "closed no",
        };
        println!(
            "{}: {} triangles, {closed}",
            path.display(),
            summary.triangles
        );
    }
    Ok(())
}
