use super::{Exit, GlobalOpts};
use crate::image::{self, auth::Creds, oci::Platform};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Image store (an OCI image layout)
    #[arg(long, default_value = image::store::DEFAULT_STORE)]
    pub store: PathBuf,
    /// Registry credentials, USER:PASSWORD (default: $REGISTRY_AUTH_FILE or ~/.docker/config.json)
    #[arg(long, value_name = "USER:PASSWORD")]
    pub creds: Option<String>,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
    /// Platform to pick from a multi-platform image, os/arch[/variant] (default: this machine's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Store the image under this name instead of the source's
    #[arg(long)]
    pub name: Option<String>,
    /// Layers downloaded at once
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub jobs: u16,
    /// Print nothing on success
    #[arg(short, long)]
    pub quiet: bool,
    /// IMAGE ([registry/]repo[:tag][@digest]), oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:REPO:TAG]
    pub source: String,
}

pub fn run(_g: &GlobalOpts, a: Args) -> Exit {
    let opts = image::PullOptions {
        store: a.store,
        creds: a.creds.as_deref().map(Creds::parse).transpose()?,
        insecure: a.insecure,
        platform: a.platform.as_deref().map(Platform::parse).transpose()?,
        quiet: a.quiet,
        name: a.name,
        jobs: a.jobs as usize,
    };
    let r: image::PullResult = image::pull(&a.source, &opts)?;
    if !a.quiet {
        eprintln!(
            "fetched {} blobs, {}",
            r.blobs_fetched,
            image::progress::human_size(r.bytes_fetched)
        );
        crate::out!("{} {}", r.name, r.manifest.digest);
    }
    Ok(0)
}
