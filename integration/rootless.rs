//! Rootless: the runtime run by a real unprivileged user (made per test, see `harness`), and by
//! root inside a user namespace, as podman runs it. Each test is proven against runc 1.1.5 run
//! the same way (`RT_BIN=/usr/sbin/runc`).

mod harness;

use crate::common::*;
use crate::require_root;
use harness::User;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

#[test]
fn rootless_flag_takes_runc_values() {
    require_root!();
    let c = Ctr::new("rlflag", config_with_args(&["true"]));
    // both forms, as urfave/cli takes a string flag
    let out = c.rt(&["--rootless", "true", "state", "nonexistent"]);
    out.fails_with("does not exist");
    let out = c.rt(&["--rootless=auto", "state", "nonexistent"]);
    out.fails_with("does not exist");
    // a bad value fails the command that would use it, before anything is made
    let out = c.rt(&[
        "--rootless",
        "bogus",
        "create",
        "--bundle",
        c.bundle_str(),
        &c.id,
    ]);
    out.fails_with("bogus");
    assert!(c.leftovers().is_empty(), "{:?}", c.leftovers());
}

#[test]
fn state_root_is_the_users_runtime_dir() {
    let Some(u) = User::new() else { return };
    u.rt(&["list"], Path::new("/")).ok();
    let meta = fs::metadata(u.state_root()).unwrap();
    // 0700 with the sticky bit (runc's: the session's cleaner leaves it alone)
    assert_eq!(meta.permissions().mode() & 0o7777, 0o1700);
    assert_eq!((meta.uid(), meta.gid()), (u.uid, u.gid));

    // Root in a user namespace (podman's way of running the runtime) is rootless too, unless
    // $USER says it is root.
    for (user, wants) in [(u.name.as_str(), true), ("root", false)] {
        let xdg = u.xdg.join("inns");
        fs::create_dir(&xdg).unwrap();
        std::os::unix::fs::chown(&xdg, Some(u.uid), Some(u.gid)).unwrap();
        let mut cmd = u.command(
            Path::new("/usr/bin/unshare"),
            &[
                "--user",
                "--map-root-user",
                "--",
                rt_bin().to_str().unwrap(),
                "list",
            ],
            Path::new("/"),
            &[],
        );
        cmd.env("XDG_RUNTIME_DIR", &xdg).env("USER", user);
        let out = run_cmd(cmd, Stdio::null());
        let root = xdg.join(u.state_root().file_name().unwrap());
        assert_eq!(root.is_dir(), wants, "USER={user}: {out:#?}");
        fs::remove_dir_all(&xdg).unwrap();
    }
}

#[test]
fn spec_rootless_is_runcs_and_valid() {
    let Some(u) = User::new() else { return };
    let c = harness::RlCtr::new(&u, "spec");
    let spec = c.config();
    let dir = crate::schema::spec_schema_dir();
    if dir.join("config-schema.json").is_file() {
        let v = crate::schema::Validator::new(dir);
        let errs = v.check(&spec, "config-schema.json");
        assert!(
            errs.is_empty(),
            "spec --rootless does not validate: {errs:#?}"
        );
        // the validator can fail on a config: each of these breaks one rule
        let mut bad = spec.clone();
        bad["linux"]["uidMappings"][0]["size"] = "one".into();
        bad["mounts"][0]["destination"] = 7.into();
        bad["process"]["rlimits"][0]["type"] = "NOFILE".into();
        assert_eq!(v.check(&bad, "config-schema.json").len(), 3);
    } else {
        eprintln!("skip: no runtime-spec schema at {}", dir.display());
    }
    let types: Vec<&str> = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
    let own = |id: u32| serde_json::json!([{"containerID": 0, "hostID": id, "size": 1}]);
    assert_eq!(spec["linux"]["uidMappings"], own(u.uid));
    assert_eq!(spec["linux"]["gidMappings"], own(u.gid));
    assert!(spec["linux"].get("resources").is_none(), "{spec}");
    let mounts = spec["mounts"].as_array().unwrap();
    let sys = mounts
        .iter()
        .position(|m| m["destination"] == "/sys")
        .unwrap();
    assert_eq!(mounts[sys]["source"], "/sys");
    assert_eq!(
        mounts[sys]["options"],
        serde_json::json!(["rbind", "nosuid", "noexec", "nodev", "ro"])
    );
    // the cgroup mount stays, after /sys
    assert!(mounts[sys + 1..]
        .iter()
        .any(|m| m["destination"] == "/sys/fs/cgroup"));
    let text = spec["mounts"].to_string();
    assert!(!text.contains("uid=") && !text.contains("gid="), "{text}");
}
