use super::{Exit, GlobalOpts};
use crate::libcontainer::create::{create, CreateOpts};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// runc's flags for making a container, shared by `create` and `run`.
#[derive(clap::Args)]
pub struct CreateFlags {
    /// Path to the bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not use pivot_root (for a rootfs on a ramdisk)
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 on) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Unix socket that receives a pidfd of the container's process (SCM_RIGHTS)
    #[arg(long)]
    pub pidfd_socket: Option<PathBuf>,
}

impl CreateFlags {
    /// The factory's options for container `id` made from `bundle` (`run --image` brings its
    /// own bundle; `run` without --console-socket its own end of the console socketpair).
    pub fn opts<'a>(
        &'a self,
        g: &GlobalOpts,
        id: &'a str,
        bundle: &'a Path,
        console_fd: Option<OwnedFd>,
    ) -> CreateOpts<'a> {
        CreateOpts {
            id,
            bundle,
            pid_file: self.pid_file.as_deref(),
            console_socket: self.console_socket.as_deref(),
            console_fd,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            listen_fds: crate::libcontainer::create::socket_activation_fds(),
            systemd_cgroup: g.systemd_cgroup,
            pidfd_socket: self.pidfd_socket.as_deref(),
            rootless: g.rootless,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub flags: CreateFlags,
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    create(&g.root, a.flags.opts(g, &a.id, &a.flags.bundle, None))?;
    Ok(0)
}
