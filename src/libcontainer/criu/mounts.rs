//! The mounts of a container that criu cannot take from inside it: their sources live on the
//! host (bind mounts, the masks' /dev/null, bound device nodes, cgroup directories bound
//! without a cgroup namespace). At dump each is named external, keyed by where it is in the
//! container; at restore each key is given the host path to bind again.
use crate::cgroups::ContainerMount;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::Path;

/// Which side of the image the pairs are for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum For {
    Dump,
    Restore,
}

/// `ext_mnt` pairs for container `spec` on `rootfs`. `cgroups` are what its cgroup mount shows
/// (the new container's at restore); `init` is the running init at dump, whose view decides
/// which masked paths are files (masked by a bind of /dev/null; directories get a tmpfs).
pub fn external(
    spec: &Spec,
    rootfs: &Path,
    cgroups: &[ContainerMount],
    init: Option<i32>,
    side: For,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let real = |dest: &Path| -> String {
        crate::rootfs::resolve_in_root(rootfs, dest)
            .unwrap_or_else(|| dest.to_path_buf())
            .to_string_lossy()
            .into_owned()
    };
    let mut pair = |dest: String, source: String| {
        let v = match side {
            For::Dump => dest.clone(),
            For::Restore => source,
        };
        out.push((dest, v));
    };
    let cgroupns = super::super::namespaces::has(spec, LinuxNamespaceType::Cgroup);
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let typ = m.typ().as_deref().unwrap_or("");
        if crate::rootfs::is_bind_mount(m) {
            let src = m.source().as_deref().unwrap_or(Path::new(""));
            pair(real(m.destination()), src.to_string_lossy().into_owned());
        } else if (typ == "cgroup" || typ == "cgroup2") && !cgroupns {
            // binds of the host's cgroup directories, one per hierarchy
            for cm in cgroups {
                let dest = match cm.name.as_str() {
                    "" => m.destination().clone(),
                    n => m.destination().join(n),
                };
                pair(
                    dest.to_string_lossy().into_owned(),
                    cm.host_dir.to_string_lossy().into_owned(),
                );
            }
        }
    }
    let linux = spec.linux().as_ref();
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    match side {
        For::Dump => {
            for p in masked {
                let inside = format!("/proc/{}/root{p}", init.unwrap_or(0));
                if std::fs::metadata(&inside).is_ok_and(|m| !m.is_dir()) {
                    out.push((p.clone(), "/dev/null".to_string()));
                }
            }
        }
        For::Restore if !masked.is_empty() => {
            out.push(("/dev/null".to_string(), "/dev/null".to_string()));
        }
        For::Restore => {}
    }
    for d in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
    {
        let p = d.path().to_string_lossy().into_owned();
        out.push((p.clone(), p));
    }
    out
}
