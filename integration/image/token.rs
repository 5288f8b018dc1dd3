//! A real token service for docker-registry's `auth: token` mode: it checks Basic credentials and
//! issues RS256 JWTs carrying an x5c certificate that the registry verifies against its root
//! bundle. Signing is done by the openssl command-line tool.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub const SERVICE: &str = "rt-registry";
pub const ISSUER: &str = "rt-issuer";

pub struct TokenServer {
    pub realm: String,
    pub cert: PathBuf,
    /// Token requests answered so far, good or bad.
    pub requests: Arc<AtomicUsize>,
    /// When set, the next token issued is already expired (to make the registry answer 401).
    pub expire_next: Arc<AtomicBool>,
}

fn b64(data: &[u8], url: bool) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &b)| a | (b as u32) << (16 - 8 * i));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - c.len()));
        }
    }
    if url {
        out.replace('+', "-").replace('/', "_")
    } else {
        out
    }
}

fn sign(key: &Path, input: &str) -> Vec<u8> {
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    o.stdout
}

impl TokenServer {
    /// Serves tokens to `user:pass` holders; everything is made under `dir`.
    pub fn start(dir: &Path, user: &str, pass: &str) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let o = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=rt-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .unwrap()
            .stdout;
        let x5c = b64(&der, false);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let expire_next = Arc::new(AtomicBool::new(false));
        let want = format!("Basic {}", b64(format!("{user}:{pass}").as_bytes(), false));
        let (req2, exp2) = (requests.clone(), expire_next.clone());
        // The thread ends with the test process; it holds nothing that needs cleaning up.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap_or(0);
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = v.trim().to_string();
                        }
                    }
                }
                req2.fetch_add(1, Ordering::SeqCst);
                let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
                let mut scopes = Vec::new();
                for kv in query.split('&') {
                    if let Some(v) = kv.strip_prefix("scope=") {
                        scopes.push(
                            v.replace("%3A", ":")
                                .replace("%2F", "/")
                                .replace("%2C", ","),
                        );
                    }
                }
                let (status, body) = if auth != want {
                    (
                        "401 Unauthorized",
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#
                            .to_string(),
                    )
                } else {
                    let access: Vec<_> = scopes
                        .iter()
                        .filter_map(|s| {
                            let mut p = s.splitn(3, ':');
                            let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                            Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                        })
                        .collect();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_secs() as i64;
                    let exp = if exp2.swap(false, Ordering::SeqCst) {
                        now - 3600
                    } else {
                        now + 600
                    };
                    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                    let claims = serde_json::json!({"iss": ISSUER, "sub": "alice", "aud": SERVICE,
                        "exp": exp, "nbf": now - 3700, "iat": now - 3700, "jti": format!("t{now}"), "access": access});
                    let input = format!(
                        "{}.{}",
                        b64(header.to_string().as_bytes(), true),
                        b64(claims.to_string().as_bytes(), true)
                    );
                    let sig = sign(&key, &input);
                    (
                        "200 OK",
                        serde_json::json!({"token": format!("{input}.{}", b64(&sig, true))})
                            .to_string(),
                    )
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer {
            realm,
            cert,
            requests,
            expire_next,
        }
    }

    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm,
            self.cert.display()
        )
    }
}
