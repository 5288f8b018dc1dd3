use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;
use crate::libcontainer::create::{create, CreateOpts};
use crate::libcontainer::{console, lifecycle, runner};
use anyhow::Context;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Path to the bundle directory (holds config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the container; leave it running
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (no delete)
    #[arg(long)]
    pub keep: bool,
    /// Write the container's pid to this file
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (from 3 on) to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let signals = (!a.detach).then(runner::block_signals).transpose()?;
    // Without --console-socket a terminal container's pty comes back to us, to proxy it.
    let (ours, theirs) = match a.console_socket {
        Some(_) => (None, None),
        None => {
            let (x, y) = UnixStream::pair().context("socketpair for the console")?;
            (Some(OwnedFd::from(x)), Some(OwnedFd::from(y)))
        }
    };
    let mut c = create(
        &g.root,
        CreateOpts {
            id: &a.id,
            bundle: &a.bundle,
            pid_file: a.pid_file.as_deref(),
            console_socket: a.console_socket.as_deref(),
            console_fd: theirs,
            no_pivot: a.no_pivot,
            no_new_keyring: a.no_new_keyring,
            preserve_fds: a.preserve_fds,
            systemd_cgroup: g.systemd_cgroup,
        },
    )?;
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
        anyhow::bail!("cannot allocate a tty for a detached container without --console-socket");
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
        let c = Container::load(&g.root, &a.id)?;
        lifecycle::delete(c, true)?;
    }
    Ok(code)
}
