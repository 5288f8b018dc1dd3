//! Resolving a path inside the rootfs the way the container will see it: symlinks are followed
//! relative to the rootfs, and `..` never climbs above it. A hostile rootfs cannot aim a mount
//! at the host this way.
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: usize = 255;

/// `root` joined with `unsafe_path`, every symlink on the way resolved as if `root` were `/`.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<OsString> = components(unsafe_path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(resolved.iter().collect::<PathBuf>()).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    bail!(
                        "{}: too many levels of symbolic links",
                        unsafe_path.display()
                    );
                }
                let target = std::fs::read_link(&candidate)
                    .with_context(|| format!("reading link {}", candidate.display()))?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            _ => resolved.push(part),
        }
    }
    Ok(root.join(resolved.iter().collect::<PathBuf>()))
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("a/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/../../etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            secure_join(root, Path::new("/abs/etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            secure_join(root, Path::new("/a/up/x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(root, Path::new("/a/rel/c")).unwrap(),
            root.join("a/b/c")
        );
        symlink("loop", root.join("loop")).unwrap();
        assert!(secure_join(root, Path::new("/loop")).is_err());
    }
}
