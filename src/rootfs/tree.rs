//! The container's tree as one handle. Every path the config or the image names is resolved
//! inside it (openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS; pathrs's checked O_PATH walk
//! on kernels without openat2), and every change is an *at call on the resolved parent. No path
//! string into the image is ever handed to the kernel: an image whose `/dev` or any other
//! directory is a symlink to the host cannot aim rt's writes there (CVE-2026-41579,
//! CVE-2024-45310).
use super::{fd, inroot};
use anyhow::{bail, Context, Result};
use pathrs::flags::OpenFlags;
use pathrs::Root;
use std::cell::OnceCell;
use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// How many dangling symlinks a mount point may go through before it is refused.
const MAX_LINKS: usize = 40;

/// What a tree makes at a path.
pub enum Inode<'a> {
    File(u32),
    CharDevice(u32, u64),
    BlockDevice(u32, u64),
    Fifo(u32),
    Symlink(&'a str),
}

pub struct Tree {
    fd: OwnedFd,
    /// Set on kernels without openat2 (or where seccomp denies it): pathrs does it all then.
    fallback: Option<Root>,
    /// The rootfs as our own mount namespace names it: what a resolved fd's path starts with.
    /// Only read before pivot_root, and only when asked (exec's tree has no use for it).
    at: OnceCell<PathBuf>,
}

fn pathrs_io(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(n)) => io::Error::from_raw_os_error(n),
        _ => io::Error::other(e),
    }
}

fn is(e: &io::Error, errno: i32) -> bool {
    e.raw_os_error() == Some(errno)
}

fn is_eexist(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| is(e, libc::EEXIST))
}

/// The parent and the last component of a clean absolute path (`None` for `/`).
fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    Some((path.parent()?, path.file_name()?))
}

impl Tree {
    pub fn open(rootfs: &Path) -> Result<Tree> {
        Self::open_with(rootfs, false)
    }

    /// `pathrs_only`: what a kernel without openat2 gets (tests use it on this one).
    fn open_with(rootfs: &Path, pathrs_only: bool) -> Result<Tree> {
        let fd = fd::open_dir(rootfs)
            .with_context(|| format!("opening the rootfs {}", rootfs.display()))?;
        let fallback = if !pathrs_only && inroot::supported(fd.as_fd()) {
            None
        } else {
            Some(Root::from_fd(
                fd.try_clone().context("dup of the rootfs fd")?,
            ))
        };
        Ok(Tree {
            fd,
            fallback,
            at: OnceCell::new(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn resolve(&self, path: &Path, flags: i32) -> io::Result<OwnedFd> {
        match &self.fallback {
            None => inroot::open(self.fd(), path, flags),
            Some(root) if flags & libc::O_PATH != 0 && flags & libc::O_NOFOLLOW != 0 => root
                .resolve_nofollow(path)
                .map(OwnedFd::from)
                .map_err(pathrs_io),
            Some(root) if flags & libc::O_PATH != 0 => {
                root.resolve(path).map(OwnedFd::from).map_err(pathrs_io)
            }
            Some(root) => root
                .open_subpath(
                    path,
                    OpenFlags::from_bits_retain((flags | libc::O_CLOEXEC) as u64),
                )
                .map(OwnedFd::from)
                .map_err(pathrs_io),
        }
    }

    fn lookup(&self, path: &Path, flags: i32) -> Result<Option<OwnedFd>> {
        match self.resolve(path, flags) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if is(&e, libc::ENOENT) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("resolving {}", path.display())),
        }
    }

    /// An existing `path`, symlinks followed inside the tree; `None` when it is not there.
    pub fn existing(&self, path: &Path) -> Result<Option<OwnedFd>> {
        self.lookup(path, libc::O_PATH)
    }

    /// As `existing`, but a final symlink is returned as itself, never followed.
    pub fn existing_nofollow(&self, path: &Path) -> Result<Option<OwnedFd>> {
        self.lookup(path, libc::O_PATH | libc::O_NOFOLLOW)
    }

    /// `path` opened for I/O with `flags` (no O_CREAT).
    pub fn open_file(&self, path: &Path, flags: i32) -> Result<File> {
        self.resolve(path, flags)
            .map(File::from)
            .with_context(|| format!("opening {}", path.display()))
    }

    /// A directory at `path`, made (0755, with its parents) where missing. A dangling image
    /// symlink on the way is taken to where it points, inside, as runc always did.
    pub fn dir(&self, path: &Path) -> Result<OwnedFd> {
        if let Some(fd) = self.existing(path)? {
            if fd::is_dir(fd.as_fd())? {
                return Ok(fd);
            }
        }
        let made = match self.mkdir_all(&clean(path)) {
            Ok(fd) => Ok(fd),
            Err(_) => self.mkdir_all(&self.undangle(path)?),
        };
        made.with_context(|| format!("creating directory {}", path.display()))
    }

    /// The longest existing prefix resolved in the tree, then each missing directory made with
    /// mkdirat on its parent's fd and opened O_NOFOLLOW.
    fn mkdir_all(&self, path: &Path) -> io::Result<OwnedFd> {
        if let Some(root) = &self.fallback {
            return root
                .mkdir_all(path, &Permissions::from_mode(0o755))
                .map(OwnedFd::from)
                .map_err(pathrs_io);
        }
        let parts: Vec<&OsStr> = path.iter().skip(1).collect();
        let mut have = parts.len();
        let mut cur = loop {
            let prefix: PathBuf = std::iter::once(OsStr::new("/"))
                .chain(parts[..have].iter().copied())
                .collect();
            match inroot::open(self.fd(), &prefix, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(fd) => break fd,
                Err(e) if is(&e, libc::ENOENT) && have > 0 => have -= 1,
                Err(e) => return Err(e),
            }
        };
        for name in &parts[have..] {
            inroot::mkdir(cur.as_fd(), name, 0o755)?;
            cur = inroot::open_child_dir(cur.as_fd(), name)?;
        }
        Ok(cur)
    }

    /// A non-directory at `path` to mount a file on: an existing one is used as it is; a missing
    /// one is made empty, and where `path` is a dangling symlink (`/etc/resolv.conf ->
    /// ../run/systemd/resolve/stub-resolv.conf`) it is made where the link points, inside.
    pub fn file(&self, path: &Path) -> Result<OwnedFd> {
        if let Some(fd) = self.existing(path)? {
            return Ok(fd);
        }
        let path = self.undangle(path)?;
        match self.create(&path, &Inode::File(0o644)) {
            Err(e) if !is_eexist(&e) => return Err(e),
            _ => {}
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
                let Ok(target) = self.readlink(&prefix) else {
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

    fn parent_of<'p>(&self, path: &'p Path) -> Result<(OwnedFd, &'p OsStr)> {
        let (parent, name) =
            split(path).with_context(|| format!("{} has no parent", path.display()))?;
        let dir = self.dir(parent)?;
        Ok((dir, name))
    }

    fn readlink(&self, path: &Path) -> Result<PathBuf> {
        let path = clean(path);
        if let Some(root) = &self.fallback {
            return root.readlink(&path).map_err(|e| pathrs_io(e).into());
        }
        let (parent, name) = split(&path).context("/ is not a link")?;
        let dir = self
            .resolve(parent, libc::O_PATH | libc::O_DIRECTORY)
            .with_context(|| format!("resolving {}", parent.display()))?;
        Ok(inroot::readlink(dir.as_fd(), name)?)
    }

    /// Makes `inode` at `path` (its directories too); the final component must not exist.
    pub fn create(&self, path: &Path, inode: &Inode) -> Result<()> {
        let path = clean(path);
        let (dir, name) = self.parent_of(&path)?;
        Self::create_in(dir.as_fd(), name, inode)
            .with_context(|| format!("creating {}", path.display()))
    }

    /// `inode` as `name` in the resolved directory `d`.
    fn create_in(d: BorrowedFd<'_>, name: &OsStr, inode: &Inode) -> Result<()> {
        let r = match *inode {
            Inode::File(m) => inroot::mknod(d, name, libc::S_IFREG | m, 0),
            Inode::CharDevice(m, dev) => inroot::mknod(d, name, libc::S_IFCHR | m, dev),
            Inode::BlockDevice(m, dev) => inroot::mknod(d, name, libc::S_IFBLK | m, dev),
            Inode::Fifo(m) => inroot::mknod(d, name, libc::S_IFIFO | m, 0),
            Inode::Symlink(t) => inroot::symlink(d, name, OsStr::new(t)),
        };
        Ok(r?)
    }

    /// Makes `inode` at `path`, first removing a non-directory already there (an image's own
    /// `/dev/null` or `/dev/ptmx`, or a symlink in their place: the link itself is removed,
    /// never what it points at).
    pub fn replace(&self, path: &Path, inode: &Inode) -> Result<()> {
        let path = clean(path);
        let (dir, name) = self.parent_of(&path)?;
        match inroot::unlink(dir.as_fd(), name) {
            Ok(()) => {}
            Err(e) if is(&e, libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        Self::create_in(dir.as_fd(), name, inode)
            .with_context(|| format!("creating {}", path.display()))
    }

    /// A symlink at `path`; one already there is left alone.
    pub fn symlink(&self, path: &Path, target: &str) -> Result<()> {
        match self.create(path, &Inode::Symlink(target)) {
            Err(e) if is_eexist(&e) => Ok(()),
            r => r,
        }
    }

    /// Where an fd resolved in this tree is, as the container will name it.
    pub fn container_path(&self, fd: BorrowedFd<'_>) -> Result<PathBuf> {
        let at = match self.at.get() {
            Some(at) => at,
            None => {
                let at = fd::path_of(self.fd())?;
                self.at.get_or_init(|| at)
            }
        };
        let p = fd::path_of(fd)?;
        if p == *at {
            return Ok(PathBuf::from("/"));
        }
        match p.strip_prefix(at) {
            Ok(rel) => Ok(Path::new("/").join(rel)),
            Err(_) => bail!("{} is outside the rootfs {}", p.display(), at.display()),
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

    fn changes_stay_inside(pathrs_only: bool) {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = d.path();
        std::os::unix::fs::symlink(outside.path(), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("up")).unwrap();
        let tree = Tree::open_with(root, pathrs_only).unwrap();
        assert_eq!(tree.fallback.is_some(), pathrs_only);
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

    #[test]
    fn changes_stay_inside_a_tree_full_of_links() {
        changes_stay_inside(false);
    }

    #[test]
    fn changes_stay_inside_with_pathrs_alone() {
        changes_stay_inside(true);
    }
}
