use super::{Exit, GlobalOpts};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_g: &GlobalOpts, _a: Args) -> Exit {
    crate::out!(
        "{}",
        serde_json::to_string_pretty(&crate::libcontainer::features::features())?
    );
    Ok(0)
}
