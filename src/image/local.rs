//! Local image sources: an OCI layout directory, a tar of one, or `docker save` output.
//! Archives are unpacked into a private temp directory first; only plainly named regular files
//! (and, for docker archives, their symlinked aliases) are taken from them.
use super::compress::tar_error;
use super::digest::{sha256_digest, HashSink};
use super::oci::{self, Descriptor, REF_NAME};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Reads manifests and blobs out of an OCI image layout directory.
pub struct Layout {
    pub dir: PathBuf,
    /// Keeps an unpacked archive alive as long as the source.
    _tmp: Option<TempDir>,
}

pub struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir> {
        let base = std::env::temp_dir();
        for n in 0..100 {
            let p = base.join(format!("rt-archive-{}-{n}", std::process::id()));
            match fs::create_dir(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).context("creating a temporary directory"),
            }
        }
        bail!("could not create a temporary directory")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Layout {
    pub fn open(dir: &Path) -> Result<Layout> {
        if !dir.join("index.json").is_file() {
            bail!(
                "{} is not an OCI image layout (no index.json)",
                dir.display()
            );
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
            _tmp: None,
        })
    }

    /// Finds the entry for `tag` in index.json: by its ref.name, or the only entry when no tag is given.
    pub fn resolve(&self, tag: Option<&str>) -> Result<Descriptor> {
        let p = self.dir.join("index.json");
        let bytes = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        let idx: oci::Index =
            serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", p.display()))?;
        let name_of = |d: &Descriptor| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        match tag {
            Some(t) => idx
                .manifests
                .iter()
                .find(|d| name_of(d).as_deref() == Some(t))
                .cloned()
                .ok_or_else(|| {
                    let names: Vec<String> = idx.manifests.iter().filter_map(name_of).collect();
                    anyhow!(
                        "no image tagged {t:?} in {} (it has: {})",
                        self.dir.display(),
                        names.join(", ")
                    )
                }),
            None if idx.manifests.len() == 1 => Ok(idx.manifests[0].clone()),
            None => match idx
                .manifests
                .iter()
                .find(|d| name_of(d).as_deref() == Some("latest"))
            {
                Some(d) => Ok(d.clone()),
                None => bail!(
                    "{} holds {} images; name one with oci:DIR:TAG",
                    self.dir.display(),
                    idx.manifests.len()
                ),
            },
        }
    }

    pub fn blob(&self, digest: &str) -> Result<Box<dyn Read + Send>> {
        if !super::reference::valid_digest(digest) {
            bail!("unsupported digest {digest:?}");
        }
        let p = self.dir.join("blobs/sha256").join(&digest[7..]);
        Ok(Box::new(File::open(&p).with_context(|| {
            format!("blob {digest} missing from {}", self.dir.display())
        })?))
    }

    pub fn oci_archive(file: &Path) -> Result<Layout> {
        let tmp = TempDir::new()?;
        fs::create_dir_all(tmp.0.join("blobs/sha256"))?;
        each_entry(file, |mut e| {
            if e.header().entry_type() != tar::EntryType::Regular {
                return Ok(());
            }
            let path = e.path()?.into_owned();
            let name = clean(&path);
            let ok = name == "index.json"
                || name == "oci-layout"
                || name
                    .strip_prefix("blobs/sha256/")
                    .is_some_and(|h| super::reference::valid_digest(&format!("sha256:{h}")));
            if ok {
                let mut out = File::create(tmp.0.join(&name))?;
                io::copy(&mut e, &mut out)
                    .with_context(|| format!("extracting {name} from {}", file.display()))?;
            }
            Ok(())
        })?;
        let mut l = Layout::open(&tmp.0)
            .with_context(|| format!("{} is not an OCI archive", file.display()))?;
        l._tmp = Some(tmp);
        Ok(l)
    }

    /// Turns `docker save` output into a one-image OCI layout. Returns it and the archive's first
    /// RepoTag, if it names one.
    pub fn docker_archive(file: &Path, want: Option<&str>) -> Result<(Layout, Option<String>)> {
        let tmp = TempDir::new()?;
        let blobs = tmp.0.join("blobs/sha256");
        fs::create_dir_all(&blobs)?;
        // archive name -> blob digest (files are stored by content as they are read)
        let mut files: HashMap<String, (String, u64)> = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut count = 0u32;
        each_entry(file, |mut e| {
            let name = clean(&e.path()?);
            match e.header().entry_type() {
                tar::EntryType::Regular => {
                    count += 1;
                    let tmpf = tmp.0.join(format!("f{count}"));
                    let mut out = File::create(&tmpf)?;
                    let mut tee = TeeHash {
                        inner: &mut e,
                        sink: HashSink::default(),
                        n: 0,
                    };
                    io::copy(&mut tee, &mut out)
                        .with_context(|| format!("extracting {name} from {}", file.display()))?;
                    let (d, n) = (tee.sink.digest(), tee.n);
                    fs::rename(&tmpf, blobs.join(&d[7..]))?;
                    files.insert(name, (d, n));
                }
                tar::EntryType::Symlink => {
                    let target = e
                        .link_name()?
                        .ok_or_else(|| anyhow!("symlink {name} without target"))?;
                    let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                    links.push((name.clone(), clean(&base.join(target))));
                }
                _ => {}
            }
            Ok(())
        })?;
        for (from, to) in links {
            if let Some(v) = files.get(&to).cloned() {
                files.insert(from, v);
            }
        }
        let (mdig, _) = files
            .get("manifest.json")
            .ok_or_else(|| anyhow!("{}: no manifest.json; not a docker archive", file.display()))?;
        let m: serde_json::Value = serde_json::from_reader(File::open(blobs.join(&mdig[7..]))?)
            .context("parsing manifest.json")?;
        let images = m
            .as_array()
            .ok_or_else(|| anyhow!("manifest.json is not a list"))?;
        let tags_of = |i: &serde_json::Value| -> Vec<String> {
            i.get("RepoTags")
                .and_then(|t| t.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let img = match want {
            Some(w) => images
                .iter()
                .find(|i| tags_of(i).iter().any(|t| t == w))
                .ok_or_else(|| anyhow!("no image tagged {w:?} in {}", file.display()))?,
            None if images.len() == 1 => &images[0],
            None => bail!(
                "{} holds {} images; name one with docker-archive:FILE:REPO:TAG",
                file.display(),
                images.len()
            ),
        };
        let get = |k: &str| -> Result<(String, u64)> {
            files.get(k).cloned().ok_or_else(|| {
                anyhow!(
                    "{}: {k} is listed in manifest.json but missing",
                    file.display()
                )
            })
        };
        let cfg_name = img
            .get("Config")
            .and_then(|c| c.as_str())
            .ok_or_else(|| anyhow!("manifest.json: no Config"))?;
        let (cd, cs) = get(&clean(Path::new(cfg_name)))?;
        let mut layers = Vec::new();
        for l in img
            .get("Layers")
            .and_then(|l| l.as_array())
            .ok_or_else(|| anyhow!("manifest.json: no Layers"))?
        {
            let (ld, ls) = get(&clean(Path::new(l.as_str().unwrap_or(""))))?;
            let mut head = [0u8; 2];
            let gz =
                File::open(blobs.join(&ld[7..]))?.read(&mut head)? == 2 && head == [0x1f, 0x8b];
            let mt = if gz {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            layers.push(serde_json::json!({"mediaType": mt, "digest": ld, "size": ls}));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_CONFIG, "digest": cd, "size": cs},
            "layers": layers,
        });
        let mbytes = serde_json::to_vec(&manifest)?;
        let md = sha256_digest(&mbytes);
        fs::write(blobs.join(&md[7..]), &mbytes)?;
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": oci::OCI_MANIFEST, "digest": md, "size": mbytes.len()}]});
        fs::write(tmp.0.join("index.json"), serde_json::to_vec(&index)?)?;
        fs::write(
            tmp.0.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let tag = want
            .map(String::from)
            .or_else(|| tags_of(img).into_iter().next());
        Ok((
            Layout {
                dir: tmp.0.clone(),
                _tmp: Some(tmp),
            },
            tag,
        ))
    }
}

/// Calls `f` on each entry of the tar archive `file`; a broken archive is an error naming it.
fn each_entry(file: &Path, mut f: impl FnMut(tar::Entry<'_, File>) -> Result<()>) -> Result<()> {
    let archive = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut ar = tar::Archive::new(archive);
    for e in ar
        .entries()
        .map_err(tar_error)
        .with_context(|| format!("reading {}", file.display()))?
    {
        f(e.map_err(tar_error)
            .with_context(|| format!("reading {}", file.display()))?)?;
    }
    Ok(())
}

/// An archive path as a lookup key: "." and leading "/" dropped, ".." folded lexically. Keys are
/// only compared, never used to create files, so folding can't escape anything.
fn clean(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

struct TeeHash<'a, R> {
    inner: &'a mut R,
    sink: HashSink,
    n: u64,
}

impl<R: Read> Read for TeeHash<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.sink, &buf[..n])?;
        self.n += n as u64;
        Ok(n)
    }
}
