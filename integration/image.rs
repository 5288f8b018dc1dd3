//! The image side against real things: docker-registry on loopback, images built by umoci and
//! pushed by skopeo, umoci and skopeo reading rt's store. Tests without a registry are in local.rs.
#[macro_use]
pub mod util;
mod local;
pub mod token;

use crate::common::own_cgroup_dirs;
use std::fs;
use std::path::Path;
use util::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn oci_pull_bundle_matches_umoci_and_repull_fetches_nothing() {
    require!("docker-registry", "skopeo", "umoci", "busybox");
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    busybox_image(&img);
    let reg = Registry::start(None);
    reg.push(&img, "bb:latest", &[]);
    let name = format!("{}/bb:latest", reg.addr);

    let out = ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("{}/bb", reg.addr),
    ]));
    assert!(out.starts_with(&format!("{name} sha256:")), "{out}");
    let first = reg.blob_gets();
    assert_eq!(first, 2, "config + one layer");
    // A re-pull of a present image asks for the manifest only.
    ok(&rt(&["pull", "--store", s(&store), &name]));
    assert_eq!(reg.blob_gets(), first, "re-pull downloaded blobs");
    // By digest, a present image needs no request at all.
    let digest = out.split_whitespace().nth(1).unwrap().to_string();
    let by_digest = format!("{}/bb@{digest}", reg.addr);
    let requests = reg
        .log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/"))
        .count();
    let out = ok(&rt(&["pull", "--store", s(&store), &by_digest]));
    assert_eq!(out.trim(), format!("{by_digest} {digest}"));
    let after = reg
        .log()
        .lines()
        .filter(|l| l.contains("\"GET /v2/"))
        .count();
    assert_eq!(
        after, requests,
        "pull by present digest went to the registry"
    );

    // rt's store is a layout umoci and skopeo read.
    let ours = t.path().join("ours");
    ok(&rt(&["bundle", "--store", s(&store), &name, s(&ours)]));
    let theirs = t.path().join("theirs");
    sh(std::process::Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{name}", store.display()))
        .arg(&theirs));
    assert_eq!(tree(&ours.join("rootfs")), tree(&theirs.join("rootfs")));
    assert!(tree(&ours.join("rootfs")).contains("bin/busybox f 755 0 0"));
    sh(std::process::Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:{name}", store.display())));

    let cfg = read_json(&ours.join("config.json"));
    assert_eq!(cfg["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(
        cfg["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e.as_str().unwrap().starts_with("PATH="))
            .count(),
        1
    );
    assert_eq!(
        cfg["process"]["env"][2],
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(cfg["root"]["path"], "rootfs");
    assert_eq!(cfg["process"]["terminal"], false);
    assert_eq!(
        cfg["annotations"]["org.opencontainers.image.architecture"],
        "amd64"
    );

    // Overrides and an existing bundle.
    let b2 = t.path().join("b2");
    ok(&rt(&[
        "bundle",
        "--store",
        s(&store),
        "--terminal",
        &name,
        s(&b2),
        "--",
        "echo",
        "hi",
    ]));
    let cfg = read_json(&b2.join("config.json"));
    assert_eq!(cfg["process"]["args"], serde_json::json!(["echo", "hi"]));
    assert_eq!(cfg["process"]["terminal"], true);
    let e = fails(&rt(&["bundle", "--store", s(&store), &name, s(&b2)]));
    assert!(e.contains("already exists"), "{e}");

    let list = ok(&rt(&["images", "--store", s(&store)]));
    assert!(
        list.contains(&name) && list.contains("linux/amd64"),
        "{list}"
    );
}

#[test]
fn docker_media_types_and_layered_whiteouts() {
    require!("docker-registry", "skopeo", "umoci", "busybox");
    let t = tempfile::tempdir().unwrap();
    let (base, img, store) = (
        t.path().join("base"),
        t.path().join("layered"),
        t.path().join("store"),
    );
    busybox_image(&base);
    layered_image(&base, &img);
    let reg = Registry::start(None);
    reg.push(&img, "layered:v2s2", &["--format", "v2s2"]);
    reg.push(&img, "layered:oci", &[]);
    for tag in ["v2s2", "oci"] {
        let name = format!("{}/layered:{tag}", reg.addr);
        ok(&rt(&["pull", "--store", s(&store), &name]));
        let b = t.path().join(format!("b-{tag}"));
        ok(&rt(&["bundle", "--store", s(&store), &name, s(&b)]));
        let r = b.join("rootfs");
        assert_eq!(names(&r.join("data")), ["keep"], "{tag}");
        assert_eq!(fs::read_to_string(r.join("data/keep")).unwrap(), "v2\n");
        assert_eq!(names(&r.join("opq")), ["new"], "{tag}");
        assert!(r.join("bin/busybox").is_file());
    }
    let idx = read_json(&store.join("index.json"));
    let types: Vec<&str> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mediaType"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"application/vnd.docker.distribution.manifest.v2+json"),
        "{types:?}"
    );
    assert!(
        types.contains(&"application/vnd.oci.image.manifest.v1+json"),
        "{types:?}"
    );
    // Both pulls share the same layers' content but different compressed blobs may differ; the
    // oci one and the v2s2 one name the same uncompressed layers, so the store holds no duplicates.
    let n = blob_count(&store);
    let mut all = std::collections::HashSet::new();
    for m in idx["manifests"].as_array().unwrap() {
        let man = blob_json(&store, m["digest"].as_str().unwrap());
        all.insert(m["digest"].as_str().unwrap().to_string());
        all.insert(man["config"]["digest"].as_str().unwrap().to_string());
        for l in man["layers"].as_array().unwrap() {
            all.insert(l["digest"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(n, all.len(), "every blob stored once");
}

/// An index of two platforms built by hand: the same busybox layer, configs claiming amd64 and arm64.
#[test]
fn index_picks_the_platform() {
    require!("docker-registry", "skopeo", "umoci", "busybox");
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    busybox_image(&img);
    let (_, m) = top_manifest(&img);
    let mut platforms = Vec::new();
    let mut digests = Vec::new();
    for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
        let mut cfg = blob_json(&img, m["config"]["digest"].as_str().unwrap());
        cfg["architecture"] = arch.into();
        if let Some(v) = variant {
            cfg["variant"] = v.into();
        }
        let c = put_blob(
            &img,
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&cfg).unwrap(),
        );
        let mut man = m.clone();
        man["config"] = c;
        let mut d = put_blob(
            &img,
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&man).unwrap(),
        );
        let mut p = serde_json::json!({"os": "linux", "architecture": arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        d["platform"] = p;
        digests.push(d["digest"].as_str().unwrap().to_string());
        platforms.push(d);
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": platforms});
    let mut d = put_blob(
        &img,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap(),
    );
    d["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    fs::write(
        img.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [d]})).unwrap(),
    )
    .unwrap();
    let reg = Registry::start(None);
    reg.push(&img, "multi:latest", &["--all"]);
    let name = format!("{}/multi", reg.addr);

    let out = ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--platform",
        "linux/arm64",
        "--name",
        "arm",
        &name,
    ]));
    assert!(out.contains(&digests[1]), "{out}");
    let out = ok(&rt(&["pull", "--store", s(&store), &name]));
    assert!(out.contains(&digests[0]), "host platform is amd64: {out}");
    let e = fails(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--platform",
        "linux/s390x",
        &name,
    ]));
    assert!(
        e.contains("linux/s390x") && e.contains("linux/arm64/v8"),
        "{e}"
    );
    let list = ok(&rt(&["images", "--store", s(&store)]));
    assert!(
        list.contains("linux/arm64/v8") && list.contains("linux/amd64"),
        "{list}"
    );

    // A whole index copied into a store by skopeo: rt picks the platform at bundle time, lists
    // it as an index, and its gc follows the index down to the layers.
    let sk = t.path().join("sk");
    sh(std::process::Command::new("skopeo")
        .args(["copy", "-q", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{name}:latest"))
        .arg(format!("oci:{}:multi", sk.display())));
    let b = t.path().join("b");
    ok(&rt(&[
        "bundle",
        "--store",
        s(&sk),
        "--platform",
        "linux/arm64",
        "multi",
        s(&b),
    ]));
    let cfg = read_json(&b.join("config.json"));
    assert_eq!(
        cfg["annotations"]["org.opencontainers.image.architecture"],
        "arm64"
    );
    assert!(ok(&rt(&["images", "--store", s(&sk)])).contains("(index)"));
    let before = blob_count(&sk);
    ok(&rt(&[
        "pull",
        "--store",
        s(&sk),
        "--name",
        "arm",
        "--platform",
        "linux/arm64",
        &name,
    ]));
    assert_eq!(blob_count(&sk), before, "everything was already there");
    ok(&rt(&["rmi", "--store", s(&sk), "arm"]));
    assert_eq!(blob_count(&sk), before, "gc kept what the index reaches");
    ok(&rt(&["rmi", "--store", s(&sk), "multi"]));
    assert_eq!(blob_count(&sk), 0);
}

fn htpasswd_line(user: &str, pass: &str) -> Option<String> {
    let o = std::process::Command::new("htpasswd")
        .args(["-nbB", user, pass])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string() + "\n")
}

#[test]
fn basic_auth_right_and_wrong_credentials() {
    require!("docker-registry", "skopeo", "umoci", "busybox", "htpasswd");
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    busybox_image(&img);
    let reg = Registry::start(Some(&htpasswd_line("alice", "s3cret").unwrap()));
    reg.push(&img, "private:latest", &["--dest-creds", "alice:s3cret"]);
    let name = format!("{}/private", reg.addr);

    let e = fails(&rt(&["pull", "--store", s(&store), &name]));
    assert!(e.contains("requires a login"), "{e}");
    let e = fails(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--creds",
        "alice:wrong",
        &name,
    ]));
    assert!(e.contains("authentication failed"), "{e}");
    assert_eq!(blob_count(&store), 0, "nothing stored after a refused pull");

    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--creds",
        "alice:s3cret",
        &name,
    ]));
    // Credentials from an auth file, as docker and podman write them.
    let store2 = t.path().join("store2");
    let auth = t.path().join("auth.json");
    fs::write(
        &auth,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0"}}}}}}"#,
            reg.addr
        ),
    )
    .unwrap();
    ok(&rt_env(
        &["pull", "--store", s(&store2), &name],
        &[("REGISTRY_AUTH_FILE", s(&auth))],
    ));
    assert_eq!(blob_count(&store2), 3);
}

/// The Bearer flow against docker-registry in token mode: challenge, token with Basic credentials,
/// one token for the whole pull, and a fresh token after a 401 on an expired one.
#[test]
fn bearer_token_flow() {
    require!("docker-registry", "skopeo", "umoci", "busybox", "openssl");
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    busybox_image(&img);
    let tokens = token::TokenServer::start(t.path(), "alice", "s3cret");
    let reg = Registry::start_with(|_| Some(tokens.registry_auth()));
    reg.push(&img, "tok:latest", &["--dest-creds", "alice:s3cret"]);
    let name = format!("{}/tok", reg.addr);

    let e = fails(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--creds",
        "alice:nope",
        &name,
    ]));
    assert!(e.contains("authentication failed"), "{e}");
    assert_eq!(blob_count(&store), 0);

    let before = tokens.requests.load(std::sync::atomic::Ordering::SeqCst);
    ok(&rt(&[
        "pull",
        "--store",
        s(&store),
        "--creds",
        "alice:s3cret",
        &name,
    ]));
    assert_eq!(
        tokens.requests.load(std::sync::atomic::Ordering::SeqCst) - before,
        1,
        "one token serves the whole pull"
    );
    assert_eq!(blob_count(&store), 3);

    // The first token is stale: the registry says 401, rt asks once more and carries on.
    let store2 = t.path().join("store2");
    tokens
        .expire_next
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let before = tokens.requests.load(std::sync::atomic::Ordering::SeqCst);
    ok(&rt(&[
        "pull",
        "--store",
        s(&store2),
        "--creds",
        "alice:s3cret",
        &name,
    ]));
    assert_eq!(
        tokens.requests.load(std::sync::atomic::Ordering::SeqCst) - before,
        2
    );
    assert_eq!(blob_count(&store2), 3);
}

#[test]
fn redirects_are_followed() {
    require!("docker-registry", "skopeo", "umoci", "busybox");
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    busybox_image(&img);
    let reg = Registry::start(None);
    reg.push(&img, "bb:latest", &[]);
    let front = redirector(&reg.addr);
    let out = ok(&rt(&["pull", "--store", s(&store), &format!("{front}/bb")]));
    assert!(
        out.starts_with(&format!("{front}/bb:latest sha256:")),
        "{out}"
    );
    assert_eq!(
        reg.blob_gets(),
        2,
        "blobs came from the registry behind the redirect"
    );
}

#[test]
fn corrupted_blob_is_rejected_and_nothing_kept() {
    require!("docker-registry", "skopeo", "umoci", "busybox");
    let t = tempfile::tempdir().unwrap();
    let (img, store) = (t.path().join("img"), t.path().join("store"));
    busybox_image(&img);
    let (_, m) = top_manifest(&img);
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let reg = Registry::start(None);
    reg.push(&img, "bad:latest", &[]);
    // Same size, one byte changed, in the registry's own storage.
    let f = reg.blob_file(&layer);
    let mut data = fs::read(&f).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    fs::write(&f, &data).unwrap();

    let e = fails(&rt(&[
        "pull",
        "--store",
        s(&store),
        &format!("{}/bad", reg.addr),
    ]));
    assert!(e.contains(&layer) && e.contains("mismatch"), "{e}");
    assert!(!store.join("blobs/sha256").join(&layer[7..]).exists());
    assert_eq!(
        fs::read_dir(store.join(".rt-tmp")).unwrap().count(),
        0,
        "partial download left behind"
    );
    let idx = read_json(&store.join("index.json"));
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 0);

    // A config damaged in rt's own store is caught on the next pull and fetched again.
    data[mid] ^= 0xff;
    fs::write(&f, &data).unwrap();
    reg.push(&img, "good:latest", &[]);
    let good = format!("{}/good", reg.addr);
    ok(&rt(&["pull", "--store", s(&store), &good]));
    let cfg = store
        .join("blobs/sha256")
        .join(&m["config"]["digest"].as_str().unwrap()[7..]);
    let mut data = fs::read(&cfg).unwrap();
    data[0] ^= 0x01;
    fs::write(&cfg, &data).unwrap();
    let e = fails(&rt(&[
        "bundle",
        "--store",
        s(&store),
        &good,
        s(&t.path().join("b0")),
    ]));
    assert!(e.contains("mismatch"), "{e}");
    ok(&rt(&["pull", "--store", s(&store), &good]));
    ok(&rt(&[
        "bundle",
        "--store",
        s(&store),
        &good,
        s(&t.path().join("b1")),
    ]));
}

/// `rt run --image`: pull on first use, bundle, run, pass the exit status, clean up with --rm.
#[test]
fn run_image_pulls_runs_and_cleans_up() {
    require!("docker-registry", "skopeo", "umoci", "busybox");
    let t = tempfile::tempdir().unwrap();
    let (img, store, root) = (
        t.path().join("img"),
        t.path().join("store"),
        t.path().join("root"),
    );
    busybox_image(&img);
    let reg = Registry::start(None);
    reg.push(&img, "run/busybox:latest", &[]);
    let name = format!("{}/run/busybox:latest", reg.addr);
    let id = format!("runimg-{}", std::process::id());
    let run = |extra: &[&str], cmd: &[&str]| {
        let mut args = vec![
            "--root",
            s(&root),
            "run",
            "--store",
            s(&store),
            "--image",
            &name,
            "--name",
            &id,
        ];
        args.extend_from_slice(extra);
        args.push("--");
        args.extend_from_slice(cmd);
        rt(&args)
    };
    let out = run(
        &["--rm", "-e", "GREETING=hi"],
        &["sh", "-c", "echo $GREETING from $(hostname); exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from rt\n");
    // It was pulled on first use, and --rm left neither a bundle nor a container.
    assert!(reg.blob_gets() > 0);
    assert!(!store.join("bundles").join(&id).exists());
    assert!(
        fs::read_dir(&root).map(|d| d.count()).unwrap_or(0) == 0,
        "state left in {}",
        root.display()
    );
    // A second run finds the image in the store: nothing more is fetched.
    let gets = reg.blob_gets();
    let out = run(&[], &["true"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(reg.blob_gets(), gets, "second run pulled again");
    // Without --rm the bundle stays for inspection; a third run replaces it.
    assert!(store.join("bundles").join(&id).join("config.json").exists());
    ok(&run(&["--rm"], &["true"]));
    // A bad reference is one clear error and leaves nothing.
    let bad = rt(&[
        "--root",
        s(&root),
        "run",
        "--store",
        s(&store),
        "--image",
        &format!("{}/no/such:tag", reg.addr),
    ]);
    let err = fails(&bad);
    assert!(err.contains("no/such"), "{err}");
    // The containers' cgroups (the default: the id below our own cgroup) went with them.
    for d in own_cgroup_dirs(&id) {
        assert!(!Path::new(&d).exists(), "{d} left behind");
    }
}
