//! `rt exec`'s init: join a running container's namespaces, then set up and exec the process.
use super::{console, exec, user};
use crate::libcontainer::namespaces::{flag, proc_name};
use crate::libcontainer::sync::{Channel, ExecConfig, FromInit};
use anyhow::{Context, Result};
use nix::sched::setns;
use nix::sys::stat::fstat;
use oci_spec::runtime::LinuxNamespaceType;
use std::convert::Infallible;
use std::fs::File;

pub fn run(cfg: &ExecConfig, chan: &mut Channel) -> Result<Infallible> {
    // Open every namespace first: once in the container's mount namespace its /proc no longer
    // shows the host pid the paths name.
    let mut files: Vec<(LinuxNamespaceType, File)> = Vec::new();
    for (t, path) in &cfg.namespaces {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        files.push((*t, f));
    }
    // The user namespace first: it grants the capabilities needed for the others.
    files.sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    let mut joined_pid = false;
    for (t, f) in &files {
        if same_as_ours(*t, f) {
            // e.g. a container sharing the host's network: joining our own namespace is refused.
            continue;
        }
        setns(f, flag(*t)).with_context(|| format!("joining the container's {t} namespace"))?;
        joined_pid |= *t == LinuxNamespaceType::Pid;
    }
    drop(files);
    if joined_pid {
        super::fork_into_pid_namespace(chan)?;
    }
    let process = &cfg.process;
    if process.terminal().unwrap_or(false) {
        let fd = cfg
            .console_fd
            .context("process.terminal is set but no console socket was passed")?;
        console::setup(fd, process.console_size(), false)?;
    }
    user::apply_rlimits(process)?;
    super::attrs::apply_scheduler(process)?;
    super::attrs::apply_io_priority(process)?;
    let profile = cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let prepared = exec::prepare(process, cfg.preserve_fds, profile)?;
    chan.send(&FromInit::Ready)?;
    exec::exec(prepared, process)
}

fn same_as_ours(t: LinuxNamespaceType, f: &File) -> bool {
    let name = proc_name(t);
    let (Ok(theirs), Ok(ours)) = (
        fstat(f),
        nix::sys::stat::stat(format!("/proc/self/ns/{name}").as_str()),
    ) else {
        return false;
    };
    theirs.st_ino == ours.st_ino && theirs.st_dev == ours.st_dev
}
