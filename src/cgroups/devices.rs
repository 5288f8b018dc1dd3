//! Device access rules: validation, the default allowed set, and devices.allow/deny lines for
//! v1 (v2 turns the same rules into an eBPF program, see devices_bpf.rs).
use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// A rule in the shape the kernel's v1 files take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// 'a', 'b' or 'c'
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: &'static str,
}

const fn allow(typ: char, major: Option<i64>, minor: Option<i64>, access: &'static str) -> Rule {
    Rule {
        allow: true,
        typ,
        major,
        minor,
        access,
    }
}

/// Devices every container gets, appended after the spec's rules as runc does; without them a
/// spec with the usual deny-all rule could not even open /dev/null.
pub const DEFAULT_ALLOWED: &[Rule] = &[
    allow('c', None, None, "m"),
    allow('b', None, None, "m"),
    allow('c', Some(1), Some(3), "rwm"),    // null
    allow('c', Some(1), Some(8), "rwm"),    // random
    allow('c', Some(1), Some(7), "rwm"),    // full
    allow('c', Some(5), Some(0), "rwm"),    // tty
    allow('c', Some(1), Some(5), "rwm"),    // zero
    allow('c', Some(1), Some(9), "rwm"),    // urandom
    allow('c', Some(136), None, "rwm"),     // pts/*
    allow('c', Some(5), Some(2), "rwm"),    // ptmx
    allow('c', Some(10), Some(200), "rwm"), // net/tun
];

fn type_char(t: Option<LinuxDeviceType>) -> Result<char> {
    Ok(match t.unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => {
            bail!("device rule type \"p\" (fifo) cannot be expressed in a device cgroup")
        }
    })
}

/// A rule's access letters. Letters other than r, w and m are ignored, as runc's device
/// emulator ignores them (runc's own tests send "rwa"); a rule left with none is an error.
pub fn access(r: &LinuxDeviceCgroup) -> Result<String> {
    let given = r.access().as_deref().unwrap_or("rwm");
    let kept: String = "rwm".chars().filter(|c| given.contains(*c)).collect();
    if kept.is_empty() {
        bail!("invalid device access {given:?} (want a combination of r, w, m)");
    }
    Ok(kept)
}

/// One rule as every device controller takes it: the type letter, wildcards as None, and only
/// the access letters that count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub allow: bool,
    pub typ: char,
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: String,
}

/// The spec's rules followed by rt's default set, in the order they apply (later rules win):
/// what v2's program and systemd's DeviceAllow are both built from.
pub fn in_effect(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Effective>> {
    let mut all = Vec::with_capacity(rules.len() + DEFAULT_ALLOWED.len());
    for r in rules {
        all.push(Effective {
            allow: r.allow(),
            typ: type_char(r.typ())?,
            major: r.major().filter(|m| *m >= 0),
            minor: r.minor().filter(|m| *m >= 0),
            access: access(r)?,
        });
    }
    all.extend(DEFAULT_ALLOWED.iter().map(|d| Effective {
        allow: d.allow,
        typ: d.typ,
        major: d.major,
        minor: d.minor,
        access: d.access.to_string(),
    }));
    Ok(all)
}

/// Formats one rule as "type major:minor access" for devices.allow / devices.deny.
pub fn v1_line(r: &LinuxDeviceCgroup) -> Result<String> {
    let typ = type_char(r.typ())?;
    Ok(format_line(typ, r.major(), r.minor(), &access(r)?))
}

pub fn format_line(typ: char, major: Option<i64>, minor: Option<i64>, access: &str) -> String {
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    format!("{typ} {}:{} {access}", num(major), num(minor))
}

#[cfg(test)]
mod unit {
    use super::*;

    fn rule(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn lines() {
        assert_eq!(
            v1_line(&rule(r#"{"allow":false,"access":"rwm"}"#)).unwrap(),
            "a *:* rwm"
        );
        assert_eq!(
            v1_line(&rule(
                r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#
            ))
            .unwrap(),
            "c 1:3 rw"
        );
        assert_eq!(
            v1_line(&rule(r#"{"allow":true,"type":"b","major":8}"#)).unwrap(),
            "b 8:* rwm"
        );
        assert_eq!(
            v1_line(&rule(
                r#"{"allow":false,"type":"c","major":1,"minor":11,"access":"rwa"}"#
            ))
            .unwrap(),
            "c 1:11 rw"
        );
        assert!(v1_line(&rule(r#"{"allow":true,"access":"x"}"#)).is_err());
    }
}
