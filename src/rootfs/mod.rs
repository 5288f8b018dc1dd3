//! Mounts, propagation, pivot_root, devices, masked and read-only paths.
mod devices;
mod mounts;
mod options;
mod path;
mod pivot;
mod setattr;

use crate::cgroups::CgroupManager;
use crate::libcontainer::namespaces::is_new;
use crate::libcontainer::sync::InitConfig;
use anyhow::{Context, Result};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::Path;

fn root_propagation(spec: &Spec) -> Result<Option<MsFlags>> {
    match spec.linux().as_ref().and_then(|l| l.rootfs_propagation().as_deref()) {
        None | Some("") => Ok(None),
        Some(p) => options::propagation(p).map(Some).with_context(|| format!("linux.rootfsPropagation: unknown value {p:?}")),
    }
}

/// Before pivot_root: cut propagation to the host, bind the rootfs, mount, make /dev.
pub fn prepare(cfg: &InitConfig) -> Result<()> {
    let spec = &cfg.spec;
    let propagation = root_propagation(spec)?;
    // Nothing we mount may show up on the host: everything is a slave (or what the config says).
    let flags = propagation.unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).context("setting propagation of /")?;
    if propagation.is_some_and(|p| p.contains(MsFlags::MS_SHARED)) {
        // pivot_root refuses a new root whose parent mount is shared.
        pivot::make_parent_mount_private(&cfg.rootfs)?;
    }
    let rootfs = &cfg.rootfs;
    mount(Some(rootfs), rootfs, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .with_context(|| format!("bind mounting rootfs {}", rootfs.display()))?;

    let cgroup = CgroupManager::new(Some(&cfg.cgroup_path), &cfg.id)?;
    let ctx = mounts::MountCtx {
        rootfs,
        bundle: &cfg.bundle,
        cgroup_ns: crate::libcontainer::namespaces::has(spec, LinuxNamespaceType::Cgroup),
        cgroup: &cgroup,
    };
    let list = spec.mounts().as_deref().unwrap_or_default();
    for m in list {
        mounts::mount_entry(&ctx, m).with_context(|| format!("mount {}", m.destination().display()))?;
    }
    // runc's rule: unless /dev is bound from somewhere, rt fills it.
    let dev_is_bind = list.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options().as_deref().unwrap_or_default().iter().any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        let devs = spec.linux().as_ref().and_then(|l| l.devices().as_deref()).unwrap_or_default();
        devices::create(rootfs, devs, is_new(spec, LinuxNamespaceType::User)).context("creating devices")?;
    }
    Ok(())
}

/// Makes the rootfs the process's `/`.
pub fn enter(cfg: &InitConfig) -> Result<()> {
    if cfg.no_pivot {
        pivot::move_root(&cfg.rootfs)
    } else {
        pivot::pivot_root(&cfg.rootfs)
    }
}

/// After pivot_root: read-only root, masked and read-only paths, final propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(p) = root_propagation(spec)? {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).context("setting linux.rootfsPropagation")?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        mounts::remount(Path::new("/"), MsFlags::MS_RDONLY).context("making root read-only")?;
    }
    for p in linux.and_then(|l| l.readonly_paths().as_deref()).unwrap_or_default() {
        readonly_path(Path::new(p)).with_context(|| format!("linux.readonlyPaths {p}"))?;
    }
    for p in linux.and_then(|l| l.masked_paths().as_deref()).unwrap_or_default() {
        mask_path(Path::new(p)).with_context(|| format!("linux.maskedPaths {p}"))?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    if std::fs::symlink_metadata(p).is_err() {
        return Ok(());
    }
    mount(Some(p), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).context("bind")?;
    mounts::remount(p, MsFlags::MS_RDONLY | MsFlags::MS_REC)
}

fn mask_path(p: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(p) else { return Ok(()) };
    if meta.is_dir() {
        mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, None::<&str>).context("mounting a read-only tmpfs")
    } else {
        mount(Some("/dev/null"), p, None::<&str>, MsFlags::MS_BIND, None::<&str>).context("binding /dev/null")
    }
}

/// /dev/console is the container's pty slave.
pub fn bind_console(slave: &str) -> Result<()> {
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).context("creating /dev/console")?;
    }
    mount(Some(slave), console, None::<&str>, MsFlags::MS_BIND, None::<&str>).context("binding the pty onto /dev/console")
}
