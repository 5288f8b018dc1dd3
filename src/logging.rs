//! Where errors and debug lines go. Shims read the last `"level":"error"` line of the
//! `--log` file and match phrases in it, so every fatal error goes there as well as to stderr.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

struct Sink {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

pub fn setup(log: Option<&Path>, json: bool, debug: bool) {
    // A log file we cannot open must not stop the command: the error still reaches stderr.
    let file = log.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok());
    let _ = SINK.set(Sink { file, json, debug });
}

pub fn fatal(e: &anyhow::Error) {
    let msg = format!("{e:#}");
    eprintln!("rt: {msg}");
    write("error", &msg);
}

pub fn debug_enabled() -> bool {
    SINK.get().is_some_and(|s| s.debug)
}

/// `debug!(...)`: formats only when --debug is on.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::logging::debug_enabled() {
            $crate::logging::debug(&format!($($arg)*));
        }
    };
}

/// A line only written with --debug (to the log file, or stderr without one).
pub fn debug(msg: &str) {
    let Some(sink) = SINK.get() else { return };
    let t = crate::libcontainer::time::now_rfc3339();
    if sink.file.is_none() {
        eprintln!("rt: debug: {t} {msg}");
    }
    write("debug", msg);
}

/// A warning: something was skipped that the user may care about.
pub fn warn(msg: &str) {
    eprintln!("rt: warning: {msg}");
    write("warning", msg);
}

fn write(level: &str, msg: &str) {
    let Some(Sink {
        file: Some(file),
        json,
        ..
    }) = SINK.get()
    else {
        return;
    };
    let time = crate::libcontainer::time::now_rfc3339();
    let line = if *json {
        let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
        format!("{v}\n")
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}\n")
    };
    // One write(2) per line so concurrent writers to the same file do not interleave.
    let mut f = file;
    let _ = f.write_all(line.as_bytes());
}
