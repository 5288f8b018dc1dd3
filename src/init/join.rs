//! `rt exec`'s init: join a running container's namespaces, then set up and exec the process.
use super::{console, exec, user};
use crate::libcontainer::sync::{Channel, ExecConfig, FromInit};
use anyhow::{Context, Result};
use oci_spec::runtime::LinuxNamespaceType;
use std::convert::Infallible;
use std::path::Path;

pub fn run(cfg: &ExecConfig, chan: &mut Channel) -> Result<Infallible> {
    let list: Vec<(LinuxNamespaceType, &Path)> = cfg
        .namespaces
        .iter()
        .map(|(t, p)| (*t, p.as_path()))
        .collect();
    super::namespaces::join(&list, chan)?;
    super::new_session()?;
    crate::libcontainer::procfs::warm_up()?;
    let process = &cfg.process;
    if process.terminal().unwrap_or(false) {
        let fd = cfg
            .console_fd
            .context("process.terminal is set but no console socket was passed")?;
        // The running container's `/`: what it did to its /dev/pts is checked, not trusted.
        let root = crate::rootfs::Tree::open(std::path::Path::new("/"))?;
        console::setup(
            fd,
            &root,
            process.console_size(),
            None,
            process.user().uid(),
        )?;
    }
    user::apply_rlimits(process)?;
    super::attrs::apply_scheduler(process)?;
    super::attrs::apply_io_priority(process)?;
    let profile = cfg.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let prepared = exec::prepare(process, cfg.preserve_fds, profile, chan)?;
    chan.send(&FromInit::Ready)?;
    exec::exec(prepared, process)
}
