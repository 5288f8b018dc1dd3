//! Filesystem operations confined to a root directory. Every path is walked one component at a
//! time with O_NOFOLLOW from a directory fd, so neither a symlink planted by an earlier entry nor
//! a ".." can lead outside; anything that would is an error instead.
use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// Splits an archive path into plain components, refusing absolute paths and "..".
/// "." components and a leading "./" vanish; an empty result names the root itself.
pub fn components(p: &Path) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => bail!("path contains \"..\""),
            Component::RootDir | Component::Prefix(_) => bail!("path is absolute"),
        }
    }
    Ok(out)
}

/// A plain name: non-empty, not "." or "..", no '/' or NUL.
pub fn is_plain_name(n: &OsStr) -> bool {
    let b = n.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

pub struct Root {
    fd: OwnedFd,
}

fn open_dir_at<Fd: AsFd>(dir: Fd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl Root {
    pub fn open(dir: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {}", dir.display()))?;
        Ok(Root { fd })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Opens the directory named by `comps` (relative to the root), creating missing ones (0755,
    /// root-owned, as tar does for implied parents) when `create` is set. `Ok(None)` when it is
    /// missing and `create` is off.
    pub fn dir(&self, comps: &[OsString], create: bool) -> Result<Option<OwnedFd>> {
        let mut cur = self.fd.try_clone()?;
        for (i, c) in comps.iter().enumerate() {
            let shown = || {
                comps[..=i]
                    .iter()
                    .map(|c| c.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let next = match open_dir_at(&cur, c) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(anyhow!("creating directory {}: {e}", shown())),
                    }
                    open_dir_at(&cur, c).with_context(|| format!("opening {}", shown()))?
                }
                Err(Errno::ENOENT) => return Ok(None),
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    bail!(
                        "{} is a symlink or not a directory; refusing to go through it",
                        shown()
                    )
                }
                Err(e) => return Err(anyhow!("opening {}: {e}", shown())),
            };
            cur = next;
        }
        Ok(Some(cur))
    }
}

/// What is at `name` in `dir`, without following a symlink; None if nothing.
pub fn lstat_at<Fd: AsFd>(dir: Fd, name: &OsStr) -> Result<Option<nix::sys::stat::FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(anyhow!("stat {}: {e}", name.to_string_lossy())),
    }
}

pub fn is_dir(st: &nix::sys::stat::FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR
}

/// Removes `name` in `dir` and, for a directory, everything under it, never following symlinks.
pub fn remove_all_at<Fd: AsFd>(dir: Fd, name: &OsStr) -> Result<()> {
    let Some(st) = lstat_at(&dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = open_dir_at(&dir, name)
            .with_context(|| format!("opening {}", name.to_string_lossy()))?;
        clear_dir(&sub, &|_| false)?;
        unlinkat(&dir, name, UnlinkatFlags::RemoveDir)
            .with_context(|| format!("removing {}", name.to_string_lossy()))?;
    } else {
        unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("removing {}", name.to_string_lossy()))?;
    }
    Ok(())
}

/// Empties a directory, sparing the children for which `keep` says so.
pub fn clear_dir(dir: &OwnedFd, keep: &dyn Fn(&OsStr) -> bool) -> Result<()> {
    for name in list_dir(dir)? {
        if !keep(&name) {
            remove_all_at(dir, &name)?;
        }
    }
    Ok(())
}

/// Names in a directory held open by fd (read through /proc so no path is re-resolved).
pub fn list_dir(dir: &OwnedFd) -> Result<Vec<OsString>> {
    let p = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let mut out = Vec::new();
    for e in std::fs::read_dir(&p).context("listing a directory (is /proc mounted?)")? {
        out.push(e?.file_name());
    }
    Ok(out)
}

/// lsetxattr on `name` in `dir`: through /proc/self/fd, whose magic link is our own verified fd.
pub fn set_xattr<Fd: AsFd>(dir: Fd, name: &OsStr, key: &str, value: &[u8]) -> Result<()> {
    let mut p = format!("/proc/self/fd/{}/", dir.as_fd().as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    let p = std::ffi::CString::new(p).map_err(|_| anyhow!("NUL in file name"))?;
    let k = std::ffi::CString::new(key).map_err(|_| anyhow!("NUL in xattr name"))?;
    // SAFETY: both strings are NUL-terminated and live across the call; value is a valid slice.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("setting xattr {key}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_rules() {
        assert_eq!(
            components(Path::new("./a/b/")).unwrap(),
            vec![OsString::from("a"), OsString::from("b")]
        );
        assert!(components(Path::new("./")).unwrap().is_empty());
        assert!(components(Path::new("../x")).is_err());
        assert!(components(Path::new("a/../../x")).is_err());
        assert!(components(Path::new("/etc/passwd")).is_err());
        assert!(is_plain_name(OsStr::new("a.b")));
        for bad in ["", ".", "..", "a/b"] {
            assert!(!is_plain_name(OsStr::new(bad)), "{bad:?}");
        }
    }

    #[test]
    fn walking_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("link")).unwrap();
        std::os::unix::fs::symlink("/", root.join("abs")).unwrap();
        let r = Root::open(&root).unwrap();
        let c = |s: &str| components(Path::new(s)).unwrap();
        let e = r.dir(&c("link/x"), true).err().unwrap();
        assert!(e.to_string().contains("link is a symlink"), "{e}");
        assert!(r.dir(&c("abs"), false).is_err());
        assert!(!t.path().join("x").exists());
        assert!(r.dir(&c("new/deep"), true).unwrap().is_some());
        assert!(root.join("new/deep").is_dir());
        assert!(r.dir(&c("missing"), false).unwrap().is_none());
        // Removing through a symlinked directory removes the link, not its target's content.
        std::fs::write(t.path().join("keepme"), "x").unwrap();
        remove_all_at(r.fd(), OsStr::new("link")).unwrap();
        assert!(t.path().join("keepme").exists());
        assert!(!root.join("link").exists());
        std::fs::write(root.join("new/deep/f"), "x").unwrap();
        remove_all_at(r.fd(), OsStr::new("new")).unwrap();
        assert!(!root.join("new").exists());
    }
}
