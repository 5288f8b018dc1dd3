use super::{Exit, GlobalOpts};
use crate::libcontainer::{container::Container, lifecycle};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let c = Container::load(&g.root, &a.id)?;
    lifecycle::pause(&c)?;
    Ok(0)
}
