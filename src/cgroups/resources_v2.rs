//! `linux.resources` onto cgroup2 files, converting v1-shaped OCI values like runc and crun.
use super::convert;
use super::devices_bpf;
use super::fs;
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};
use std::collections::HashMap;
use std::path::Path;

/// Everything in `r`, `unified` last so its raw keys override converted values.
pub fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids() {
        let limit = p.limit();
        if limit != 0 {
            fs::write(dir, "pids.max", &convert::v2_limit(limit))?;
        }
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for h in r.hugepage_limits().as_deref().unwrap_or(&[]) {
        hugetlb(dir, h.page_size(), h.limit())?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            bail!("network classID/priorities need the v1 net_cls/net_prio controllers, which cgroup v2 does not have");
        }
    }
    if let Some(rules) = r.devices().as_ref().filter(|r| !r.is_empty()) {
        devices_bpf::apply(dir, rules)?;
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("linux.resources.rdma is not supported by rt yet");
    }
    if let Some(u) = r.unified() {
        unified(dir, u)?;
    }
    Ok(())
}

fn memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let swap = convert::swap_to_v2(m.swap(), m.limit())?;
    // Swap first: lowering memory.max below usage could otherwise push pages to a swap
    // budget that is about to shrink.
    // An unlimited swap implied by an unlimited limit (not asked for) is skipped when the
    // kernel has no swap accounting; an explicit swap value still fails naming the file.
    let implied = m.swap().is_none();
    if let Some(s) = swap.filter(|_| !implied || fs::exists(dir, "memory.swap.max")) {
        fs::write(dir, "memory.swap.max", &convert::v2_limit(s))?;
    }
    if let Some(l) = m.limit().filter(|l| *l != 0) {
        fs::write(dir, "memory.max", &convert::v2_limit(l))?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        fs::write(dir, "memory.low", &convert::v2_limit(r))?;
    }
    // No v2 file exists for kernel/kernelTCP limits (kernel memory is charged to
    // memory.max), swappiness or disabling the OOM killer; runc's v2 driver ignores these
    // fields, and a spec written for v1 must keep working, so they are ignored here too.
    Ok(())
}

fn cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        bail!("cpu.realtimeRuntime/realtimePeriod are not supported on cgroup v2");
    }
    let weight = convert::shares_to_weight(c.shares().unwrap_or(0));
    if weight != 0 {
        fs::write(dir, "cpu.weight", &weight.to_string())?;
    }
    if let Some(max) = convert::cpu_max(c.quota(), c.period()) {
        fs::write(dir, "cpu.max", &max)?;
    }
    if let Some(b) = c.burst() {
        fs::write(dir, "cpu.max.burst", &b.to_string())?;
    }
    if let Some(i) = c.idle() {
        fs::write(dir, "cpu.idle", &i.to_string())?;
    }
    if let Some(v) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        fs::write(dir, "cpuset.mems", v)?;
    }
    Ok(())
}

fn io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    if b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device()
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .any(|d| d.leaf_weight().is_some())
    {
        bail!("blockIO leafWeight does not exist on cgroup v2");
    }
    // BFQ takes the v1 scale as is; the generic io.weight needs the converted value.
    let bfq = fs::exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            fs::write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            let v = convert::blkio_weight_to_io_weight(u64::from(w));
            fs::write(dir, "io.weight", &format!("default {v}"))?;
        }
    }
    for d in b.weight_device().as_deref().unwrap_or(&[]) {
        if let Some(w) = d.weight() {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                (
                    "io.weight",
                    convert::blkio_weight_to_io_weight(u64::from(w)),
                )
            };
            fs::write(dir, file, &format!("{}:{} {v}", d.major(), d.minor()))?;
        }
    }
    let throttles = [
        (b.throttle_read_bps_device(), "rbps"),
        (b.throttle_write_bps_device(), "wbps"),
        (b.throttle_read_iops_device(), "riops"),
        (b.throttle_write_iops_device(), "wiops"),
    ];
    for (list, key) in throttles {
        for t in list.as_deref().unwrap_or(&[]) {
            // 0 means "no limit" in the OCI/v1 world.
            let rate = if t.rate() == 0 {
                "max".to_string()
            } else {
                t.rate().to_string()
            };
            fs::write(
                dir,
                "io.max",
                &format!("{}:{} {key}={rate}", t.major(), t.minor()),
            )?;
        }
    }
    Ok(())
}

/// hugetlb.<size>.max on any cgroup2 directory (pure v2, or a hybrid host's unified tree).
pub fn hugetlb(dir: &Path, size: &str, limit: i64) -> Result<()> {
    convert::check_page_size(size)?;
    fs::write(
        dir,
        &format!("hugetlb.{size}.max"),
        &convert::v2_limit(limit),
    )
}

/// Raw cgroup2 "file": "value" pairs. Keys must name a file in this directory.
pub fn unified(dir: &Path, u: &HashMap<String, String>) -> Result<()> {
    // Sorted so failures are reproducible whatever the map order.
    let mut keys: Vec<&String> = u.keys().collect();
    keys.sort();
    for k in keys {
        if k.is_empty() || k.contains('/') || k.starts_with('.') {
            bail!("invalid linux.resources.unified key {k:?}");
        }
        if k.starts_with("cgroup.")
            && !matches!(k.as_str(), "cgroup.max.depth" | "cgroup.max.descendants")
        {
            bail!("linux.resources.unified key {k:?} is managed by the runtime");
        }
        fs::write(dir, k, &u[k])?;
    }
    Ok(())
}
