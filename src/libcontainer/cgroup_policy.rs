//! Whether a container gets a cgroup of its own, as runc decides it for a rootless caller: the
//! cgroup is made where the caller may make it (its own, or a directory delegated to it); where
//! it may not, a container with no `cgroupsPath` and no limits goes without one (in the cgroup
//! its runtime runs in), and anything else fails in runc's words.
use crate::cgroups::{CgroupManager, Mode};
use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;

/// Makes the container's cgroup directories up front (all of them: a rootless caller learns
/// here, before init exists, whether it may). True: the container has its cgroup; false: it
/// goes without (nothing was left behind).
pub fn make_rootless(
    cgroup: &CgroupManager,
    mode: Mode,
    explicit_path: bool,
    resources: Option<&LinuxResources>,
) -> Result<bool> {
    let err = match cgroup.create_unified().and_then(|_| cgroup.create_v1()) {
        Ok(()) => return Ok(true),
        Err(e) => e,
    };
    let Some(errno) = permission_errno(&err) else {
        return Err(err);
    };
    // what the failed mkdir made on the way stays no longer than the decision
    let _ = cgroup.remove();
    let said = format!("{}: {}", err, go_strerror(errno));
    if explicit_path {
        bail!("unable to apply cgroup configuration: {said}");
    }
    if let Some(ctrl) = resources.and_then(first_limit) {
        if mode == Mode::V2 {
            bail!("rootless needs no limits + no cgrouppath when no permission is granted for cgroups: {said}");
        }
        bail!("cannot set {ctrl} limit: container could not join or create cgroup");
    }
    crate::debug!(
        "no permission for cgroup {} ({said}): the container runs without one",
        cgroup.path()
    );
    Ok(false)
}

/// EACCES, EPERM or EROFS under `e`: what runc takes for "no permission" (EROFS is what an
/// unprivileged user meets on a read-only cgroup mount).
pub(crate) fn permission_errno(e: &anyhow::Error) -> Option<i32> {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .filter_map(|e| e.raw_os_error())
        .find(|n| matches!(*n, libc::EACCES | libc::EPERM | libc::EROFS))
}

/// Go's wording of these errnos, which runc's messages carry and its callers match.
fn go_strerror(errno: i32) -> &'static str {
    match errno {
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        _ => "read-only file system",
    }
}

/// The first controller, in runc's v1 order, that `r` sets a value for: devices rules are not
/// limits (runc ignores a rootless caller's failure to set them).
pub fn first_limit(r: &LinuxResources) -> Option<&'static str> {
    let cpu = r.cpu().as_ref();
    let cpuset = cpu.is_some_and(|c| c.cpus().is_some() || c.mems().is_some());
    let cpu_limits = cpu.is_some_and(|c| {
        c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.realtime_runtime().is_some()
            || c.realtime_period().is_some()
            || c.idle().is_some()
            || c.burst().is_some()
    });
    let memory = r.memory().as_ref().is_some_and(|m| {
        m.limit().is_some()
            || m.reservation().is_some()
            || m.swap().is_some()
            || m.kernel().is_some()
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some()
            || m.use_hierarchy().is_some()
            || m.check_before_update().is_some()
    });
    let pids = r.pids().as_ref().is_some_and(|p| p.limit() != 0);
    let blkio = r.block_io().as_ref().is_some_and(|b| {
        b.weight().is_some()
            || b.leaf_weight().is_some()
            || [
                b.weight_device().as_ref().map(Vec::len),
                b.throttle_read_bps_device().as_ref().map(Vec::len),
                b.throttle_write_bps_device().as_ref().map(Vec::len),
                b.throttle_read_iops_device().as_ref().map(Vec::len),
                b.throttle_write_iops_device().as_ref().map(Vec::len),
            ]
            .into_iter()
            .any(|n| n.unwrap_or(0) > 0)
    });
    let hugetlb = r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty());
    let net = r.network().as_ref();
    let net_cls = net.is_some_and(|n| n.class_id().is_some());
    let net_prio = net.is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty()));
    let rdma = r.rdma().as_ref().is_some_and(|m| !m.is_empty());
    let unified = r.unified().as_ref().is_some_and(|u| !u.is_empty());
    [
        (cpuset, "cpuset"),
        (memory, "memory"),
        (cpu_limits, "cpu"),
        (pids, "pids"),
        (blkio, "blkio"),
        (hugetlb, "hugetlb"),
        (net_cls, "net_cls"),
        (net_prio, "net_prio"),
        (rdma, "rdma"),
        (unified, "unified"),
    ]
    .into_iter()
    .find_map(|(set, name)| set.then_some(name))
}

/// `r` without its device rules, and the rules alone: a rootless caller applies the first and
/// tries the second, living with its failure as runc does (device cgroups need privileges
/// even in a delegated cgroup).
pub fn split_devices(r: &LinuxResources) -> (LinuxResources, Option<LinuxResources>) {
    let mut rest = r.clone();
    rest.set_devices(None);
    let devices = r.devices().as_ref().filter(|d| !d.is_empty()).map(|d| {
        let mut only = LinuxResources::default();
        only.set_devices(Some(d.clone()));
        only
    });
    (rest, devices)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn limits_in_runcs_order() {
        assert_eq!(first_limit(&res("{}")), None);
        assert_eq!(
            first_limit(&res(
                r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{}}"#
            )),
            None
        );
        assert_eq!(first_limit(&res(r#"{"pids":{"limit":0}}"#)), None);
        assert_eq!(first_limit(&res(r#"{"pids":{"limit":10}}"#)), Some("pids"));
        assert_eq!(
            first_limit(&res(r#"{"pids":{"limit":10},"memory":{"limit":1000000}}"#)),
            Some("memory")
        );
        assert_eq!(first_limit(&res(r#"{"cpu":{"cpus":"0"}}"#)), Some("cpuset"));
        let (rest, devices) = split_devices(&res(
            r#"{"devices":[{"allow":false,"access":"rwm"}],"pids":{"limit":3}}"#,
        ));
        assert!(rest.devices().is_none() && rest.pids().is_some());
        assert_eq!(devices.unwrap().devices().as_ref().unwrap().len(), 1);
    }
}
