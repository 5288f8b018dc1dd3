use super::{Exit, GlobalOpts};
use crate::libcontainer::{container::Container, lifecycle};

#[derive(clap::Args)]
pub struct Args {
    /// Signal every process in the container, not only its init
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let sig = lifecycle::parse_signal(&a.signal)?;
    let c = Container::load(&g.root, &a.id)?;
    lifecycle::kill(&c, sig, a.all)?;
    Ok(0)
}
