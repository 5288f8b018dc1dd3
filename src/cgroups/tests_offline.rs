//! Tests that need neither root nor a particular host: layouts and cgroup directories are
//! injected (sample mountinfo texts, temporary directories standing in for cgroupfs).
use super::mode::samples::{HYBRID as TEST_HYBRID, V1 as TEST_V1, V2 as TEST_V2};
use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

#[test]
fn container_mounts_per_mode() {
    let m = CgroupManager::with_host(TEST_HYBRID, None, Some("/rt/c1"), "c1").unwrap();
    assert_eq!(m.layout_mode(), Mode::Hybrid);
    let mounts = m.container_mounts().unwrap();
    let cpu = mounts.iter().find(|x| x.name == "cpu,cpuacct").unwrap();
    assert_eq!(cpu.data, "cpu,cpuacct");
    assert_eq!(cpu.symlinks, vec!["cpu".to_string(), "cpuacct".to_string()]);
    assert_eq!(cpu.host_dir, Path::new("/sys/fs/cgroup/cpu,cpuacct/rt/c1"));
    let sd = mounts.iter().find(|x| x.name == "systemd").unwrap();
    assert_eq!(sd.data, "name=systemd");
    assert!(sd.symlinks.is_empty());
    let u = mounts.last().unwrap();
    assert_eq!((u.name.as_str(), u.fstype.as_str()), ("unified", "cgroup2"));

    // No cgroupsPath: the id, below the runtime's own cgroup in each hierarchy (runc's default).
    let own = "5:memory:/user.slice/s.scope\n2:cpu,cpuacct:/\n";
    let m = CgroupManager::with_host(TEST_V1, Some(own), None, "c1").unwrap();
    assert_eq!(m.path(), "c1");
    let mounts = m.container_mounts().unwrap();
    assert!(mounts.iter().all(|x| x.fstype == "cgroup"));
    let dirs: Vec<_> = mounts.iter().map(|x| x.host_dir.clone()).collect();
    assert_eq!(
        dirs,
        [
            Path::new("/sys/fs/cgroup/cpu,cpuacct/c1"),
            Path::new("/sys/fs/cgroup/memory/user.slice/s.scope/c1")
        ]
    );

    let m = CgroupManager::with_host(TEST_V2, None, Some("/a/b"), "c1").unwrap();
    let mounts = m.container_mounts().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].name, "");
    assert_eq!(mounts[0].fstype, "cgroup2");
    assert_eq!(mounts[0].host_dir, Path::new("/sys/fs/cgroup/a/b"));
}

#[test]
fn requested_value_without_file_names_the_file() {
    // A fake v1 memory hierarchy with no files at all.
    let tmp = tempfile::tempdir().unwrap();
    let mounts = vec![mode::V1Mount {
        mountpoint: tmp.path().to_path_buf(),
        root: "/".into(),
        subsystems: vec!["memory".into(), "blkio".into()],
    }];
    let dirs = vec![tmp.path().to_path_buf()];
    let d = V1Dirs {
        mounts: &mounts,
        dirs: &dirs,
    };
    let e = resources_v1::apply(&d, &res(r#"{"memory":{"swappiness":10}}"#)).unwrap_err();
    assert!(format!("{e:#}").contains("memory.swappiness"), "{e:#}");
    let e = resources_v1::apply(&d, &res(r#"{"blockIO":{"weight":300}}"#)).unwrap_err();
    assert!(format!("{e:#}").contains("blkio.weight"), "{e:#}");
    // Kernel memory without a file is skipped, like runc.
    resources_v1::apply(&d, &res(r#"{"memory":{"kernel":1048576}}"#)).unwrap();
    // Nothing requested: nothing touched.
    resources_v1::apply(&d, &res("{}")).unwrap();
    let e = resources_v1::apply(&d, &res(r#"{"pids":{"limit":5}}"#)).unwrap_err();
    assert!(format!("{e:#}").contains("pids"), "{e:#}");
}

#[test]
fn v2_values_are_converted() {
    let tmp = tempfile::tempdir().unwrap();
    for f in [
        "memory.max",
        "memory.swap.max",
        "memory.low",
        "cpu.weight",
        "cpu.max",
        "pids.max",
        "io.weight",
        "io.max",
    ] {
        std::fs::write(tmp.path().join(f), "").unwrap();
    }
    let r = res(
        r#"{"memory":{"limit":1000,"swap":3000,"reservation":500,"swappiness":60},
                   "cpu":{"shares":1024,"quota":-1,"period":100000},
                   "pids":{"limit":-1},
                   "blockIO":{"weight":500,"throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}]}}"#,
    );
    resources_v2::apply(tmp.path(), &r).unwrap();
    let rd = |f: &str| std::fs::read_to_string(tmp.path().join(f)).unwrap();
    assert_eq!(rd("memory.max"), "1000");
    assert_eq!(rd("memory.swap.max"), "2000");
    assert_eq!(rd("memory.low"), "500");
    assert_eq!(rd("cpu.weight"), "39");
    assert_eq!(rd("cpu.max"), "max 100000");
    assert_eq!(rd("pids.max"), "max");
    assert_eq!(rd("io.weight"), "default 4950");
    assert_eq!(rd("io.max"), "8:0 rbps=1048576");
    assert!(resources_v2::apply(tmp.path(), &res(r#"{"cpu":{"realtimeRuntime":1000}}"#)).is_err());
}
