//! (being written)
#[derive(clap::Args)]
pub struct InfoArgs {}

pub fn run(_args: InfoArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
