//! From `linux.cgroupsPath` to one directory per hierarchy.
//!
//! runc's rule, which we follow: an absolute path is taken below each hierarchy's mount point; a
//! relative one below the cgroup the runtime itself is in (on v1 per hierarchy; on pure v2 below
//! the *parent* of our own cgroup, because our own cgroup has processes in it and so cannot
//! enable controllers for a child).
use super::mode::{own_path, Layout, ProcCgroup};
use super::Mode;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Lexically cleans a cgroups path. ".." never climbs above the start, so a relative path
/// cannot escape the runtime's cgroup and an absolute one cannot escape the mount.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if p.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// The cleaned path to keep in state.json: absolute "/a/b" or relative "a/b".
pub fn normalize(cgroups_path: Option<&str>, id: &str) -> Result<String> {
    // A "slice:prefix:name" path is taken as a directory name here, as runc's cgroupfs
    // driver takes it; only --systemd-cgroup reads it as a unit.
    let raw = cgroups_path.unwrap_or("");
    let cleaned = clean(raw);
    if cleaned.is_empty() || cleaned == "/" {
        if id.is_empty() || id.contains('/') {
            bail!("container id {id:?} cannot name a cgroup");
        }
        // runc's default: the id, relative to the runtime's own cgroup (its parent on pure v2).
        return Ok(id.to_string());
    }
    Ok(cleaned)
}

/// The part of `own` below the mount's root: the mount may show only a subtree.
fn below_root<'a>(own: &'a str, root: &str) -> &'a str {
    if root == "/" {
        return own;
    }
    match own.strip_prefix(root) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => own,
    }
}

fn join(base: &Path, rel: &str) -> PathBuf {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(rel)
    }
}

/// This container's directory in each hierarchy. Kept with the container: a relative path (the
/// default) names other directories for a caller that sits in another cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resolved {
    /// One per entry of `layout.v1`, same order.
    pub v1: Vec<PathBuf>,
    /// The cgroup2 directory (v2, or the hybrid host's unified tree).
    pub unified: Option<PathBuf>,
}

/// `own` is the runtime's /proc/self/cgroup, only consulted for relative paths.
pub fn resolve(layout: &Layout, inner: &str, own: Option<&[ProcCgroup]>) -> Result<Resolved> {
    let relative = !inner.starts_with('/');
    let own = if relative {
        Some(own.context("a relative cgroupsPath needs the runtime's own /proc/self/cgroup")?)
    } else {
        None
    };
    let mut v1 = Vec::new();
    if layout.mode != Mode::V2 {
        for m in &layout.v1 {
            let base = match own {
                Some(own) => {
                    let p = own_path(own, &m.subsystems).with_context(|| {
                        format!(
                            "our own cgroup for {} is missing from /proc/self/cgroup",
                            m.data()
                        )
                    })?;
                    join(&m.mountpoint, below_root(p, &m.root))
                }
                None => m.mountpoint.clone(),
            };
            v1.push(join(&base, inner));
        }
    }
    let unified = match &layout.unified {
        Some(u) => {
            let base = match own {
                Some(own) => {
                    let p = own_path(own, &[])
                        .context("our own cgroup2 path is missing from /proc/self/cgroup")?;
                    let p = below_root(p, &u.root);
                    let p = if layout.mode == Mode::V2 {
                        Path::new(p).parent().and_then(Path::to_str).unwrap_or("/")
                    } else {
                        p
                    };
                    join(&u.mountpoint, p)
                }
                None => u.mountpoint.clone(),
            };
            Some(join(&base, inner))
        }
        None => None,
    };
    Ok(Resolved { v1, unified })
}

/// The directories a process whose /proc/self/cgroup is `own` sits in, in every hierarchy (on
/// pure v2 its own cgroup, not the parent a relative cgroupsPath goes below).
pub fn own_dirs(layout: &Layout, own: &[ProcCgroup]) -> Result<Resolved> {
    let mut v1 = Vec::new();
    if layout.mode != Mode::V2 {
        for m in &layout.v1 {
            let p = own_path(own, &m.subsystems).with_context(|| {
                format!(
                    "our own cgroup for {} is missing from /proc/self/cgroup",
                    m.data()
                )
            })?;
            v1.push(join(&m.mountpoint, below_root(p, &m.root)));
        }
    }
    let unified = match &layout.unified {
        Some(u) => {
            let p = own_path(own, &[])
                .context("our own cgroup2 path is missing from /proc/self/cgroup")?;
            Some(join(&u.mountpoint, below_root(p, &u.root)))
        }
        None => None,
    };
    Ok(Resolved { v1, unified })
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::cgroups::mode::parse_proc_cgroup;
    use crate::cgroups::mode::samples::{HYBRID as TEST_HYBRID, V1 as TEST_V1, V2 as TEST_V2};

    const OWN: &str = "5:memory:/user.slice/s.scope\n4:cpuset:/\n2:cpu,cpuacct:/user.slice\n\
1:name=systemd:/user.slice/s.scope\n0::/user.slice/s.scope\n";

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn cleans() {
        assert_eq!(clean("/a/../../b/./c/"), "/b/c");
        assert_eq!(clean("../x"), "x");
        assert_eq!(clean("a//b"), "a/b");
        assert_eq!(clean("/"), "/");
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize(None, "c1").unwrap(), "c1");
        assert_eq!(normalize(Some(""), "c1").unwrap(), "c1");
        assert_eq!(normalize(Some("/a/../b"), "c1").unwrap(), "/b");
        assert_eq!(normalize(Some("../../rel"), "c1").unwrap(), "rel");
        assert_eq!(
            normalize(Some("system.slice:rt:c1"), "c1").unwrap(),
            "system.slice:rt:c1"
        );
        // An absolute path may contain colons.
        assert_eq!(normalize(Some("/a:b:c"), "c1").unwrap(), "/a:b:c");
    }

    #[test]
    fn absolute_hybrid() {
        let l = Layout::parse(TEST_HYBRID).unwrap();
        let r = resolve(&l, "/rt/c1", None).unwrap();
        assert_eq!(
            r.v1,
            vec![
                p("/sys/fs/cgroup/cpu,cpuacct/rt/c1"),
                p("/sys/fs/cgroup/cpuset/rt/c1"),
                p("/sys/fs/cgroup/memory/rt/c1"),
                p("/sys/fs/cgroup/systemd/rt/c1"),
            ]
        );
        assert_eq!(r.unified, Some(p("/sys/fs/cgroup/unified/rt/c1")));
    }

    #[test]
    fn own_dirs_are_where_we_are() {
        let own = parse_proc_cgroup(OWN);
        let r = own_dirs(&Layout::parse(TEST_HYBRID).unwrap(), &own).unwrap();
        assert_eq!(r.v1[0], p("/sys/fs/cgroup/cpu,cpuacct/user.slice"));
        assert_eq!(r.v1[1], p("/sys/fs/cgroup/cpuset"));
        assert_eq!(
            r.unified,
            Some(p("/sys/fs/cgroup/unified/user.slice/s.scope"))
        );
        // pure v2: our own cgroup, not its parent
        let r = own_dirs(&Layout::parse(TEST_V2).unwrap(), &own).unwrap();
        assert!(r.v1.is_empty());
        assert_eq!(r.unified, Some(p("/sys/fs/cgroup/user.slice/s.scope")));
    }

    #[test]
    fn relative_hybrid_and_v1() {
        let own = parse_proc_cgroup(OWN);
        let l = Layout::parse(TEST_HYBRID).unwrap();
        let r = resolve(&l, "c1", Some(&own)).unwrap();
        assert_eq!(r.v1[0], p("/sys/fs/cgroup/cpu,cpuacct/user.slice/c1"));
        assert_eq!(r.v1[1], p("/sys/fs/cgroup/cpuset/c1"));
        assert_eq!(r.v1[2], p("/sys/fs/cgroup/memory/user.slice/s.scope/c1"));
        assert_eq!(
            r.unified,
            Some(p("/sys/fs/cgroup/unified/user.slice/s.scope/c1"))
        );
        let l = Layout::parse(TEST_V1).unwrap();
        let r = resolve(&l, "c1", Some(&own)).unwrap();
        assert_eq!(
            r.v1,
            vec![
                p("/sys/fs/cgroup/cpu,cpuacct/user.slice/c1"),
                p("/sys/fs/cgroup/memory/user.slice/s.scope/c1")
            ]
        );
        assert_eq!(r.unified, None);
    }

    #[test]
    fn v2_paths() {
        let own = parse_proc_cgroup(OWN);
        let l = Layout::parse(TEST_V2).unwrap();
        let r = resolve(&l, "/rt/c1", None).unwrap();
        assert!(r.v1.is_empty());
        assert_eq!(r.unified, Some(p("/sys/fs/cgroup/rt/c1")));
        // Relative goes below the parent of our own (populated) cgroup.
        let r = resolve(&l, "c1", Some(&own)).unwrap();
        assert_eq!(r.unified, Some(p("/sys/fs/cgroup/user.slice/c1")));
    }

    #[test]
    fn mount_root_is_stripped() {
        let mi = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let l = Layout::parse(mi).unwrap();
        let own = parse_proc_cgroup("4:memory:/docker/abc\n");
        let r = resolve(&l, "c1", Some(&own)).unwrap();
        assert_eq!(r.v1, vec![p("/sys/fs/cgroup/memory/c1")]);
    }
}
