//! OCI (v1-shaped) values to cgroup v2 values, with the formulas runc and crun agree on so a
//! spec behaves the same whichever runtime runs it.
use anyhow::{bail, Result};

/// cpu.shares (2..=262144, default 1024) to cpu.weight (1..=10000, default 100).
/// 0 means "not set" and stays 0.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262144);
    1 + ((shares - 2) * 9999) / 262142
}

/// blkio.weight (10..=1000) to io.weight (1..=10000). 0 means "not set".
pub fn blkio_weight_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = weight.clamp(10, 1000);
    1 + ((weight - 10) * 9999) / 990
}

/// OCI swap is the memory+swap total (v1 memsw); v2's memory.swap.max is swap alone.
/// Returns None for "leave unset", Some(-1) for "max".
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>> {
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    // v1 compatibility: an unlimited memory limit with swap unset means both unlimited.
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    match swap {
        0 => Ok(None),
        -1 => Ok(Some(-1)),
        s if s < -1 => bail!("invalid memory swap value {s}"),
        s => {
            if limit == 0 || limit == -1 {
                bail!("memory.swap {s} needs a memory limit on cgroup v2 (swap is memory+swap)");
            }
            if limit < 0 {
                bail!("invalid memory limit {limit}");
            }
            if s < limit {
                bail!("memory+swap limit {s} must be >= memory limit {limit}");
            }
            Ok(Some(s - limit))
        }
    }
}

/// A v2 byte limit: -1 is "max".
pub fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// cpu.max from quota/period; None when neither is set. Quota <= 0 (with a period) is "max".
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.unwrap_or(0);
    let period = period.unwrap_or(0);
    if quota == 0 && period == 0 {
        return None;
    }
    let mut s = if quota > 0 {
        quota.to_string()
    } else {
        "max".to_string()
    };
    if period != 0 {
        s.push(' ');
        s.push_str(&period.to_string());
    }
    Some(s)
}

/// OCI hugepage sizes look like "2MB" / "1GB"; files use the same text on v1 and v2.
pub fn check_page_size(size: &str) -> Result<()> {
    let ok = size.len() > 2
        && (size.ends_with("KB") || size.ends_with("MB") || size.ends_with("GB"))
        && size[..size.len() - 2].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        bail!("invalid hugepage size {size:?} (want e.g. \"2MB\")");
    }
    Ok(())
}

/// "hugepages-2048kB" (a /sys/kernel/mm/hugepages entry) to the cgroup file spelling "2MB".
pub fn hugepage_dir_to_size(name: &str) -> Option<String> {
    let kb: u64 = name
        .strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()?;
    Some(if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(shares_to_weight(1), 1);
    }

    #[test]
    fn blkio() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10000);
    }

    #[test]
    fn swap() {
        assert_eq!(swap_to_v2(None, None).unwrap(), None);
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(swap_to_v2(Some(100), Some(100)).unwrap(), Some(0));
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(50), None).is_err());
    }

    #[test]
    fn cpu() {
        assert_eq!(cpu_max(None, None), None);
        assert_eq!(cpu_max(Some(50000), Some(100000)).unwrap(), "50000 100000");
        assert_eq!(cpu_max(Some(-1), Some(100000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(Some(20000), None).unwrap(), "20000");
        assert_eq!(v2_limit(-1), "max");
        assert_eq!(v2_limit(4096), "4096");
    }

    #[test]
    fn hugepages() {
        assert_eq!(hugepage_dir_to_size("hugepages-2048kB").unwrap(), "2MB");
        assert_eq!(hugepage_dir_to_size("hugepages-1048576kB").unwrap(), "1GB");
        assert_eq!(hugepage_dir_to_size("hugepages-64kB").unwrap(), "64KB");
        assert!(check_page_size("2MB").is_ok());
        assert!(check_page_size("2M").is_err());
        assert!(check_page_size("../x").is_err());
    }
}
