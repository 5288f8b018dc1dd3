//! rt: a small OCI container runtime. This file only parses the command line and dispatches.
// Our own entry point instead of std's runtime set-up: see startup.rs. (Unit tests keep the
// test harness's main.)
#![cfg_attr(not(test), no_main)]
mod cgroups;
mod commands;
mod image;
mod init;
mod libcontainer;
mod logging;
mod rootfs;
mod spec;
#[cfg(not(test))]
mod startup;
mod userns;

use clap::{Parser, Subcommand};
use commands::GlobalOpts;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rt",
    about = "Open Container Initiative runtime (small and fast)",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for the state of containers [default: /run/rt; rootless:
    /// $XDG_RUNTIME_DIR/rt]
    #[arg(long)]
    root: Option<PathBuf>,
    /// Write errors (and debug messages) to this file
    #[arg(long)]
    log: Option<PathBuf>,
    /// Format of the log file: text or json
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Log debug messages
    #[arg(long)]
    debug: bool,
    /// Make the container's cgroup a systemd unit; cgroupsPath is "slice:prefix:name"
    /// (e.g. "system.slice:rt:434234")
    #[arg(long)]
    systemd_cgroup: bool,
    /// Ignore cgroup permission errors: true, false or auto (auto: when not root, or root in a
    /// user namespace)
    #[arg(long, default_value = "auto")]
    rootless: String,
    /// The criu binary for checkpoint and restore
    #[arg(long, default_value = "criu")]
    criu: PathBuf,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container from a bundle; it waits for `start`
    Create(commands::create::Args),
    /// Run the user process of a created container
    Start(commands::start::Args),
    /// Print the state of a container as JSON
    State(commands::state::Args),
    /// Send a signal to a container's init process
    Kill(commands::kill::Args),
    /// Delete a container and everything it holds
    Delete(commands::delete::Args),
    /// Create and start a container, and wait for it
    Run(commands::run::Args),
    /// Run one more process in a running container
    Exec(commands::exec::Args),
    /// List the processes in a container
    Ps(commands::ps::Args),
    /// Freeze every process in a container
    Pause(commands::pause::Args),
    /// Thaw a paused container
    Resume(commands::resume::Args),
    /// Change a running container's resource limits
    Update(commands::update::Args),
    /// Stream a container's stats and OOM events (or one stats object with --stats)
    Events(commands::events::Args),
    /// Print the runtime-spec features document: what rt implements
    Features(commands::features::Args),
    /// Checkpoint a running container with criu
    Checkpoint(commands::checkpoint::Args),
    /// Restore a container from a checkpoint
    Restore(commands::restore::Args),
    /// Write a default config.json
    Spec(commands::spec::Args),
    /// List containers
    List(commands::list::Args),
    /// Pull an image into the local store
    Pull(commands::pull::Args),
    /// Make a runtime bundle (rootfs + config.json) from a stored image
    Bundle(commands::bundle::Args),
    /// List images in the local store
    Images(commands::images::Args),
    /// Remove images from the local store and free their unshared blobs
    Rmi(commands::rmi::Args),
    /// (internal) the container's init; never call it by hand
    #[command(hide = true)]
    Init,
}

/// The global flags, with what rootless mode decides: the state root when none is given, and
/// whether cgroup permission errors may be lived with.
#[cfg_attr(test, allow(dead_code))]
fn global_opts(cli: &Cli) -> anyhow::Result<GlobalOpts> {
    use libcontainer::rootless;
    let rootless = rootless::detect(rootless::parse_flag(&cli.rootless)?, cli.systemd_cgroup);
    let root = match &cli.root {
        Some(r) => r.clone(),
        None => rootless::default_state_root()?,
    };
    Ok(GlobalOpts {
        root,
        systemd_cgroup: cli.systemd_cgroup,
        rootless,
        criu: cli.criu.clone(),
    })
}

/// The C entry point; arguments come from std::env, which glibc fills before this runs.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    startup::prepare();
    // Init, re-exec'd by rt for every container and exec, goes straight to work: building clap's
    // whole command tree would cost it time and touched pages for nothing.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        init::main();
    }
    run();
    // Not a plain return: std's exit flushes stdout, libc's would not know about its buffer.
    std::process::exit(0)
}

/// go-runc sends `restore ... -no-subreaper` with one dash (Go's flag parsing takes both).
#[cfg_attr(test, allow(dead_code))]
fn go_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    for a in args {
        let restoring = out.iter().any(|x| x == "restore") && !out.iter().any(|x| x == "exec");
        if restoring && a == "-no-subreaper" {
            out.push("--no-subreaper".into());
        } else {
            out.push(a);
        }
    }
    out
}

/// Help laid out as runc's (urfave/cli): NAME, USAGE, then the options, under the name rt was
/// invoked by, so scripts that read `runc -h` or `runc delete -h` find the lines they expect
/// from rt installed as runc. (clap's `{bin}` would hyphenate "runc-delete".)
#[cfg_attr(test, allow(dead_code))]
fn help_template(prog: &str, command: Option<&str>) -> String {
    let name = match command {
        Some(c) => format!("{prog} {c}"),
        None => prog.to_string(),
    };
    format!("NAME:\n   {name} - {{about}}\n\nUSAGE:\n   {{usage}}\n\n{{all-args}}")
}

#[cfg_attr(test, allow(dead_code))]
fn command_tree() -> clap::Command {
    use clap::CommandFactory;
    let prog = commands::program_name();
    Cli::command()
        .bin_name(&prog)
        .help_template(help_template(&prog, None))
        .mut_subcommands(|c| {
            let t = help_template(&prog, Some(c.get_name()));
            c.help_template(t)
        })
}

#[cfg_attr(test, allow(dead_code))]
fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command_tree().try_get_matches_from(go_style_args(std::env::args_os()))?)
}

#[cfg_attr(test, allow(dead_code))]
fn asks_for_help() -> bool {
    std::env::args().any(|a| a == "-h" || a == "--help")
}

#[cfg_attr(test, allow(dead_code))]
fn run() {
    // runc (urfave/cli) exits 1 on a usage error and 3 on an unknown command; clap's default
    // is 2 for both.
    let mut cli = parse().unwrap_or_else(|e| {
        if e.kind() == clap::error::ErrorKind::InvalidSubcommand && asks_for_help() {
            // runc's words for help on a command it does not have
            let topic = match e.get(clap::error::ContextKind::InvalidSubcommand) {
                Some(clap::error::ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            logging::fatal(&anyhow::anyhow!("No help topic for '{topic}'"));
            std::process::exit(3)
        }
        let _ = e.print();
        let code = match e.kind() {
            _ if !e.use_stderr() => 0,
            clap::error::ErrorKind::InvalidSubcommand => 3,
            _ => 1,
        };
        std::process::exit(code)
    });
    if cli.version {
        commands::version::print();
        return;
    }
    let Some(command) = cli.command.take() else {
        // As runc: no command shows the help.
        let _ = command_tree().print_help();
        return;
    };
    if let Command::Init = command {
        init::main();
    }
    if let Err(e) = logging::setup(cli.log.as_deref(), cli.log_format == "json", cli.debug) {
        logging::fatal(&e);
        std::process::exit(1);
    }
    let g = match global_opts(&cli) {
        Ok(g) => g,
        Err(e) => {
            logging::fatal(&e);
            std::process::exit(1);
        }
    };
    // runc's exec exits 255 when it cannot run the process (its own status otherwise), and
    // says so first: callers tell the two apart by that.
    let (failure_code, failure_prefix) = match command {
        Command::Exec(_) => (255, Some("exec failed")),
        _ => (1, None),
    };
    let result = match command {
        Command::Create(a) => commands::create::run(&g, a),
        Command::Start(a) => commands::start::run(&g, a),
        Command::State(a) => commands::state::run(&g, a),
        Command::Kill(a) => commands::kill::run(&g, a),
        Command::Delete(a) => commands::delete::run(&g, a),
        Command::Run(a) => commands::run::run(&g, a),
        Command::Exec(a) => commands::exec::run(&g, a),
        Command::Ps(a) => commands::ps::run(&g, a),
        Command::Pause(a) => commands::pause::run(&g, a),
        Command::Resume(a) => commands::resume::run(&g, a),
        Command::Update(a) => commands::update::run(&g, a),
        Command::Events(a) => commands::events::run(&g, a),
        Command::Features(a) => commands::features::run(&g, a),
        Command::Checkpoint(a) => commands::checkpoint::run(&g, a),
        Command::Restore(a) => commands::restore::run(&g, a),
        Command::Spec(a) => commands::spec::run(&g, a),
        Command::List(a) => commands::list::run(&g, a),
        Command::Pull(a) => commands::pull::run(&g, a),
        Command::Bundle(a) => commands::bundle::run(&g, a),
        Command::Images(a) => commands::images::run(&g, a),
        Command::Rmi(a) => commands::rmi::run(&g, a),
        Command::Init => unreachable!("handled above"),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let e = match failure_prefix {
                Some(p) => e.context(p),
                None => e,
            };
            logging::fatal(&e);
            std::process::exit(failure_code);
        }
    }
}
