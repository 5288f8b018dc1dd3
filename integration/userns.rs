//! Containers in a user namespace of their own, made by root: what init cannot do as the
//! namespace's root (an unprivileged id on the host), the runtime does for it beforehand.

use crate::common::*;
use crate::require_root;
use serde_json::json;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// A userns config whose container root is host uid/gid 100000, with two bind mounts of
/// directories inside dirs only host root may enter (mode 0700), as runc's userns.bats has them.
fn with_inaccessible_sources(args: &[&str]) -> Ctr {
    let mut cfg = config_with_args(args);
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["uidMappings"] = map.clone();
    cfg["linux"]["gidMappings"] = map;
    for i in [1, 2] {
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "source": format!("secret-{i}/dir"), "destination": format!("/tmp/mount-{i}"),
            "options": ["bind"]}));
    }
    let c = Ctr::new("userns-src", cfg);
    let b = c.bundle.path();
    // the bundle itself must be reachable by the namespace's root, as in the bats setup
    fs::set_permissions(b, fs::Permissions::from_mode(0o755)).unwrap();
    for i in [1, 2] {
        fs::create_dir_all(b.join(format!("secret-{i}/dir"))).unwrap();
        fs::write(b.join(format!("secret-{i}/dir/foo.txt")), "x").unwrap();
        fs::set_permissions(
            b.join(format!("secret-{i}")),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        fs::create_dir_all(b.join(format!("rootfs/tmp/mount-{i}"))).unwrap();
    }
    c
}

#[test]
fn bind_sources_only_host_root_can_reach() {
    require_root!();
    let c = with_inaccessible_sources(&[
        "stat",
        "-c",
        "%n",
        "/tmp/mount-1/foo.txt",
        "/tmp/mount-2/foo.txt",
    ]);
    let out = c.run();
    out.ok();
    assert_eq!(out.stdout, "/tmp/mount-1/foo.txt\n/tmp/mount-2/foo.txt\n");
}

#[test]
fn bind_sources_only_host_root_can_reach_then_exec() {
    require_root!();
    let c = with_inaccessible_sources(&["sleep", "1000"]);
    c.create().ok();
    c.start().ok();
    let out = c.exec(
        &[],
        &[
            "stat",
            "-c",
            "%n",
            "/tmp/mount-1/foo.txt",
            "/tmp/mount-2/foo.txt",
        ],
    );
    out.ok();
    assert_eq!(out.stdout, "/tmp/mount-1/foo.txt\n/tmp/mount-2/foo.txt\n");
}
