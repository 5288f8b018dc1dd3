use super::{Exit, GlobalOpts};
use crate::image::{self, oci::Platform};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Image store (an OCI image layout)
    #[arg(long, default_value = image::store::DEFAULT_STORE)]
    pub store: PathBuf,
    /// Platform to pick when the image is an index, os/arch[/variant]
    #[arg(long)]
    pub platform: Option<String>,
    /// Set process.terminal in config.json
    #[arg(short, long)]
    pub terminal: bool,
    /// Replace the image's Entrypoint ("" clears it)
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Image name or digest in the store
    pub image: String,
    /// Bundle directory to create (gets rootfs/ and config.json)
    pub dir: PathBuf,
    /// Command and arguments replacing the image's Cmd
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn run(_g: &GlobalOpts, a: Args) -> Exit {
    let opts = image::BundleOptions {
        store: a.store,
        args: (!a.args.is_empty()).then_some(a.args),
        entrypoint: a
            .entrypoint
            .map(|e| if e.is_empty() { vec![] } else { vec![e] }),
        terminal: a.terminal,
        platform: a.platform.as_deref().map(Platform::parse).transpose()?,
    };
    image::bundle(&a.image, &a.dir, &opts)?;
    Ok(0)
}
