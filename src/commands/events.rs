use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;
use crate::libcontainer::gojson;
use crate::libcontainer::state::Status;
use anyhow::{bail, Context};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Print one stats object and exit
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats (Go duration: 5s, 100ms, 1m)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

/// One line of output, runc's types.Event: `type`, `id`, then `data` when there is any.
#[derive(Serialize)]
struct Event<'a, T: Serialize> {
    #[serde(rename = "type")]
    typ: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let c = Container::load_unlocked(&g.root, &a.id)?;
    if c.status() == Status::Stopped {
        bail!("container not running");
    }
    // Without a cgroup (rootless) there is nothing to count: runc prints empty stats then.
    let cg = match c.state.no_cgroup {
        true => None,
        false => Some(c.cgroup()?),
    };
    let stats = || match &cg {
        Some(cg) => cg.stats(),
        None => Ok(Default::default()),
    };
    let oom_kills = || cg.as_ref().map_or(Ok(0), |cg| cg.oom_kills());
    let event = |typ, data| {
        gojson::to_string(&Event {
            typ,
            id: &a.id,
            data,
        })
    };
    if a.stats {
        let stats = stats().context("reading cgroup stats")?;
        crate::out!("{}", event("stats", Some(stats))?);
        return Ok(0);
    }
    let interval = parse_duration(&a.interval)?;
    // OOM kills are looked for more often than stats are printed, so they are reported promptly.
    let tick = interval.min(Duration::from_millis(200));
    if g.rootless.cgroups {
        // runc's warning, as it gives it before watching for OOM kills
        crate::logging::warn(
            "getting OOM notifications may fail if you don't have the full access to cgroups",
        );
    }
    let mut ooms = oom_kills().unwrap_or(0);
    let mut next_stats = Instant::now();
    let mut out = std::io::stdout();
    while c.is_alive() {
        let now_ooms = oom_kills().unwrap_or(ooms);
        if now_ooms > ooms {
            ooms = now_ooms;
            let _ = writeln!(out, "{}", event("oom", None)?);
        }
        if Instant::now() >= next_stats {
            if let Ok(stats) = stats() {
                if writeln!(out, "{}", event("stats", Some(stats))?).is_err() {
                    return Ok(0);
                }
            }
            next_stats += interval;
        }
        let _ = out.flush();
        std::thread::sleep(tick);
    }
    Ok(0)
}

/// Go's time.ParseDuration for the units a caller sends: h, m, s, ms, us, ns, combined ("1m30s").
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        bail!("invalid duration {s:?}");
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => bail!("invalid duration {s:?}"),
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    if total <= 0.0 {
        bail!("duration {s:?} must be positive");
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("x").is_err());
    }
}
