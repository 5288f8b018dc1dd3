use super::{Exit, GlobalOpts};
use crate::libcontainer::container::{Container, NotExist};
use crate::libcontainer::lifecycle;

#[derive(clap::Args)]
pub struct Args {
    /// Kill the container first if it is still running
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    match Container::load(&g.root, &a.id) {
        Ok(c) => lifecycle::delete(c, a.force)?,
        Err(e) if e.downcast_ref::<NotExist>().is_some() => {
            // A create that died before writing state.json leaves a bare directory behind.
            let dir = g.root.join(&a.id);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|io| anyhow::anyhow!("removing {}: {io}", dir.display()))?;
            }
            if !a.force {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    Ok(0)
}
