//! Host cgroup layout: which hierarchies are mounted where, parsed from mountinfo text so that
//! tests can feed any host's layout.
use super::Mode;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where cgroup hierarchies are conventionally mounted; mounts elsewhere (bind mounts into a
/// container rootfs, a second copy for a tool) are only used when nothing is mounted here.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One mounted v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Mount {
    /// e.g. /sys/fs/cgroup/cpu,cpuacct
    pub mountpoint: PathBuf,
    /// The mount's root inside the hierarchy ("/" unless the host itself is in a cgroupns).
    pub root: String,
    /// Controllers (and `name=` names) bound to this hierarchy, e.g. ["cpu", "cpuacct"].
    pub subsystems: Vec<String>,
}

impl V1Mount {
    pub fn has(&self, subsystem: &str) -> bool {
        self.subsystems.iter().any(|s| s == subsystem)
    }
    /// Mount data to recreate the same hierarchy inside a container, e.g. "cpu,cpuacct".
    pub fn data(&self) -> String {
        self.subsystems.join(",")
    }
}

/// The cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedMount {
    pub mountpoint: PathBuf,
    pub root: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub mode: Mode,
    pub v1: Vec<V1Mount>,
    pub unified: Option<UnifiedMount>,
}

/// Mount options of a v1 cgroup mount that are not subsystem names.
fn is_subsystem_option(opt: &str) -> bool {
    !matches!(
        opt,
        "rw" | "ro"
            | "xattr"
            | "noprefix"
            | "clone_children"
            | "cpuset_v2_mode"
            | "favordynmods"
            | "nofavordynmods"
            | "none"
    ) && !opt.starts_with("release_agent=")
}

/// The octal escapes mountinfo uses for spaces and friends in paths.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `p` sits at /sys/fs/cgroup or directly below it.
fn in_cgroup_root(p: &Path) -> bool {
    p == Path::new(CGROUP_ROOT) || p.parent() == Some(Path::new(CGROUP_ROOT))
}

impl Layout {
    /// Parses /proc/self/mountinfo text.
    pub fn parse(mountinfo: &str) -> Result<Layout> {
        let mut v1: Vec<V1Mount> = Vec::new();
        let mut unified: Option<UnifiedMount> = None;
        for line in mountinfo.lines() {
            // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let mut post = post.split(' ');
            let fstype = post.next().unwrap_or("");
            if fstype != "cgroup" && fstype != "cgroup2" {
                continue;
            }
            let _source = post.next();
            let superopts = post.next().unwrap_or("");
            let pre: Vec<&str> = pre.split(' ').collect();
            if pre.len() < 5 {
                bail!("malformed mountinfo line: {line:?}");
            }
            let root = unescape(pre[3]);
            let mountpoint = PathBuf::from(unescape(pre[4]));
            if fstype == "cgroup2" {
                let better = match &unified {
                    None => true,
                    Some(u) => !in_cgroup_root(&u.mountpoint) && in_cgroup_root(&mountpoint),
                };
                if better {
                    unified = Some(UnifiedMount { mountpoint, root });
                }
                continue;
            }
            let subsystems: Vec<String> = superopts
                .split(',')
                .filter(|o| is_subsystem_option(o))
                .map(str::to_string)
                .collect();
            if subsystems.is_empty() {
                continue;
            }
            // The same hierarchy can be mounted twice; keep one, preferring /sys/fs/cgroup.
            if let Some(existing) = v1.iter_mut().find(|m| m.subsystems == subsystems) {
                if !in_cgroup_root(&existing.mountpoint) && in_cgroup_root(&mountpoint) {
                    *existing = V1Mount {
                        mountpoint,
                        root,
                        subsystems,
                    };
                }
                continue;
            }
            v1.push(V1Mount {
                mountpoint,
                root,
                subsystems,
            });
        }
        let has_v1_controllers = v1
            .iter()
            .any(|m| m.subsystems.iter().any(|s| !s.starts_with("name=")));
        let mode = match &unified {
            // cgroup2 with no v1 controller beside it is pure v2 even when mounted off to the
            // side (only named hierarchies like name=systemd can remain on v1 then).
            Some(u) if u.mountpoint == Path::new(CGROUP_ROOT) || !has_v1_controllers => Mode::V2,
            Some(_) => Mode::Hybrid,
            None if !v1.is_empty() => Mode::V1,
            None => bail!("no cgroup filesystem is mounted (checked /proc/self/mountinfo)"),
        };
        Ok(Layout { mode, v1, unified })
    }

    /// Reads /proc/self/mountinfo once per process: the layout does not change under us.
    pub fn host() -> Result<&'static Layout> {
        static HOST: OnceLock<Layout> = OnceLock::new();
        if let Some(l) = HOST.get() {
            return Ok(l);
        }
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .context("reading /proc/self/mountinfo")?;
        let layout = Layout::parse(&text)?;
        Ok(HOST.get_or_init(|| layout))
    }

    /// The v1 hierarchy holding `subsystem`, if mounted.
    #[cfg(test)]
    pub fn v1_mount(&self, subsystem: &str) -> Option<&V1Mount> {
        self.v1.iter().find(|m| m.has(subsystem))
    }
}

/// Mode from filesystem types alone, for a cgroup root like /sys/fs/cgroup: cgroup2 there is
/// v2; tmpfs with cgroup2 at <root>/unified is hybrid; tmpfs otherwise is v1. Cheaper than
/// mountinfo but says nothing about where each v1 controller lives.
#[cfg(test)]
pub fn detect_by_statfs(root: &Path) -> Result<Mode> {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
    let st = statfs(root).with_context(|| format!("statfs {}", root.display()))?;
    if st.filesystem_type() == CGROUP2_SUPER_MAGIC {
        return Ok(Mode::V2);
    }
    if st.filesystem_type() != TMPFS_MAGIC {
        bail!("{} is neither tmpfs nor cgroup2", root.display());
    }
    match statfs(&root.join("unified")) {
        Ok(u) if u.filesystem_type() == CGROUP2_SUPER_MAGIC => Ok(Mode::Hybrid),
        _ => Ok(Mode::V1),
    }
}

/// One line of /proc/<pid>/cgroup: hierarchy id, controllers, path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parses /proc/<pid>/cgroup text; the v2 line has an empty controller list.
pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let controllers = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(str::to_string).collect()
            };
            Some(ProcCgroup {
                controllers,
                path: path.to_string(),
            })
        })
        .collect()
}

/// The process's own cgroup path in the v1 hierarchy with these subsystems, or in v2 when
/// `subsystems` is empty.
pub fn own_path<'a>(own: &'a [ProcCgroup], subsystems: &[String]) -> Option<&'a str> {
    own.iter()
        .find(|c| {
            if subsystems.is_empty() {
                c.controllers.is_empty()
            } else {
                subsystems
                    .first()
                    .is_some_and(|s| c.controllers.contains(s))
            }
        })
        .map(|c| c.path.as_str())
}

/// Sample mountinfo texts for tests elsewhere in the module.
#[cfg(test)]
pub mod samples {
    pub const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
99 50 0:32 / /var/lib/x/rootfs/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
    pub const V1: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";
    pub const V2: &str = "\
25 23 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
}

#[cfg(test)]
mod unit {
    use super::samples::*;
    use super::*;

    #[test]
    fn detects_modes() {
        assert_eq!(Layout::parse(HYBRID).unwrap().mode, Mode::Hybrid);
        assert_eq!(Layout::parse(V1).unwrap().mode, Mode::V1);
        assert_eq!(Layout::parse(V2).unwrap().mode, Mode::V2);
        assert!(Layout::parse("1 0 8:1 / / rw - ext4 /dev/sda rw\n").is_err());
    }

    #[test]
    fn parses_hybrid_mounts() {
        let l = Layout::parse(HYBRID).unwrap();
        assert_eq!(
            l.v1.len(),
            4,
            "the rootfs copy of memory is deduplicated: {:?}",
            l.v1
        );
        let cpu = l.v1_mount("cpuacct").unwrap();
        assert_eq!(cpu.mountpoint, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.data(), "cpu,cpuacct");
        assert_eq!(l.v1_mount("cpuset").unwrap().data(), "cpuset");
        assert_eq!(l.v1_mount("name=systemd").unwrap().data(), "name=systemd");
        assert_eq!(
            l.v1_mount("memory").unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(
            l.unified.unwrap().mountpoint,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn unescapes_paths() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn parses_proc_cgroup() {
        let own = parse_proc_cgroup(
            "4:memory:/x/y\n2:cpu,cpuacct:/\n1:name=systemd:/user.slice\n0::/init.scope\n",
        );
        assert_eq!(own_path(&own, &["memory".into()]), Some("/x/y"));
        assert_eq!(own_path(&own, &["cpu".into(), "cpuacct".into()]), Some("/"));
        assert_eq!(
            own_path(&own, &["name=systemd".into()]),
            Some("/user.slice")
        );
        assert_eq!(own_path(&own, &[]), Some("/init.scope"));
        assert_eq!(own_path(&own, &["pids".into()]), None);
    }
}
