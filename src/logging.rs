//! Where errors, warnings and debug lines go, in runc's (logrus') formats:
//! `time="…" level=error msg="…"` (text) or `{"level":"error","msg":"…","time":"…"}` (json).
//!
//! Lines go to the `--log` file, or to stderr without one. A fatal error also reaches stderr
//! as a plain line when the log is a file, so a person running rt sees it; shims read the last
//! `"level":"error"` line of the file and match phrases in it. Debug lines are written only
//! with `--debug`, the switch that code anywhere below the commands asks `debug_enabled()`.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

struct Sink {
    file: Option<File>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Opens the log as runc does (create, append, synchronous writes, mode 0644). A log that
/// cannot be opened is an error for the command; what follows, that error included, goes to
/// stderr in the chosen format.
pub fn setup(log: Option<&Path>, json: bool, debug: bool) -> anyhow::Result<()> {
    let opened = log.map(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .custom_flags(libc::O_SYNC)
            .open(p)
            .map_err(|e| anyhow::anyhow!("open {}: {}", p.display(), errno_text(&e)))
    });
    let (file, err) = match opened {
        None => (None, None),
        Some(Ok(f)) => (Some(f), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let _ = SINK.set(Sink { file, json, debug });
    err.map_or(Ok(()), Err)
}

/// Go's wording for an errno: "no such file or directory", not "No such file or directory
/// (os error 2)".
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// The error that ends the command.
pub fn fatal(e: &anyhow::Error) {
    let msg = format!("{e:#}");
    if write("error", &msg) {
        eprintln!("{msg}");
    }
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

/// A line written only with --debug.
pub fn debug(msg: &str) {
    if debug_enabled() {
        write("debug", msg);
    }
}

/// A warning: something was skipped that the user may care about.
pub fn warn(msg: &str) {
    write("warning", msg);
}

/// Writes one line to the log; true when that was a file rather than stderr. Before setup
/// (or in a process that never ran it) lines go to stderr as text.
fn write(level: &str, msg: &str) -> bool {
    let (file, json) = match SINK.get() {
        Some(s) => (s.file.as_ref(), s.json),
        None => (None, false),
    };
    let line = format_line(level, msg, &crate::libcontainer::time::now_log(), json);
    // One write(2) per line so concurrent writers to the same file do not interleave.
    match file {
        Some(mut f) => {
            let _ = f.write_all(line.as_bytes());
            true
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
            false
        }
    }
}

fn format_line(level: &str, msg: &str, time: &str, json: bool) -> String {
    if json {
        // logrus' JSONFormatter: Go's json.Marshal of a map, keys sorted.
        let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
        let text = crate::libcontainer::gojson::to_string(&v).unwrap_or_default();
        format!("{text}\n")
    } else {
        format!(
            "time={} level={level} msg={}\n",
            text_value(time),
            text_value(msg)
        )
    }
}

/// logrus' TextFormatter quotes a value (Go's %q) unless it is made only of letters, digits
/// and `-._/@^+`.
fn text_value(s: &str) -> String {
    let bare = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_as_logrus() {
        assert_eq!(
            format_line(
                "error",
                "container \"x\" does not exist",
                "2026-12-01T21:05:28Z",
                false
            ),
            "time=\"2026-12-01T21:05:28Z\" level=error msg=\"container \\\"x\\\" does not exist\"\n"
        );
        assert_eq!(
            format_line("debug", "ready", "2026-12-01T21:05:28Z", false),
            "time=\"2026-12-01T21:05:28Z\" level=debug msg=ready\n"
        );
        assert_eq!(text_value("a\tb\u{1}"), "\"a\\tb\\x01\"");
    }

    #[test]
    fn json_lines_as_logrus() {
        assert_eq!(
            format_line("warning", "a -> b", "2026-12-01T21:05:28Z", true),
            "{\"level\":\"warning\",\"msg\":\"a -\\u003e b\",\"time\":\"2026-12-01T21:05:28Z\"}\n"
        );
    }
}
