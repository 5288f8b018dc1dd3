//! `rt init`: runs inside the new namespaces (DESIGN.md §2 steps 5–9), then execs the user's process.
mod attrs;
mod console;
mod exec;
mod join;
mod namespaces;
mod stdio;
mod user;

use crate::libcontainer::hooks;
use crate::libcontainer::namespaces::{has, is_new};
use crate::libcontainer::procfs::{self, ProcfsBase};
use crate::libcontainer::sync::{Channel, FromInit, InitConfig, ToInit};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxNamespaceType;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;

pub fn main() -> ! {
    // While rt's code runs inside the container's namespaces nothing there may open our
    // /proc/<pid>/exe or mem (CVE-2019-5736); exec of the user's binary resets this.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let fd: i32 = match std::env::var("_RT_SYNC_FD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(fd) => fd,
        None => {
            eprintln!("rt init: not started by rt; it is not a command to run by hand");
            std::process::exit(1);
        }
    };
    set_cloexec(fd);
    // SAFETY: the parent passed us this fd for exactly this use; nothing else owns it.
    let mut chan = Channel(unsafe { UnixStream::from_raw_fd(fd) });
    let err = match run(&mut chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = format!("{err:#}");
    if chan.send(&FromInit::Error(msg.clone())).is_err() {
        // After Ready the parent is gone: the container's stderr is all that is left.
        eprintln!("rt init: {msg}");
    }
    std::process::exit(1);
}

pub(crate) fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on an integer fd; failure only means the fd was not open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

fn run(chan: &mut Channel) -> Result<std::convert::Infallible> {
    let cfg = match chan.recv()? {
        ToInit::Config(c) => c,
        ToInit::Exec(e) => {
            join_cgroups(&e.cgroup_tasks)?;
            if let Some(fd) = e.console_fd {
                set_cloexec(fd);
            }
            return join::run(&e, chan);
        }
        other => bail!("expected the init config, got {other:?}"),
    };
    // Sent right after the config: the mount sources the parent opened for us.
    let wanted = cfg.opened_sources.iter().filter(|o| **o).count();
    let mut opened = match wanted {
        0 => Vec::new(),
        n => chan.recv_fds(n)?,
    }
    .into_iter();
    let sources: Vec<Option<std::os::fd::OwnedFd>> = cfg
        .opened_sources
        .iter()
        .map(|o| if *o { opened.next() } else { None })
        .collect();
    // First: everything init does from here on counts against the container's limits, and
    // the cgroup namespace unshared below is rooted where init stands.
    join_cgroups(&cfg.cgroup_tasks)?;
    set_cloexec(cfg.fifo_fd);
    if let Some(fd) = cfg.console_fd {
        set_cloexec(fd);
    }
    namespaces::enter(&cfg, chan)?;
    new_session()?;
    procfs::warm_up()?;
    let state_json = setup_container(&cfg, chan, &sources)?;
    drop(sources);
    exec::wait_and_exec(&cfg, chan, state_json.as_deref())
}

/// The container's process leads a session of its own, terminal or not (as runc and crun do):
/// a ^C or hang-up of the shell that ran `rt create` goes to that shell's session, never to the
/// container. With a terminal the pty becomes this session's controlling tty. Called after any
/// fork into a joined pid namespace, since only the process that execs counts.
pub(crate) fn new_session() -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    Ok(())
}

/// Moves this (single-threaded) process into each v1 cgroup whose `tasks` file is listed.
fn join_cgroups(tasks: &[std::path::PathBuf]) -> Result<()> {
    for t in tasks {
        std::fs::write(t, "0").with_context(|| format!("joining cgroup {}", t.display()))?;
    }
    Ok(())
}

/// Rootfs, console, hostname, sysctl, rlimits: all that needs privileges. Returns the state JSON
/// for startContainer hooks when there are any.
fn setup_container(
    cfg: &InitConfig,
    chan: &mut Channel,
    sources: &[Option<std::os::fd::OwnedFd>],
) -> Result<Option<String>> {
    let spec = &cfg.spec;
    let process = spec.process().as_ref().context("process must be set")?;
    let hooks = spec.hooks().as_ref();
    let any = |v: Option<&Vec<oci_spec::runtime::Hook>>| v.is_some_and(|v| !v.is_empty());
    let wants_hooks = hooks.is_some_and(|h| {
        any(h.prestart().as_ref())
            || any(h.create_runtime().as_ref())
            || any(h.create_container().as_ref())
            || any(h.start_container().as_ref())
    });
    let linux = spec.linux().as_ref().context("linux must be set")?;
    if is_new(spec, LinuxNamespaceType::Network) {
        namespaces::loopback_up()?;
    }
    let sources: Vec<Option<std::os::fd::BorrowedFd>> = sources
        .iter()
        .map(|s| s.as_ref().map(std::os::fd::AsFd::as_fd))
        .collect();
    let setup = crate::rootfs::Setup {
        rootfs: &cfg.rootfs,
        bundle: &cfg.bundle,
        mounts: spec.mounts().as_deref().unwrap_or_default(),
        sources: &sources,
        devices: linux.devices().as_deref().unwrap_or_default(),
        propagation: linux.rootfs_propagation().as_deref(),
        // mknod is refused in any user namespace but the initial one: in the container's own,
        // and in the one rt itself runs in (podman's)
        bind_devices: in_user_namespace(),
        cgroup_ns: has(spec, LinuxNamespaceType::Cgroup),
        cgroups: &cfg.cgroup_mounts,
        masked_paths: linux.masked_paths().as_deref().unwrap_or_default(),
        readonly_paths: linux.readonly_paths().as_deref().unwrap_or_default(),
        readonly_root: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        cwd: process.cwd(),
        mount_ns: has(spec, LinuxNamespaceType::Mount),
    };
    let tree = crate::rootfs::prepare(&setup)?;
    let mut state_json = None;
    if wants_hooks {
        // createRuntime hooks run in the runtime's namespaces, after ours exist, before pivot_root.
        chan.send(&FromInit::Hooks)?;
        match chan.recv()? {
            ToInit::Continue(json) => state_json = Some(json),
            other => bail!("expected Continue, got {other:?}"),
        }
        // createContainer hooks run here: in the container's namespaces, before pivot_root,
        // with the container's rootfs as their working directory (as runc runs them).
        nix::unistd::fchdir(tree.fd())
            .context("chdir to the rootfs for the createContainer hooks")?;
        let json = state_json.as_deref().unwrap_or_default().as_bytes();
        hooks::run_all_env(
            "createContainer",
            hooks.and_then(|h| h.create_container().as_ref()),
            json,
            Some(process.env().as_deref().unwrap_or_default()),
        )?;
    }
    if process.terminal().unwrap_or(false) {
        let fd = cfg
            .console_fd
            .context("process.terminal is set but no console socket was passed")?;
        console::setup(
            fd,
            &tree,
            process.console_size(),
            Some(&tree),
            process.user().uid(),
        )?;
    }
    crate::rootfs::protect(&tree, &setup)?;
    namespaces::write_sysctls(spec)?;
    crate::rootfs::enter(tree, &cfg.rootfs, cfg.no_pivot, setup.mount_ns)?;
    crate::rootfs::finalize(&setup)?;
    if setup.mount_ns {
        stdio::use_container_null()?;
    }
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).with_context(|| format!("setting hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: pointer and length of a live byte slice.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("setting domainname {d:?}"));
        }
    }
    if !cfg.no_new_keyring {
        namespaces::join_session_keyring(&cfg.id);
    }
    user::apply_rlimits(process)?;
    attrs::apply_personality(spec)?;
    attrs::apply_scheduler(process)?;
    attrs::apply_io_priority(process)?;
    if let Some(adj) = process.oom_score_adj() {
        procfs::write(ProcfsBase::ProcSelf, "oom_score_adj", &adj.to_string())
            .context("setting oomScoreAdj")?;
    }
    Ok(state_json)
}

fn in_user_namespace() -> bool {
    procfs::read(ProcfsBase::ProcSelf, "uid_map")
        .is_ok_and(|m| !crate::libcontainer::rootless::is_initial_map(&m))
}

/// After setns into a pid namespace only children land in it: fork, report the child's pid
/// (as this, the parent, sees it: in the caller's namespace) and exit. The child waits on a pipe
/// until that report is written, so its own messages can never overtake it on the channel.
pub(crate) fn fork_into_pid_namespace(chan: &mut Channel) -> Result<()> {
    let (r, w) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: init is single-threaded.
    match unsafe { nix::unistd::fork() }.context("forking into the pid namespace")? {
        nix::unistd::ForkResult::Parent { child } => {
            let _ = chan.send(&FromInit::Pid(child.as_raw()));
            drop(w);
            std::process::exit(0);
        }
        nix::unistd::ForkResult::Child => {
            drop(w);
            let mut b = [0u8; 1];
            // EOF: the parent has sent the pid and exited (or died, and then so do we below).
            let _ = nix::unistd::read(&r, &mut b);
            Ok(())
        }
    }
}
