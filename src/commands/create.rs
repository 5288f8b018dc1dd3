use super::{Exit, GlobalOpts};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(_g: &GlobalOpts, _a: Args) -> Exit {
    anyhow::bail!("create: not implemented yet")
}
