//! Registry authentication inputs: `WWW-Authenticate` challenges and stored credentials.
use super::digest::base64_decode;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lowercased: "basic" or "bearer".
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value into its challenges (RFC 7235: a header may carry several,
/// and quoted values may hold commas, as Bearer scopes do).
pub fn parse_challenges(h: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = h.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && !b" \t,=\"".contains(&b[*i]) {
            *i += 1;
        }
        h[s..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // key=value inside the current challenge
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let mut value = String::new();
            if i < b.len() && b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = h[i..].chars().next().unwrap_or('\0');
                    value.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
            } else {
                value = token(&mut i);
            }
            out.last_mut()
                .unwrap()
                .params
                .insert(word.to_ascii_lowercase(), value);
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    pub user: String,
    pub pass: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Creds({}:***)", self.user)
    }
}

impl Creds {
    /// `user:pass` as given to `--creds`.
    pub fn parse(s: &str) -> Result<Creds> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Creds {
                user: u.into(),
                pass: p.into(),
            }),
            _ => bail!("--creds must be USER:PASSWORD"),
        }
    }
}

/// Looks up `registry` in `$REGISTRY_AUTH_FILE`, else `~/.docker/config.json`. A missing file means
/// anonymous; a malformed one is an error naming it, since silently going anonymous would confuse.
pub fn lookup_creds(registry: &str) -> Result<Option<Creds>> {
    let file = match std::env::var_os("REGISTRY_AUTH_FILE") {
        Some(f) => PathBuf::from(f),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".docker/config.json"),
            None => return Ok(None),
        },
    };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    creds_from_auth_json(&text, registry).with_context(|| format!("auth file {}", file.display()))
}

pub fn creds_from_auth_json(text: &str, registry: &str) -> Result<Option<Creds>> {
    let v: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
    let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let docker = registry == "docker.io";
    for (key, entry) in auths {
        // Keys may be bare hosts or URLs ("https://index.docker.io/v1/").
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let host = host.split('/').next().unwrap_or("");
        let hit = host == registry
            || (docker && (host == "index.docker.io" || host == "registry-1.docker.io"));
        if !hit {
            continue;
        }
        if let Some(a) = entry
            .get("auth")
            .and_then(|a| a.as_str())
            .filter(|a| !a.is_empty())
        {
            let raw =
                base64_decode(a).with_context(|| format!("auths[{key:?}].auth is not base64"))?;
            let s = String::from_utf8(raw)
                .with_context(|| format!("auths[{key:?}].auth is not UTF-8"))?;
            return Creds::parse(&s)
                .map(Some)
                .with_context(|| format!("auths[{key:?}].auth is not user:pass"));
        }
        let user = entry.get("username").and_then(|u| u.as_str());
        let pass = entry.get("password").and_then(|u| u.as_str());
        if let (Some(u), Some(p)) = (user, pass) {
            return Ok(Some(Creds {
                user: u.into(),
                pass: p.into(),
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_commas_in_scope() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example/token");
        assert_eq!(c[0].params["service"], "registry.example");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull,push");
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse_challenges(r#"Basic realm="Registry Realm""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        let c = parse_challenges(r#"Basic realm="a\"b", Bearer realm=https://t/x , service = reg"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["realm"], "a\"b");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["realm"], "https://t/x");
        assert_eq!(c[1].params["service"], "reg");
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn auth_json_entries() {
        let j = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                    "127.0.0.1:5000":{"username":"u","password":"p:q"}}}"#;
        assert_eq!(
            creds_from_auth_json(j, "docker.io").unwrap(),
            Some(Creds {
                user: "user".into(),
                pass: "pass".into()
            })
        );
        assert_eq!(
            creds_from_auth_json(j, "127.0.0.1:5000").unwrap(),
            Some(Creds {
                user: "u".into(),
                pass: "p:q".into()
            })
        );
        assert_eq!(creds_from_auth_json(j, "quay.io").unwrap(), None);
        assert!(creds_from_auth_json(r#"{"auths":{"x":{"auth":"!!"}}}"#, "x").is_err());
        assert!(Creds::parse("nocolon").is_err());
        assert_eq!(Creds::parse("a:b:c").unwrap().pass, "b:c");
    }
}
