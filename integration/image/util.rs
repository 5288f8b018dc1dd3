//! Helpers for the image tests: a loopback docker-registry per test, fixture images, hand-made
//! OCI layouts, and running rt.
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const RT: &str = env!("CARGO_BIN_EXE_rt");

/// Why a test can't run here, or None when it can.
pub fn missing(tools: &[&str]) -> Option<String> {
    if !nix_is_root() {
        return Some("needs root".into());
    }
    for t in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{t} is not installed"));
        }
    }
    None
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[macro_export]
macro_rules! require {
    ($($t:expr),*) => {
        if let Some(why) = $crate::image::util::missing(&[$($t),*]) {
            eprintln!("SKIP {}:{}: {why}", file!(), line!());
            return;
        }
    };
}

pub fn rt(args: &[&str]) -> Output {
    Command::new(RT)
        .args(args)
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .expect("running rt")
}

pub fn rt_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(RT);
    c.args(args).env_remove("REGISTRY_AUTH_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("running rt")
}

pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "rt failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The error of a failing rt: exactly one line on stderr (a logrus line, as runc writes it),
/// non-zero exit; returns its message.
pub fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "rt should have failed: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = String::from_utf8_lossy(&o.stderr).trim_end().to_string();
    assert_eq!(e.lines().count(), 1, "want one error line, got: {e}");
    crate::common::parse_log_line(&e).1
}

pub fn sh(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn fixtures() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if here.is_dir() {
        here
    } else {
        PathBuf::from("/work/shared/fixtures")
    }
}

/// A one-layer busybox OCI layout at `dir`, tag "latest".
pub fn busybox_image(dir: &Path) {
    sh(Command::new("bash")
        .arg(fixtures().join("mk-busybox-image.sh"))
        .arg(dir));
}

/// The four-layer whiteout image built on `base`.
pub fn layered_image(base: &Path, dir: &Path) {
    sh(Command::new("bash")
        .arg(fixtures().join("mk-layered-image.sh"))
        .arg(base)
        .arg(dir));
}

pub struct Registry {
    pub addr: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Registry {
    /// Starts docker-registry on a free loopback port; `htpasswd` turns on Basic auth.
    pub fn start(htpasswd: Option<&str>) -> Registry {
        Registry::start_with(|dir| {
            let h = htpasswd?;
            fs::write(dir.join("htpasswd"), h).unwrap();
            Some(format!(
                "auth:\n  htpasswd:\n    realm: rt-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ))
        })
    }

    /// Starts docker-registry with the `auth:` section `auth` returns (given the registry's dir).
    pub fn start_with(auth: impl FnOnce(&Path) -> Option<String>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some(a) = auth(dir.path()) {
            cfg += &a;
        }
        fs::write(dir.path().join("config.yml"), cfg).unwrap();
        let log = fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let r = Registry { addr, dir, child };
        let t = Instant::now();
        while TcpStream::connect(&r.addr).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "registry did not come up: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// How many blob downloads the registry has served so far.
    pub fn blob_gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .count()
    }

    /// skopeo copy of `oci:layout:latest` to NAME:TAG here.
    pub fn push(&self, layout: &Path, name: &str, extra: &[&str]) {
        let mut c = Command::new("skopeo");
        c.args(["copy", "-q", "--dest-tls-verify=false"])
            .args(extra);
        c.arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{name}", self.addr));
        sh(&mut c);
    }

    /// The registry's file for a blob, to corrupt it in place.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let h = digest.trim_start_matches("sha256:");
        self.dir.path().join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{h}/data",
            &h[..2]
        ))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sha256(b: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

/// Writes a blob into a layout and returns its descriptor.
pub fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let d = sha256(bytes);
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    fs::write(layout.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
}

pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

pub fn blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    read_json(&layout.join("blobs/sha256").join(&digest[7..]))
}

/// The manifest of the only (or "latest") image in a layout.
pub fn top_manifest(layout: &Path) -> (serde_json::Value, serde_json::Value) {
    let idx = read_json(&layout.join("index.json"));
    let d = idx["manifests"][0].clone();
    (d.clone(), blob_json(layout, d["digest"].as_str().unwrap()))
}

/// Rewrites the config of the only image in a layout (and its manifest and index entry).
pub fn set_config(layout: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let (_, mut m) = top_manifest(layout);
    let mut cfg = blob_json(layout, m["config"]["digest"].as_str().unwrap());
    f(&mut cfg);
    m["config"] = put_blob(
        layout,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&cfg).unwrap(),
    );
    let mut md = put_blob(
        layout,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&m).unwrap(),
    );
    md["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    let idx = serde_json::json!({"schemaVersion": 2, "manifests": [md]});
    fs::write(layout.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
}

/// A single-image OCI layout whose layers are the given uncompressed tars, gzipped.
pub fn layout_with_layers(dir: &Path, layers: &[Vec<u8>]) {
    let c: Vec<(Vec<u8>, &str)> = layers.iter().map(|l| (l.clone(), "gzip")).collect();
    layout_with_compressed_layers(dir, &c);
}

/// Like layout_with_layers, each layer compressed as named: "gzip", "zstd" (zstd(1)) or "none".
pub fn layout_with_compressed_layers(dir: &Path, layers: &[(Vec<u8>, &str)]) {
    let mut descs = Vec::new();
    let mut diffs = Vec::new();
    for (l, how) in layers {
        let (mt, bytes) = match *how {
            "gzip" => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(l).unwrap();
                (
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    gz.finish().unwrap(),
                )
            }
            "zstd" => {
                let mut c = Command::new("zstd")
                    .args(["-q", "-c"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                c.stdin.take().unwrap().write_all(l).unwrap();
                let o = c.wait_with_output().unwrap();
                assert!(o.status.success());
                ("application/vnd.oci.image.layer.v1.tar+zstd", o.stdout)
            }
            _ => ("application/vnd.oci.image.layer.v1.tar", l.clone()),
        };
        descs.push(put_blob(dir, mt, &bytes));
        diffs.push(sha256(l));
    }
    let cfg = serde_json::json!({"architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diffs}});
    let c = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&cfg).unwrap(),
    );
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": descs});
    let mut md = put_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&m).unwrap(),
    );
    md["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [md]})).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

pub enum Entry<'a> {
    Dir(&'a str),
    File(&'a str, &'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A tar with raw names (the tar crate's safe helpers would refuse the hostile ones we need).
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let (name, kind, mode, data, link): (&str, tar::EntryType, u32, &[u8], Option<&str>) =
            match e {
                Entry::Dir(p) => (p, tar::EntryType::Directory, 0o755, b"", None),
                Entry::File(p, c) => (p, tar::EntryType::Regular, 0o644, c.as_bytes(), None),
                Entry::Symlink(p, t) => (p, tar::EntryType::Symlink, 0o777, b"", Some(t)),
                Entry::Hardlink(p, t) => (p, tar::EntryType::Link, 0o644, b"", Some(t)),
            };
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        let n = &mut h.as_old_mut().name;
        n.fill(0);
        n[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            let ln = &mut h.as_old_mut().linkname;
            ln.fill(0);
            ln[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `find -printf` of a tree, sorted: type, mode, owner, size, link target, mtime of non-dirs.
pub fn tree(dir: &Path) -> String {
    let o = Command::new("find")
        .arg(".")
        .arg("-printf")
        .arg("%P %y %m %U %G %s %l\n")
        .current_dir(dir)
        .output()
        .unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    lines.sort();
    lines.join("\n")
}

pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

pub fn blob_count(store: &Path) -> usize {
    fs::read_dir(store.join("blobs/sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// An HTTP server that answers every request with a 307 to the same path on `target`, as
/// registries do when blobs live on a CDN. Returns its address; it lives as long as the test.
pub fn redirector(target: &str) -> String {
    use std::io::{BufRead, BufReader};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let target = target.to_string();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap_or(0);
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let _ = write!(
                c,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    addr
}
