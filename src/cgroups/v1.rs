//! v1 hierarchies: directory creation (with cpuset's inheritance quirk) and the v1 freezer.
use super::fs;
use super::mode::V1Mount;
use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Makes the container's directory in every mounted v1 hierarchy.
pub fn create(mounts: &[V1Mount], dirs: &[impl AsRef<Path>]) -> Result<()> {
    for (m, dir) in mounts.iter().zip(dirs) {
        if m.has("cpuset") {
            create_cpuset(&m.mountpoint, dir.as_ref())?;
        } else {
            fs::mkdir_all(dir.as_ref())?;
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpus/mems, and a cgroup with an empty cpuset
/// refuses tasks (ENOSPC), so every level gets its parent's values unless it already has some.
fn create_cpuset(base: &Path, dir: &Path) -> Result<()> {
    // The parent's values, carried down so each level costs one read per file.
    let mut carried: [Option<String>; 2] = [None, None];
    fs::mkdir_levels(base, dir, |parent, child| {
        for (i, file) in ["cpuset.cpus", "cpuset.mems"].into_iter().enumerate() {
            let own = fs::read(child, file)?.trim().to_string();
            if own.is_empty() {
                let inherited = match carried[i].take() {
                    Some(v) => v,
                    None => fs::read(parent, file)?.trim().to_string(),
                };
                fs::write(child, file, &inherited)?;
                carried[i] = Some(inherited);
            } else {
                carried[i] = Some(own);
            }
        }
        Ok(())
    })
}

pub fn state(dir: &Path) -> Result<String> {
    Ok(fs::read(dir, "freezer.state")?.trim().to_string())
}

/// Writes FROZEN and waits until the kernel reports FROZEN (it passes through FREEZING while
/// tasks are still running toward a freezable point).
pub fn freeze(dir: &Path) -> Result<()> {
    const BUDGET: Duration = Duration::from_secs(2);
    // Spinning with yield covers the usual microseconds-long transition without sleeping;
    // only a cgroup that stays FREEZING that long gets millisecond naps.
    const SPINS: u32 = 2000;
    fs::write(dir, "freezer.state", "FROZEN")?;
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        match state(dir)?.as_str() {
            "FROZEN" => return Ok(()),
            "THAWED" => bail!(
                "{} was thawed while freezing",
                dir.join("freezer.state").display()
            ),
            _ => {}
        }
        polls += 1;
        if start.elapsed() > BUDGET {
            let _ = fs::write(dir, "freezer.state", "THAWED");
            bail!(
                "timed out waiting for {} to become FROZEN",
                dir.join("freezer.state").display()
            );
        }
        if polls < SPINS {
            std::thread::yield_now();
        } else {
            // A task in an uninterruptible sleep can stall the freeze; re-asking helps the
            // kernel retry tasks it skipped (as runc does).
            fs::write(dir, "freezer.state", "FROZEN")?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

pub fn thaw(dir: &Path) -> Result<()> {
    fs::write(dir, "freezer.state", "THAWED")
}

pub fn is_frozen(dir: &Path) -> Result<bool> {
    // FREEZING counts as not frozen: some tasks may still run.
    Ok(state(dir)? == "FROZEN")
}
