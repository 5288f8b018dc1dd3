//! linux.sysctl keys, in either of the forms runc takes: dotted (`net.ipv4.ip_forward`, where a
//! `/` stands for a dot inside a component: `net.ipv4.conf.eth0/100.forwarding`) or slash form
//! (`net/ipv4/conf/eth0.100/forwarding`). A key is parsed into components that can only name a
//! file below /proc/sys: none is empty, `.` or `..`, so `net/../kernel/domainname` never
//! reaches `kernel/domainname`.
use anyhow::{bail, Result};

#[derive(Debug, PartialEq)]
pub struct Key {
    parts: Vec<String>,
}

pub fn parse(key: &str) -> Result<Key> {
    // The form is told by the first separator: `net.ipv4...` is dotted, `net/ipv4...` slashed.
    let slashed = key
        .find(['.', '/'])
        .is_some_and(|i| key.as_bytes()[i] == b'/');
    let parts: Vec<String> = if slashed {
        key.split('/').map(String::from).collect()
    } else {
        key.split('.').map(|p| p.replace('/', ".")).collect()
    };
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty() || p == "." || p == "..") {
        bail!("linux.sysctl: invalid key {key:?}");
    }
    Ok(Key { parts })
}

impl Key {
    pub fn parts(&self) -> Vec<&str> {
        self.parts.iter().map(String::as_str).collect()
    }

    /// The key's file relative to /proc.
    pub fn proc_path(&self) -> String {
        format!("sys/{}", self.parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_same_file() {
        assert_eq!(
            parse("net.ipv4.conf.eth0/100.forwarding").unwrap(),
            parse("net/ipv4/conf/eth0.100/forwarding").unwrap()
        );
        assert_eq!(
            parse("net/ipv4/ip_forward").unwrap().proc_path(),
            "sys/net/ipv4/ip_forward"
        );
        assert_eq!(
            parse("kernel.shm_rmid_forced").unwrap().parts(),
            ["kernel", "shm_rmid_forced"]
        );
    }

    #[test]
    fn nothing_climbs_out() {
        for k in [
            "net/../kernel/domainname",
            "net/ipv4/../../kernel/domainname",
            "net.ipv4.conf.lo/../../../kernel.domainname",
            "net..ipv4",
            "net/./ipv4",
            "net.",
            "/net/ipv4",
            "net",
            "",
        ] {
            assert!(parse(k).is_err(), "{k}");
        }
    }
}
