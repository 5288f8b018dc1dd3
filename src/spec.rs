//! The runtime-spec version rt speaks and the default config.json: current runc's default (its
//! specconv example): no ambient or inheritable capabilities, and a cgroup namespace only on a
//! pure cgroup v2 host. Shared by the runtime (`rt spec`) and the image side (`rt bundle`), so
//! neither builds a config from inside the other.
use serde_json::{json, Value};

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The runtime-spec version of the configs rt writes and the state it reports.
pub const OCI_VERSION: &str = "1.2.1";

pub fn spec(rootless: bool) -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut linux = json!({
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    });
    // rootless keeps it too, as runc's ToRootless does
    if crate::cgroups::Layout::host().is_ok_and(|l| l.mode == crate::cgroups::Mode::V2) {
        namespaces.push(json!({"type": "cgroup"}));
    }
    if rootless {
        to_rootless(&mut namespaces, &mut mounts, &mut linux);
    } else {
        namespaces.insert(1, json!({"type": "network"}));
    }
    linux["namespaces"] = Value::Array(namespaces);
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rt",
        "mounts": mounts,
        "linux": linux,
    })
}

/// runc's specconv.ToRootless: no network namespace (an unprivileged user may not make its
/// interfaces), a user namespace mapping container root to the caller (size 1), `/sys` as a
/// read-only rbind of the host's in the place of the sysfs mount (sysfs needs a network
/// namespace of one's own), no `uid=`/`gid=` mount options (ids the namespace does not map),
/// and no `linux.resources` (cgroup limits need permission on the cgroup).
fn to_rootless(namespaces: &mut Vec<Value>, mounts: &mut [Value], linux: &mut Value) {
    namespaces.retain(|n| n["type"] != "network" && n["type"] != "user");
    namespaces.push(json!({"type": "user"}));
    let map = |id: u32| json!([{"containerID": 0, "hostID": id, "size": 1}]);
    linux["uidMappings"] = map(nix::unistd::geteuid().as_raw());
    linux["gidMappings"] = map(nix::unistd::getegid().as_raw());
    for m in mounts.iter_mut() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                        "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            continue;
        }
        if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
            opts.retain(|o| {
                o.as_str()
                    .is_none_or(|o| !o.starts_with("uid=") && !o.starts_with("gid="))
            });
        }
    }
    if let Some(o) = linux.as_object_mut() {
        o.remove("resources");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_specs_parse_and_validate() {
        for rootless in [false, true] {
            let text = serde_json::to_vec(&super::spec(rootless)).unwrap();
            let spec = crate::libcontainer::config::parse_spec(&text).unwrap();
            crate::libcontainer::config::validate(&spec).unwrap();
        }
    }

    #[test]
    fn rootless_spec_is_runcs() {
        let spec = super::spec(true);
        let ns: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(
            !ns.contains(&"network") && ns.last() == Some(&"user"),
            "{ns:?}"
        );
        // runc's example has a cgroup namespace on a pure v2 host, and ToRootless keeps it
        let v2 = crate::cgroups::Layout::host().is_ok_and(|l| l.mode == crate::cgroups::Mode::V2);
        assert_eq!(ns.contains(&"cgroup"), v2, "{ns:?}");
        let uid = nix::unistd::geteuid().as_raw();
        assert_eq!(spec["linux"]["uidMappings"][0]["hostID"], uid);
        assert!(spec["linux"].get("resources").is_none());
        let dests: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        // /sys keeps its place, before the cgroup mount that goes on top of it
        let sys = dests.iter().position(|d| *d == "/sys").unwrap();
        assert_eq!(dests[sys + 1], "/sys/fs/cgroup");
        assert_eq!(spec["mounts"][sys]["options"][0], "rbind");
        let text = spec["mounts"].to_string();
        assert!(!text.contains("gid=") && !text.contains("uid="), "{text}");
    }
}
