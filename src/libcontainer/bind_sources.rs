//! Bind sources opened by the runtime for an init in a new user namespace, as runc (1.1.5 and
//! current) opens its "mount sources": root in the container's user namespace maps to an
//! unprivileged host id, which cannot reach a source only host root may (a directory of mode
//! 0700 owned by root). The runtime opens each one O_PATH before init is let go, as the
//! container's mount namespace resolves it (through /proc/<init>/root, so the fd belongs to
//! that namespace and init may bind it), and passes the fds over the sync socket; init mounts
//! from them. A source that cannot be opened this way is left to init to open by path, as it
//! would without this.
use std::os::fd::OwnedFd;
use std::path::Path;

/// One entry per mounts[] entry of `spec` (empty when none is a bind).
pub fn open(init_pid: i32, spec: &oci_spec::runtime::Spec, bundle: &Path) -> Vec<Option<OwnedFd>> {
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    if !mounts.iter().any(crate::rootfs::is_bind_mount) {
        return Vec::new();
    }
    let root = match nix::fcntl::open(
        format!("/proc/{init_pid}/root").as_str(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            crate::debug!("bind sources left to init: /proc/{init_pid}/root: {e}");
            return Vec::new();
        }
    };
    mounts
        .iter()
        .map(|m| {
            let src = m
                .source()
                .as_ref()
                .filter(|_| crate::rootfs::is_bind_mount(m))?;
            let src = bundle.join(src);
            match crate::rootfs::open_source_in(std::os::fd::AsFd::as_fd(&root), &src) {
                Ok(fd) => Some(fd),
                Err(e) => {
                    crate::debug!("bind source {} left to init: {e}", src.display());
                    None
                }
            }
        })
        .collect()
}
