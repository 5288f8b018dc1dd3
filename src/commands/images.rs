use super::{Exit, GlobalOpts};
use crate::image;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Image store (an OCI image layout)
    #[arg(long, default_value = image::store::DEFAULT_STORE)]
    pub store: PathBuf,
    /// Print only the names
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(_g: &GlobalOpts, a: Args) -> Exit {
    let list = image::list(&a.store)?;
    if a.quiet {
        for i in list {
            crate::out!("{}", i.name);
        }
        return Ok(0);
    }
    let w = list.iter().map(|i| i.name.len()).max().unwrap_or(0).max(4);
    crate::out!("{:w$}  {:19}  {:>9}  PLATFORM", "NAME", "DIGEST", "SIZE");
    for i in list {
        let short = &i.digest[..i.digest.len().min(19)];
        let size = i
            .size
            .map(image::progress::human_size)
            .unwrap_or_else(|| "?".into());
        crate::out!("{:w$}  {short:19}  {size:>9}  {}", i.name, i.platform);
    }
    Ok(0)
}
