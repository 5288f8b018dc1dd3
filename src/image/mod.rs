//! The image side: references, registry client, content store, layer unpack, bundle config.
//!
//! `pull` puts an image into the store, `bundle` makes a runtime bundle from it; `list` and
//! `remove` serve `rt images` and `rt rmi`. The trust chain is: the tag (or the digest the user
//! gave) names a manifest, the manifest names the config and layers by digest, the config names
//! each layer's uncompressed content by `diff_id`. Each link is checked before the next is used:
//!
//! - pull: every blob streams through a `Verifier` (digest and size, and never more bytes than
//!   the descriptor says) into a temp file under `<store>/.rt-tmp`; a layer is decompressed and
//!   checked against its `diff_id` before it is renamed into `blobs/sha256/`. index.json is only
//!   updated (atomically, under a lock) once everything it names is present. A failed pull leaves
//!   no blob behind.
//! - bundle: manifests and configs are re-verified when read (the store may come from another
//!   tool), layers are checked against their `diff_id` while they unpack, and a bundle that fails
//!   half way is removed.
//! - unpack: every path is resolved component by component with O_NOFOLLOW from a directory fd
//!   of the rootfs (`safefs`), so `..`, absolute names, planted symlinks, hardlinks to outside and
//!   whiteouts naming `..` are refused with an error naming the entry.
//!
//! The store is a plain OCI image layout: skopeo and umoci read it, and rt reads theirs.
//! Manifests are stored as pulled (Docker v2s2 stays v2s2) so their digests stay the registry's.
pub mod auth;
pub mod bundle;
pub mod compress;
pub mod digest;
pub mod local;
pub mod oci;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod safefs;
pub mod store;
pub mod unpack;

pub use bundle::{bundle, BundleOptions};
pub use pull::{pull, PullOptions, PullResult};

use anyhow::{bail, Result};
use std::path::Path;

/// One line of `rt images`.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub name: String,
    pub digest: String,
    /// Manifest, config and layers, compressed; None when the manifest can't be read.
    pub size: Option<u64>,
    pub platform: String,
}

/// The named images in a store; an absent store holds none.
pub fn list(store: &Path) -> Result<Vec<ImageInfo>> {
    if !store.join("index.json").exists() {
        return Ok(vec![]);
    }
    let s = store::Store::open_existing(store)?;
    let mut out = Vec::new();
    for (name, d) in s.refs()? {
        let size = s.read_blob(&d).ok().and_then(|b| {
            match oci::parse_manifest(&b, Some(&d.media_type)).ok()? {
                oci::Parsed::Manifest(m) => {
                    Some(d.size + m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>())
                }
                oci::Parsed::Index(_) => Some(d.size),
            }
        });
        let platform = match (&d.platform, d.media_type.as_str()) {
            (Some(p), _) => p.to_string(),
            (None, oci::OCI_INDEX | oci::DOCKER_LIST) => "(index)".into(),
            (None, _) => "-".into(),
        };
        out.push(ImageInfo {
            name,
            digest: d.digest,
            size,
            platform,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes the named images and garbage-collects blobs nothing refers to any more. Every name is
/// checked first, so a typo removes nothing. Returns the names removed.
pub fn remove(store: &Path, names: &[String]) -> Result<Vec<String>> {
    if !store.join("index.json").exists() {
        bail!(
            "image {:?} is not in the store {} (there is no store)",
            names.first().map(String::as_str).unwrap_or(""),
            store.display()
        );
    }
    let s = store::Store::open_existing(store)?;
    let mut resolved = Vec::new();
    for n in names {
        let (name, _) = s.resolve(n)?;
        if name.is_empty() {
            bail!("image {n:?} has no name in the store; remove it by name");
        }
        if !resolved.contains(&name) {
            resolved.push(name);
        }
    }
    for n in &resolved {
        s.remove_ref(n)?;
    }
    s.gc()?;
    Ok(resolved)
}

/// True when `image` (a name, reference or short name) is in the store.
pub fn is_present(store: &Path, image: &str) -> bool {
    store.join("index.json").exists()
        && store::Store::open_existing(store).is_ok_and(|s| s.resolve(image).is_ok())
}
