//! `linux.resources` onto v1 controller files. Only requested values are written; a requested
//! value whose controller is not mounted or whose file the kernel lacks is an error naming it.
use super::devices;
use super::fs;
use super::mode::V1Mount;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxNetwork, LinuxResources,
};
use std::path::{Path, PathBuf};

/// The container's directory per v1 hierarchy.
pub struct V1Dirs<'a> {
    pub mounts: &'a [V1Mount],
    pub dirs: &'a [PathBuf],
}

impl<'a> V1Dirs<'a> {
    pub fn get(&self, subsystem: &str) -> Option<&'a Path> {
        self.mounts
            .iter()
            .zip(self.dirs)
            .find(|(m, _)| m.has(subsystem))
            .map(|(_, d)| d.as_path())
    }
    fn need(&self, subsystem: &str, what: &str) -> Result<&'a Path> {
        self.get(subsystem).ok_or_else(|| {
            anyhow!("cannot set {what}: the cgroup v1 {subsystem} hierarchy is not mounted")
        })
    }
}

/// Everything except hugetlb and unified, which the caller routes (they may live on the
/// hybrid host's cgroup2 tree).
pub fn apply(d: &V1Dirs, r: &LinuxResources) -> Result<()> {
    if let Some(mem) = r.memory() {
        memory(d, mem)?;
    }
    if let Some(cpu) = r.cpu() {
        cpu_and_cpuset(d, cpu)?;
    }
    if let Some(pids) = r.pids() {
        // 0 means "not set" as in runc; negative is unlimited.
        let limit = pids.limit();
        if limit != 0 {
            let v = if limit > 0 {
                limit.to_string()
            } else {
                "max".to_string()
            };
            fs::write(d.need("pids", "pids.limit")?, "pids.max", &v)?;
        }
    }
    if let Some(bio) = r.block_io() {
        blkio(d, bio)?;
    }
    if let Some(net) = r.network() {
        network(d, net)?;
    }
    if let Some(rules) = r.devices() {
        device_rules(d, rules)?;
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("linux.resources.rdma is not supported by rt yet");
    }
    Ok(())
}

fn memory(d: &V1Dirs, m: &LinuxMemory) -> Result<()> {
    let wants_any = m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer() == Some(true)
        || m.use_hierarchy().is_some();
    if !wants_any {
        return Ok(());
    }
    let dir = d.need("memory", "memory limits")?;
    // As in runc, 0 means "not set" for the byte limits.
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    if limit == -1 && swap == 0 && fs::exists(dir, "memory.memsw.limit_in_bytes") {
        // Unlimited memory with swap unset means unlimited swap too (v1 compatibility).
        swap = -1;
    }
    // memsw must stay >= limit at every step, so the order of the two writes depends on
    // whether the limit grows or shrinks relative to what is set now.
    let swap_first = limit != 0
        && swap != 0
        && (swap == -1 || fs::read_u64(dir, "memory.limit_in_bytes")? < swap as u64);
    if swap_first {
        set_swap(dir, swap)?;
        set_limit(dir, limit)?;
    } else {
        set_limit(dir, limit)?;
        set_swap(dir, swap)?;
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        fs::write(dir, "memory.soft_limit_in_bytes", &v.to_string())?;
    }
    // runc ignores kernel memory limits entirely (deprecated, and gone from recent kernels);
    // we still honour them where the kernel has the file and skip them where it does not.
    for (v, file) in [
        (m.kernel(), "memory.kmem.limit_in_bytes"),
        (m.kernel_tcp(), "memory.kmem.tcp.limit_in_bytes"),
    ] {
        if let Some(v) = v.filter(|v| *v != 0) {
            if fs::exists(dir, file) {
                fs::write(dir, file, &v.to_string())?;
            }
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            bail!("memory.swappiness {s} is out of range 0..=100");
        }
        fs::write(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        fs::write(dir, "memory.oom_control", "1")?;
    }
    if let Some(h) = m.use_hierarchy() {
        fs::write(dir, "memory.use_hierarchy", if h { "1" } else { "0" })?;
    }
    Ok(())
}

fn set_limit(dir: &Path, limit: i64) -> Result<()> {
    if limit == 0 {
        return Ok(());
    }
    let res = fs::write(dir, "memory.limit_in_bytes", &limit.to_string());
    if res.as_ref().err().and_then(fs::errno) == Some(libc::EBUSY) {
        // EBUSY: the new limit is below what the cgroup already uses.
        let usage = fs::read_u64(dir, "memory.usage_in_bytes").unwrap_or(0);
        return res.with_context(|| format!("memory limit {limit} is below current usage {usage}"));
    }
    res
}

fn set_swap(dir: &Path, swap: i64) -> Result<()> {
    if swap == 0 {
        return Ok(());
    }
    fs::write(dir, "memory.memsw.limit_in_bytes", &swap.to_string())
        .context("setting memory+swap (is swap accounting enabled in the kernel?)")
}

fn cpu_and_cpuset(d: &V1Dirs, c: &LinuxCpu) -> Result<()> {
    let shares = c.shares().filter(|v| *v != 0);
    let quota = c.quota().filter(|v| *v != 0);
    let period = c.period().filter(|v| *v != 0);
    let rt_period = c.realtime_period().filter(|v| *v != 0);
    let rt_runtime = c.realtime_runtime().filter(|v| *v != 0);
    if shares.is_some()
        || quota.is_some()
        || period.is_some()
        || rt_period.is_some()
        || rt_runtime.is_some()
        || c.burst().is_some()
        || c.idle().is_some()
    {
        let dir = d.need("cpu", "cpu limits")?;
        // rt_runtime must fit in the period, so a period goes first.
        if let Some(p) = rt_period {
            fs::write(dir, "cpu.rt_period_us", &p.to_string())?;
        }
        if let Some(r) = rt_runtime {
            fs::write(dir, "cpu.rt_runtime_us", &r.to_string())?;
        }
        if let Some(s) = shares {
            fs::write(dir, "cpu.shares", &s.to_string())?;
        }
        // The kernel checks quota against the current period: with a shrinking period the
        // period write can fail until the quota is in place, so retry in the other order.
        let quota_s = quota.map(|q| {
            if q < 0 {
                "-1".to_string()
            } else {
                q.to_string()
            }
        });
        if let Some(p) = period {
            match fs::write(dir, "cpu.cfs_period_us", &p.to_string()) {
                Ok(()) => {}
                Err(e) => match &quota_s {
                    Some(q) => {
                        fs::write(dir, "cpu.cfs_quota_us", q).context(e)?;
                        fs::write(dir, "cpu.cfs_period_us", &p.to_string())?;
                    }
                    None => return Err(e),
                },
            }
        }
        if let Some(q) = &quota_s {
            fs::write(dir, "cpu.cfs_quota_us", q)?;
        }
        if let Some(b) = c.burst() {
            fs::write(dir, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(i) = c.idle() {
            fs::write(dir, "cpu.idle", &i.to_string())?;
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = d.need("cpuset", "cpuset cpus/mems")?;
        if let Some(v) = cpus {
            fs::write(dir, "cpuset.cpus", v)?;
        }
        if let Some(v) = mems {
            fs::write(dir, "cpuset.mems", v)?;
        }
    }
    Ok(())
}

/// CFQ's blkio.weight is gone from modern kernels; BFQ exposes the same scale under its own
/// name (runc falls back the same way).
fn weight_file(dir: &Path, plain: &'static str, bfq: &'static str) -> &'static str {
    if !fs::exists(dir, plain) && fs::exists(dir, bfq) {
        bfq
    } else {
        plain
    }
}

fn blkio(d: &V1Dirs, b: &LinuxBlockIo) -> Result<()> {
    let weight = b.weight().filter(|w| *w != 0);
    let leaf = b.leaf_weight().filter(|w| *w != 0);
    let devs = b.weight_device().as_deref().unwrap_or(&[]);
    let throttles = [
        (
            b.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            b.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            b.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            b.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    let any_throttle = throttles
        .iter()
        .any(|(t, _)| t.as_ref().is_some_and(|v| !v.is_empty()));
    if weight.is_none() && leaf.is_none() && devs.is_empty() && !any_throttle {
        return Ok(());
    }
    let dir = d.need("blkio", "blockIO limits")?;
    if let Some(w) = weight {
        fs::write(
            dir,
            weight_file(dir, "blkio.weight", "blkio.bfq.weight"),
            &w.to_string(),
        )?;
    }
    if let Some(w) = leaf {
        fs::write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for dev in devs {
        if let Some(w) = dev.weight() {
            let file = weight_file(dir, "blkio.weight_device", "blkio.bfq.weight_device");
            fs::write(dir, file, &format!("{}:{} {w}", dev.major(), dev.minor()))?;
        }
        if let Some(w) = dev.leaf_weight() {
            fs::write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", dev.major(), dev.minor()),
            )?;
        }
    }
    for (list, file) in throttles {
        for t in list.as_deref().unwrap_or(&[]) {
            fs::write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

fn network(d: &V1Dirs, n: &LinuxNetwork) -> Result<()> {
    if let Some(id) = n.class_id() {
        fs::write(
            d.need("net_cls", "network.classID")?,
            "net_cls.classid",
            &id.to_string(),
        )?;
    }
    let prios = n.priorities().as_deref().unwrap_or(&[]);
    if !prios.is_empty() {
        let dir = d.need("net_prio", "network.priorities")?;
        for p in prios {
            fs::write(
                dir,
                "net_prio.ifpriomap",
                &format!("{} {}", p.name(), p.priority()),
            )?;
        }
    }
    Ok(())
}

/// Spec rules in order, then the defaults; each line is its own write because the kernel
/// parses one rule per write.
fn device_rules(d: &V1Dirs, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let dir = d.need("devices", "device rules")?;
    for r in rules {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        fs::write(dir, file, &devices::v1_line(r)?)?;
    }
    for r in devices::DEFAULT_ALLOWED {
        fs::write(
            dir,
            "devices.allow",
            &devices::format_line(r.typ, r.major, r.minor, r.access),
        )?;
    }
    Ok(())
}

/// hugetlb.<size>.limit_in_bytes in a v1 hugetlb hierarchy.
pub fn hugetlb(dir: &Path, size: &str, limit: i64) -> Result<()> {
    fs::write(
        dir,
        &format!("hugetlb.{size}.limit_in_bytes"),
        &limit.to_string(),
    )
}
