//! What callers read besides the container: log lines (`--debug`, `--log`, `--log-format`),
//! exit statuses, and the byte layout of `state`, `list --format json` and `events`.

use crate::common::*;
use crate::require_root;
use serde_json::{json, Value};
use std::fs;
use std::process::Stdio;

/// Every non-empty line of `text` is a logrus line; returns (level, msg) of each.
#[track_caller]
fn log_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_log_line)
        .collect()
}

#[track_caller]
fn assert_has_debug(lines: &[(String, String)], what: &str) {
    assert!(
        lines.iter().any(|(l, _)| l == "debug"),
        "{what}: no debug line in {lines:#?}"
    );
    assert!(
        lines.iter().all(|(l, _)| l == "debug" || l == "info"),
        "{what}: more than debug lines: {lines:#?}"
    );
}

#[test]
fn debug_lines_for_run_and_exec() {
    require_root!();
    // run: the debug lines on stderr, the container's own output (none) beside them
    let r = Ctr::new("dbgrun", config_with_args(&["true"]));
    let out = r.rt(&["--debug", "run", "--bundle", r.bundle_str(), &r.id]);
    out.ok();
    assert_has_debug(&log_lines(&out.stderr), "run --debug");
    // the stages under runc's names, which runc's own tests and people's scripts look for
    for stage in [
        "nsexec container setup",
        "child process in init()",
        "init: closing the pipe to signal completion",
    ] {
        assert!(
            out.stderr.contains(stage),
            "run --debug: no {stage:?}: {out:#?}"
        );
    }

    let c = Ctr::started("dbgexec", example("sleep"));
    let out = c.rt(&["--debug", "exec", &c.id, "true"]);
    out.ok();
    assert_has_debug(&log_lines(&out.stderr), "exec --debug");
    for stage in [
        "nsexec container setup",
        "child process in init()",
        "setns_init: about to exec",
    ] {
        assert!(
            out.stderr.contains(stage),
            "exec --debug: no {stage:?}: {out:#?}"
        );
    }
    // the same lines as json, to the --log file and not to stderr
    let log = c.bundle.path().join("debug.json");
    let l = log.to_str().unwrap();
    let out = c.rt(&[
        "--debug",
        "--log",
        l,
        "--log-format",
        "json",
        "exec",
        &c.id,
        "true",
    ]);
    out.ok();
    assert_eq!(out.stderr, "", "{out:#?}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.lines().all(|l| l.starts_with('{')), "{text}");
    assert_has_debug(&log_lines(&text), "exec --debug --log json");
    // without --debug, nothing
    let out = c.exec(&[], &["true"]);
    out.ok();
    assert_eq!(out.stderr, "", "{out:#?}");
    // the other commands: whatever they write is logrus lines
    for args in [
        vec!["--debug", "state", &c.id],
        vec!["--debug", "kill", &c.id, "0"],
        vec!["--debug", "pause", &c.id],
        vec!["--debug", "resume", &c.id],
        vec!["--debug", "delete", "--force", &c.id],
    ] {
        let out = c.rt(&args);
        out.ok();
        log_lines(&out.stderr);
    }
}

#[test]
fn fatal_error_lines_as_runc() {
    require_root!();
    let c = Ctr::new("fatal", example("sleep"));
    // Without --log the error is a logrus line on stderr, in the chosen format.
    for format in ["text", "json"] {
        let out = c.rt(&["--log-format", format, "state", &c.id]);
        out.one_error_line();
        assert_eq!(out.code(), 1);
        let lines = log_lines(&out.stderr);
        assert_eq!(lines[0].0, "error", "{out:#?}");
        assert!(lines[0].1.contains("does not exist"), "{out:#?}");
        assert_eq!(out.stderr.starts_with('{'), format == "json", "{out:#?}");
    }
    // With --log the line goes to the file and stderr gets the bare message.
    for format in ["text", "json"] {
        let log = c.bundle.path().join(format!("log.{format}"));
        let out = c.rt(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "state",
            &c.id,
        ]);
        out.fails_with("does not exist").one_error_line();
        assert!(
            !out.stderr.starts_with("time=") && !out.stderr.starts_with('{'),
            "{out:#?}"
        );
        let lines = log_lines(&fs::read_to_string(&log).unwrap());
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(lines[0].0, "error");
        assert_eq!(lines[0].1, out.stderr.trim_end());
    }
}

#[test]
fn unopenable_log_fails_every_command() {
    require_root!();
    let c = Ctr::new("badlog", example("sleep"));
    let missing_dir = c.bundle.path().join("no/such/dir/log");
    let missing_dir = format!("--log={}", missing_dir.display());
    for log in ["--log=invalid:/path", missing_dir.as_str()] {
        let path = log.strip_prefix("--log=").unwrap();
        for args in [
            &["list"][..],
            &["state", &c.id],
            &["features"],
            &["ps", &c.id],
            &["delete", "--force", &c.id],
            &["spec"],
            &["exec", &c.id, "true"],
            &["create", "--bundle", c.bundle_str(), &c.id],
        ] {
            let mut a = vec![log];
            a.extend(args);
            let out = c.rt(&a);
            // runc: `open invalid:/path: no such file or directory`, before the command runs
            // (so exec's own 255 does not apply)
            assert_eq!(out.code(), 1, "{a:?}: {out:#?}");
            out.one_error_line();
            let lines = log_lines(&out.stderr);
            assert_eq!(
                lines[0].1,
                format!("open {path}: no such file or directory"),
                "{a:?}"
            );
        }
    }
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn exit_statuses_as_runc() {
    require_root!();
    let c = Ctr::new("codes", example("sleep"));
    // unknown id: 1 for every command, 255 for exec, 0 for delete --force
    for args in [
        &["start", &c.id][..],
        &["state", &c.id],
        &["kill", &c.id],
        &["delete", &c.id],
        &["pause", &c.id],
        &["resume", &c.id],
        &["ps", &c.id],
        &["events", "--stats", &c.id],
        &["update", "--pids-limit", "10", &c.id],
    ] {
        let out = c.rt(args);
        assert_eq!(out.code(), 1, "{args:?}: {out:#?}");
        out.fails_with("does not exist").one_error_line();
    }
    let out = c.exec(&[], &["true"]);
    assert_eq!(out.code(), 255, "{out:#?}");
    out.fails_with("exec failed: ")
        .fails_with("does not exist")
        .one_error_line();
    c.delete(true).ok();

    // refused create and run: 1, nothing left
    let missing = c.bundle.path().join("not-here");
    let missing = missing.to_str().unwrap();
    for verb in ["create", "run"] {
        let out = c.rt(&[verb, "--bundle", missing, &c.id]);
        assert_eq!(out.code(), 1, "{verb} missing bundle: {out:#?}");
        out.one_error_line();
    }
    let mut nobin = config_with_args(&["nope"]);
    nobin["linux"]["cgroupsPath"] = json!(c.cgroups_path);
    for (tag, body) in [
        (
            "badjson",
            "{\"ociVersion\": \"1.0.2\", \"process\": {".to_string(),
        ),
        ("nobin", nobin.to_string()),
    ] {
        fs::write(c.bundle.path().join("config.json"), &body).unwrap();
        for verb in ["create", "run"] {
            let out = c.rt(&[verb, "--bundle", c.bundle_str(), &c.id]);
            assert_eq!(out.code(), 1, "{verb} {tag}: {out:#?}");
            out.one_error_line();
            assert!(c.leftovers().is_empty(), "{tag}: {:#?}", c.leftovers());
        }
    }
}

#[test]
fn exec_failures_exit_255() {
    require_root!();
    let c = Ctr::started("exec255", example("sleep"));
    for (args, phrase) in [
        (
            &["nope"][..],
            "exec: \"nope\": executable file not found in $PATH",
        ),
        (&["/nope"], "/nope"),
        // runc: `process args cannot be empty`
        (&[], ""),
    ] {
        let out = c.exec(&[], args);
        assert_eq!(out.code(), 255, "{args:?}: {out:#?}");
        out.fails_with("exec failed: ")
            .fails_with(phrase)
            .one_error_line();
    }
    let out = c.exec(&["--process", "/no/such/process.json"], &[]);
    assert_eq!(out.code(), 255, "{out:#?}");
    out.fails_with("/no/such/process.json").one_error_line();
    // the process's own status is passed through
    assert_eq!(c.exec(&[], &["sh", "-c", "exit 7"]).code(), 7);
    // a usage error is 1, as for every command
    let out = c.rt(&["exec"]);
    assert_eq!(out.code(), 1, "{out:#?}");
}

#[test]
fn unknown_command_exits_3_and_no_command_shows_help() {
    let root = tempfile::tempdir().unwrap();
    let rt = |args: &[&str]| run_cmd(rt_cmd(root.path(), root.path(), args), Stdio::null());
    // urfave/cli: "No help topic for 'nosuch'", status 3
    let out = rt(&["nosuch"]);
    assert_eq!(out.code(), 3, "{out:#?}");
    assert!(out.stderr.contains("nosuch"), "{out:#?}");
    let out = rt(&[]);
    out.ok();
    assert!(out.stdout.contains("create"), "{out:#?}");
}

/// `-v` and `-h` as runc's (urfave/cli) lay them out, under the name the runtime is invoked
/// by: installed as `runc` (a symlink here), rt answers to runc's own help and version tests.
#[test]
fn help_and_version_as_runc() {
    let dir = tempfile::tempdir().unwrap();
    let runc = dir.path().join("runc");
    std::os::unix::fs::symlink(rt_bin(), &runc).unwrap();
    let name = rt_bin().file_name().unwrap().to_string_lossy().into_owned();
    for (prog, name) in [(rt_bin(), name.as_str()), (runc, "runc")] {
        let run = |args: &[&str]| {
            let mut c = std::process::Command::new(&prog);
            c.args(args).current_dir(dir.path());
            run_cmd(c, Stdio::null())
        };
        let out = run(&["-v"]);
        out.ok();
        let lines: Vec<_> = out.stdout.lines().collect();
        let version = lines[0]
            .strip_prefix(&format!("{name} version "))
            .unwrap_or("");
        assert!(
            version
                .split('.')
                .take(3)
                .all(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit())),
            "{out:#?}"
        );
        assert!(lines[1].starts_with("commit:"), "{out:#?}");
        assert!(lines[2].starts_with("spec: 1."), "{out:#?}");
        for help in ["-h", "--help"] {
            let out = run(&[help]);
            out.ok();
            let lines: Vec<_> = out.stdout.lines().collect();
            assert_eq!(lines[0], "NAME:", "{out:#?}");
            let about = format!("   {name} - Open Container Initiative runtime");
            assert!(lines[1].starts_with(&about), "{out:#?}");
        }
        for cmd in [
            "delete", "exec", "kill", "list", "run", "spec", "state", "update",
        ] {
            let out = run(&[cmd, "-h"]);
            out.ok();
            let lines: Vec<_> = out.stdout.lines().collect();
            assert_eq!(lines[0], "NAME:", "{out:#?}");
            assert!(
                lines[1].starts_with(&format!("   {name} {cmd} - ")),
                "{out:#?}"
            );
        }
        for args in [
            &["foo", "-h"][..],
            &["--root", "/nonexistent", "foo", "--help"],
        ] {
            let out = run(args);
            assert_ne!(out.code(), 0, "{out:#?}");
            assert!(out.stderr.contains("No help topic for 'foo'"), "{out:#?}");
        }
    }
}

/// Annotations written in no particular order, with characters Go escapes.
fn annotated_config(c: &Ctr) {
    let cfg = example("sleep");
    let mut text = serde_json::to_string_pretty(&cfg).unwrap();
    let at = text.find('{').unwrap() + 1;
    text.insert_str(
        at,
        r#""annotations": {"zz": "last", "aa": "first", "mm": "a<b>&c"},"#,
    );
    let text = text.replacen(
        "\"linux\": {",
        &format!("\"linux\": {{\"cgroupsPath\": \"{}\",", c.cgroups_path),
        1,
    );
    fs::write(c.bundle.path().join("config.json"), text).unwrap();
}

#[test]
fn state_and_list_bytes_as_runc() {
    require_root!();
    let c = Ctr::new("bytes", example("sleep"));
    annotated_config(&c);
    c.create().ok();
    let out = c.rt(&["state", &c.id]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    // runc's MarshalIndent of its containerState: this order, annotations sorted and
    // HTML-escaped as Go does, no newline at the end
    let want = format!(
        "{{\n  \"ociVersion\": \"{}\",\n  \"id\": \"{}\",\n  \"pid\": {},\n  \
         \"status\": \"created\",\n  \"bundle\": \"{}\",\n  \"rootfs\": \"{}/rootfs\",\n  \
         \"created\": \"{}\",\n  \"annotations\": {{\n    \"aa\": \"first\",\n    \
         \"mm\": \"a\\u003cb\\u003e\\u0026c\",\n    \"zz\": \"last\"\n  }},\n  \"owner\": \"\"\n}}",
        s("ociVersion"),
        c.id,
        v["pid"],
        c.bundle_str(),
        c.bundle_str(),
        s("created"),
    );
    assert_eq!(out.stdout, want);
    // the same bytes every time
    assert_eq!(c.rt(&["state", &c.id]).stdout, want);
    // created: Go's RFC3339Nano, no trailing zeros in the fraction
    let created = s("created");
    let frac = created.split('.').nth(1).unwrap_or("Z");
    assert!(!frac.trim_end_matches('Z').ends_with('0'), "{created}");

    let out = c.rt(&["list", "--format", "json"]);
    out.ok();
    let want = format!(
        "[{{\"ociVersion\":\"{}\",\"id\":\"{}\",\"pid\":{},\"status\":\"created\",\
         \"bundle\":\"{}\",\"rootfs\":\"{}/rootfs\",\"created\":\"{}\",\
         \"annotations\":{{\"aa\":\"first\",\"mm\":\"a\\u003cb\\u003e\\u0026c\",\"zz\":\"last\"}},\
         \"owner\":\"root\"}}]\n",
        s("ociVersion"),
        c.id,
        v["pid"],
        c.bundle_str(),
        c.bundle_str(),
        s("created"),
    );
    assert_eq!(out.stdout, want);
}

#[test]
fn list_in_id_order() {
    require_root!();
    // runc lists its root directory by name, whatever the creation order
    let b = Ctr::new("order", example("sleep"));
    let a_id = format!("a-{}", b.id);
    let z_id = format!("z-{}", b.id);
    for id in [&z_id, &a_id] {
        let mut cfg = example("sleep");
        cfg["linux"]["cgroupsPath"] = json!(cgroup_of(id).0);
        b.write_config(&cfg);
        b.rt(&["create", "--bundle", b.bundle_str(), id]).ok();
    }
    let out = b.rt(&["list", "-q"]);
    for id in [&z_id, &a_id] {
        b.rt(&["delete", "--force", id]).ok();
    }
    out.ok();
    assert_eq!(out.stdout, format!("{a_id}\n{z_id}\n"));
}

#[test]
fn events_field_order() {
    require_root!();
    let c = Ctr::started("evorder", example("sleep"));
    let out = c.rt(&["events", "--stats", &c.id]);
    out.ok();
    let line = out.stdout.trim_end();
    assert!(
        line.starts_with(&format!(
            "{{\"type\":\"stats\",\"id\":\"{}\",\"data\":{{",
            c.id
        )),
        "{line}"
    );
    // the stats keys in runc's order (types.Stats); runc has a few more (cpuset, intel_rdt,
    // network_interfaces) that rt does not fill
    let keys = Keys::of(line);
    assert_eq!(keys.names(), ["type", "id", "data"]);
    let data: Vec<&str> = keys
        .get("data")
        .names()
        .into_iter()
        .filter(|k| ["cpu", "memory", "pids", "blkio", "hugetlb"].contains(k))
        .collect();
    assert_eq!(
        data,
        ["cpu", "memory", "pids", "blkio", "hugetlb"],
        "{line}"
    );
    assert_eq!(keys.get("data").get("cpu").names(), ["usage", "throttling"]);
    let mem = keys.get("data").get("memory");
    let mem: Vec<&str> = mem.names().into_iter().filter(|k| *k != "cache").collect();
    assert_eq!(
        mem,
        ["usage", "swap", "kernel", "kernelTCP", "raw"],
        "{line}"
    );
    // raw counters sorted, as Go prints a map
    let raw = keys.get("data").get("memory").get("raw").names();
    let mut sorted = raw.clone();
    sorted.sort();
    assert_eq!(raw, sorted, "{line}");
}
