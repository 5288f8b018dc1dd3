//! Small file helpers for cgroupfs: one open+write per value, errors naming the file.
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Writes one value with a single write(2): cgroupfs parses each write on its own, so
/// splitting a value would corrupt it. Never creates the file: a missing file means the kernel
/// lacks the knob, and that must surface as an error naming it.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {} to write {value:?}", path.display()))?;
    f.write_all(value.as_bytes())
        .with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// The errno under an error chain, if it came from a syscall.
pub fn errno(e: &anyhow::Error) -> Option<i32> {
    e.chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .and_then(|e| e.raw_os_error())
}

pub fn read(dir: &Path, file: &str) -> Result<String> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Like `read`, but a missing file is `None` (optional kernel features, stats).
pub fn read_opt(dir: &Path, file: &str) -> Result<Option<String>> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow!(e).context(format!("reading {}", path.display()))),
    }
}

pub fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Parses a single number; "max" (v2) is u64::MAX.
pub fn parse_u64(s: &str) -> Result<u64> {
    let s = s.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse::<u64>()
        .with_context(|| format!("not a number: {s:?}"))
}

pub fn read_u64(dir: &Path, file: &str) -> Result<u64> {
    parse_u64(&read(dir, file)?).with_context(|| format!("parsing {}", dir.join(file).display()))
}

/// Missing file → 0: stats over optional files (swap, kmem) report zero like runc.
pub fn read_u64_or_zero(dir: &Path, file: &str) -> Result<u64> {
    match read_opt(dir, file)? {
        Some(s) => parse_u64(&s).with_context(|| format!("parsing {}", dir.join(file).display())),
        None => Ok(0),
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
pub fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), parse_u64(v).ok()?))
        })
        .collect()
}

/// The value of `key` in a flat-keyed file.
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            parse_u64(v).ok()
        } else {
            None
        }
    })
}

/// cgroup.procs as pids.
pub fn parse_pids(text: &str) -> Result<Vec<i32>> {
    text.split_whitespace()
        .map(|p| p.parse::<i32>().with_context(|| format!("bad pid {p:?}")))
        .collect()
}

/// rmdir that treats a missing directory as done and retries while the kernel still reports
/// the cgroup busy (exiting tasks are unlinked from it a little after they die).
pub fn rmdir_retry(dir: &Path) -> Result<()> {
    const BUDGET: Duration = Duration::from_millis(1000);
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < BUDGET => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(anyhow!(e).context(format!("removing cgroup {}", dir.display()))),
        }
    }
}

/// Removes `dir` and any child cgroups the container made, deepest first (rmdir of a cgroup
/// with children fails with EBUSY forever). The plain rmdir is tried first: it is the common
/// case, and listing the directory costs as much as removing it.
pub fn remove_tree(dir: &Path) -> Result<()> {
    match std::fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
        Err(e) => return Err(anyhow!(e).context(format!("removing cgroup {}", dir.display()))),
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(anyhow!(e).context(format!("listing {}", dir.display()))),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    rmdir_retry(dir)
}

/// mkdir that accepts an existing directory; returns whether it made it.
pub fn mkdir(dir: &Path) -> Result<bool> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(anyhow!(e).context(format!("creating cgroup {}", dir.display()))),
    }
}

/// Creates `dir` and its missing parents below `base` (a mount point, which exists); calls
/// `each(parent, child)` for every level from `base` down, created or not, so callers can
/// prepare each level.
pub fn mkdir_levels(
    base: &Path,
    dir: &Path,
    mut each: impl FnMut(&Path, &Path) -> Result<()>,
) -> Result<()> {
    let rel = dir
        .strip_prefix(base)
        .with_context(|| format!("{} is not below {}", dir.display(), base.display()))?;
    let mut cur = base.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        mkdir(&cur)?;
        each(&parent, &cur)?;
    }
    Ok(())
}

/// Fast path of directory creation when nothing must be done per level.
pub fn mkdir_all(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .with_context(|| format!("creating cgroup {}", dir.display())),
        Err(e) => Err(anyhow!(e).context(format!("creating cgroup {}", dir.display()))),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_u64("max\n").unwrap(), u64::MAX);
        assert_eq!(parse_u64(" 42\n").unwrap(), 42);
        assert!(parse_u64("x").is_err());
        let m = parse_flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        assert_eq!(m["oom_kill"], 3);
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "frozen"), Some(0));
        assert_eq!(parse_pids("1\n22\n").unwrap(), vec![1, 22]);
    }
}
