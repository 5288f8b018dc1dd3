//! Nothing outlives `delete`: state dir, cgroups, processes, mounts. Also proves that
//! the harness's leak check does see a live container, so its "nothing left" means it.

use crate::common::*;
use crate::require_root;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn leak_check_sees_a_live_container() {
    require_root!();
    let c = Ctr::new("seen", example("sleep"));
    c.create().ok();
    let left = c.leftovers();
    let has = |kind: &str| left.iter().any(|l| l.starts_with(kind));
    assert!(has("state dir"), "{left:#?}");
    assert!(has("cgroup"), "{left:#?}");
    assert!(has("process"), "{left:#?}");
    c.delete(true).ok();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn foreground_run_leaves_nothing() {
    require_root!();
    let c = Ctr::new("runclean", example("hello"));
    c.run().ok();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn exited_container_delete_removes_cgroup() {
    require_root!();
    let c = Ctr::new("exited", config_with_args(&["true"]));
    c.create().ok();
    assert!(
        !cgroup_dirs(&c.cgroup).is_empty(),
        "no cgroup for {}",
        c.cgroup
    );
    c.start().ok();
    c.wait_status("stopped");
    c.delete(false).ok();
    assert!(c.leftovers().is_empty(), "{:#?}", c.leftovers());
}

#[test]
fn killed_create_is_cleaned_by_force_delete() {
    require_root!();
    // SIGKILL the runtime at several points of create; `delete --force` must then
    // remove whatever it had made (the guard checks).
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let c = Ctr::new(&format!("killcreate{delay_ms}ms"), example("sleep"));
        // runc 1.1 leaks the cgroups (and may leak its init) when create dies before
        // writing state: delete --force then finds no container. rt's design promises
        // better, so only rt is held to it.
        c.tolerate_leaks.set(is_runc());
        let mut cmd = c.cmd(&["create", "--bundle", c.bundle_str(), &c.id]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        wait_timeout(&mut child, "killed create");
        // whatever state it reached, delete --force must end it
        let out = c.delete(true);
        out.ok();
    }
}

#[test]
fn leak_check_sees_a_mount_under_the_bundle() {
    require_root!();
    let c = Ctr::new("mountleak", example("sleep"));
    let mp = c.bundle.path().join("rootfs/mnt");
    std::fs::create_dir_all(&mp).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &mp,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let left = c.leftovers();
    assert!(left.iter().any(|l| l.starts_with("mount ")), "{left:#?}");
    // the mount is the test's own doing: the guard detaches it and must not fail
    c.tolerate_leaks.set(true);
    drop(c);
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(mp.to_str().unwrap()),
        "guard left {}",
        mp.display()
    );
}
