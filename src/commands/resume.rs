use super::{Exit, GlobalOpts};
use crate::libcontainer::{container::Container, lifecycle};

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    if g.rootless.cgroups {
        // runc's warning, word for word but its name
        crate::logging::warn("resume may fail if you don't have the full access to cgroups");
    }
    let c = Container::load(&g.root, &a.id)?;
    lifecycle::resume(&c)?;
    Ok(0)
}
