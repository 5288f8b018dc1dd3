//! The container's tree as one handle. Every path the config or the image names is resolved
//! inside it by pathrs (openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS, or its checked
//! O_PATH walk on kernels without openat2), and every change is an *at call on the resolved
//! parent. No path string into the image is ever handed to the kernel: an image whose `/dev` or
//! any other directory is a symlink to the host cannot aim rt's writes there
//! (CVE-2026-41579, CVE-2024-45310).
use super::fd;
use anyhow::{bail, Context, Result};
use pathrs::{InodeType, Root};
use std::fs::Permissions;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// How many dangling symlinks a file mount point may go through before it is refused.
const MAX_LINKS: usize = 40;

pub struct Tree {
    root: Root,
    /// The rootfs as our own mount namespace names it: what a resolved fd's path starts with.
    at: PathBuf,
}

fn errno(e: &pathrs::error::Error) -> Option<i32> {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(n) => n,
        _ => None,
    }
}

fn is_enoent(e: &pathrs::error::Error) -> bool {
    errno(e) == Some(libc::ENOENT)
}

fn dir_mode() -> Permissions {
    Permissions::from_mode(0o755)
}

impl Tree {
    pub fn open(rootfs: &Path) -> Result<Tree> {
        let root = Root::open(rootfs)
            .with_context(|| format!("opening the rootfs {}", rootfs.display()))?;
        let at = fd::path_of(root.as_fd())?;
        Ok(Tree { root, at })
    }

    /// The pathrs root, for callers that need nothing but in-root resolution.
    pub fn root(&self) -> &Root {
        &self.root
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// An existing `path`, symlinks followed inside the tree; `None` when it is not there.
    pub fn existing(&self, path: &Path) -> Result<Option<OwnedFd>> {
        match self.root.resolve(path) {
            Ok(h) => Ok(Some(h.into())),
            Err(e) if is_enoent(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("resolving {}", path.display())),
        }
    }

    /// As `existing`, but a final symlink is returned as itself, never followed.
    pub fn existing_nofollow(&self, path: &Path) -> Result<Option<OwnedFd>> {
        match self.root.resolve_nofollow(path) {
            Ok(h) => Ok(Some(h.into())),
            Err(e) if is_enoent(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("resolving {}", path.display())),
        }
    }

    /// A directory at `path`, made (0755, with its parents) where missing. A dangling image
    /// symlink on the way is taken to where it points, inside, as runc always did.
    pub fn dir(&self, path: &Path) -> Result<OwnedFd> {
        let made = match self.root.mkdir_all(path, &dir_mode()) {
            Ok(h) => h,
            Err(_) => self
                .root
                .mkdir_all(self.undangle(path)?, &dir_mode())
                .with_context(|| format!("creating directory {}", path.display()))?,
        };
        Ok(made.into())
    }

    /// A non-directory at `path` to mount a file on: an existing one is used as it is; a missing
    /// one is made empty, and where `path` is a dangling symlink (`/etc/resolv.conf ->
    /// ../run/systemd/resolve/stub-resolv.conf`) it is made where the link points, inside.
    pub fn file(&self, path: &Path) -> Result<OwnedFd> {
        if let Some(fd) = self.existing(path)? {
            return Ok(fd);
        }
        let path = self.undangle(path)?;
        if let Some(parent) = path.parent() {
            self.dir(parent)?;
        }
        match self
            .root
            .create(&path, &InodeType::File(Permissions::from_mode(0o644)))
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        self.existing(&path)?
            .with_context(|| format!("{} vanished after creating it", path.display()))
    }

    /// `path` with every dangling symlink on it replaced by its target (read in the tree and
    /// joined lexically, so `..` stops at the root): the path to create things at.
    fn undangle(&self, path: &Path) -> Result<PathBuf> {
        let mut path = clean(path);
        'again: for _ in 0..MAX_LINKS {
            let mut prefix = PathBuf::from("/");
            for c in path.components().skip(1) {
                prefix.push(c);
                if self.existing(&prefix)?.is_some() {
                    continue;
                }
                // Missing: either nothing is there (the rest is to be made) or a dangling link.
                let Ok(target) = self.root.readlink(&prefix) else {
                    return Ok(path);
                };
                let rest = path.strip_prefix(&prefix).unwrap_or(Path::new(""));
                let base = prefix.parent().unwrap_or(Path::new("/"));
                path = clean(&base.join(target).join(rest));
                continue 'again;
            }
            return Ok(path);
        }
        bail!("{}: too many levels of symbolic links", path.display())
    }

    /// Makes `inode` at `path`, first removing a non-directory already there (an image's own
    /// `/dev/null` or `/dev/ptmx`, or a symlink in their place: the link itself is removed,
    /// never what it points at).
    pub fn replace(&self, path: &Path, inode: &InodeType) -> Result<()> {
        match self.root.remove_file(path) {
            Ok(()) => {}
            Err(e) if is_enoent(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        self.root
            .create(path, inode)
            .with_context(|| format!("creating {}", path.display()))
    }

    /// A symlink at `path`; one already there is left alone.
    pub fn symlink(&self, path: &Path, target: &str) -> Result<()> {
        match self.root.create(path, &InodeType::Symlink(target.into())) {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("linking {} to {target}", path.display())),
        }
    }

    /// Where an fd resolved in this tree is, as the container will name it.
    pub fn container_path(&self, fd: BorrowedFd<'_>) -> Result<PathBuf> {
        let p = fd::path_of(fd)?;
        if p == self.at {
            return Ok(PathBuf::from("/"));
        }
        match p.strip_prefix(&self.at) {
            Ok(rel) => Ok(Path::new("/").join(rel)),
            Err(_) => bail!(
                "{} is outside the rootfs {}",
                p.display(),
                self.at.display()
            ),
        }
    }
}

/// `path` with `.` and `..` folded lexically, as an absolute path: the tree's own resolution
/// treats `..` at the root the same way.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_folds_dots_and_stays_absolute() {
        assert_eq!(clean(Path::new("../../etc")), PathBuf::from("/etc"));
        assert_eq!(clean(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/")), PathBuf::from("/"));
    }

    #[test]
    fn changes_stay_inside_a_tree_full_of_links() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = d.path();
        std::os::unix::fs::symlink(outside.path(), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        let tree = Tree::open(root).unwrap();
        tree.dir(Path::new("/abs/a/b")).unwrap();
        tree.symlink(Path::new("/up/link"), "x").unwrap();
        // a dangling link to an absolute path: the file is made where it points, inside
        std::os::unix::fs::symlink(outside.path().join("f"), root.join("dangling")).unwrap();
        tree.file(Path::new("/dangling")).unwrap();
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        let inside = root.join(outside.path().strip_prefix("/").unwrap());
        assert!(inside.join("a/b").is_dir());
        assert!(inside.join("f").is_file());
        assert!(std::fs::symlink_metadata(root.join("link")).is_ok());
        let fd = tree.existing(Path::new("/abs/a")).unwrap().unwrap();
        assert_eq!(
            tree.container_path(fd.as_fd()).unwrap(),
            Path::new("/")
                .join(outside.path().strip_prefix("/").unwrap())
                .join("a")
        );
    }
}
