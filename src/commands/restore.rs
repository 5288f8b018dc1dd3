use super::{Exit, GlobalOpts};
use crate::libcontainer::checkpoint::empty_ns_mask;
use crate::libcontainer::container::Container;
use crate::libcontainer::criu::proto::CgMode;
use crate::libcontainer::restore::{restore, RestoreOpts};
use crate::libcontainer::{lifecycle, runner};
use anyhow::Context;
use std::path::PathBuf;

/// runc's `restore` flags, as go-runc sends them.
#[derive(clap::Args)]
pub struct Args {
    /// Unix socket that receives the new pty master of a terminal container
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Where the images are [default: ./checkpoint]
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    /// Where criu writes its log and work files [default: the image path]
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Restore file locks
    #[arg(long)]
    pub file_locks: bool,
    /// What criu does with cgroups: soft (default), full, strict or ignore
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
    /// Path to the bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Do not wait for the container; leave it running
    #[arg(short, long)]
    pub detach: bool,
    /// Write the restored init's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc's callers; rt does not become a subreaper
    #[arg(long)]
    pub no_subreaper: bool,
    /// Accepted for runc's callers; criu sets up the root itself
    #[arg(long)]
    pub no_pivot: bool,
    /// Make this namespace empty instead of restoring it (network)
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images
    #[arg(long)]
    pub auto_dedup: bool,
    /// Restore memory pages lazily, from criu's lazy-pages daemon
    #[arg(long)]
    pub lazy_pages: bool,
    /// LSM profile for the restored process, TYPE:NAME
    #[arg(long)]
    pub lsm_profile: Option<String>,
    /// LSM mount context for the restored mounts
    #[arg(long)]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let image_path = match &a.image_path {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .context("current directory")?
            .join("checkpoint"),
    };
    let manage_cgroups_mode = a
        .manage_cgroups_mode
        .as_deref()
        .map(CgMode::parse)
        .transpose()?;
    let signals = (!a.detach).then(runner::block_signals).transpose()?;
    let opts = RestoreOpts {
        criu: &g.criu,
        id: &a.id,
        bundle: &a.bundle,
        image_path: &image_path,
        work_path: a.work_path.as_deref(),
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        manage_cgroups_mode,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
        keep_master: !a.detach && a.console_socket.is_none(),
        empty_ns: empty_ns_mask(&a.empty_ns)?,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        lsm_profile: a.lsm_profile.as_deref(),
        lsm_mount_context: a.lsm_mount_context.as_deref(),
        systemd_cgroup: g.systemd_cgroup,
    };
    let r = restore(&g.root, opts)?;
    let Some(signals) = signals else { return Ok(0) };
    let pid = r.container.state.pid;
    // Let kill/state/ps from other shells in while we wait.
    drop(r.container);
    let code = runner::wait(pid, &signals, r.master)?;
    let c = Container::load(&g.root, &a.id)?;
    lifecycle::delete(c, true)?;
    Ok(code)
}
