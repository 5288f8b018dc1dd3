//! `linux.resources` as systemd unit properties, mapped as runc maps them. The same values are
//! written to cgroupfs afterwards; the properties keep systemd from resetting them (on a
//! daemon-reload, say) to what it thinks the unit should have.
use super::dbus::Value;
use crate::cgroups::devices;
use crate::cgroups::{convert, Mode};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};

pub type Prop = (String, Value);

fn prop(name: &str, v: Value) -> Prop {
    (name.to_string(), v)
}

/// systemd's "infinity" for limits and quotas.
const INFINITY: u64 = u64::MAX;
const DEFAULT_PERIOD: u64 = 100_000;

/// What `systemd_version` gates: properties newer systemds know.
pub struct Features {
    /// CPUQuotaPeriodUSec (systemd 242).
    pub quota_period: bool,
    /// AllowedCPUs / AllowedMemoryNodes (systemd 244).
    pub cpuset: bool,
}

/// Whether any property needs `Features` (asking systemd's version costs a round trip).
pub fn needs_features(r: &LinuxResources) -> bool {
    r.cpu().as_ref().is_some_and(|c| {
        c.period().is_some_and(|p| p != 0)
            || c.cpus().as_deref().is_some_and(|s| !s.is_empty())
            || c.mems().as_deref().is_some_and(|s| !s.is_empty())
    }) || r.unified().as_ref().is_some_and(|u| {
        u.keys()
            .any(|k| matches!(k.as_str(), "cpu.max" | "cpuset.cpus" | "cpuset.mems"))
    })
}

pub fn resources(r: &LinuxResources, mode: Mode, f: &Features) -> Result<Vec<Prop>> {
    let mut out = Vec::new();
    if let Some(rules) = r.devices().as_ref().filter(|r| !r.is_empty()) {
        out.extend(device_props(rules)?);
    }
    let v2 = mode == Mode::V2;
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|l| *l != 0) {
            let name = if v2 { "MemoryMax" } else { "MemoryLimit" };
            out.push(prop(name, Value::U64(limit(l))));
        }
        if v2 {
            if let Some(l) = m.reservation().filter(|l| *l != 0) {
                out.push(prop("MemoryLow", Value::U64(limit(l))));
            }
            if let Some(s) = convert::swap_to_v2(m.swap(), m.limit())? {
                out.push(prop("MemorySwapMax", Value::U64(limit(s))));
            }
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|s| *s != 0) {
            if v2 {
                let w = convert::shares_to_weight(s);
                out.push(prop("CPUWeight", Value::U64(w)));
            } else {
                out.push(prop("CPUShares", Value::U64(s)));
            }
        }
        cpu_quota(&mut out, c.quota().unwrap_or(0), c.period().unwrap_or(0), f);
        if f.cpuset {
            if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                out.push(prop("AllowedCPUs", bits(s)?));
            }
            if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                out.push(prop("AllowedMemoryNodes", bits(s)?));
            }
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() > 0 || p.limit() == -1 {
            out.push(prop("TasksMax", Value::U64(limit(p.limit()))));
        }
    }
    if !v2 {
        if let Some(w) = r
            .block_io()
            .as_ref()
            .and_then(|b| b.weight())
            .filter(|w| *w != 0)
        {
            out.push(prop("BlockIOWeight", Value::U64(u64::from(w))));
        }
    }
    if let Some(u) = r.unified().as_ref().filter(|_| v2) {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            out.extend(unified(k, v.trim(), f)?);
        }
    }
    Ok(out)
}

fn limit(v: i64) -> u64 {
    if v < 0 {
        INFINITY
    } else {
        v as u64
    }
}

/// CPUQuotaPerSecUSec is quota per second of wall time, in systemd's 10 ms steps (rounded
/// up, so the limit is never tighter than asked); 0 or -1 quota with a period is no limit.
fn cpu_quota(out: &mut Vec<Prop>, quota: i64, period: u64, f: &Features) {
    if period != 0 && f.quota_period {
        out.push(prop("CPUQuotaPeriodUSec", Value::U64(period)));
    }
    if quota == 0 && period == 0 {
        return;
    }
    let mut per_sec = INFINITY;
    if quota > 0 {
        let period = if period == 0 { DEFAULT_PERIOD } else { period };
        per_sec = (quota as u64 * 1_000_000) / period;
        if !per_sec.is_multiple_of(10_000) {
            per_sec = (per_sec / 10_000 + 1) * 10_000;
        }
    }
    out.push(prop("CPUQuotaPerSecUSec", Value::U64(per_sec)));
}

/// "0-2,4" as the byte mask AllowedCPUs takes: bit n of byte n/8.
fn bits(list: &str) -> Result<Value> {
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("cpu/node list {list:?}: bad number {s:?}"))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b || b >= 8192 {
            bail!("cpu/node list {list:?}: bad range {part:?}");
        }
        for n in a..=b {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(Value::Array(
        "y".into(),
        bytes.into_iter().map(Value::Byte).collect(),
    ))
}

fn unified(k: &str, v: &str, f: &Features) -> Result<Vec<Prop>> {
    let num = |v: &str| -> Result<u64> {
        if v == "max" {
            return Ok(INFINITY);
        }
        v.parse()
            .with_context(|| format!("unified resource {k:?} value {v:?}"))
    };
    let mut out = Vec::new();
    match k {
        "cpu.max" => {
            let mut it = v.split_whitespace();
            let quota = match it.next() {
                Some("max") | None => 0,
                Some(q) => q
                    .parse()
                    .with_context(|| format!("unified resource {k:?} value {v:?}"))?,
            };
            let period = match it.next() {
                Some(p) => p
                    .parse()
                    .with_context(|| format!("unified resource {k:?} value {v:?}"))?,
                None => DEFAULT_PERIOD,
            };
            cpu_quota(&mut out, quota, period, f);
        }
        "cpu.weight" => out.push(prop("CPUWeight", Value::U64(num(v)?))),
        "cpuset.cpus" if f.cpuset => out.push(prop("AllowedCPUs", bits(v)?)),
        "cpuset.mems" if f.cpuset => out.push(prop("AllowedMemoryNodes", bits(v)?)),
        "memory.high" | "memory.low" | "memory.min" | "memory.max" | "memory.swap.max" => {
            let name = match k {
                "memory.high" => "MemoryHigh",
                "memory.low" => "MemoryLow",
                "memory.min" => "MemoryMin",
                "memory.max" => "MemoryMax",
                _ => "MemorySwapMax",
            };
            out.push(prop(name, Value::U64(num(v)?)));
        }
        "pids.max" => out.push(prop("TasksMax", Value::U64(num(v)?))),
        // No property: cgroupfs alone carries it.
        _ => {}
    }
    Ok(out)
}

/// The device rules as DevicePolicy/DeviceAllow. systemd only takes allow lists, and its
/// eBPF program and rt's both have to allow an access, so the list must allow at least what
/// rt's own program allows: the spec's rules are played out (later rules win) over rt's
/// default set, as the program does.
fn device_props(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Prop>> {
    let all = devices::in_effect(rules)?;
    // None: everything is allowed, minus the deny rules (a "blacklist").
    let mut allowed: Option<Vec<devices::Effective>> = Some(Vec::new());
    let mut denied = 0;
    for r in all {
        let everything = r.typ == 'a' && r.major.is_none() && r.minor.is_none();
        match (&mut allowed, r.allow) {
            (_, true) if everything => {
                allowed = None;
                denied = 0;
            }
            (_, false) if everything => allowed = Some(Vec::new()),
            (Some(list), true) => list.push(r),
            (Some(list), false) => {
                list.retain(|a| (a.typ, a.major, a.minor) != (r.typ, r.major, r.minor))
            }
            (None, true) => {}
            (None, false) => denied += 1,
        }
    }
    let policy = |p: &str, entries: Vec<Value>| {
        vec![
            prop("DevicePolicy", Value::str(p)),
            prop("DeviceAllow", Value::Array("(ss)".into(), entries)),
        ]
    };
    let Some(list) = allowed else {
        if denied > 0 {
            // systemd has no deny list; rt's own program enforces the denials.
            crate::logging::warn("systemd cannot take deny device rules after an allow-all rule; leaving device access to rt's own filter");
        }
        return Ok(policy("auto", Vec::new()));
    };
    let mut entries = Vec::new();
    for r in list {
        let Some(path) = device_allow_path(&r)? else {
            continue;
        };
        entries.push(Value::Struct(vec![Value::Str(path), Value::Str(r.access)]));
    }
    Ok(policy("strict", entries))
}

/// systemd's names: "char-*" for every char device, the /proc/devices group for a major
/// ("char-pts"), /dev/char/M:m for one device (only when it exists, or systemd refuses).
fn device_allow_path(r: &devices::Effective) -> Result<Option<String>> {
    let kind = match r.typ {
        'c' => "char",
        'b' => "block",
        _ => return Ok(None),
    };
    Ok(match (r.major, r.minor) {
        (None, None) => Some(format!("{kind}-*")),
        (None, Some(_)) => None,
        (Some(major), None) => group_name(kind, major)?.map(|g| format!("{kind}-{g}")),
        (Some(major), Some(minor)) => {
            let p = format!("/dev/{kind}/{major}:{minor}");
            let exists = std::path::Path::new(&p).exists()
                || std::path::Path::new(&format!("/sys{p}")).exists();
            exists.then_some(p)
        }
    })
}

fn group_name(kind: &str, major: i64) -> Result<Option<String>> {
    let text = std::fs::read_to_string("/proc/devices").context("reading /proc/devices")?;
    let header = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.ends_with("devices:") {
            in_section = line == header;
            continue;
        }
        if !in_section {
            continue;
        }
        let mut f = line.split_whitespace();
        if let (Some(m), Some(name)) = (f.next(), f.next()) {
            if m.parse::<i64>() == Ok(major) {
                return Ok(Some(name.to_string()));
            }
        }
    }
    Ok(None)
}

/// `org.systemd.property.<Name>` annotations, passed through as runc does: the value is a
/// GVariant-style literal (`true`, `uint64 42`, `'text'`, `["a", "b"]`...), and a `...Sec`
/// property becomes `...USec` in microseconds.
pub fn from_annotations<'a>(
    annotations: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Prop>> {
    const PREFIX: &str = "org.systemd.property.";
    let mut out = Vec::new();
    for (k, v) in annotations {
        let Some(name) = k.strip_prefix(PREFIX) else {
            continue;
        };
        if name.len() < 3 || !name.chars().all(|c| c.is_ascii_alphabetic()) {
            bail!("annotation {k} name incorrect: must be 3 or more letters");
        }
        let mut value = parse_literal(v.trim())
            .with_context(|| format!("annotation {k}={v} value parse error"))?;
        let mut name = name.to_string();
        if let Some(stem) = name
            .strip_suffix("Sec")
            .filter(|s| s.ends_with(|c: char| c.is_ascii_lowercase()))
        {
            let usec = match value {
                Value::U64(n) => n * 1_000_000,
                Value::I32(n) if n >= 0 => n as u64 * 1_000_000,
                Value::U32(n) => u64::from(n) * 1_000_000,
                Value::I64(n) if n >= 0 => n as u64 * 1_000_000,
                Value::F64(d) if d >= 0.0 => (d * 1e6) as u64,
                _ => bail!("annotation {k}={v} value parse error: not a number"),
            };
            name = format!("{stem}USec");
            value = Value::U64(usec);
        }
        out.push((name, value));
    }
    Ok(out)
}

fn parse_literal(v: &str) -> Result<Value> {
    let typed = |prefix: &str| v.strip_prefix(prefix).map(str::trim);
    if v == "true" || v == "false" {
        return Ok(Value::Bool(v == "true"));
    }
    if let Some(n) = typed("uint64").or_else(|| typed("@t")) {
        return Ok(Value::U64(n.parse()?));
    }
    if let Some(n) = typed("int64").or_else(|| typed("@x")) {
        return Ok(Value::I64(n.parse()?));
    }
    if let Some(n) = typed("uint32").or_else(|| typed("@u")) {
        return Ok(Value::U32(n.parse()?));
    }
    if let Some(n) = typed("int32").or_else(|| typed("@i")) {
        return Ok(Value::I32(n.parse()?));
    }
    if let Some(s) = quoted(v) {
        return Ok(Value::Str(s));
    }
    if let Some(inner) = v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                quoted(s)
                    .map(Value::Str)
                    .context("only arrays of strings are supported")
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Value::Array("s".into(), items));
    }
    if let Ok(n) = v.parse::<i32>() {
        return Ok(Value::I32(n));
    }
    if let Ok(n) = v.parse::<i64>() {
        return Ok(Value::I64(n));
    }
    if let Ok(d) = v.parse::<f64>() {
        return Ok(Value::F64(d));
    }
    bail!("cannot parse {v:?} (want true/false, a number, 'text' or [\"a\", ...])")
}

fn quoted(s: &str) -> Option<String> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    s.strip_prefix(q)?.strip_suffix(q).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    const ALL: Features = Features {
        quota_period: true,
        cpuset: true,
    };

    fn get<'a>(p: &'a [Prop], name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[test]
    fn v2_resources() {
        let r = res(
            r#"{"memory":{"limit":33554432,"reservation":1048576,"swap":67108864},
            "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1,3"},"pids":{"limit":42}}"#,
        );
        let p = resources(&r, Mode::V2, &ALL).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(33554432)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(1048576)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(33554432)));
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(42)));
        assert_eq!(
            get(&p, "AllowedCPUs"),
            Some(&Value::Array("y".into(), vec![Value::Byte(0b1011)]))
        );
        let v1 = resources(&r, Mode::Hybrid, &ALL).unwrap();
        assert_eq!(get(&v1, "MemoryLimit"), Some(&Value::U64(33554432)));
        assert_eq!(get(&v1, "CPUShares"), Some(&Value::U64(1024)));
        assert!(get(&v1, "MemoryMax").is_none());
    }

    #[test]
    fn quota_rounds_up_to_10ms_and_unlimited_is_infinity() {
        let mut p = Vec::new();
        cpu_quota(&mut p, 12345, 100000, &ALL);
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(130_000)));
        let mut p = Vec::new();
        cpu_quota(&mut p, -1, 100000, &ALL);
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(u64::MAX)));
        let r = res(r#"{"pids":{"limit":-1},"memory":{"limit":-1}}"#);
        let p = resources(&r, Mode::V2, &ALL).unwrap();
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(u64::MAX)));
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(u64::MAX)));
    }

    #[test]
    fn device_rules_become_an_allow_list() {
        let r = res(r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]}"#);
        let p = resources(&r, Mode::V2, &ALL).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::str("strict")));
        let Some(Value::Array(_, list)) = get(&p, "DeviceAllow") else {
            panic!("{p:?}")
        };
        let paths: Vec<_> = list
            .iter()
            .map(|e| match e {
                Value::Struct(f) => (
                    f[0].as_str().unwrap().to_string(),
                    f[1].as_str().unwrap().to_string(),
                ),
                _ => panic!(),
            })
            .collect();
        assert!(
            paths.contains(&("/dev/char/1:3".into(), "rw".into())),
            "{paths:?}"
        );
        assert!(paths.contains(&("char-*".into(), "m".into())), "{paths:?}");
        let r = res(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#);
        let p = resources(&r, Mode::V2, &ALL).unwrap();
        assert_eq!(get(&p, "DevicePolicy"), Some(&Value::str("auto")));
    }

    #[test]
    fn annotations_pass_through() {
        let a: std::collections::BTreeMap<String, String> = [
            ("org.systemd.property.TimeoutStopSec", "uint64 3"),
            ("org.systemd.property.CollectMode", "'inactive-or-failed'"),
            ("org.systemd.property.Delegate", "true"),
            ("other", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = from_annotations(a.iter()).unwrap();
        assert_eq!(get(&p, "TimeoutStopUSec"), Some(&Value::U64(3_000_000)));
        assert_eq!(
            get(&p, "CollectMode"),
            Some(&Value::str("inactive-or-failed"))
        );
        assert_eq!(get(&p, "Delegate"), Some(&Value::Bool(true)));
        assert_eq!(p.len(), 3);
        let bad: std::collections::BTreeMap<String, String> =
            [("org.systemd.property.A1".to_string(), "1".to_string())].into();
        assert!(from_annotations(bad.iter()).is_err());
    }
}
