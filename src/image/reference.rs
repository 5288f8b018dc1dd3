//! Image references as users type them, normalised the way docker does, plus local sources.
use anyhow::{bail, Result};
use std::fmt;
use std::path::PathBuf;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

/// `registry/repo[:tag][@digest]`, always fully qualified after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repo: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

/// Where `rt pull` reads an image from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Registry(Reference),
    /// An OCI image layout directory, `oci:DIR[:TAG]`.
    OciDir {
        dir: PathBuf,
        tag: Option<String>,
    },
    /// A tar of an OCI image layout, `oci-archive:FILE[:TAG]`.
    OciArchive {
        file: PathBuf,
        tag: Option<String>,
    },
    /// `docker save` output, `docker-archive:FILE[:REPO:TAG]`.
    DockerArchive {
        file: PathBuf,
        tag: Option<String>,
    },
}

impl Source {
    pub fn parse(s: &str) -> Result<Source> {
        let split = |rest: &str| -> (PathBuf, Option<String>) {
            // A tag never holds '/', so a colon followed by a slash-free tail separates DIR from TAG.
            match rest.split_once(':') {
                Some((p, t)) if !t.is_empty() => (PathBuf::from(p), Some(t.to_string())),
                _ => (PathBuf::from(rest), None),
            }
        };
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, tag) = split(rest);
            return Ok(Source::OciDir { dir, tag });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, tag) = split(rest);
            return Ok(Source::OciArchive { file, tag });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (file, tag) = split(rest);
            return Ok(Source::DockerArchive { file, tag });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            return Ok(Source::Registry(Reference::parse(rest)?));
        }
        Ok(Source::Registry(Reference::parse(s)?))
    }
}

fn valid_repo_component(c: &str) -> bool {
    // [a-z0-9]+ separated by '.', '_', '__' or runs of '-'.
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x))
}

/// Checks `sha256:<64 lowercase hex>`; the only algorithm rt stores.
pub fn valid_digest(d: &str) -> bool {
    match d.strip_prefix("sha256:") {
        Some(h) => {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => false,
    }
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        // A bracketed IPv6 literal carries colons of its own.
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']') && host.len() > 2;
    }
    !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            bail!("invalid reference \"\": empty");
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !valid_digest(d) {
                    bail!("invalid reference {s:?}: digest {d:?} is not sha256:<64 hex digits>");
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        // The tag is after the last colon of the last path component (a registry port has a '/' after it).
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => {
                let t = &name[last_slash + i + 1..];
                if !valid_tag(t) {
                    bail!("invalid reference {s:?}: bad tag {t:?}");
                }
                (&name[..last_slash + i], Some(t.to_string()))
            }
            None => (name, None),
        };
        let (registry, repo) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.starts_with('[') =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY.to_string()
        } else {
            registry
        };
        if !valid_registry(&registry) {
            bail!("invalid reference {s:?}: bad registry {registry:?}");
        }
        let repo = if registry == DEFAULT_REGISTRY && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        if repo.split('/').any(|c| !valid_repo_component(c)) {
            bail!("invalid reference {s:?}: repository {repo:?} must be lowercase [a-z0-9] words joined by '.', '_' or '-'");
        }
        if repo.len() + registry.len() + 1 > 255 {
            bail!("invalid reference {s:?}: name longer than 255 characters");
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some(DEFAULT_TAG.to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repo,
            tag,
            digest,
        })
    }

    /// What to ask the registry's manifest endpoint for: the digest wins over the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The host that serves the API (docker.io's API lives elsewhere).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_normalisation() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("127.0.0.1:5000/a/b/c:v1"), "127.0.0.1:5000/a/b/c:v1");
        assert_eq!(norm("quay.io/x/y_z-w.v__q"), "quay.io/x/y_z-w.v__q:latest");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_ref(), d);
        let r = Reference::parse(&format!("reg.io:443/busybox:1@{d}")).unwrap();
        assert_eq!(r.registry, "reg.io:443");
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.manifest_ref(), d);
        assert!(Reference::parse("busybox@sha256:abc").is_err());
        assert!(Reference::parse(&format!("busybox@md5:{}", "a".repeat(64))).is_err());
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "",
            "Busybox",
            "a//b",
            "a/",
            "-a",
            "a:",
            "a:-x",
            "a:b:c",
            "reg.io:99999/a",
            "a b",
            "a/../b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn api_host() {
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("127.0.0.1:5000/x").unwrap().api_host(),
            "127.0.0.1:5000"
        );
    }

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("oci:/tmp/img:v1").unwrap(),
            Source::OciDir {
                dir: "/tmp/img".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            Source::parse("oci:/tmp/img").unwrap(),
            Source::OciDir {
                dir: "/tmp/img".into(),
                tag: None
            }
        );
        assert_eq!(
            Source::parse("oci-archive:/x.tar").unwrap(),
            Source::OciArchive {
                file: "/x.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            Source::parse("docker-archive:/x.tar:app:v2").unwrap(),
            Source::DockerArchive {
                file: "/x.tar".into(),
                tag: Some("app:v2".into())
            }
        );
        assert!(matches!(
            Source::parse("docker://busybox").unwrap(),
            Source::Registry(_)
        ));
    }
}
