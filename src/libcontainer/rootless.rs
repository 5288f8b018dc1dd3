//! Rootless mode, decided as runc decides it: rt run by a user whose euid is not 0, or by root
//! inside a user namespace that is not the initial one (podman runs its runtime that way).
//! It decides where state lives and which cgroup permission errors rt may live with.
use anyhow::{bail, Context, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;

/// What rt knows about its own privilege, decided once per command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rootless {
    /// The euid is not 0 (runc's RootlessEUID): the config must bring a user namespace, and
    /// id maps other than the caller's own go through newuidmap/newgidmap.
    pub euid: bool,
    /// Cgroup permission errors are lived with where runc lives with them (runc's
    /// RootlessCgroups): `--rootless`, or, on auto, a non-zero euid or a user namespace.
    pub cgroups: bool,
}

/// `--rootless true|false|auto`, read as runc reads it (Go's strconv.ParseBool, or auto).
pub fn parse_flag(value: &str) -> Result<Option<bool>> {
    Ok(match value {
        v if v.is_empty() || v.eq_ignore_ascii_case("auto") => None,
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        v => bail!("--rootless: invalid value {v:?} (want true, false or auto)"),
    })
}

/// `systemd_cgroup`: the caller asked for `--systemd-cgroup`, where root in a user namespace is
/// rootless only when the user's bus belongs to someone other than root (runc's test: a systemd
/// of root's in the namespace makes it rootful; no bus to ask counts as root's, as in runc).
pub fn detect(flag: Option<bool>, systemd_cgroup: bool) -> Rootless {
    let euid = !nix::unistd::geteuid().is_root();
    let in_userns_rootless = || {
        if !systemd_cgroup {
            return true;
        }
        match crate::cgroups::systemd::user::bus_owner_uid() {
            Ok(uid) => uid != 0,
            Err(e) => {
                crate::debug!("the user bus's owner is unknown, taken for root: {e:#}");
                false
            }
        }
    };
    Rootless {
        euid,
        cgroups: flag.unwrap_or_else(|| euid || (running_in_userns() && in_userns_rootless())),
    }
}

pub use crate::userns::{is_initial_map, running_in_userns};

/// The state root when no `--root` is given: `$XDG_RUNTIME_DIR/rt` for a rootless caller (made
/// 0700 with the sticky bit, as runc makes its own, so the session's cleaner keeps it), else
/// `/run/rt`. Root inside a user namespace counts as rootless here unless `$USER` says root.
pub fn default_state_root() -> Result<PathBuf> {
    let Some(xdg) = honored_xdg_runtime_dir() else {
        return Ok(PathBuf::from("/run/rt"));
    };
    let root = xdg.join("rt");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&root)
        .and_then(|()| std::fs::set_permissions(&root, PermissionsExt::from_mode(0o1700)))
        .with_context(|| {
            format!(
                "state root {}: the path in $XDG_RUNTIME_DIR must be writable by the user",
                root.display()
            )
        })?;
    Ok(root)
}

/// What a config must be for a caller whose euid is not 0, checked before anything is made,
/// as runc checks it (its validator's words): only a user namespace of its own gives such a
/// caller the privileges a container needs, and mount options may name only ids it maps.
pub fn validate_config(spec: &oci_spec::runtime::Spec) -> Result<()> {
    use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType};
    let linux = spec.linux().as_ref().context("linux must be set")?;
    if !super::namespaces::has(spec, LinuxNamespaceType::User) {
        bail!("rootless container requires user namespaces");
    }
    let none = Vec::new();
    let uids = linux.uid_mappings().as_ref().unwrap_or(&none);
    let gids = linux.gid_mappings().as_ref().unwrap_or(&none);
    if uids.is_empty() {
        bail!("rootless containers requires at least one UID mapping");
    }
    if gids.is_empty() {
        bail!("rootless containers requires at least one GID mapping");
    }
    let mapped = |id: u32, maps: &[LinuxIdMapping]| {
        maps.iter()
            .any(|m| id >= m.container_id() && id - m.container_id() < m.size())
    };
    for m in spec.mounts().as_deref().unwrap_or_default() {
        for opt in m.options().as_deref().unwrap_or_default() {
            for (prefix, maps, what) in [("uid=", uids, "uid"), ("gid=", gids, "gid")] {
                let Some(id) = opt.strip_prefix(prefix).and_then(|v| v.parse().ok()) else {
                    continue;
                };
                if !mapped(id, maps) {
                    bail!("cannot specify {what}= mount options for unmapped {what} in rootless containers");
                }
            }
        }
    }
    Ok(())
}

fn honored_xdg_runtime_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())?;
    let honored = !nix::unistd::geteuid().is_root()
        || (running_in_userns() && std::env::var_os("USER").is_none_or(|u| u != "root"));
    honored.then(|| PathBuf::from(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values() {
        assert_eq!(parse_flag("auto").unwrap(), None);
        assert_eq!(parse_flag("AUTO").unwrap(), None);
        assert_eq!(parse_flag("").unwrap(), None);
        assert_eq!(parse_flag("true").unwrap(), Some(true));
        assert_eq!(parse_flag("1").unwrap(), Some(true));
        assert_eq!(parse_flag("F").unwrap(), Some(false));
        let err = parse_flag("yes").unwrap_err().to_string();
        assert!(err.contains("\"yes\""), "{err}");
    }

    #[test]
    fn initial_user_namespace() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1001          1\n"));
        assert!(!is_initial_map("0 0 4294967295\n1 1 1\n"));
        assert!(!is_initial_map(""));
    }
}
