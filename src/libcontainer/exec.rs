//! `rt exec`: one more process in a running container's namespaces and cgroup.
use super::container::Container;
use super::fdpass::PidfdSocket;
use super::process::{cgroup2_birthplace, sealed_self, spawn_init, InitSpawn};
use super::seccomp_notify::OciState;
use super::state::{write_atomic, Status};
use super::sync::{Channel, ExecConfig, FromInit, ToInit};
use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::{LinuxNamespaceType, Process};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub struct ExecOpts<'a> {
    pub process: Process,
    pub console_socket: Option<&'a Path>,
    /// Our end is kept by the caller to proxy the terminal (no --console-socket).
    pub console_fd: Option<OwnedFd>,
    pub pid_file: Option<&'a Path>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// `--cgroup`: sub-cgroups of the container's to run in.
    pub sub_cgroups: &'a [String],
    /// `--pidfd-socket`: a pidfd of the process goes there once it is ready.
    pub pidfd_socket: Option<&'a Path>,
    /// Rootless: a cgroup the caller may not move processes into is lived with, as runc does
    /// (the process stays in the caller's; a user's systemd scope joined from outside the
    /// user's own tree is one).
    pub rootless_cgroups: bool,
}

/// Starts the process and returns its pid once it is about to exec.
pub fn exec(c: &Container, opts: ExecOpts) -> Result<i32> {
    match c.status() {
        Status::Running | Status::Created => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Creating => bail!("cannot exec in a container that is still being created"),
    }
    let terminal = opts.process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && opts.console_fd.is_none() {
        bail!("process.terminal is true: --console-socket is required");
    }
    if opts.process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args must not be empty");
    }
    super::config::validate_selinux_label(&opts.process)?;
    if !super::namespaces::has(&c.state.config, LinuxNamespaceType::Mount) {
        // joining its namespaces would leave the process in the host's root, not the rootfs
        // the container's init chrooted into
        bail!("exec: the container has no mount namespace; refusing to run a process in the host's root");
    }
    let init = c.state.pid;
    let namespaces: Vec<(LinuxNamespaceType, PathBuf)> =
        super::namespaces::namespaces(&c.state.config)
            .iter()
            .map(|n| {
                (
                    n.typ(),
                    PathBuf::from(format!(
                        "/proc/{init}/ns/{}",
                        super::namespaces::proc_name(n.typ())
                    )),
                )
            })
            .collect();
    let agent = c
        .state
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(super::seccomp_notify::agent)
        .transpose()?
        .flatten();
    let pidfd_socket = opts.pidfd_socket.map(PidfdSocket::connect).transpose()?;
    let console = super::console::connect(opts.console_socket, opts.console_fd)?;

    // The process forks once more after joining a pid namespace; as subreaper we stay its parent
    // so we can wait for it.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (parent_sock, child_sock) = UnixStream::pair().context("creating the sync socketpair")?;
    let tight = super::create::has_tight_memory_limit(&c.state.config);
    let exe = sealed_self(tight)?;
    // A container made without a cgroup (rootless) runs its processes where rt runs.
    let mut cgroup = if c.state.no_cgroup {
        if !opts.sub_cgroups.is_empty() {
            bail!("--cgroup: the container has no cgroup (it was created rootless without permission for one)");
        }
        None
    } else if opts.sub_cgroups.is_empty() {
        Some(c.cgroup()?)
    } else {
        Some(c.cgroup()?.sub_cgroup(opts.sub_cgroups)?)
    };
    let unified = match &cgroup {
        Some(cg) => cgroup2_birthplace(cg, tight)?,
        None => None,
    };
    let mut keep = vec![child_sock.as_raw_fd()];
    keep.extend(console.as_ref().map(|c| c.as_raw_fd()));
    let spawn = |cgroup: Option<&OwnedFd>| {
        spawn_init(&InitSpawn {
            exe: &exe,
            flags: CloneFlags::empty(),
            keep_fds: &keep,
            sync_fd: child_sock.as_raw_fd(),
            wait_for_maps: false,
            cgroup: cgroup.map(|fd| fd.as_raw_fd()),
        })
    };
    let spawned = match spawn(unified.as_ref()) {
        Err(e) if opts.rootless_cgroups && refused(&e) => {
            crate::debug!("rootless: exec stays out of the container's cgroup: {e:#}");
            cgroup = None;
            spawn(None)?
        }
        r => r?,
    };
    let child = spawned.pid;
    // The stages carry runc's names (nsexec, init(), setns_init): people and scripts reading
    // a runc --debug log look for them.
    crate::debug!(
        "exec {}: nsexec container setup: rt init cloned (pid {child})",
        c.id()
    );
    drop((child_sock, exe, unified));
    let mut chan = Channel(parent_sock);
    // The process that will exec: the child, or the one it forks into a joined pid namespace.
    let mut pid = child.as_raw();
    let result = (|| -> Result<()> {
        // Born in the cgroup2 directory, it moves itself into the v1 ones (the reason is at
        // CgroupManager::v1_task_files); it is still in our user namespace, so it may.
        if let (Some(cg), false) = (&cgroup, spawned.in_cgroup) {
            match cg.add_pid_unified(child.as_raw()) {
                Err(e) if opts.rootless_cgroups && refused(&e) => {
                    crate::debug!("rootless: exec stays out of the container's cgroup: {e:#}")
                }
                r => r.context("joining the container's cgroup")?,
            }
        }
        let cgroup_tasks = cgroup
            .as_ref()
            .map(|cg| cg.v1_task_files())
            .unwrap_or_default();
        chan.send(&ToInit::Exec(Box::new(ExecConfig {
            cgroup_tasks,
            namespaces,
            process: opts.process,
            spec: c.state.config.clone(),
            preserve_fds: opts.preserve_fds,
            console_fd: console.as_ref().map(|c| c.as_raw_fd()),
        })))?;
        crate::debug!(
            "exec {}: child process in init() (pid {child}): config sent",
            c.id()
        );
        drop(console);
        loop {
            match chan.recv::<FromInit>() {
                Ok(FromInit::Pid(p)) => {
                    let _ = waitpid(child, None);
                    pid = p;
                }
                Ok(FromInit::SeccompListener(fd)) => super::seccomp_notify::hand_over(
                    &mut chan,
                    agent.as_ref(),
                    pid,
                    fd,
                    OciState::of(&c.state, Status::Running),
                )?,
                Ok(FromInit::Ready) => break,
                Ok(FromInit::Error(msg)) => bail!("{msg}"),
                Ok(other) => bail!("unexpected message from exec init: {other:?}"),
                Err(_) => bail!("the exec'd process died before it was ready"),
            }
        }
        if let Some(s) = pidfd_socket {
            s.send(pid, "setns")?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        // Past Ready the process runs the user's command: it goes too. As subreaper we reap
        // it even when it is the grandchild.
        for p in [pid, child.as_raw()] {
            let _ = kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
            let _ = waitpid(nix::unistd::Pid::from_raw(p), None);
        }
        return Err(e);
    }
    crate::debug!("exec {}: setns_init: about to exec (pid {pid})", c.id());
    if let Some(p) = opts.pid_file {
        write_atomic(p, pid.to_string().as_bytes())
            .with_context(|| format!("--pid-file {}", p.display()))?;
    }
    Ok(pid)
}

/// The kernel refused us the cgroup (not ours to move processes into).
fn refused(e: &anyhow::Error) -> bool {
    super::cgroup_policy::permission_errno(e).is_some()
}
