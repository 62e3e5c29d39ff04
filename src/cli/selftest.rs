//! `enamel selftest`: every op, the optimizer kernels and a training step of nets A and B on
//! a device backend against `cpu`, as one table (or JSON); exit code 1 when a check fails.

use anyhow::{bail, Context, Result};
use clap::Args;
use enamel::selftest::{self, Size, TestDevice};

#[derive(Args)]
pub struct SelftestArgs {
    /// The device backend to check against cpu.
    #[arg(long, value_enum, default_value = "cuda")]
    pub device: TestDevice,
    /// Input sizes: `small` (seconds, even on emu) or `reference` (for a GPU).
    #[arg(long, value_enum, default_value = "small")]
    pub size: Size,
    /// Device memory budget, e.g. 6GiB (default: all of the device's memory).
    #[arg(long, value_parser = super::device::parse_bytes)]
    pub mem_limit: Option<usize>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SelftestArgs) -> Result<()> {
    let (device, description) =
        selftest::open_device(args.device, args.mem_limit).with_context(|| match args.device {
            TestDevice::Cuda => "cannot open the cuda device",
            TestDevice::Emu => "cannot open the emu device",
        })?;
    let report = selftest::run(&device, &description, args.size);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    if !report.passed() {
        bail!(
            "self-test on {description}: {} of {} checks failed",
            report.failures(),
            report.rows.len()
        );
    }
    Ok(())
}
