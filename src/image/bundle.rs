//! `rt bundle`: a rootfs from the layers and a config.json from the image config
//! (image-spec conversion.md), on top of runc-spec-like defaults.
use super::oci::{self, Descriptor, ImageConfig, Parsed, Platform};
use super::safefs::Root;
use super::store::Store;
use super::unpack::{unpack, Layer};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The defaults `rt spec` writes and `rt bundle` starts from: runc's choice of namespaces,
/// mounts, capabilities and masked paths.
pub fn default_spec() -> Value {
    // One default for `rt spec` and `rt bundle`: the image only overrides the process.
    crate::spec::spec(false)
}

#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    pub store: PathBuf,
    /// Replaces the image's Cmd (the Entrypoint stays), as `docker run IMAGE ARGS` does.
    pub args: Option<Vec<String>>,
    /// Replaces the image's Entrypoint; an empty list clears it.
    pub entrypoint: Option<Vec<String>>,
    pub terminal: bool,
    /// Which manifest to use when the stored name points at an index.
    pub platform: Option<Platform>,
}

/// The manifest and config of a stored image, every byte checked against its digest.
pub fn load_image(
    store: &Store,
    name: &str,
    platform: Option<&Platform>,
) -> Result<(Descriptor, oci::Manifest, ImageConfig)> {
    let (_, mut desc) = store.resolve(name)?;
    let want = platform.cloned().unwrap_or_else(Platform::host);
    for _ in 0..2 {
        let bytes = store.read_blob(&desc)?;
        match oci::parse_manifest(&bytes, Some(&desc.media_type))
            .with_context(|| format!("manifest {}", desc.digest))?
        {
            Parsed::Manifest(m) => {
                let cfg_bytes = store.read_blob(&m.config)?;
                let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes)
                    .with_context(|| format!("config {}: malformed", m.config.digest))?;
                if cfg.rootfs.diff_ids.len() != m.layers.len() {
                    bail!(
                        "image {name}: {} layers but {} diff_ids in the config",
                        m.layers.len(),
                        cfg.rootfs.diff_ids.len()
                    );
                }
                return Ok((desc, *m, cfg));
            }
            Parsed::Index(i) => desc = oci::select_platform(&i, &want)?.clone(),
        }
    }
    bail!("image {name}: nested image indexes are not supported")
}

/// Makes `dir/rootfs` and `dir/config.json` from a stored image. On any error, what this call
/// created is removed again.
pub fn bundle(image: &str, dir: &Path, opts: &BundleOptions) -> Result<()> {
    let store = Store::open_existing(&opts.store)
        .with_context(|| format!("image {image:?} is not in the store"))?;
    // Keeps `rt rmi` from collecting blobs while they are being unpacked; a store we may not
    // write to (someone else's layout) simply goes unlocked.
    let _gc = store.gc_shared().ok();
    let (_, manifest, cfg) = load_image(&store, image, opts.platform.as_ref())?;
    let rootfs = dir.join("rootfs");
    let config_path = dir.join("config.json");
    if config_path.exists() {
        bail!("{} already exists", config_path.display());
    }
    if fs::read_dir(&rootfs)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
    {
        bail!("{} already exists and is not empty", rootfs.display());
    }
    let made_dir = !dir.exists();
    let made_rootfs = !rootfs.exists();
    fs::create_dir_all(&rootfs).with_context(|| format!("creating {}", rootfs.display()))?;
    let result = fill(&store, &manifest, &cfg, &rootfs, &config_path, opts);
    if result.is_err() {
        let _ = fs::remove_file(&config_path);
        if made_dir {
            let _ = fs::remove_dir_all(dir);
        } else if made_rootfs {
            let _ = fs::remove_dir_all(&rootfs);
        } else if let Ok(rd) = fs::read_dir(&rootfs) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
    result
}

fn fill(
    store: &Store,
    m: &oci::Manifest,
    cfg: &ImageConfig,
    rootfs: &Path,
    config_path: &Path,
    opts: &BundleOptions,
) -> Result<()> {
    let mut layers = Vec::new();
    for (l, diff) in m.layers.iter().zip(&cfg.rootfs.diff_ids) {
        let f = store.open_blob(&l.digest)?;
        layers.push(Layer {
            label: format!("layer {}", l.digest),
            reader: Box::new(f),
            diff_id: diff.clone(),
        });
    }
    unpack(rootfs, layers)?;
    let spec = image_spec(cfg, rootfs, opts)?;
    let tmp = config_path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(&spec)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, config_path).with_context(|| format!("writing {}", config_path.display()))?;
    Ok(())
}

/// The runtime config for an image whose rootfs is unpacked at `rootfs` (needed for users).
pub fn image_spec(cfg: &ImageConfig, rootfs: &Path, opts: &BundleOptions) -> Result<Value> {
    let mut spec = default_spec();
    let rc = cfg.config.clone().unwrap_or_default();
    let entrypoint = opts
        .entrypoint
        .clone()
        .or(rc.entrypoint.clone())
        .unwrap_or_default();
    let cmd = opts.args.clone().or(rc.cmd.clone()).unwrap_or_default();
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        bail!("the image has no Entrypoint or Cmd; give a command after --");
    }
    let user = resolve_user(rootfs, rc.user.as_deref().unwrap_or(""))?;
    let mut env: Vec<String> = Vec::new();
    let image_env = rc.env.clone().unwrap_or_default();
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    for d in [
        DEFAULT_PATH.to_string(),
        "TERM=xterm".into(),
        format!("HOME={}", user.home),
    ] {
        if !image_env.iter().any(|e| key(e) == key(&d)) {
            env.push(d);
        }
    }
    env.extend(image_env);
    let cwd = match rc.working_dir.as_deref() {
        None | Some("") => "/".to_string(),
        Some(w) if w.starts_with('/') => w.to_string(),
        Some(w) => format!("/{w}"),
    };
    let p = &mut spec["process"];
    p["terminal"] = json!(opts.terminal);
    p["args"] = json!(args);
    p["env"] = json!(env);
    p["cwd"] = json!(cwd);
    let mut u = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        u["additionalGids"] = json!(user.additional_gids);
    }
    p["user"] = u;
    // An image's rootfs is the container's to write, as with docker.
    spec["root"]["readonly"] = json!(false);

    let mut ann: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            ann.insert(format!("org.opencontainers.image.{k}"), v);
        }
    };
    put("os", Some(cfg.os.clone()));
    put("architecture", Some(cfg.architecture.clone()));
    put("variant", cfg.variant.clone());
    put("os.version", cfg.os_version.clone());
    put("os.features", cfg.os_features.as_ref().map(|f| f.join(",")));
    put("author", cfg.author.clone());
    put("created", cfg.created.clone());
    put("stopSignal", rc.stop_signal.clone());
    put(
        "exposedPorts",
        rc.exposed_ports
            .as_ref()
            .map(|p| p.keys().cloned().collect::<Vec<_>>().join(",")),
    );
    // Labels win over the implicit annotations (conversion.md, "Annotations").
    for (k, v) in rc.labels.clone().unwrap_or_default() {
        ann.insert(k, v);
    }
    spec["annotations"] = json!(ann);

    // Volumes get a tmpfs each so application data stays out of the rootfs; the mountpoint is made
    // inside the rootfs with the same confinement as unpacking.
    if let Some(vols) = &rc.volumes {
        let root = Root::open(rootfs)?;
        let mounts = spec["mounts"].as_array_mut().unwrap();
        for v in vols.keys() {
            let comps: Vec<OsString> =
                super::safefs::components(Path::new(v.trim_start_matches('/')))
                    .map_err(|e| anyhow!("volume {v:?}: {e}"))?;
            if comps.is_empty() {
                bail!("volume {v:?}: cannot be the root");
            }
            root.dir(&comps, true)
                .with_context(|| format!("volume {v:?}"))?;
            let dest: PathBuf = Path::new("/").join(comps.iter().collect::<PathBuf>());
            mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]}));
        }
    }
    Ok(spec)
}

#[derive(Debug, PartialEq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

/// Reads /etc/FILE from the rootfs without following symlinks (the image could point it at the host).
fn read_etc(rootfs: &Path, file: &str) -> Result<Option<String>> {
    let root = Root::open(rootfs)?;
    let Some(etc) = root.dir(&[OsString::from("etc")], false)? else {
        return Ok(None);
    };
    let fd = match nix::fcntl::openat(
        &etc,
        file,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => bail!("opening /etc/{file} in the image: {e}"),
    };
    let mut s = String::new();
    fs::File::from(fd)
        .take(16 << 20)
        .read_to_string(&mut s)
        .with_context(|| format!("reading /etc/{file} in the image"))?;
    Ok(Some(s))
}

/// Resolves `Config.User` (`user`, `uid`, `user:group`, `uid:gid`, ...) against the image's
/// /etc/passwd and /etc/group. A name that isn't there is an error (conversion.md).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<User> {
    let passwd = read_etc(rootfs, "passwd")?.unwrap_or_default();
    let group = read_etc(rootfs, "group")?.unwrap_or_default();
    resolve_user_in(&passwd, &group, spec)
}

pub fn resolve_user_in(passwd: &str, group: &str, spec: &str) -> Result<User> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .collect();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let u = if u.is_empty() { "0" } else { u };
    let entry = match u.parse::<u32>() {
        Ok(n) => users.iter().find(|f| f[2].parse() == Ok(n)),
        Err(_) => Some(
            users
                .iter()
                .find(|f| f[0] == u)
                .ok_or_else(|| anyhow!("user {u:?} not found in the image's /etc/passwd"))?,
        ),
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => entry.unwrap()[2]
            .parse()
            .with_context(|| format!("bad uid for {u:?} in /etc/passwd"))?,
    };
    let home = entry
        .map(|f| f[5].to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut additional = Vec::new();
    let gid = match g {
        Some(g) if !g.is_empty() => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let gr = groups
                    .iter()
                    .find(|f| f[0] == g)
                    .ok_or_else(|| anyhow!("group {g:?} not found in the image's /etc/group"))?;
                gr[2]
                    .parse()
                    .with_context(|| format!("bad gid for {g:?} in /etc/group"))?
            }
        },
        _ => {
            let gid = match entry {
                Some(f) => f[3]
                    .parse()
                    .with_context(|| format!("bad gid for {u:?} in /etc/passwd"))?,
                None => 0,
            };
            // Supplementary groups only for a named user without an explicit group (conversion.md).
            if let (Some(f), Err(_)) = (entry, u.parse::<u32>()) {
                for gr in &groups {
                    let members = gr.get(3).copied().unwrap_or("");
                    if members.split(',').any(|m| m == f[0]) {
                        if let Ok(n) = gr[2].parse::<u32>() {
                            if n != gid && !additional.contains(&n) {
                                additional.push(n);
                            }
                        }
                    }
                }
            }
            gid
        }
    };
    Ok(User {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str =
        "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app,root\naudio:x:29:app\n";

    #[test]
    fn users_and_groups() {
        let r = |s: &str| resolve_user_in(PASSWD, GROUP, s);
        assert_eq!(
            r("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
                home: "/root".into()
            }
        );
        assert_eq!(
            r("app").unwrap(),
            User {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 29],
                home: "/home/app".into()
            }
        );
        assert_eq!(r("app:audio").unwrap().gid, 29);
        assert!(r("app:audio").unwrap().additional_gids.is_empty());
        assert_eq!(r("1000").unwrap().gid, 1000);
        assert!(r("1000").unwrap().additional_gids.is_empty());
        assert_eq!(
            r("4242").unwrap(),
            User {
                uid: 4242,
                gid: 0,
                additional_gids: vec![],
                home: "/".into()
            }
        );
        assert_eq!(r("4242:77").unwrap().gid, 77);
        assert!(r("ghost")
            .unwrap_err()
            .to_string()
            .contains("\"ghost\" not found"));
        assert!(r("app:ghosts")
            .unwrap_err()
            .to_string()
            .contains("group \"ghosts\""));
    }

    #[test]
    fn default_spec_shape() {
        let s = default_spec();
        let dests: Vec<&str> = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup"
            ]
        );
        assert_eq!(
            s["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert!(serde_json::from_value::<oci_spec::runtime::Spec>(s).is_ok());
    }

    #[test]
    fn conversion() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("etc")).unwrap();
        fs::write(t.path().join("etc/passwd"), PASSWD).unwrap();
        fs::write(t.path().join("etc/group"), GROUP).unwrap();
        let cfg: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"User":"app","Env":["PATH=/x","FOO=bar"],"Entrypoint":["/bin/ep"],"Cmd":["a","b"],
            "WorkingDir":"/srv","StopSignal":"SIGTERM","ExposedPorts":{"80/tcp":{},"53/udp":{}},
            "Labels":{"org.opencontainers.image.os":"custom","x":"y"},"Volumes":{"/data":{}}}}"#,
        )
        .unwrap();
        let s = image_spec(&cfg, t.path(), &BundleOptions::default()).unwrap();
        assert_eq!(s["process"]["args"], json!(["/bin/ep", "a", "b"]));
        assert_eq!(
            s["process"]["env"],
            json!(["TERM=xterm", "HOME=/home/app", "PATH=/x", "FOO=bar"])
        );
        assert_eq!(s["process"]["cwd"], "/srv");
        assert_eq!(
            s["process"]["user"],
            json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 29]})
        );
        assert_eq!(s["process"]["terminal"], false);
        let a = &s["annotations"];
        assert_eq!(a["org.opencontainers.image.os"], "custom");
        assert_eq!(a["org.opencontainers.image.architecture"], "amd64");
        assert_eq!(a["org.opencontainers.image.stopSignal"], "SIGTERM");
        assert_eq!(a["org.opencontainers.image.exposedPorts"], "53/udp,80/tcp");
        assert_eq!(a["x"], "y");
        assert_eq!(
            s["mounts"].as_array().unwrap().last().unwrap()["destination"],
            "/data"
        );
        assert!(t.path().join("data").is_dir());
        let o = BundleOptions {
            args: Some(vec!["c".into()]),
            entrypoint: Some(vec![]),
            terminal: true,
            ..Default::default()
        };
        let s = image_spec(&cfg, t.path(), &o).unwrap();
        assert_eq!(s["process"]["args"], json!(["c"]));
        assert_eq!(s["process"]["terminal"], true);
        assert!(serde_json::from_value::<oci_spec::runtime::Spec>(s).is_ok());
    }
}
