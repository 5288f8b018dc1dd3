use super::{Exit, GlobalOpts};
use crate::libcontainer::container::Container;
use crate::libcontainer::gojson;
use crate::libcontainer::state::PublicState;
use std::os::unix::fs::MetadataExt;

#[derive(clap::Args)]
pub struct Args {
    /// table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the container ids
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(g: &GlobalOpts, a: Args) -> Exit {
    let mut containers = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&g.root) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            // A directory without state (a create in progress or killed) is not a container yet.
            if let Ok(c) = Container::load_unlocked(&g.root, &id) {
                let owner = e.metadata().map(|m| user_name(m.uid())).unwrap_or_default();
                containers.push((c, owner));
            }
        }
    }
    // runc lists its root directory in name order.
    containers.sort_by(|a, b| a.0.id().cmp(b.0.id()));
    if a.quiet {
        for (c, _) in &containers {
            crate::out!("{}", c.id());
        }
        return Ok(0);
    }
    if a.format == "json" {
        let list: Vec<_> = containers
            .iter()
            .map(|(c, owner)| PublicState {
                owner,
                ..c.state.public(c.status())
            })
            .collect();
        crate::out!("{}", gojson::to_string(&list)?);
        return Ok(0);
    }
    let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
    for (c, owner) in &containers {
        let status = c.status();
        let p = c.state.public(status);
        rows.push([
            c.id().to_string(),
            p.pid.to_string(),
            status.to_string(),
            c.state.bundle.display().to_string(),
            c.state.created.clone(),
            owner.clone(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// Columns as Go's tabwriter lays them out for runc (min width 12, padding 3).
fn table(rows: &[[String; 6]]) -> String {
    let mut widths = [0usize; 6];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len() + 3).max(12);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
        })
        .unwrap_or_else(|| format!("#{uid}"))
}
