//! Image tests that need no registry: hostile layers, metadata, compression, local sources, rmi.
use super::util::*;
use std::fs;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
#[test]
fn hostile_layers_are_refused() {
    require!();
    use Entry::*;
    let cases: Vec<(&str, Vec<Vec<Entry>>)> = vec![
        ("../escape", vec![vec![File("../escape", "x")]]),
        ("/abs-escape", vec![vec![File("/abs-escape", "x")]]),
        (
            "link/escape",
            vec![vec![Symlink("link", "..")], vec![File("link/escape", "x")]],
        ),
        (
            "link2/escape",
            vec![vec![Symlink("link2", "/tmp"), File("link2/escape", "x")]],
        ),
        ("hard", vec![vec![Hardlink("hard", "../victim")]]),
        ("hard2", vec![vec![Hardlink("hard2", "/etc/passwd")]]),
        (
            "hard3",
            vec![vec![
                Symlink("etc", "/etc"),
                Hardlink("hard3", "etc/passwd"),
            ]],
        ),
        (
            "dir/.wh...",
            vec![vec![Dir("dir/"), File("dir/.wh...", "")]],
        ),
        (
            "up/.wh.victim",
            vec![vec![Symlink("up", "..")], vec![File("up/.wh.victim", "")]],
        ),
    ];
    for (needle, layers) in cases {
        let t = tempfile::tempdir().unwrap();
        let (img, store, b) = (
            t.path().join("img"),
            t.path().join("store"),
            t.path().join("b"),
        );
        let tars: Vec<Vec<u8>> = layers.iter().map(|l| tar_of(l)).collect();
        layout_with_layers(&img, &tars);
        fs::write(t.path().join("victim"), "keep").unwrap();
        ok(&rt(&[
            "pull",
            "--store",
            s(&store),
            &format!("oci:{}", img.display()),
        ]));
        let e = fails(&rt(&["bundle", "--store", s(&store), "img", s(&b)]));
        assert!(e.contains(&format!("{needle:?}")), "{needle}: {e}");
        assert!(!b.exists(), "{needle}: bundle left behind");
        assert_eq!(
            fs::read_to_string(t.path().join("victim")).unwrap(),
            "keep",
            "{needle}"
        );
        for p in [
            t.path().join("escape"),
            t.path().join("abs-escape"),
            "/abs-escape".into(),
            "/tmp/escape".into(),
        ] {
            assert!(!p.exists(), "{needle}: {} was written", p.display());
        }
    }
}

#[test]
fn local_sources_and_rmi_gc() {
    require!("skopeo", "umoci", "busybox", "tar");
    let t = tempfile::tempdir().unwrap();
    let (base, img, store) = (
        t.path().join("base"),
        t.path().join("layered"),
        t.path().join("store"),
    );
    busybox_image(&base);
    layered_image(&base, &img);
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--name",
        "bb",
        &format!("oci:{}:latest", base.display()),
    ]));
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--name",
        "layered",
        &format!("oci:{}", img.display()),
    ]));
    let both = blob_count(&store);
    // The base layer is stored once: 4 layers, 2 configs, 2 manifests.
    assert_eq!(both, 8);

    let arch = t.path().join("bb-docker.tar");
    sh(std::process::Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:latest", base.display()))
        .arg(format!("docker-archive:{}:bb:v1", arch.display())));
    let out = ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("docker-archive:{}", arch.display()),
    ]));
    assert!(out.starts_with("docker.io/library/bb:v1 "), "{out}");
    let oarch = t.path().join("bb-oci.tar");
    sh(std::process::Command::new("tar")
        .arg("-C")
        .arg(&base)
        .arg("-cf")
        .arg(&oarch)
        .arg("."));
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--name",
        "bb-oci",
        &format!("oci-archive:{}", oarch.display()),
    ]));
    for (n, b) in [("bb:v1", "b1"), ("bb-oci", "b2")] {
        let b = t.path().join(b);
        ok(&rt(&["bundle", "--store", s(&store), n, s(&b)]));
        assert!(b.join("rootfs/bin/busybox").is_file());
    }
    ok(&rt(&["rmi", "--store", s(&store), "bb:v1", "bb-oci"]));

    let e = fails(&rt(&["rmi", "--store", s(&store), "layered", "nope"]));
    assert!(e.contains("\"nope\""), "{e}");
    assert_eq!(blob_count(&store), both, "a failed rmi removes nothing");
    ok(&rt(&["rmi", "--store", s(&store), "layered"]));
    assert_eq!(blob_count(&store), 3, "shared base layer kept for bb");
    let b = t.path().join("b3");
    ok(&rt(&["bundle", "--store", s(&store), "bb", s(&b)]));
    ok(&rt(&["rmi", "--store", s(&store), "bb"]));
    assert_eq!(blob_count(&store), 0);
    assert_eq!(ok(&rt(&["images", "--quiet", "--store", s(&store)])), "");
}

#[test]
fn bad_input_gives_one_clear_line() {
    require!();
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let e = fails(&rt(&["pull", "--store", s(&store), "Not/Valid"]));
    assert!(e.contains("Not/Valid"), "{e}");
    let e = fails(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--platform",
        "linux",
        "busybox",
    ]));
    assert!(e.contains("os/arch"), "{e}");
    let e = fails(&rt(&[
        "bundle",
        "--store",
        s(&store),
        "busybox",
        s(&t.path().join("b")),
    ]));
    assert!(e.contains("busybox"), "{e}");
    assert!(!t.path().join("b").exists());
    let e = fails(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("oci:{}", t.path().join("none").display()),
    ]));
    assert!(e.contains("not an OCI image layout"), "{e}");
}

/// Modes, owners, mtimes, set-id bits, xattrs, hardlinks, symlinks, devices and fifos survive,
/// and umoci unpacks the same layout to the same tree.
#[test]
fn metadata_is_preserved_like_umoci() {
    require!("umoci");
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let t = tempfile::tempdir().unwrap();
    let (img, store, b) = (
        t.path().join("img"),
        t.path().join("store"),
        t.path().join("b"),
    );
    let mut tb = tar::Builder::new(Vec::new());
    type Dev = Option<(u32, u32)>;
    let add = |tb: &mut tar::Builder<Vec<u8>>,
               path: &str,
               kind: tar::EntryType,
               mode: u32,
               data: &[u8],
               link: Option<&str>,
               dev: Dev| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if let Some((ma, mi)) = dev {
            h.set_device_major(ma).unwrap();
            h.set_device_minor(mi).unwrap();
        }
        h.set_path(path).unwrap();
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        h.set_cksum();
        tb.append(&h, data).unwrap();
    };
    add(
        &mut tb,
        "srv/",
        tar::EntryType::Directory,
        0o750,
        b"",
        None,
        None,
    );
    add(
        &mut tb,
        "dev/",
        tar::EntryType::Directory,
        0o755,
        b"",
        None,
        None,
    );
    add(
        &mut tb,
        "srv/sym",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("suid"),
        None,
    );
    add(
        &mut tb,
        "srv/fifo",
        tar::EntryType::Fifo,
        0o600,
        b"",
        None,
        None,
    );
    add(
        &mut tb,
        "dev/null2",
        tar::EntryType::Char,
        0o666,
        b"",
        None,
        Some((1, 3)),
    );
    add(
        &mut tb,
        "dev/loop9",
        tar::EntryType::Block,
        0o660,
        b"",
        None,
        Some((7, 9)),
    );
    tb.append_pax_extensions([("SCHILY.xattr.user.rt", &b"hello"[..])])
        .unwrap();
    add(
        &mut tb,
        "srv/suid",
        tar::EntryType::Regular,
        0o4755,
        b"data",
        None,
        None,
    );
    add(
        &mut tb,
        "srv/hard",
        tar::EntryType::Link,
        0o4755,
        b"",
        Some("srv/suid"),
        None,
    );
    layout_with_layers(&img, &[tb.into_inner().unwrap()]);
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("oci:{}", img.display()),
    ]));
    ok(&rt(&[
        "bundle",
        "--store",
        s(&store),
        "localhost/img:latest",
        s(&b),
    ]));
    let r = b.join("rootfs");

    let m = |p: &str| fs::symlink_metadata(r.join(p)).unwrap();
    assert_eq!(m("srv/suid").mode() & 0o7777, 0o4755);
    assert_eq!((m("srv/suid").uid(), m("srv/suid").gid()), (1000, 1001));
    assert_eq!(m("srv/suid").mtime(), 1_600_000_000);
    assert_eq!(m("srv").mode() & 0o7777, 0o750);
    assert_eq!(
        m("srv").mtime(),
        1_600_000_000,
        "directory mtime set after its children"
    );
    assert_eq!(m("srv/hard").ino(), m("srv/suid").ino());
    assert_eq!(fs::read_link(r.join("srv/sym")).unwrap(), Path::new("suid"));
    assert_eq!(m("srv/sym").uid(), 1000);
    assert!(m("srv/fifo").file_type().is_fifo());
    assert!(m("dev/null2").file_type().is_char_device());
    assert_eq!(m("dev/null2").rdev(), libc::makedev(1, 3));
    assert!(m("dev/loop9").file_type().is_block_device());
    let mut buf = [0u8; 16];
    let p = std::ffi::CString::new(r.join("srv/suid").to_str().unwrap()).unwrap();
    // SAFETY: valid C strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            c"user.rt".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(&buf[..n.max(0) as usize], b"hello");

    let theirs = t.path().join("theirs");
    sh(std::process::Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:localhost/img:latest", store.display()))
        .arg(&theirs));
    assert_eq!(tree(&r), tree(&theirs.join("rootfs")));
}

#[test]
fn gzip_zstd_and_plain_layers() {
    require!("zstd");
    use Entry::*;
    let t = tempfile::tempdir().unwrap();
    let (img, store, b) = (
        t.path().join("img"),
        t.path().join("store"),
        t.path().join("b"),
    );
    let big = "z".repeat(300_000);
    layout_with_compressed_layers(
        &img,
        &[
            (tar_of(&[Dir("a/"), File("a/gz", "1")]), "gzip"),
            (tar_of(&[File("a/zst", &big), File("a/.wh.gz", "")]), "zstd"),
            (tar_of(&[File("a/plain", "3")]), "none"),
        ],
    );
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("oci:{}", img.display()),
    ]));
    ok(&rt(&[
        "bundle",
        "--store",
        s(&store),
        "localhost/img:latest",
        s(&b),
    ]));
    assert_eq!(names(&b.join("rootfs/a")), ["plain", "zst"]);
    assert_eq!(fs::read_to_string(b.join("rootfs/a/zst")).unwrap(), big);
}

/// An image whose user is not in its /etc/passwd can't be bundled (conversion.md), and the
/// failed bundle leaves nothing behind.
#[test]
fn unknown_user_is_an_error() {
    require!();
    use Entry::*;
    let t = tempfile::tempdir().unwrap();
    let (img, store, b) = (
        t.path().join("img"),
        t.path().join("store"),
        t.path().join("b"),
    );
    let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    let layer = tar_of(&[
        Dir("etc/"),
        File("etc/passwd", passwd),
        File("etc/group", "root:x:0:\n"),
    ]);
    layout_with_layers(&img, &[layer]);
    set_config(&img, |c| c["config"]["User"] = "ghost".into());
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("oci:{}", img.display()),
    ]));
    let e = fails(&rt(&["bundle", "--store", s(&store), "img", s(&b)]));
    assert!(e.contains("\"ghost\" not found"), "{e}");
    assert!(!b.exists());

    set_config(&img, |c| c["config"]["User"] = "app".into());
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("oci:{}", img.display()),
    ]));
    ok(&rt(&["bundle", "--store", s(&store), "img", s(&b)]));
    let cfg = read_json(&b.join("config.json"));
    assert_eq!(
        cfg["process"]["user"],
        serde_json::json!({"uid": 1000, "gid": 1000})
    );
    assert!(cfg["process"]["env"]
        .as_array()
        .unwrap()
        .contains(&"HOME=/home/app".into()));
}

/// Archive entries outside the layout's own names are never extracted anywhere.
#[test]
fn hostile_oci_archive_writes_nothing_outside() {
    require!();
    use Entry::*;
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    layout_with_layers(&img, &[tar_of(&[File("f", "x")])]);
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("../rt-archive-evil".into(), b"x".to_vec()),
        (
            "blobs/sha256/../../../rt-archive-evil2".into(),
            b"x".to_vec(),
        ),
    ];
    for p in ["index.json", "oci-layout"] {
        entries.push((p.into(), fs::read(img.join(p)).unwrap()));
    }
    for e in fs::read_dir(img.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        entries.push((
            format!("blobs/sha256/{}", e.file_name().to_str().unwrap()),
            fs::read(e.path()).unwrap(),
        ));
    }
    // Blobs here are gzip (binary), so they go in as raw bytes rather than through tar_of's &str.
    let mut bld = tar::Builder::new(Vec::new());
    for (n, d) in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(d.len() as u64);
        let name = &mut h.as_old_mut().name;
        name[..n.len()].copy_from_slice(n.as_bytes());
        h.set_cksum();
        bld.append(&h, &d[..]).unwrap();
    }
    let arch = t.path().join("evil.tar");
    fs::write(&arch, bld.into_inner().unwrap()).unwrap();
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("oci-archive:{}", arch.display()),
    ]));
    let tmp = std::env::temp_dir();
    assert!(!tmp.join("rt-archive-evil").exists() && !tmp.join("rt-archive-evil2").exists());
    assert!(!t.path().join("rt-archive-evil").exists());
}
