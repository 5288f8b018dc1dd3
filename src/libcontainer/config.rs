//! Loading and validating a bundle's config.json: every refusal names the bundle and the field.
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// A validated bundle: absolute path, parsed spec, absolute rootfs.
pub struct Bundle {
    pub path: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

pub fn load_bundle(bundle: &Path) -> Result<Bundle> {
    let path = std::fs::canonicalize(bundle)
        .with_context(|| format!("bundle {}: cannot open it", bundle.display()))?;
    if !path.is_dir() {
        bail!("bundle {}: not a directory", path.display());
    }
    let config = path.join("config.json");
    let text = std::fs::read(&config)
        .with_context(|| format!("bundle {}: cannot read config.json", path.display()))?;
    let spec = parse_spec(&text).with_context(|| format!("bundle {}", config.display()))?;
    let root = spec
        .root()
        .as_ref()
        .with_context(|| format!("bundle {}: root must be set", config.display()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        path.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs).with_context(|| {
        format!(
            "bundle {}: rootfs {} does not exist",
            config.display(),
            rootfs.display()
        )
    })?;
    if !rootfs.is_dir() {
        bail!(
            "bundle {}: rootfs {} is not a directory",
            config.display(),
            rootfs.display()
        );
    }
    validate(&spec).with_context(|| format!("bundle {}", config.display()))?;
    Ok(Bundle { path, spec, rootfs })
}

/// Parses config.json, naming the JSON path of what is wrong ("process.args[0]: invalid type ...").
/// Capability names rt does not know are dropped with a warning, as runc does.
pub fn parse_spec(text: &[u8]) -> Result<Spec> {
    parse_dropping_unknown_caps(text, Some("process")).map_err(|(path, inner)| {
        if path.is_empty() || path == "." {
            anyhow::anyhow!("invalid config.json: {inner}")
        } else {
            anyhow::anyhow!("invalid config.json at {path}: {inner}")
        }
    })
}

/// Deserializes `text` (the process object at `process_key`, or all of it when None). The fast
/// path is one pass over the bytes; only when that fails are unknown capability names taken out
/// of `capabilities` (runc: "ignoring unknown or unavailable capabilities", one warning listing
/// them sorted) and the rest tried again, so every other error still names its JSON path.
fn parse_dropping_unknown_caps<T: serde::de::DeserializeOwned>(
    text: &[u8],
    process_key: Option<&str>,
) -> std::result::Result<T, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    let first = match serde_path_to_error::deserialize(de) {
        Ok(v) => return Ok(v),
        Err(e) => (e.path().to_string(), e.into_inner().to_string()),
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(text) else {
        return Err(first);
    };
    let process = match process_key {
        Some(k) => value.get_mut(k),
        None => Some(&mut value),
    };
    let unknown = process.map(drop_unknown_caps).unwrap_or_default();
    if unknown.is_empty() {
        return Err(first);
    }
    crate::logging::warn(&format!(
        "ignoring unknown or unavailable capabilities: [{}]",
        unknown.join(" ")
    ));
    serde_path_to_error::deserialize(value)
        .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
}

/// Removes from every set of `process.capabilities` the names oci-spec has no variant for;
/// returns them sorted, each once.
fn drop_unknown_caps(process: &mut serde_json::Value) -> Vec<String> {
    let known = |v: &serde_json::Value| {
        serde_json::from_value::<oci_spec::runtime::Capability>(v.clone()).is_ok()
    };
    let mut unknown = Vec::new();
    let Some(sets) = process
        .get_mut("capabilities")
        .and_then(|c| c.as_object_mut())
    else {
        return unknown;
    };
    for set in sets.values_mut() {
        if let Some(list) = set.as_array_mut() {
            list.retain(|v| {
                // a non-string is a type error the second pass reports
                if known(v) || !v.is_string() {
                    return true;
                }
                unknown.extend(v.as_str().map(str::to_string));
                false
            });
        }
    }
    unknown.sort();
    unknown.dedup();
    unknown
}

/// Lays KEY=VALUE entries over a process env JSON array: a key already there is replaced, as
/// runc's `exec -e` and docker's `-e` do.
pub fn merge_env(env: &serde_json::Value, extra: &[String]) -> serde_json::Value {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = env
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for e in extra {
        out.retain(|old| key(old) != key(e));
        out.push(e.clone());
    }
    serde_json::json!(out)
}

/// Parses a process.json (for exec), naming the JSON path of what is wrong; unknown capability
/// names are dropped with a warning as in config.json.
pub fn parse_process(text: &[u8]) -> Result<oci_spec::runtime::Process> {
    // runc takes a process without `user` as uid 0 (exec --process files often leave it out).
    let mut v: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| anyhow::anyhow!("invalid process JSON: {e}"))?;
    let with_user;
    let text = match v.as_object_mut() {
        Some(o) if !o.contains_key("user") => {
            o.insert("user".into(), serde_json::json!({"uid": 0, "gid": 0}));
            with_user = serde_json::to_vec(&v)?;
            &with_user[..]
        }
        _ => text,
    };
    parse_dropping_unknown_caps(text, None)
        .map_err(|(path, inner)| anyhow::anyhow!("invalid process JSON at {path}: {inner}"))
}

/// What the runtime needs that the schema does not say.
pub fn validate(spec: &Spec) -> Result<()> {
    let process = spec.process().as_ref().context("process must be set")?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => bail!("process.args must not be empty"),
    }
    if !process.cwd().is_absolute() {
        bail!(
            "process.cwd {:?}: cwd must be an absolute path",
            process.cwd()
        );
    }
    let linux = spec.linux().as_ref().context("linux must be set")?;
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let mut seen = Vec::new();
    for ns in namespaces {
        if seen.contains(&ns.typ()) {
            bail!("linux.namespaces: {} is listed twice", ns.typ());
        }
        seen.push(ns.typ());
    }
    if !seen.contains(&LinuxNamespaceType::Mount) {
        validate_without_mount_namespace(spec)?;
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has_userns {
        bail!("linux.uidMappings/gidMappings need a user namespace");
    }
    let new_userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_userns && !maps {
        bail!("a new user namespace needs linux.uidMappings and linux.gidMappings");
    }
    if spec.hostname().is_some()
        && !namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Uts)
    {
        bail!("hostname is set but there is no uts namespace");
    }
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        if !apparmor_enabled() {
            bail!("process.apparmorProfile {p:?} is set but AppArmor is not enabled on this host");
        }
    }
    validate_selinux_label(process)?;
    // Fields rt does not implement are refused, never silently dropped.
    if linux.intel_rdt().is_some() {
        bail!("linux.intelRdt is not supported");
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        bail!("linux.netDevices is not supported");
    }
    if linux.memory_policy().is_some() {
        bail!("linux.memoryPolicy is not supported");
    }
    if let Some(l) = linux.mount_label().as_deref().filter(|l| !l.is_empty()) {
        // runc adds `context=` to the mounts' data, which a kernel without SELinux refuses
        // (EINVAL at the first tmpfs); refused up front here, in words that say why
        if !selinux_enabled() {
            bail!("linux.mountLabel {l:?} is specified in config, but selinux is disabled or not supported");
        }
        bail!("linux.mountLabel {l:?}: SELinux mount labels are not supported yet");
    }
    if linux
        .resources()
        .as_ref()
        .and_then(|r| r.rdma().as_ref())
        .is_some_and(|r| !r.is_empty())
    {
        bail!("linux.resources.rdma is not supported");
    }
    if let Some(s) = linux.seccomp() {
        super::seccomp_notify::check(s)?;
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            validate_sysctl(key, namespaces)?;
            validate_uts_sysctl(key, spec)?;
        }
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            bail!("mounts: destination {:?} must be absolute", m.destination());
        }
    }
    Ok(())
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// A process label on a host without SELinux would be a confinement that never happens: refused
/// as runc refuses it (for create and exec alike), in its words.
pub fn validate_selinux_label(process: &oci_spec::runtime::Process) -> Result<()> {
    if process
        .selinux_label()
        .as_deref()
        .is_some_and(|l| !l.is_empty())
        && !selinux_enabled()
    {
        bail!("selinux label is specified in config, but selinux is disabled or not supported");
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// Without a mount namespace the container shares the host's mount table (the spec allows it):
/// rt then mounts nothing at all (no rootfs bind, no propagation change, no mounts) and only
/// chroots into the rootfs. Whatever would have to be mounted is refused, since it would be
/// mounted on the host and stay there: runc 1.1.5 and current do mount it all, in the host's
/// mount namespace, and leave it behind.
fn validate_without_mount_namespace(spec: &Spec) -> Result<()> {
    let why = "without a mount namespace it would be mounted in the host's";
    let linux = spec.linux().as_ref().context("linux must be set")?;
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("mounts: the container has no mount namespace; {why}");
    }
    if linux.masked_paths().as_ref().is_some_and(|m| !m.is_empty())
        || linux
            .readonly_paths()
            .as_ref()
            .is_some_and(|m| !m.is_empty())
    {
        // runc's words
        bail!("unable to restrict sys entries without a private MNT namespace");
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        bail!("root.readonly: the container has no mount namespace; {why}");
    }
    if linux
        .rootfs_propagation()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        bail!("linux.rootfsPropagation: the container has no mount namespace of its own");
    }
    let process = spec.process().as_ref().context("process must be set")?;
    if process.terminal().unwrap_or(false) {
        bail!("process.terminal: the pty comes from the container's own devpts, which needs a mount namespace");
    }
    if super::namespaces::is_new(spec, LinuxNamespaceType::User) {
        bail!("linux.namespaces: a new user namespace needs a mount namespace too (devices are bound from the host)");
    }
    Ok(())
}

/// Only sysctls that live in a namespace the container has its own copy of may be set: any other
/// write would change the host.
fn validate_sysctl(key: &str, namespaces: &[oci_spec::runtime::LinuxNamespace]) -> Result<()> {
    let own = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let parsed = super::sysctl::parse(key)?;
    let parts = parsed.parts();
    let dotted = parts.join(".");
    let needed = if IPC.contains(&dotted.as_str()) || parts[..2] == ["fs", "mqueue"] {
        LinuxNamespaceType::Ipc
    } else if parts[0] == "net" {
        LinuxNamespaceType::Network
    } else if parts == ["kernel", "hostname"] || parts == ["kernel", "domainname"] {
        LinuxNamespaceType::Uts
    } else {
        bail!("linux.sysctl: {key} is not in a separate kernel namespace; refusing to change the host");
    };
    if !own(needed) {
        bail!("linux.sysctl: {key} needs the container to have its own {needed} namespace");
    }
    Ok(())
}

/// `kernel.hostname` and `kernel.domainname` set through sysctl would fight the config's own
/// fields, which init applies after the sysctls. runc (1.1 and current) refuses
/// `kernel.hostname` whatever `hostname` says, with this message; it lets `kernel.domainname`
/// through, from before the spec had `domainname` (runc issue #3629 proposes refusing it when the
/// field is set too, which crun does), and then its sysctl silently overrides the field. rt
/// refuses that combination in the same words instead of letting one of the two lose.
fn validate_uts_sysctl(key: &str, spec: &Spec) -> Result<()> {
    let parts = super::sysctl::parse(key)?.parts().join(".");
    let field = match parts.as_str() {
        "kernel.hostname" => "hostname",
        "kernel.domainname" if spec.domainname().as_deref().is_some_and(|d| !d.is_empty()) => {
            "domainname"
        }
        _ => return Ok(()),
    };
    bail!("sysctl {parts:?} is not allowed as it conflicts with the OCI {field:?} field")
}

/// Container ids are path components in the state root: keep them to a safe alphabet, as runc does.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if !ok {
        bail!("invalid container ID format: {id:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_replace() {
        let env = serde_json::json!(["PATH=/bin", "TERM=xterm"]);
        let merged = merge_env(&env, &["TERM=dumb".to_string(), "NEW=1".to_string()]);
        assert_eq!(
            merged,
            serde_json::json!(["PATH=/bin", "TERM=dumb", "NEW=1"])
        );
    }

    #[test]
    fn unknown_capabilities_are_dropped() {
        let spec = parse_spec(
            br#"{"ociVersion":"1.0.0","process":{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0},
            "capabilities":{"bounding":["CAP_KILL","CAP_NOPE"],"effective":["CAP_NOPE","CAP_ZZZ"]}}}"#,
        )
        .unwrap();
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .clone()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
        assert!(caps.effective().as_ref().unwrap().is_empty());
        let mut v = serde_json::json!({"capabilities": {"bounding": ["CAP_B", "CAP_KILL", "CAP_A", "CAP_B"]}});
        assert_eq!(drop_unknown_caps(&mut v), ["CAP_A", "CAP_B"]);
        assert_eq!(
            v["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        // other errors still name their path, with unknown capabilities about or not
        let err = parse_process(br#"{"args":[1],"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":["CAP_NOPE"]}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("args[0]"), "{err}");
        let err = parse_process(
            br#"{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{"bounding":[7]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("capabilities.bounding[0]"), "{err}");
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_error_names_the_path() {
        let err = parse_spec(
            br#"{"ociVersion":"1.0.0","process":{"args":[1],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("process.args[0]"), "{err}");
        let err = parse_spec(b"{not json").unwrap_err().to_string();
        assert!(err.contains("invalid config.json"), "{err}");
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let ns = |t: &str| {
            serde_json::from_str::<oci_spec::runtime::LinuxNamespace>(&format!(
                r#"{{"type":"{t}"}}"#
            ))
            .unwrap()
        };
        let with_net_ipc = [ns("network"), ns("ipc")];
        assert!(validate_sysctl("net.ipv4.ip_forward", &with_net_ipc).is_ok());
        assert!(validate_sysctl("kernel.shmmax", &with_net_ipc).is_ok());
        assert!(validate_sysctl("fs.mqueue.msg_max", &with_net_ipc).is_ok());
        assert!(validate_sysctl("net.ipv4.ip_forward", &[ns("ipc")]).is_err());
        assert!(validate_sysctl("kernel.core_pattern", &with_net_ipc).is_err());
        assert!(validate_sysctl("vm.swappiness", &with_net_ipc).is_err());
        assert!(validate_sysctl("net/../../x", &with_net_ipc).is_err());
    }

    #[test]
    fn uts_sysctls_that_fight_the_fields() {
        let spec = |domainname: &str| {
            let mut s = Spec::default();
            if !domainname.is_empty() {
                s.set_domainname(Some(domainname.to_string()));
            }
            s
        };
        let err = validate_uts_sysctl("kernel.hostname", &spec(""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field"#
        );
        assert!(validate_uts_sysctl("kernel/hostname", &spec("")).is_err());
        assert!(validate_uts_sysctl("kernel.domainname", &spec("")).is_ok());
        let err = validate_uts_sysctl("kernel.domainname", &spec("example.org"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"the OCI "domainname" field"#), "{err}");
        assert!(validate_uts_sysctl("kernel.shmmax", &spec("example.org")).is_ok());
    }

    #[test]
    fn empty_args_refused() {
        let spec = parse_spec(
            br#"{"ociVersion":"1.0.0","root":{"path":"r"},"process":{"args":[],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"mount"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            validate(&spec).unwrap_err().to_string(),
            "process.args must not be empty"
        );
    }
}
