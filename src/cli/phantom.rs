//! (being written)
#[derive(clap::Args)]
pub struct PhantomArgs {}

pub fn run(_args: PhantomArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
