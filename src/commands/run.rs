use super::create::CreateFlags;
use super::{Exit, GlobalOpts};
use crate::image::{self, auth::Creds};
use crate::libcontainer::container::Container;
use crate::libcontainer::create::create;
use crate::libcontainer::{console, lifecycle, runner};
use anyhow::{bail, Context};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// `rt run [OPTIONS] ID` runs a bundle, as runc does. `rt run --image IMAGE [OPTIONS] [-- CMD...]`
/// pulls the image if the store lacks it, makes a bundle of it and runs that.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub create: CreateFlags,
    /// Do not wait for the container; leave it running
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (no delete)
    #[arg(long)]
    pub keep: bool,
    /// Run this image instead of a bundle (pulled into --store if missing)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// With --image: the container's id (default: derived from the image)
    #[arg(long, requires = "image")]
    pub name: Option<String>,
    /// With --image: remove the bundle made for the container when it exits
    #[arg(long, requires = "image")]
    pub rm: bool,
    /// With --image: give the container a terminal
    #[arg(short, long, requires = "image")]
    pub tty: bool,
    /// With --image: set an environment variable, KEY=VALUE
    #[arg(short, long, requires = "image")]
    pub env: Vec<String>,
    /// With --image: the image store
    #[arg(long, default_value = image::store::DEFAULT_STORE)]
    pub store: PathBuf,
    /// With --image: registry credentials, USER:PASSWORD
    #[arg(long, requires = "image")]
    pub creds: Option<String>,
    /// With --image: allow plain HTTP to a registry that is not on loopback
    #[arg(long, requires = "image")]
    pub insecure: bool,
    /// The container id (required without --image)
    #[arg(required_unless_present = "image")]
    pub id: Option<String>,
    /// With --image: the command to run instead of the image's (after --)
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let Some(img) = a.image.clone() else {
        let id = a.id.clone().context("a container id is required")?;
        return run_bundle(g, &a, &id, &a.create.bundle);
    };
    let id = a
        .name
        .clone()
        .or(a.id.clone())
        .unwrap_or_else(|| default_name(&img));
    let dir = a.store.join("bundles").join(&id);
    prepare_image_bundle(&a, &img, &id, &dir, &g.root)?;
    let result = run_bundle(g, &a, &id, &dir);
    if a.rm && !a.detach {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The bundle for `--image`: pulled if needed, made fresh each run, the -e values laid over.
fn prepare_image_bundle(
    a: &Args,
    img: &str,
    id: &str,
    dir: &Path,
    root: &Path,
) -> anyhow::Result<()> {
    if !image::is_present(&a.store, img) {
        let opts = image::PullOptions {
            store: a.store.clone(),
            creds: a.creds.as_deref().map(Creds::parse).transpose()?,
            insecure: a.insecure,
            platform: None,
            quiet: true,
            name: None,
            jobs: 3,
        };
        image::pull(img, &opts).with_context(|| format!("pulling {img}"))?;
    }
    if dir.exists() {
        // Left by an earlier run without --rm; a live container of that id keeps it.
        if Container::load_unlocked(root, id).is_ok() {
            bail!("container with id exists: {id}");
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing old bundle {}", dir.display()))?;
    }
    let opts = image::BundleOptions {
        store: a.store.clone(),
        args: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: None,
        terminal: a.tty,
        platform: None,
    };
    image::bundle(img, dir, &opts).with_context(|| format!("making a bundle of {img}"))?;
    if !a.env.is_empty() {
        let path = dir.join("config.json");
        let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        cfg["process"]["env"] =
            crate::libcontainer::config::merge_env(&cfg["process"]["env"], &a.env);
        std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    }
    Ok(())
}

/// "docker.io/library/busybox:latest" → "busybox-<pid>": readable and unique enough per host.
fn default_name(img: &str) -> String {
    let base = img.rsplit('/').next().unwrap_or(img);
    let base: String = base
        .split([':', '@'])
        .next()
        .unwrap_or("c")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_+-.".contains(*c))
        .collect();
    format!(
        "{}-{}",
        if base.is_empty() { "c" } else { &base },
        std::process::id()
    )
}

fn run_bundle(g: &GlobalOpts, a: &Args, id: &str, bundle: &Path) -> Exit {
    let signals = (!a.detach).then(runner::block_signals).transpose()?;
    // Without --console-socket a terminal container's pty comes back to us, to proxy it.
    let (ours, theirs) = match a.create.console_socket {
        Some(_) => (None, None),
        None => {
            let (x, y) = UnixStream::pair().context("socketpair for the console")?;
            (Some(OwnedFd::from(x)), Some(OwnedFd::from(y)))
        }
    };
    let mut c = create(&g.root, a.create.opts(g, id, bundle, theirs))?;
    let terminal = c
        .state
        .config
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let master = match (&ours, terminal) {
        (Some(sock), true) => Some(console::recv_master(sock)?),
        _ => None,
    };
    if a.detach && master.is_some() {
        let _ = lifecycle::delete(c, true);
        bail!("cannot allocate a tty for a detached container without --console-socket");
    }
    if let Err(e) = lifecycle::start(&mut c) {
        let _ = lifecycle::delete(c, true);
        return Err(e);
    }
    let Some(signals) = signals else { return Ok(0) };
    let pid = c.state.pid;
    // Let kill/state/ps from other shells in while we wait.
    drop(c);
    let code = runner::wait(pid, &signals, master)?;
    if !a.keep {
        let c = Container::load(&g.root, id)?;
        lifecycle::delete(c, true)?;
    }
    Ok(code)
}
