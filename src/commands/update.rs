use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;
use crate::libcontainer::update::{parse_bytes, update};
use anyhow::Context;
use serde_json::{json, Value};
use std::io::Read;

#[derive(clap::Args)]
pub struct Args {
    /// LinuxResources JSON file, or - for stdin
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (microseconds)
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (microseconds, -1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU realtime period (microseconds)
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (microseconds)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPUs to use (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let mut c = Container::load(&g.root, &a.id)?;
    let patch = match &a.resources {
        Some(src) => {
            let mut text = Vec::new();
            if src == "-" {
                std::io::stdin()
                    .read_to_end(&mut text)
                    .context("reading resources from stdin")?;
            } else {
                text = std::fs::read(src).with_context(|| format!("reading --resources {src}"))?;
            }
            let v: Value = serde_json::from_slice(&text).context("--resources: invalid JSON")?;
            serde_json::from_value::<oci_spec::runtime::LinuxResources>(v.clone())
                .context("--resources: not a LinuxResources object")?;
            v
        }
        None => from_flags(&a)?,
    };
    update(&mut c, patch)?;
    Ok(0)
}

fn from_flags(a: &Args) -> anyhow::Result<Value> {
    let mut p = json!({});
    let mut set = |section: &str, key: &str, v: Value| {
        p[section][key] = v;
    };
    if let Some(w) = a.blkio_weight {
        set("blockIO", "weight", json!(w));
    }
    if let Some(v) = a.cpu_period {
        set("cpu", "period", json!(v));
    }
    if let Some(v) = a.cpu_quota {
        set("cpu", "quota", json!(v));
    }
    if let Some(v) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", json!(v));
    }
    if let Some(v) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", json!(v));
    }
    if let Some(v) = a.cpu_share {
        set("cpu", "shares", json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    if let Some(v) = &a.memory {
        set("memory", "limit", json!(parse_bytes(v)?));
    }
    if let Some(v) = &a.memory_reservation {
        set("memory", "reservation", json!(parse_bytes(v)?));
    }
    if let Some(v) = &a.memory_swap {
        set("memory", "swap", json!(parse_bytes(v)?));
    }
    if let Some(v) = a.pids_limit {
        set("pids", "limit", json!(v));
    }
    Ok(p)
}
