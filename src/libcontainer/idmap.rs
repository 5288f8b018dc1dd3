//! The id maps of a child in a new user namespace, written from outside as runc writes them:
//! straight into `/proc/<pid>/{uid,gid}_map` when the kernel lets the caller (root, or a
//! rootless caller mapping only its own id, with `setgroups` denied first for the gid map), and
//! through the setuid helpers newuidmap/newgidmap (Debian's `uidmap`, checking /etc/subuid and
//! /etc/subgid) when it does not.
use super::procfs::{self, ProcfsBase};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, Spec};
use std::path::PathBuf;

#[derive(Clone, Copy)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "linux.uidMappings",
            Kind::Gid => "linux.gidMappings",
        }
    }
    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
    /// The caller's own id of this kind: the one id an unprivileged caller may map itself.
    fn own(self) -> u32 {
        match self {
            Kind::Uid => nix::unistd::geteuid().as_raw(),
            Kind::Gid => nix::unistd::getegid().as_raw(),
        }
    }
}

/// `rootless_euid`: the caller is not root, and a gid map of its own gid alone needs
/// `setgroups` denied (the kernel's rule; runc does the same).
pub fn write(pid: i32, spec: &Spec, rootless_euid: bool) -> Result<()> {
    let linux = spec.linux().as_ref().context("linux must be set")?;
    let none = Vec::new();
    let uids = linux.uid_mappings().as_ref().unwrap_or(&none);
    let gids = linux.gid_mappings().as_ref().unwrap_or(&none);
    write_one(pid, Kind::Uid, uids)?;
    if rootless_euid && is_self_map(gids, Kind::Gid.own()) {
        procfs::write(ProcfsBase::ProcPid(pid as u32), "setgroups", "deny")
            .context("denying setgroups for a rootless gid map")?;
    }
    write_one(pid, Kind::Gid, gids)
}

/// One mapping of the caller's own id: what the kernel lets an unprivileged caller write.
fn is_self_map(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.host_id() == own && m.size() == 1)
}

fn text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

fn write_one(pid: i32, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    if maps.is_empty() {
        return Ok(());
    }
    let err = match procfs::write(ProcfsBase::ProcPid(pid as u32), kind.file(), &text(maps)) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let denied = err
        .chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|e| e.raw_os_error() == Some(libc::EPERM));
    if !denied {
        return Err(err).with_context(|| format!("writing {}", kind.file()));
    }
    with_tool(pid, kind, maps)
}

/// Go's exec.LookPath over $PATH, as runc finds the helpers.
fn look_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok())
}

fn with_tool(pid: i32, kind: Kind, maps: &[LinuxIdMapping]) -> Result<()> {
    let Some(tool) = look_path(kind.tool()) else {
        bail!(
            "{}: mapping more than the caller's own id ({}) needs {} (Debian package uidmap), \
             which is not in $PATH",
            kind.field(),
            kind.own(),
            kind.tool()
        );
    };
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id(), m.host_id(), m.size()].map(|v| v.to_string()));
    }
    let out = std::process::Command::new(&tool)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {}", tool.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    bail!(
        "{}: {} {} failed: {}{}",
        kind.field(),
        kind.tool(),
        args.join(" "),
        if said.is_empty() {
            out.status.to_string()
        } else {
            said
        },
        subid_hint(kind)
    )
}

/// What /etc/subuid (or subgid) holds for the caller: the usual reason a helper refuses.
fn subid_hint(kind: Kind) -> String {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let text = std::fs::read_to_string(kind.subid_file()).unwrap_or_default();
    let ranges: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let (who, range) = l.split_once(':')?;
            (who == name || who == uid.to_string()).then_some(range)
        })
        .collect();
    if ranges.is_empty() {
        format!(
            " ({} has no subordinate ids for user {name} (uid {uid}))",
            kind.subid_file()
        )
    } else {
        format!(
            " (subordinate ids of {name} in {}: {})",
            kind.subid_file(),
            ranges.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(json: &str) -> Vec<LinuxIdMapping> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn self_maps() {
        assert!(is_self_map(
            &maps(r#"[{"containerID":0,"hostID":1001,"size":1}]"#),
            1001
        ));
        assert!(!is_self_map(
            &maps(r#"[{"containerID":0,"hostID":1001,"size":2}]"#),
            1001
        ));
        assert!(!is_self_map(
            &maps(
                r#"[{"containerID":0,"hostID":1001,"size":1},{"containerID":1,"hostID":100000,"size":10}]"#
            ),
            1001
        ));
        assert_eq!(
            text(&maps(
                r#"[{"containerID":0,"hostID":1001,"size":1},{"containerID":1,"hostID":100000,"size":10}]"#
            )),
            "0 1001 1\n1 100000 10\n"
        );
    }
}
