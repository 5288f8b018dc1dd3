//! Resource usage in the JSON shape `runc events --stats` prints, from v1 or v2 files.
use super::convert;
use super::fs;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// Nanoseconds.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// 0 when unlimited, as in runc.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Directories to read v1 stats from, per controller (None: not mounted).
pub struct V1StatDirs<'a> {
    pub cpu: Option<&'a Path>,
    pub cpuacct: Option<&'a Path>,
    pub memory: Option<&'a Path>,
    pub pids: Option<&'a Path>,
    pub blkio: Option<&'a Path>,
    pub hugetlb: Option<&'a Path>,
}

/// USER_HZ is 100 on every Linux architecture rt targets.
const NS_PER_TICK: u64 = 1_000_000_000 / 100;

/// Page sizes the kernel offers, spelled as cgroup files spell them ("2MB").
pub fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| convert::hugepage_dir_to_size(&e.file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

fn limit_or_zero(v: u64) -> u64 {
    if v == u64::MAX {
        0
    } else {
        v
    }
}

pub fn v1(d: &V1StatDirs) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(dir) = d.cpuacct {
        s.cpu.usage.total = fs::read_u64(dir, "cpuacct.usage")?;
        s.cpu.usage.percpu = fs::read(dir, "cpuacct.usage_percpu")?
            .split_whitespace()
            .map(fs::parse_u64)
            .collect::<Result<_>>()
            .context("parsing cpuacct.usage_percpu")?;
        let st = fs::parse_flat_keyed(&fs::read(dir, "cpuacct.stat")?);
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * NS_PER_TICK;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * NS_PER_TICK;
    }
    if let Some(dir) = d.cpu {
        let st = fs::parse_flat_keyed(&fs::read(dir, "cpu.stat")?);
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(dir) = d.memory {
        let entry = |prefix: &str| -> Result<MemoryEntry> {
            Ok(MemoryEntry {
                usage: fs::read_u64_or_zero(dir, &format!("{prefix}.usage_in_bytes"))?,
                max: fs::read_u64_or_zero(dir, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: fs::read_u64_or_zero(dir, &format!("{prefix}.failcnt"))?,
                limit: fs::read_u64_or_zero(dir, &format!("{prefix}.limit_in_bytes"))?,
            })
        };
        s.memory.usage = entry("memory")?;
        s.memory.swap = entry("memory.memsw")?;
        s.memory.kernel = entry("memory.kmem")?;
        s.memory.kernel_tcp = entry("memory.kmem.tcp")?;
        s.memory.raw = fs::parse_flat_keyed(&fs::read(dir, "memory.stat")?);
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(dir) = d.pids {
        s.pids.current = fs::read_u64(dir, "pids.current")?;
        s.pids.limit = limit_or_zero(fs::read_u64(dir, "pids.max")?);
    }
    if let Some(dir) = d.blkio {
        // CFQ's files are gone on modern kernels; the throttle ones always exist and count
        // every request.
        let (bytes, ios) = if fs::exists(dir, "blkio.io_service_bytes_recursive") {
            (
                "blkio.io_service_bytes_recursive",
                "blkio.io_serviced_recursive",
            )
        } else {
            (
                "blkio.throttle.io_service_bytes_recursive",
                "blkio.throttle.io_serviced_recursive",
            )
        };
        s.blkio.io_service_bytes_recursive = parse_blkio_v1(&fs::read(dir, bytes)?);
        s.blkio.io_serviced_recursive = parse_blkio_v1(&fs::read(dir, ios)?);
    }
    if let Some(dir) = d.hugetlb {
        for size in hugepage_sizes() {
            let f = |k: &str| fs::read_u64_or_zero(dir, &format!("hugetlb.{size}.{k}"));
            s.hugetlb.insert(
                size.clone(),
                Hugetlb {
                    usage: f("usage_in_bytes")?,
                    max: f("max_usage_in_bytes")?,
                    failcnt: f("failcnt")?,
                },
            );
        }
    }
    Ok(s)
}

/// "8:0 Read 4096" lines; "Total" lines are dropped like runc does.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let dev = it.next()?;
            let op = it.next()?;
            let value = it.next()?.parse().ok()?;
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_string(),
                value,
            })
        })
        .collect()
}

/// io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") in v1's Read/Write entries.
pub fn parse_io_stat(text: &str) -> Blkio {
    let mut b = Blkio::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
            continue;
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse::<u64>() else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut b.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut b.io_service_bytes_recursive, "Write"),
                "rios" => (&mut b.io_serviced_recursive, "Read"),
                "wios" => (&mut b.io_serviced_recursive, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    b
}

pub fn v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(text) = fs::read_opt(dir, "cpu.stat")? {
        let st = fs::parse_flat_keyed(&text);
        let g = |k: &str| st.get(k).copied().unwrap_or(0);
        s.cpu.usage.total = g("usage_usec") * 1000;
        s.cpu.usage.user = g("user_usec") * 1000;
        s.cpu.usage.kernel = g("system_usec") * 1000;
        s.cpu.throttling = Throttling {
            periods: g("nr_periods"),
            throttled_periods: g("nr_throttled"),
            throttled_time: g("throttled_usec") * 1000,
        };
    }
    if let Some(text) = fs::read_opt(dir, "memory.stat")? {
        s.memory.raw = fs::parse_flat_keyed(&text);
        s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        let events = fs::read_opt(dir, "memory.events")?.unwrap_or_default();
        s.memory.usage = MemoryEntry {
            usage: fs::read_u64(dir, "memory.current")?,
            max: fs::read_u64_or_zero(dir, "memory.peak")?,
            limit: fs::read_u64(dir, "memory.max")?,
            failcnt: fs::keyed_value(&events, "max").unwrap_or(0),
        };
        // v1 reported memory+swap; keep that meaning so consumers need not care.
        if let Some(cur) = fs::read_opt(dir, "memory.swap.current")? {
            let usage = fs::parse_u64(&cur)?;
            let limit = fs::read_u64(dir, "memory.swap.max")?;
            s.memory.swap = MemoryEntry {
                usage: usage + s.memory.usage.usage,
                limit: if limit == u64::MAX {
                    limit
                } else {
                    limit.saturating_add(s.memory.usage.limit)
                },
                ..Default::default()
            };
        }
    }
    if let Some(cur) = fs::read_opt(dir, "pids.current")? {
        s.pids.current = fs::parse_u64(&cur)?;
        s.pids.limit = limit_or_zero(fs::read_u64(dir, "pids.max")?);
    }
    if let Some(text) = fs::read_opt(dir, "io.stat")? {
        s.blkio = parse_io_stat(&text);
    }
    s.hugetlb = hugetlb_v2(dir)?;
    Ok(s)
}

/// hugetlb.<size>.{current,events} of a cgroup2 directory; sizes whose files are missing
/// (controller not enabled) are left out.
pub fn hugetlb_v2(dir: &Path) -> Result<BTreeMap<String, Hugetlb>> {
    let mut out = BTreeMap::new();
    for size in hugepage_sizes() {
        let Some(cur) = fs::read_opt(dir, &format!("hugetlb.{size}.current"))? else {
            continue;
        };
        let events = fs::read_opt(dir, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
        let failcnt = fs::keyed_value(&events, "max").unwrap_or(0);
        out.insert(
            size,
            Hugetlb {
                usage: fs::parse_u64(&cur)?,
                max: 0,
                failcnt,
            },
        );
    }
    Ok(out)
}

/// OOM kills so far: `oom_kill` in memory.oom_control (v1) or memory.events (v2).
pub fn oom_kills(dir: &Path, v2: bool) -> Result<u64> {
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    Ok(fs::keyed_value(&fs::read(dir, file)?, "oom_kill").unwrap_or(0))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn blkio_v1() {
        let e = parse_blkio_v1("8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n");
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
    }

    #[test]
    fn io_stat() {
        let b = parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n");
        assert_eq!(b.io_service_bytes_recursive.len(), 2);
        assert_eq!(
            b.io_serviced_recursive[1],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Write".into(),
                value: 2
            }
        );
    }

    #[test]
    fn json_shape() {
        let mut s = Stats::default();
        s.cpu.usage.total = 5;
        s.memory.usage.limit = 7;
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["cpu"]["usage"]["total"], 5);
        assert_eq!(v["cpu"]["usage"]["kernel"], 0);
        assert_eq!(v["memory"]["usage"]["limit"], 7);
        assert!(v["memory"]["kernelTCP"].is_object());
        assert!(v["hugetlb"].is_object());
    }
}
