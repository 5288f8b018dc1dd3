//! Pull: from a registry or a local source into the store, verifying every byte on the way.
use super::auth::{lookup_creds, Creds};
use super::compress::decompress;
use super::digest::{copy_big, sha256_digest, Verifier};
use super::local::Layout;
use super::oci::{self, Descriptor, ImageConfig, Parsed, Platform};
use super::progress::{Counted, Progress};
use super::reference::{Reference, Source};
use super::registry::Registry;
use super::store::Store;
use anyhow::{bail, Context, Result};
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub store: PathBuf,
    /// `--creds`; when None the auth file is consulted.
    pub creds: Option<Creds>,
    pub insecure: bool,
    /// None means the host's platform.
    pub platform: Option<Platform>,
    pub quiet: bool,
    /// Store the image under this name instead of the one derived from the source.
    pub name: Option<String>,
    /// How many layers download at once.
    pub jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            store: PathBuf::from(super::store::DEFAULT_STORE),
            creds: None,
            insecure: false,
            platform: None,
            quiet: true,
            name: None,
            jobs: 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullResult {
    /// The name in the store's index.json.
    pub name: String,
    pub manifest: Descriptor,
    /// Blobs actually transferred (0 on a re-pull of a present image).
    pub blobs_fetched: u64,
    pub bytes_fetched: u64,
}

/// Where manifests and blobs come from.
enum Origin {
    Registry(Registry),
    Layout(Layout),
}

impl Origin {
    fn blob(&self, digest: &str) -> Result<Box<dyn Read + Send>> {
        match self {
            Origin::Registry(r) => r.blob(digest),
            Origin::Layout(l) => l.blob(digest),
        }
    }

    /// A manifest by descriptor, checked against its digest and size.
    fn manifest_by(&self, d: &Descriptor) -> Result<Vec<u8>> {
        let bytes = match self {
            Origin::Registry(r) => r.manifest(&d.digest)?.0,
            Origin::Layout(l) => {
                let mut v = Vec::new();
                l.blob(&d.digest)?.take(d.size + 1).read_to_end(&mut v)?;
                v
            }
        };
        check_bytes(&bytes, d, "manifest")?;
        Ok(bytes)
    }
}

fn check_bytes(bytes: &[u8], d: &Descriptor, what: &str) -> Result<()> {
    let got = sha256_digest(bytes);
    if got != d.digest {
        bail!("{what} {}: digest mismatch (got {got})", d.digest);
    }
    if bytes.len() as u64 != d.size {
        bail!(
            "{what} {}: size mismatch: expected {} bytes, got {}",
            d.digest,
            d.size,
            bytes.len()
        );
    }
    Ok(())
}

/// Pulls `source` (anything `Source::parse` accepts) into the store and names it there.
pub fn pull(source: &str, opts: &PullOptions) -> Result<PullResult> {
    let src = Source::parse(source)?;
    let store = Store::open(&opts.store)?;
    // Blobs land before the name that keeps them alive; a concurrent gc must wait.
    let _gc = store.gc_shared()?;
    let want = opts.platform.clone().unwrap_or_else(Platform::host);
    let explicit_platform = opts.platform.is_some();
    let (from, top_bytes, top_type, top_digest, default_name) = match &src {
        Source::Registry(r) => {
            let creds = match &opts.creds {
                Some(c) => Some(c.clone()),
                None => lookup_creds(&r.registry)?,
            };
            let reg = Registry::new(r, creds, opts.insecure)?;
            // A manifest named by digest that is already here needs no network at all; if a blob
            // turns out to be missing, the registry's 401 challenge sets up auth on the way.
            let local = r
                .digest
                .as_deref()
                .and_then(|d| store.read_blob_by_digest(d).ok());
            let (bytes, ct) = match local {
                Some(b) => (b, None),
                None => {
                    reg.login()?;
                    reg.manifest(r.manifest_ref())?
                }
            };
            let digest = sha256_digest(&bytes);
            if let Some(d) = &r.digest {
                if *d != digest {
                    bail!("manifest {r}: digest mismatch (got {digest})");
                }
            }
            (Origin::Registry(reg), bytes, ct, digest, r.to_string())
        }
        Source::OciDir { dir, tag } => {
            let l = Layout::open(dir)?;
            local_top(l, tag.as_deref(), local_name(dir, tag.as_deref()))?
        }
        Source::OciArchive { file, tag } => {
            let l = Layout::oci_archive(file)?;
            local_top(l, tag.as_deref(), local_name(file, tag.as_deref()))?
        }
        Source::DockerArchive { file, tag } => {
            let (l, found) = Layout::docker_archive(file, tag.as_deref())?;
            let name = match found.as_deref().and_then(|t| Reference::parse(t).ok()) {
                Some(r) => r.to_string(),
                None => local_name(file, None),
            };
            local_top(l, None, name)?
        }
    };
    let name = opts.name.clone().unwrap_or(default_name);
    let mut fetched = (0u64, 0u64);

    let top_desc = |mt: String| Descriptor {
        media_type: mt,
        digest: top_digest.clone(),
        size: top_bytes.len() as u64,
        platform: None,
        annotations: None,
        urls: None,
    };
    let (mdesc, mbytes, manifest) = match oci::parse_manifest(&top_bytes, top_type.as_deref())
        .with_context(|| source.to_string())?
    {
        Parsed::Manifest(m) => {
            let mt = m
                .media_type
                .clone()
                .or(top_type.clone())
                .unwrap_or_else(|| oci::OCI_MANIFEST.into());
            (top_desc(mt), top_bytes.clone(), m)
        }
        Parsed::Index(idx) => {
            let d = oci::select_platform(&idx, &want)
                .with_context(|| source.to_string())?
                .clone();
            let bytes = from.manifest_by(&d)?;
            match oci::parse_manifest(&bytes, Some(&d.media_type))? {
                Parsed::Manifest(m) => (d, bytes, m),
                Parsed::Index(_) => bail!("{source}: nested image indexes are not supported"),
            }
        }
    };
    for l in &manifest.layers {
        if l.media_type.contains("nondistributable") || l.media_type.contains("foreign") {
            bail!(
                "layer {} has media type {} (foreign layers are not supported)",
                l.digest,
                l.media_type
            );
        }
    }

    // The config says what the layers must decompress to, so it comes first.
    // A present config that fails its check (damaged on disk) is simply fetched again.
    let local_cfg = store
        .has(&manifest.config)
        .then(|| store.read_blob(&manifest.config).ok());
    let cfg_bytes = if let Some(Some(b)) = local_cfg {
        b
    } else {
        let mut v = Vec::new();
        let r = from.blob(&manifest.config.digest)?;
        r.take(manifest.config.size + 1)
            .read_to_end(&mut v)
            .with_context(|| format!("downloading config {}", manifest.config.digest))?;
        check_bytes(&v, &manifest.config, "config")?;
        fetched.0 += 1;
        fetched.1 += v.len() as u64;
        v
    };
    let cfg: ImageConfig = serde_json::from_slice(&cfg_bytes)
        .with_context(|| format!("config {}: malformed", manifest.config.digest))?;
    if explicit_platform && (cfg.os != want.os || cfg.architecture != want.architecture) {
        bail!(
            "{source} is for {}/{}, not {want}",
            cfg.os,
            cfg.architecture
        );
    }
    if cfg.rootfs.kind != "layers" {
        bail!(
            "config {}: rootfs.type is {:?}, not \"layers\"",
            manifest.config.digest,
            cfg.rootfs.kind
        );
    }
    if cfg.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "{source}: manifest has {} layers but the config lists {} diff_ids",
            manifest.layers.len(),
            cfg.rootfs.diff_ids.len()
        );
    }

    let mut todo: Vec<(Descriptor, String)> = Vec::new();
    for (l, diff) in manifest.layers.iter().zip(&cfg.rootfs.diff_ids) {
        if !store.has(l) && !todo.iter().any(|(t, _)| t.digest == l.digest) {
            todo.push((l.clone(), diff.clone()));
        }
    }
    let progress = Progress::new(opts.quiet);
    let (n, b) = fetch_layers(&store, &from, todo, opts.jobs.max(1), &progress)?;
    drop(progress);
    fetched.0 += n;
    fetched.1 += b;

    store.put_bytes(&manifest.config.digest, &cfg_bytes)?;
    store.put_bytes(&mdesc.digest, &mbytes)?;
    let mut named = mdesc.clone();
    named.annotations = None;
    named.platform = Some(Platform {
        architecture: cfg.architecture.clone(),
        os: cfg.os.clone(),
        variant: cfg.variant.clone(),
        os_version: None,
    });
    store.set_ref(&name, &named)?;
    Ok(PullResult {
        name,
        manifest: named,
        blobs_fetched: fetched.0,
        bytes_fetched: fetched.1,
    })
}

/// The store name for an image from a local file or directory: its tag when that is a full
/// reference, else `localhost/<file name>:<tag>` as podman names local images.
fn local_name(path: &std::path::Path, tag: Option<&str>) -> String {
    if let Some(r) = tag
        .filter(|t| t.contains('/'))
        .and_then(|t| Reference::parse(t).ok())
    {
        return r.to_string();
    }
    let stem = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem
        .strip_suffix(".tar")
        .unwrap_or(&stem)
        .to_ascii_lowercase();
    let repo: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let repo = repo.trim_matches('-');
    let tag = tag.unwrap_or(super::reference::DEFAULT_TAG);
    match Reference::parse(&format!("localhost/{repo}:{tag}")) {
        Ok(r) => r.to_string(),
        Err(_) => format!("localhost/image:{}", super::reference::DEFAULT_TAG),
    }
}

type Top = (Origin, Vec<u8>, Option<String>, String, String);

fn local_top(l: Layout, tag: Option<&str>, name: String) -> Result<Top> {
    let d = l.resolve(tag)?;
    let mut bytes = Vec::new();
    l.blob(&d.digest)?
        .take(d.size + 1)
        .read_to_end(&mut bytes)?;
    check_bytes(&bytes, &d, "manifest")?;
    Ok((
        Origin::Layout(l),
        bytes,
        Some(d.media_type.clone()),
        d.digest,
        name,
    ))
}

/// Downloads layers with a small pool of threads; the first failure stops the others from taking
/// new work, and every partial file is removed.
fn fetch_layers(
    store: &Store,
    from: &Origin,
    todo: Vec<(Descriptor, String)>,
    jobs: usize,
    progress: &Progress,
) -> Result<(u64, u64)> {
    let counters: Vec<_> = todo
        .iter()
        .map(|(d, _)| progress.track(&d.digest, d.size))
        .collect();
    let workers = jobs.min(todo.len());
    let queue = Mutex::new(todo.into_iter().zip(counters));
    let failed = AtomicBool::new(false);
    let errors = Mutex::new(Vec::new());
    let (blobs, bytes) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let Some(((d, diff), counter)) = queue.lock().unwrap().next() else {
                    break;
                };
                match fetch_layer(store, from, &d, &diff, counter) {
                    Ok(()) => {
                        blobs.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(d.size, Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        errors.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    if let Some(e) = errors.into_inner().unwrap().into_iter().next() {
        return Err(e);
    }
    Ok((blobs.into_inner(), bytes.into_inner()))
}

/// Downloads one layer into a temp file while a second thread decompresses the same bytes and
/// hashes the result, so the digest, the size and the diff_id are all known when the last byte
/// arrives. Only then is the blob renamed into the store.
fn fetch_layer(
    store: &Store,
    from: &Origin,
    d: &Descriptor,
    diff_id: &str,
    counter: std::sync::Arc<AtomicU64>,
) -> Result<()> {
    let what = format!("layer {}", d.digest);
    let mut t = store.temp_blob()?;
    let r = from.blob(&d.digest)?;
    let mut v = Verifier::new(
        Counted {
            inner: r,
            done: counter,
        },
        Some(d.size),
    );
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let (want, label) = (diff_id.to_string(), format!("{what} (uncompressed)"));
    let checker = std::thread::spawn(move || -> Result<()> {
        let mut u = Verifier::new(
            decompress(ChanReader {
                rx,
                buf: Vec::new(),
                pos: 0,
            })?,
            None,
        );
        copy_big(&mut u, &mut io::sink()).context("decompressing")?;
        u.finish(&label, &want, None)
    });
    let download = (|| -> Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = v.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            t.file.write_all(&buf[..n])?;
            if tx.send(buf[..n].to_vec()).is_err() {
                // The checker gave up (bad compression); its error is the one to report.
                return Ok(());
            }
        }
    })();
    drop(tx);
    let checked = checker
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("decompressing thread panicked")));
    download.with_context(|| format!("downloading {what}"))?;
    v.finish(&what, &d.digest, Some(d.size))?;
    checked.with_context(|| what.clone())?;
    store.commit(t, &d.digest)
}

/// The receiving end of the download tee, as a reader.
struct ChanReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => (self.buf, self.pos) = (b, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn local_names() {
        assert_eq!(local_name(Path::new("/x/bb"), None), "localhost/bb:latest");
        assert_eq!(
            local_name(Path::new("/x/My_Img.tar"), Some("v1")),
            "localhost/my-img:v1"
        );
        assert_eq!(
            local_name(Path::new("/x/y"), Some("quay.io/a/b:c")),
            "quay.io/a/b:c"
        );
        assert_eq!(
            local_name(Path::new("/"), Some("v1")),
            "localhost/image:latest"
        );
    }
}
