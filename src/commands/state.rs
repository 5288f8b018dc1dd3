use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;
use crate::libcontainer::gojson;
use std::io::Write;

#[derive(clap::Args)]
pub struct Args {
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let c = Container::load_unlocked(&g.root, &a.id)?;
    let json = gojson::to_string_pretty(&c.state.public(c.status()))?;
    // runc writes the document without a newline after it.
    let mut out = std::io::stdout();
    let _ = out.write_all(json.as_bytes()).and_then(|_| out.flush());
    Ok(0)
}
