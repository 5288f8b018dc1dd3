//! Unit names and cgroup paths of the systemd driver, from `linux.cgroupsPath`.
use anyhow::{bail, Result};

/// Where a container's transient unit lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The slice the unit goes in, e.g. "system.slice".
    pub slice: String,
    /// The unit itself: "<prefix>-<name>.scope", or a slice when the name ends in ".slice".
    pub name: String,
}

/// The slice a container goes in when the config names none (runc's): root's system.slice,
/// or user.slice of the user's own systemd.
const DEFAULT_SLICE: &str = "system.slice";
const DEFAULT_USER_SLICE: &str = "user.slice";
/// The scope prefix when `cgroupsPath` is empty; runc uses its own name there, so do we.
const DEFAULT_PREFIX: &str = "rt";

/// `slice:prefix:name` as runc takes it (exactly three fields, an empty slice meaning the
/// default one); an empty path means `rt-<id>.scope` in the default slice. `user`: the unit is
/// the user's systemd's (rootless).
pub fn parse(cgroups_path: &str, id: &str, user: bool) -> Result<Unit> {
    let (slice, prefix, name) = if cgroups_path.is_empty() {
        ("", DEFAULT_PREFIX, id)
    } else {
        let parts: Vec<&str> = cgroups_path.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            // runc's words
            bail!(
                "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {cgroups_path:?} instead"
            );
        };
        (slice, prefix, name)
    };
    if name.is_empty() || name.contains('/') {
        bail!("cgroupsPath {cgroups_path:?}: {name:?} cannot name a systemd unit");
    }
    let slice = if slice.is_empty() && user {
        DEFAULT_USER_SLICE
    } else if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    expand_slice(slice)?;
    let name = if name.ends_with(".slice") {
        expand_slice(name)?;
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(Unit {
        slice: slice.to_string(),
        name,
    })
}

/// systemd nests slices by their dashes: "a-b-c.slice" is /a.slice/a-b.slice/a-b-c.slice.
pub fn expand_slice(slice: &str) -> Result<String> {
    let bad = || anyhow::anyhow!("invalid slice name: {slice}");
    let stem = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if stem.is_empty() || slice.contains('/') {
        return Err(bad());
    }
    if stem == "-" {
        return Ok("/".into());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(part);
        path.push_str(".slice");
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

impl Unit {
    /// The unit's cgroup below a hierarchy's root, e.g. "/system.slice/rt-c1.scope". A slice
    /// unit is its own expanded path.
    pub fn cgroup_path(&self) -> Result<String> {
        if self.is_slice() {
            return expand_slice(&self.name);
        }
        let parent = expand_slice(&self.slice)?;
        Ok(format!("{}/{}", parent.trim_end_matches('/'), self.name))
    }

    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand() {
        assert_eq!(expand_slice("system.slice").unwrap(), "/system.slice");
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice"
        );
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        for bad in ["a--b.slice", "-a.slice", "a.scope", ".slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_parse() {
        let u = parse("system.slice:docker:abc", "x", false).unwrap();
        assert_eq!(u.name, "docker-abc.scope");
        assert_eq!(u.cgroup_path().unwrap(), "/system.slice/docker-abc.scope");
        let u = parse("", "c1", false).unwrap();
        assert_eq!(u.cgroup_path().unwrap(), "/system.slice/rt-c1.scope");
        let u = parse("", "c1", true).unwrap();
        assert_eq!(u.cgroup_path().unwrap(), "/user.slice/rt-c1.scope");
        assert_eq!(parse(":p:n", "c1", true).unwrap().slice, "user.slice");
        assert_eq!(parse("a.slice:p:n", "c1", true).unwrap().slice, "a.slice");
        let u = parse(":p:n", "c1", false).unwrap();
        assert_eq!(u.slice, "system.slice");
        let u = parse("kubepods-burstable.slice:cri-containerd:42", "c", false).unwrap();
        assert_eq!(
            u.cgroup_path().unwrap(),
            "/kubepods.slice/kubepods-burstable.slice/cri-containerd-42.scope"
        );
        let u = parse("system.slice:x:my-pod.slice", "c", false).unwrap();
        assert!(u.is_slice());
        assert_eq!(u.cgroup_path().unwrap(), "/my.slice/my-pod.slice");
        let e = parse("/a/b", "c", false).unwrap_err().to_string();
        assert!(e.contains("slice:prefix:name"), "{e}");
        assert!(parse("a:b", "c", false).is_err());
        assert!(parse("bad:p:n", "c", false).is_err());
    }
}
