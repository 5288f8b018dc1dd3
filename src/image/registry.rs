//! A distribution-spec v2 client: ping, Basic and Bearer auth, manifests and blobs.
use super::auth::{parse_challenges, Challenge, Creds};
use super::digest::base64_encode;
use super::oci::ACCEPT_MANIFESTS;
use super::reference::Reference;
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

type Response = ureq::http::Response<ureq::Body>;

pub struct Registry {
    agent: ureq::Agent,
    base: String,
    registry: String,
    repo: String,
    creds: Option<Creds>,
    insecure: bool,
    /// The Authorization header value in use, shared by the download threads.
    auth: Mutex<Option<String>>,
}

/// Whether `host[:port]` names this machine, where plain HTTP is acceptable.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The registry's own words from an error body (`{"errors":[{"code","message"}]}`), if any.
fn error_text(resp: Response) -> String {
    let status = resp.status();
    let mut body = String::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(64 * 1024)
        .read_to_string(&mut body);
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                "{}: {}",
                e.get("code").and_then(|c| c.as_str()).unwrap_or(""),
                e.get("message").and_then(|c| c.as_str()).unwrap_or("")
            ))
        });
    match detail {
        Some(d) => format!("HTTP {status} ({d})"),
        None => format!("HTTP {status}"),
    }
}

impl Registry {
    pub fn new(r: &Reference, creds: Option<Creds>, insecure: bool) -> Result<Registry> {
        let scheme = if insecure || is_loopback(r.api_host()) {
            "http"
        } else {
            "https"
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            // A stalled transfer fails instead of hanging; a slow one may take as long as it needs.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("rt/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Registry {
            agent,
            base: format!("{scheme}://{}", r.api_host()),
            registry: r.registry.clone(),
            repo: r.repo.clone(),
            creds,
            insecure,
            auth: Mutex::new(None),
        })
    }

    /// Pings `/v2/` and sets up whatever authentication the registry asks for.
    pub fn login(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("connecting to registry {}", self.registry))?;
        match resp.status().as_u16() {
            200..=299 => {
                // Reading the (tiny) body lets the connection go back to the pool for reuse.
                let _ = resp
                    .into_body()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_vec();
                Ok(())
            }
            401 => {
                let ch = challenge_of(&resp);
                self.authenticate(ch.as_ref())
            }
            404 => bail!(
                "{} does not speak the registry v2 API ({url}: HTTP 404)",
                self.registry
            ),
            _ => bail!(
                "registry {}: ping {url}: {}",
                self.registry,
                error_text(resp)
            ),
        }
    }

    fn authenticate(&self, ch: Option<&Challenge>) -> Result<()> {
        let Some(ch) = ch else {
            bail!(
                "registry {} answered 401 without a WWW-Authenticate challenge",
                self.registry
            )
        };
        let header = match ch.scheme.as_str() {
            "basic" => match &self.creds {
                Some(c) => format!("Basic {}", base64_encode(format!("{}:{}", c.user, c.pass).as_bytes())),
                None => bail!("registry {} requires a login: pass --creds USER:PASS or add it to the auth file", self.registry),
            },
            "bearer" => format!("Bearer {}", self.fetch_token(ch)?),
            other => bail!("registry {} asks for unsupported auth scheme {other:?}", self.registry),
        };
        *self.auth.lock().unwrap() = Some(header);
        Ok(())
    }

    fn fetch_token(&self, ch: &Challenge) -> Result<String> {
        let realm = ch
            .params
            .get("realm")
            .ok_or_else(|| anyhow!("registry {}: Bearer challenge without realm", self.registry))?;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            bail!(
                "registry {}: token realm {realm:?} is not an http(s) URL",
                self.registry
            );
        }
        if let Some(rest) = realm.strip_prefix("http://") {
            // A password must not cross the network in clear unless the user said so.
            let host = rest.split('/').next().unwrap_or("");
            if self.creds.is_some() && !self.insecure && !is_loopback(host) {
                bail!("registry {}: refusing to send credentials to plain-HTTP token realm {realm} (use --insecure to allow)", self.registry);
            }
        }
        let mut url = format!("{realm}{}", if realm.contains('?') { '&' } else { '?' });
        if let Some(s) = ch.params.get("service") {
            url += &format!("service={}&", query_escape(s));
        }
        let scope = ch
            .params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
        url += &format!("scope={}", query_escape(&scope));
        let mut req = self.agent.get(&url);
        if let Some(c) = &self.creds {
            req = req.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64_encode(format!("{}:{}", c.user, c.pass).as_bytes())
                ),
            );
        }
        let resp = req
            .call()
            .with_context(|| format!("requesting a token from {realm}"))?;
        match resp.status().as_u16() {
            200..=299 => {}
            401 | 403 => bail!(
                "registry {}: authentication failed: {}",
                self.registry,
                error_text(resp)
            ),
            _ => bail!(
                "registry {}: token request to {realm}: {}",
                self.registry,
                error_text(resp)
            ),
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_string()?;
        let v: serde_json::Value =
            serde_json::from_str(&body).context("token response is not JSON")?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("registry {}: token response has no token", self.registry))
    }

    /// GET with the current credentials; a 401 refreshes them once (an expired token, or a scope
    /// the registry wants spelled differently) and retries.
    fn get(&self, path: &str, accept: Option<&str>) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        for attempt in 0..2 {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(h) = self.auth.lock().unwrap().clone() {
                req = req.header("Authorization", h);
            }
            let resp = req.call().with_context(|| format!("GET {url}"))?;
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            if attempt == 1 {
                let hint = if self.creds.is_none() {
                    " (no credentials given: use --creds or the auth file)"
                } else {
                    ""
                };
                bail!(
                    "registry {}: authentication failed for {path}: {}{hint}",
                    self.registry,
                    error_text(resp)
                );
            }
            let ch = challenge_of(&resp);
            self.authenticate(ch.as_ref())?;
        }
        unreachable!()
    }

    /// Fetches a manifest by tag or digest: its bytes and Content-Type.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Option<String>)> {
        let path = format!("/v2/{}/manifests/{reference}", self.repo);
        let resp = self.get(&path, Some(ACCEPT_MANIFESTS))?;
        match resp.status().as_u16() {
            200 => {}
            404 => bail!(
                "manifest {}/{}:{reference} not found",
                self.registry,
                self.repo
            ),
            _ => bail!(
                "manifest {}/{}:{reference}: {}",
                self.registry,
                self.repo,
                error_text(resp)
            ),
        }
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let body = resp
            .into_body()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .context("reading manifest")?;
        Ok((body, ct))
    }

    /// Opens a blob for streaming; redirects (to a CDN) are followed without our credentials.
    pub fn blob(&self, digest: &str) -> Result<Box<dyn Read + Send>> {
        let path = format!("/v2/{}/blobs/{digest}", self.repo);
        let resp = self.get(&path, None)?;
        match resp.status().as_u16() {
            200 => Ok(Box::new(resp.into_body().into_reader())),
            404 => bail!("blob {digest} not found in {}/{}", self.registry, self.repo),
            _ => bail!("blob {digest}: {}", error_text(resp)),
        }
    }
}

fn challenge_of(resp: &Response) -> Option<Challenge> {
    let mut all = Vec::new();
    for v in resp.headers().get_all("www-authenticate") {
        if let Ok(s) = v.to_str() {
            all.extend(parse_challenges(s));
        }
    }
    // Prefer Bearer: it works with and without credentials.
    all.iter()
        .find(|c| c.scheme == "bearer")
        .or(all.first())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.3.4.5"));
        assert!(is_loopback("localhost:80"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn escapes_scope() {
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
