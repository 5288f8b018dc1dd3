//! The callers' images: a one-layer busybox OCI layout (tag `latest`), the same with the CRI
//! tests' pause tag as one layout tar, and a docker-archive of it for dockerd. Built with umoci
//! (and skopeo) from the shared fixture script, or taken ready-made from `$RT_TEST_IMAGES`,
//! which `export_images_for_the_guest` fills: the v2 guest has neither tool nor a registry.

use super::*;
use std::sync::OnceLock;

/// `$RT_TEST_IMAGES`: a directory of ready-made images (what `export` writes).
fn ready_made() -> Option<PathBuf> {
    std::env::var_os("RT_TEST_IMAGES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

const LAYOUT: &str = "busybox";
const CRI_TAR: &str = "cri-images.tar";
const DOCKER_TAR: &str = "busybox-docker.tar";

/// Why the images cannot be had here (`docker`: also the docker-archive), if they cannot.
pub(crate) fn need_images(docker: bool) -> Result<(), String> {
    if ready_made().is_some() {
        return Ok(());
    }
    let tools: &[&str] = if docker {
        &["umoci", "skopeo"]
    } else {
        &["umoci"]
    };
    need(tools).map(|_| ())
}

fn fixtures() -> PathBuf {
    let here = repo().join("../shared/fixtures");
    if here.is_dir() {
        here
    } else {
        PathBuf::from("/work/shared/fixtures")
    }
}

#[track_caller]
fn ok(c: Command) {
    let what = format!("{c:?}");
    let out = run(c);
    assert!(out.status.success(), "{what}: {out:#?}");
}

/// A one-layer busybox OCI image layout at `dir` (tag "latest").
pub(crate) fn busybox_layout(dir: &Path) {
    let mut c = match ready_made() {
        Some(d) => {
            let mut c = Command::new("cp");
            c.arg("-a").arg(d.join(LAYOUT)).arg(dir);
            c
        }
        None => {
            let mut c = Command::new("bash");
            c.arg(fixtures().join("mk-busybox-image.sh")).arg(dir);
            c
        }
    };
    c.stdin(Stdio::null());
    ok(c);
}

/// The busybox layout with a `pause` tag too (busybox's `sleep inf`, the sandbox's pid 1),
/// as one tar for `ctr images import`, built at `tar`.
fn build_cri_tar(tar: &Path) {
    let layout = tempfile::tempdir().unwrap();
    let dir = layout.path().join("l");
    busybox_layout(&dir);
    let mut c = Command::new("umoci");
    c.args(["config", "--image"])
        .arg(format!("{}:latest", dir.display()))
        .args(["--tag", "pause", "--config.entrypoint", "/bin/sleep"])
        .args(["--config.cmd", "inf"]);
    ok(c);
    let mut c = Command::new("tar");
    c.arg("-C").arg(&dir).arg("-cf").arg(tar).arg(".");
    ok(c);
}

/// The CRI tests' image tar, built once per test run (into a temp name, then renamed: another
/// test binary may be importing the previous one).
pub(crate) fn cri_images_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        if let Some(d) = ready_made() {
            return d.join(CRI_TAR);
        }
        let target = rootfs_cache().parent().unwrap().to_path_buf();
        let tar = target.join("rt-cri-images.tar");
        let tmp = target.join(format!("rt-cri-images.tar.{}", std::process::id()));
        build_cri_tar(&tmp);
        fs::rename(&tmp, &tar).unwrap();
        tar
    })
}

/// The busybox image as `rt-busybox:latest` in a docker-archive for `docker load` (dockerd
/// 20.10 loads no OCI layout), made in `dir` unless ready-made.
pub(crate) fn docker_archive(dir: &Path) -> PathBuf {
    if let Some(d) = ready_made() {
        return d.join(DOCKER_TAR);
    }
    let layout = dir.join("image");
    busybox_layout(&layout);
    let tar = dir.join("image.tar");
    let mut c = clean_cmd("skopeo");
    c.arg("copy")
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!(
            "docker-archive:{}:rt-busybox:latest",
            tar.display()
        ));
    ok(c);
    tar
}

/// Not a test: `RT_TEST_EXPORT_IMAGES=DIR ... --ignored --exact
/// peers::images::export_images_for_the_guest` writes the images into DIR for a later run with
/// `RT_TEST_IMAGES=DIR` where umoci and skopeo are missing (`vm/test-v2.sh` does this).
#[test]
#[ignore]
fn export_images_for_the_guest() {
    let Some(out) = std::env::var_os("RT_TEST_EXPORT_IMAGES").map(PathBuf::from) else {
        eprintln!("skip: RT_TEST_EXPORT_IMAGES is not set");
        return;
    };
    assert!(
        ready_made().is_none(),
        "RT_TEST_IMAGES is set: nothing to build"
    );
    need(&["umoci", "skopeo"]).unwrap();
    fs::create_dir_all(&out).unwrap();
    for p in [LAYOUT, CRI_TAR, DOCKER_TAR] {
        let _ = fs::remove_dir_all(out.join(p));
        let _ = fs::remove_file(out.join(p));
    }
    busybox_layout(&out.join(LAYOUT));
    build_cri_tar(&out.join(CRI_TAR));
    let work = tempfile::tempdir().unwrap();
    fs::rename(docker_archive(work.path()), out.join(DOCKER_TAR)).unwrap();
}
