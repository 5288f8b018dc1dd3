//! `rt update`: lay new resource values over the saved ones, apply them, remember them.
use super::container::Container;
use super::state::Status;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::Value;

/// `patch` is a LinuxResources JSON object holding only what changes.
pub fn update(c: &mut Container, patch: Value) -> Result<()> {
    if c.status() == Status::Stopped {
        bail!("container not running");
    }
    let mut linux = serde_json::to_value(c.state.config.linux())?;
    let current = linux
        .get("resources")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let devices_change = patch.get("devices").is_some();
    let current = patched(current, patch);
    let mut resources: LinuxResources =
        serde_json::from_value(current.clone()).context("invalid resources")?;
    // Rules that stay as they are are not written again: on v1, writing them means a deny-all
    // first and the allows after, a window in which the container's own /dev/null fails
    // (runc's "minimal transition" is for the same window).
    if !devices_change {
        resources.set_devices(None);
    }
    if c.state.no_cgroup {
        // runc's words for a limit on a cgroup it never made; device rules alone are let go
        if let Some(ctrl) = super::cgroup_policy::first_limit(&resources) {
            bail!("cannot set {ctrl} limit: container could not join or create cgroup");
        }
    } else {
        c.cgroup()?
            .update(&resources)
            .context("applying the new resources")?;
    }
    crate::debug!("update {}: resources applied", c.id());
    linux["resources"] = current;
    c.state.config.set_linux(Some(
        serde_json::from_value(linux).context("updating the saved config")?,
    ));
    c.save()
}

/// The saved resources with `patch` laid over them.
fn patched(mut current: Value, patch: Value) -> Value {
    // As runc: an unlimited memory limit with no swap value given lifts the swap limit as well
    // (memory+swap may never be below memory on v1, so a swap limit left in place would refuse
    // it). Without a saved swap value the cgroup code derives the unlimited one.
    let unlimits_memory = patch.pointer("/memory/limit") == Some(&Value::from(-1))
        && patch.pointer("/memory/swap").is_none();
    merge(&mut current, patch);
    if unlimits_memory {
        if let Some(m) = current.get_mut("memory").and_then(Value::as_object_mut) {
            m.remove("swap");
        }
    }
    current
}

/// Objects merge key by key; anything else replaces.
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// Sizes as docker and runc accept them: "1024", "512k", "100m", "1g", "-1".
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b').trim_end_matches('i');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("invalid size {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("512k").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("100M").unwrap(), 100 << 20);
        assert_eq!(parse_bytes("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn unlimited_memory_lifts_a_saved_swap_limit() {
        let saved = json!({"memory": {"limit": 100, "swap": 200}, "pids": {"limit": 5}});
        assert_eq!(
            patched(saved.clone(), json!({"memory": {"limit": -1}})),
            json!({"memory": {"limit": -1}, "pids": {"limit": 5}})
        );
        // a swap value given with it is kept, and other limits leave swap alone
        assert_eq!(
            patched(saved.clone(), json!({"memory": {"limit": -1, "swap": 300}})),
            json!({"memory": {"limit": -1, "swap": 300}, "pids": {"limit": 5}})
        );
        assert_eq!(
            patched(saved, json!({"memory": {"limit": 150}})),
            json!({"memory": {"limit": 150, "swap": 200}, "pids": {"limit": 5}})
        );
    }

    #[test]
    fn merges_deeply() {
        let mut base = json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut base,
            json!({"memory": {"limit": 10}, "cpu": {"shares": 3}}),
        );
        assert_eq!(
            base,
            json!({"memory": {"limit": 10, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 3}})
        );
    }
}
