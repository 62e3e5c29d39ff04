//! The `enamel` command line: one file per subcommand.

mod bench;
mod demo;
mod device;
mod eval;
mod info;
mod mesh;
mod phantom;
mod segment;
mod selftest;
mod train;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "enamel",
    version,
    about = "3D U-Net tooth segmentation for dental CT"
)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print a volume's type, sizes, geometry, value range and label counts.
    Info(info::InfoArgs),
    /// Generate a synthetic jaw phantom with exact tooth labels.
    Phantom(phantom::PhantomArgs),
    /// Train one stage of the cascade (binary teeth, or tooth categories).
    Train(Box<train::TrainArgs>),
    /// Segment a scan with trained checkpoints: label maps, one STL per tooth, preview, report.
    Segment(Box<segment::SegmentArgs>),
    /// Phantoms → train both stages briefly → segment a held-out phantom → Dice per class.
    Demo(demo::DemoArgs),
    /// Time training steps of nets A and B and the cascade's inference on one backend.
    Bench(bench::BenchArgs),
    /// Check every op and a training step on a device backend (cuda, emu) against cpu.
    Selftest(selftest::SelftestArgs),
    /// Write one closed STL surface (world mm) per label of a label map.
    Mesh(mesh::MeshArgs),
    /// Dice, IoU and HD95 (mm) per class between a predicted and a ground-truth label map.
    Eval(eval::EvalArgs),
}

pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ENAMEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Info(args) => info::run(args),
        Command::Phantom(args) => phantom::run(args),
        Command::Train(args) => train::run_command(*args),
        Command::Segment(args) => segment::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Selftest(args) => selftest::run(args),
        Command::Mesh(args) => mesh::run(args),
        Command::Eval(args) => eval::run(args),
    }
}
