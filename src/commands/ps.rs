use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;
use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    /// Options passed to ps(1) in table form
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let c = Container::load_unlocked(&g.root, &a.id)?;
    if c.state.no_cgroup
        && !crate::libcontainer::namespaces::is_new(
            &c.state.config,
            oci_spec::runtime::LinuxNamespaceType::Pid,
        )
    {
        // runc warns that a rootless ps may fail; rt finds a cgroup-less container's processes
        // by its pid namespace, and without one it knows only the init
        crate::logging::warn(
            "ps may miss processes: the container has no cgroup and no pid namespace of its own",
        );
    }
    let pids = c.pids()?;
    if a.format == "json" {
        crate::out!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let ps_args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let Some(pid_col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!("ps output has no PID column");
    };
    crate::out!("{header}");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            crate::out!("{line}");
        }
    }
    Ok(0)
}
