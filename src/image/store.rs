//! The local store: a plain OCI image layout (oci-layout, index.json, blobs/sha256/), so that
//! skopeo and umoci read what rt writes and the other way round.
use super::digest::{sha256_digest, Verifier};
use super::oci::{self, Descriptor, REF_NAME};
use super::reference::{valid_digest, Reference};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const DEFAULT_STORE: &str = "/var/lib/rt";
const TMP_DIR: &str = ".rt-tmp";
/// Held shared by pulls (which add blobs before naming them) and exclusively by garbage collection.
const GC_LOCK: &str = ".rt-gc.lock";
/// Held exclusively around every read-modify-write of index.json.
const INDEX_LOCK: &str = ".rt-index.lock";

pub struct Store {
    root: PathBuf,
}

/// An advisory lock that lasts as long as the value.
pub struct Lock(#[allow(dead_code)] File);

fn flock(path: &Path, exclusive: bool) -> Result<Lock> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock {}", path.display()))?;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock on an fd we own; it only blocks until the lock is free.
    if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("locking {}", path.display()));
    }
    Ok(Lock(f))
}

/// A download in progress: removed when dropped unless it was committed into the store.
pub struct TempBlob {
    pub path: PathBuf,
    pub file: File,
    committed: bool,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Store {
    /// Opens the layout at `root`, creating an empty one if nothing is there.
    pub fn open(root: &Path) -> Result<Store> {
        let s = Store {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(s.root.join("blobs/sha256"))
            .with_context(|| format!("creating store {}", root.display()))?;
        fs::create_dir_all(s.root.join(TMP_DIR))?;
        let layout = s.root.join("oci-layout");
        if !layout.exists() {
            atomic_write(&s, &layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = s.root.join("index.json");
        if !index.exists() {
            atomic_write(&s, &index, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)?;
        }
        Ok(s)
    }

    /// Opens an existing layout read-only (no files created); for reading other tools' layouts.
    pub fn open_existing(root: &Path) -> Result<Store> {
        if !root.join("index.json").is_file() {
            bail!(
                "{} is not an OCI image layout (no index.json)",
                root.display()
            );
        }
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        if !valid_digest(digest) {
            bail!("unsupported or malformed digest {digest:?}");
        }
        Ok(self.root.join("blobs/sha256").join(&digest[7..]))
    }

    /// A blob counts as present when its file has the descriptor's size; its content was verified
    /// when it came in.
    pub fn has(&self, d: &Descriptor) -> bool {
        match self
            .blob_path(&d.digest)
            .and_then(|p| Ok(fs::symlink_metadata(p)?))
        {
            Ok(m) => m.is_file() && m.len() == d.size,
            Err(_) => false,
        }
    }

    pub fn gc_shared(&self) -> Result<Lock> {
        flock(&self.root.join(GC_LOCK), false)
    }

    pub fn temp_blob(&self) -> Result<TempBlob> {
        let dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&dir)?;
        for n in 0..1000u32 {
            let name = format!("{}-{}-{n}", std::process::id(), unique());
            let path = dir.join(name);
            match File::options()
                .write(true)
                .read(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempBlob {
                        path,
                        file,
                        committed: false,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        bail!("could not create a temporary file in {}", dir.display())
    }

    /// Moves a verified download into place under its digest. No fsync: a blob damaged by a
    /// crash has the wrong size (and is fetched again) or fails the digest checks made on every
    /// read and unpack, so durability here would only cost time.
    pub fn commit(&self, mut t: TempBlob, digest: &str) -> Result<()> {
        let dst = self.blob_path(digest)?;
        fs::rename(&t.path, &dst)
            .with_context(|| format!("moving blob {digest} into the store"))?;
        t.committed = true;
        Ok(())
    }

    /// Stores bytes that the caller has in memory, after checking they are what `digest` names.
    pub fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let got = sha256_digest(bytes);
        if got != digest {
            bail!("blob {digest}: digest mismatch (got {got})");
        }
        // Small blobs only pass through here, so re-checking one that is already present is cheap,
        // and a damaged copy gets replaced.
        if let Ok(old) = fs::read(self.blob_path(digest)?) {
            if sha256_digest(&old) == digest {
                return Ok(());
            }
        }
        let mut t = self.temp_blob()?;
        t.file.write_all(bytes)?;
        self.commit(t, digest)
    }

    /// Reads a small blob known only by digest (at most 4 MiB, the size of a large manifest).
    pub fn read_blob_by_digest(&self, digest: &str) -> Result<Vec<u8>> {
        let p = self.blob_path(digest)?;
        let size = fs::symlink_metadata(&p)?.len();
        if size > 4 << 20 {
            bail!("blob {digest} is too large for a manifest");
        }
        let d = Descriptor {
            media_type: String::new(),
            digest: digest.to_string(),
            size,
            platform: None,
            annotations: None,
            urls: None,
        };
        self.read_blob(&d)
    }

    /// Reads a small blob (manifest, config) and checks it again: the store may have been written
    /// by another tool, or tampered with.
    pub fn read_blob(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let p = self.blob_path(&d.digest)?;
        let f = File::open(&p)
            .with_context(|| format!("blob {} is missing from the store", d.digest))?;
        let mut v = Verifier::new(f.take(d.size + 1), Some(d.size));
        let mut buf = Vec::with_capacity(d.size as usize);
        v.read_to_end(&mut buf)
            .with_context(|| format!("reading blob {}", d.digest))?;
        v.finish(&format!("blob {}", d.digest), &d.digest, Some(d.size))?;
        Ok(buf)
    }

    pub fn open_blob(&self, digest: &str) -> Result<File> {
        let p = self.blob_path(digest)?;
        File::open(&p).with_context(|| format!("blob {digest} is missing from the store"))
    }

    fn read_index(&self) -> Result<serde_json::Value> {
        let p = self.root.join("index.json");
        let text = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", p.display()))?;
        if !v.get("manifests").is_some_and(|m| m.is_array()) {
            bail!("{}: no manifests array", p.display());
        }
        Ok(v)
    }

    /// Every (name, descriptor) in index.json; unnamed entries get an empty name.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        let v = self.read_index()?;
        let mut out = Vec::new();
        for m in v["manifests"].as_array().unwrap() {
            let d: Descriptor =
                serde_json::from_value(m.clone()).context("index.json: malformed descriptor")?;
            let name = d
                .annotations
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
                .unwrap_or_default();
            out.push((name, d));
        }
        Ok(out)
    }

    /// Finds an image by the name it was stored under, or by its normalised reference
    /// (so `busybox` finds `docker.io/library/busybox:latest`), or by manifest digest.
    pub fn resolve(&self, name: &str) -> Result<(String, Descriptor)> {
        let refs = self.refs()?;
        if let Some((n, d)) = refs.iter().find(|(n, _)| n == name) {
            return Ok((n.clone(), d.clone()));
        }
        // Then as a reference, and as a local image (`rt pull oci:...` names them localhost/...).
        for r in [
            Reference::parse(name),
            Reference::parse(&format!("localhost/{name}")),
        ]
        .into_iter()
        .flatten()
        {
            let full = r.to_string();
            if let Some((n, d)) = refs.iter().find(|(n, _)| *n == full) {
                return Ok((n.clone(), d.clone()));
            }
        }
        let by_digest: Vec<_> = refs
            .iter()
            .filter(|(_, d)| {
                d.digest == name || (name.len() >= 12 && d.digest[7..].starts_with(name))
            })
            .collect();
        if let Some((n, d)) = by_digest.first() {
            return Ok((n.clone(), d.clone()));
        }
        bail!("image {name:?} is not in the store {}", self.root.display())
    }

    /// Names `d` as `name` in index.json, replacing an older entry of that name.
    pub fn set_ref(&self, name: &str, d: &Descriptor) -> Result<()> {
        let _l = flock(&self.root.join(INDEX_LOCK), true)?;
        let mut v = self.read_index()?;
        let list = v["manifests"].as_array_mut().unwrap();
        list.retain(|m| entry_name(m) != Some(name));
        let mut d = d.clone();
        d.annotations
            .get_or_insert_with(Default::default)
            .insert(REF_NAME.into(), name.into());
        list.push(serde_json::to_value(&d)?);
        atomic_write(
            self,
            &self.root.join("index.json"),
            &serde_json::to_vec_pretty(&v)?,
        )
    }

    /// Drops the entries named `name`; false if there was none.
    pub fn remove_ref(&self, name: &str) -> Result<bool> {
        let _l = flock(&self.root.join(INDEX_LOCK), true)?;
        let mut v = self.read_index()?;
        let list = v["manifests"].as_array_mut().unwrap();
        let before = list.len();
        list.retain(|m| entry_name(m) != Some(name));
        if list.len() == before {
            return Ok(false);
        }
        atomic_write(
            self,
            &self.root.join("index.json"),
            &serde_json::to_vec_pretty(&v)?,
        )?;
        Ok(true)
    }

    /// Deletes every blob that no index.json entry reaches, and stale temp files.
    /// Returns the number of blobs and bytes freed.
    pub fn gc(&self) -> Result<(usize, u64)> {
        let _g = flock(&self.root.join(GC_LOCK), true)?;
        let _i = flock(&self.root.join(INDEX_LOCK), true)?;
        let mut live = HashSet::new();
        let mut todo: Vec<Descriptor> = self.refs()?.into_iter().map(|(_, d)| d).collect();
        while let Some(d) = todo.pop() {
            if !live.insert(d.digest.clone()) {
                continue;
            }
            let is_manifest = matches!(
                d.media_type.as_str(),
                oci::OCI_MANIFEST | oci::DOCKER_MANIFEST | oci::OCI_INDEX | oci::DOCKER_LIST
            );
            if !is_manifest || !self.has(&d) {
                continue;
            }
            // An unreadable manifest keeps only itself alive; we never delete what we can't reason about
            // beyond that, but we also never fail a gc on it.
            if let Ok(bytes) = self.read_blob(&d) {
                match oci::parse_manifest(&bytes, Some(&d.media_type)) {
                    Ok(oci::Parsed::Manifest(m)) => {
                        todo.push(m.config);
                        todo.extend(m.layers);
                    }
                    Ok(oci::Parsed::Index(i)) => todo.extend(i.manifests),
                    Err(_) => {}
                }
            }
        }
        let (mut n, mut bytes) = (0, 0);
        let dir = self.root.join("blobs/sha256");
        for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let digest = format!("sha256:{}", e.file_name().to_string_lossy());
            if !live.contains(&digest) {
                bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(e.path()).with_context(|| format!("removing blob {digest}"))?;
                n += 1;
            }
        }
        // With the gc lock held exclusively no pull is running, so every temp file is a leftover.
        if let Ok(rd) = fs::read_dir(self.root.join(TMP_DIR)) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok((n, bytes))
    }
}

fn entry_name(m: &serde_json::Value) -> Option<&str> {
    m.get("annotations")?.get(REF_NAME)?.as_str()
}

fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    t ^ (N.fetch_add(1, Ordering::Relaxed) as u128) << 64
}

/// Writes through a temp file and a rename, so readers see the old or the new file, never half.
fn atomic_write(s: &Store, path: &Path, bytes: &[u8]) -> Result<()> {
    let mut t = s.temp_blob()?;
    t.file.write_all(bytes)?;
    t.file.sync_all().ok();
    fs::rename(&t.path, path).with_context(|| format!("writing {}", path.display()))?;
    t.committed = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_gc_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let layer = b"layer".to_vec();
        let cfg = b"{}".to_vec();
        let ld = sha256_digest(&layer);
        let cd = sha256_digest(&cfg);
        let man = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{cd}","size":2}},"layers":[{{"mediaType":"x","digest":"{ld}","size":5}}]}}"#,
            oci::OCI_MANIFEST,
            oci::OCI_CONFIG
        );
        let md = sha256_digest(man.as_bytes());
        s.put_bytes(&ld, &layer).unwrap();
        s.put_bytes(&cd, &cfg).unwrap();
        s.put_bytes(&md, man.as_bytes()).unwrap();
        let orphan = b"orphan".to_vec();
        s.put_bytes(&sha256_digest(&orphan), &orphan).unwrap();
        assert!(s.put_bytes(&ld, b"other").is_err());
        let d = Descriptor {
            media_type: oci::OCI_MANIFEST.into(),
            digest: md.clone(),
            size: man.len() as u64,
            platform: None,
            annotations: None,
            urls: None,
        };
        s.set_ref("docker.io/library/busybox:latest", &d).unwrap();
        s.set_ref("docker.io/library/busybox:latest", &d).unwrap();
        assert_eq!(s.refs().unwrap().len(), 1);
        assert_eq!(s.resolve("busybox").unwrap().1.digest, md);
        assert!(s.resolve("alpine").is_err());
        assert_eq!(s.gc().unwrap().0, 1);
        assert!(s.has(&d));
        assert!(s.remove_ref("docker.io/library/busybox:latest").unwrap());
        assert!(!s.remove_ref("docker.io/library/busybox:latest").unwrap());
        assert_eq!(s.gc().unwrap().0, 3);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
