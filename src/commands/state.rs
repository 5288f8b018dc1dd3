use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let c = Container::load_unlocked(&g.root, &a.id)?;
    crate::out!(
        "{}",
        serde_json::to_string_pretty(&c.state.public(c.status()))?
    );
    Ok(0)
}
