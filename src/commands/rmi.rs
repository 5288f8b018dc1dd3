use super::{Exit, GlobalOpts};
use crate::image;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Image store (an OCI image layout)
    #[arg(long, default_value = image::store::DEFAULT_STORE)]
    pub store: PathBuf,
    /// Images to remove, by name or digest
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(_g: &GlobalOpts, a: Args) -> Exit {
    for name in image::remove(&a.store, &a.images)? {
        crate::out!("Untagged: {name}");
    }
    Ok(0)
}
