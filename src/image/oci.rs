//! The image-spec documents rt reads: descriptors, manifests, indexes, configs, and platform choice.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Every manifest type rt understands, for the Accept header.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// The parts of the image config that rt uses; unknown fields are ignored.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version")]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features")]
    pub os_features: Option<Vec<String>>,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

/// What a manifest-endpoint body turned out to be.
pub enum Parsed {
    Manifest(Box<Manifest>),
    Index(Index),
}

/// Parses a manifest or index body; `media_type` is the Content-Type or descriptor type, if any.
pub fn parse_manifest(body: &[u8], media_type: Option<&str>) -> Result<Parsed> {
    let v: serde_json::Value =
        serde_json::from_slice(body).context("manifest is not valid JSON")?;
    let declared = v.get("mediaType").and_then(|m| m.as_str());
    let mt = declared
        .or(media_type.filter(|m| !m.is_empty() && *m != "application/json"))
        .unwrap_or("");
    if mt == DOCKER_SCHEMA1
        || mt == DOCKER_SCHEMA1_SIGNED
        || v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1)
    {
        bail!("manifest is Docker schema 1, which rt does not support (re-push the image with a current client)");
    }
    let is_index = match mt {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        "" => v.get("manifests").is_some(),
        other => bail!("unsupported manifest media type {other:?}"),
    };
    if is_index {
        Ok(Parsed::Index(
            serde_json::from_value(v).context("malformed image index")?,
        ))
    } else {
        Ok(Parsed::Manifest(
            serde_json::from_value(v).context("malformed image manifest")?,
        ))
    }
}

impl Platform {
    /// The machine rt runs on, in GOARCH spelling.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            architecture: architecture.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
            os_version: None,
        }
    }

    /// `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            bail!("invalid platform {s:?}: expected os/arch[/variant]");
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
        })
    }

    /// Whether an index entry's platform satisfies this wanted one; a wanted variant must match,
    /// an unspecified one accepts any (arm64's "v8" is the default and often omitted).
    pub fn matches(&self, have: &Platform) -> bool {
        if self.os != have.os || self.architecture != have.architecture {
            return false;
        }
        match (&self.variant, &have.variant) {
            (Some(w), Some(h)) => w == h,
            (Some(w), None) => self.architecture == "arm64" && w == "v8",
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Chooses the manifest for `want` from an index.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Result<&'a Descriptor> {
    let manifests = index
        .manifests
        .iter()
        .filter(|d| d.media_type == OCI_MANIFEST || d.media_type == DOCKER_MANIFEST);
    let mut fallback = None;
    for d in manifests {
        match &d.platform {
            Some(p) if want.matches(p) => return Ok(d),
            None if fallback.is_none() => fallback = Some(d),
            _ => {}
        }
    }
    if let Some(d) = fallback {
        return Ok(d);
    }
    let have: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    bail!(
        "no manifest for platform {want} in the index (it has: {})",
        have.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema1_is_refused_clearly() {
        let body = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let e = parse_manifest(body, Some(DOCKER_SCHEMA1_SIGNED))
            .err()
            .unwrap();
        assert!(e.to_string().contains("schema 1"), "{e}");
    }

    #[test]
    fn picks_platform() {
        let idx: Index = serde_json::from_str(&format!(
            r#"{{"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"sha256:a","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"sha256:b","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"sha256:c","size":1,"platform":{{"os":"linux","architecture":"arm","variant":"v6"}}}}]}}"#
        ))
        .unwrap();
        let pick =
            |p: &str| select_platform(&idx, &Platform::parse(p).unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), "sha256:b");
        assert_eq!(pick("linux/arm64").unwrap(), "sha256:a");
        assert_eq!(pick("linux/arm64/v8").unwrap(), "sha256:a");
        assert_eq!(pick("linux/arm/v6").unwrap(), "sha256:c");
        assert!(pick("linux/arm/v7")
            .unwrap_err()
            .to_string()
            .contains("linux/arm/v6"));
        assert!(Platform::parse("linux").is_err());
    }
}
