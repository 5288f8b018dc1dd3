//! One file per subcommand: arguments in, one call into libcontainer or image, output out.
pub mod bundle;
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod events;
pub mod exec;
pub mod features;
pub mod images;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod pull;
pub mod restore;
pub mod resume;
pub mod rmi;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;
pub mod version;

use std::path::PathBuf;

/// The flags that come before the subcommand, as runc has them.
pub struct GlobalOpts {
    pub root: PathBuf,
    pub systemd_cgroup: bool,
    pub rootless: crate::libcontainer::rootless::Rootless,
    /// The criu binary `checkpoint` and `restore` drive.
    pub criu: PathBuf,
}

/// What a command returns on success: the process exit code.
pub type Exit = anyhow::Result<i32>;

/// println! that does not panic when the reader went away (`rt state ID | grep -q ...`): rt
/// keeps SIGPIPE ignored (hooks may close their stdin early), so a closed stdout is an error
/// to drop, not a reason to crash.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The name rt was invoked by (rt, or runc where it is installed under runc's name), as
/// urfave/cli names a program in its help and version lines.
pub fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "rt".to_string())
}
