use super::{Exit, GlobalOpts};
use crate::libcontainer::checkpoint::{self, empty_ns_mask, parse_page_server, CheckpointOpts};
use crate::libcontainer::container::Container;
use crate::libcontainer::criu::proto::CgMode;
use anyhow::Context;
use std::path::PathBuf;

/// runc's `checkpoint` flags, as go-runc sends them.
#[derive(clap::Args)]
pub struct Args {
    /// Where criu writes the images [default: ./checkpoint]
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    /// Where criu writes its log and work files [default: the image path]
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// The images of an earlier --pre-dump, relative to --image-path
    #[arg(long)]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint
    #[arg(long)]
    pub leave_running: bool,
    /// Allow open TCP connections
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long)]
    pub shell_job: bool,
    /// Serve memory pages lazily (userfaultfd) instead of writing them
    #[arg(long)]
    pub lazy_pages: bool,
    /// With --lazy-pages: an fd that gets one NUL byte once the pages can be served
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub status_fd: i32,
    /// Send the pages to criu's page server at ADDRESS:PORT
    #[arg(long)]
    pub page_server: Option<String>,
    /// Checkpoint file locks
    #[arg(long)]
    pub file_locks: bool,
    /// Dump only the memory, and leave the container running
    #[arg(long)]
    pub pre_dump: bool,
    /// What criu does with cgroups: soft (default), full, strict or ignore
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
    /// Make this namespace empty at restore instead of restoring it (network)
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images of incremental dumps
    #[arg(long)]
    pub auto_dedup: bool,
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let image_path = match a.image_path {
        Some(p) => p,
        None => std::env::current_dir()
            .context("current directory")?
            .join("checkpoint"),
    };
    let opts = CheckpointOpts {
        criu: &g.criu,
        image_path: &image_path,
        work_path: a.work_path.as_deref(),
        parent_path: a.parent_path.as_deref(),
        leave_running: a.leave_running,
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        lazy_pages: a.lazy_pages,
        status_fd: (a.status_fd >= 0).then_some(a.status_fd),
        page_server: a
            .page_server
            .as_deref()
            .map(parse_page_server)
            .transpose()?,
        file_locks: a.file_locks,
        pre_dump: a.pre_dump,
        manage_cgroups_mode: a
            .manage_cgroups_mode
            .as_deref()
            .map(CgMode::parse)
            .transpose()?,
        empty_ns: empty_ns_mask(&a.empty_ns)?,
        auto_dedup: a.auto_dedup,
    };
    let mut c = Container::load(&g.root, &a.id)?;
    checkpoint::checkpoint(&mut c, &opts)?;
    Ok(0)
}
