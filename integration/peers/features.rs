//! `features` against the runtime-spec features schema, by a hand validator.

use super::*;

/// A hand validator for the subset of JSON Schema draft-04 the runtime-spec schemas use.
/// Any keyword or pattern it does not know is an error, so a schema change cannot make
/// it silently check less.
struct Validator {
    dir: PathBuf,
}

impl Validator {
    fn load(&self, file: &str) -> Value {
        let p = self.dir.join(file);
        serde_json::from_str(
            &fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    fn check(&self, doc: &Value, file: &str) -> Vec<String> {
        let mut errs = vec![];
        let schema = self.load(file);
        self.node(doc, &schema, file, "$", &mut errs);
        errs
    }

    fn node(&self, doc: &Value, schema: &Value, file: &str, at: &str, errs: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            errs.push(format!("{at}: schema is not an object"));
            return;
        };
        for (k, v) in obj {
            match k.as_str() {
                "description" | "$schema" | "id" => {}
                "$ref" => {
                    let r = v.as_str().unwrap();
                    let (f, ptr) = r.split_once('#').unwrap_or((r, ""));
                    let f = if f.is_empty() { file } else { f };
                    let target = self.load(f);
                    let sub = target
                        .pointer(ptr)
                        .unwrap_or_else(|| panic!("bad $ref {r} in {file}"));
                    self.node(doc, sub, f, at, errs);
                }
                "type" => {
                    let t = v.as_str().unwrap();
                    let ok = match t {
                        "object" => doc.is_object(),
                        "array" => doc.is_array(),
                        "string" => doc.is_string(),
                        "boolean" => doc.is_boolean(),
                        "integer" => doc.is_i64() || doc.is_u64(),
                        "number" => doc.is_number(),
                        _ => {
                            errs.push(format!("{at}: validator does not know type {t}"));
                            true
                        }
                    };
                    if !ok {
                        errs.push(format!("{at}: want {t}, got {doc}"));
                    }
                }
                "enum" => {
                    if !v.as_array().unwrap().contains(doc) {
                        errs.push(format!("{at}: {doc} not one of {v}"));
                    }
                }
                "pattern" => {
                    let (p, Some(sv)) = (v.as_str().unwrap(), doc.as_str()) else {
                        continue;
                    };
                    match p {
                        "^CAP_[A-Z_]+$" => {
                            let rest = sv.strip_prefix("CAP_").unwrap_or("");
                            if rest.is_empty()
                                || !rest.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                            {
                                errs.push(format!("{at}: {sv:?} does not match {p}"));
                            }
                        }
                        _ => errs.push(format!("{at}: validator does not know pattern {p}")),
                    }
                }
                "required" => {
                    for r in v.as_array().unwrap() {
                        let r = r.as_str().unwrap();
                        if doc.is_object() && doc.get(r).is_none() {
                            errs.push(format!("{at}: required {r} missing"));
                        }
                    }
                }
                "properties" => {
                    if let Some(d) = doc.as_object() {
                        for (name, sub) in v.as_object().unwrap() {
                            if let Some(dv) = d.get(name) {
                                self.node(dv, sub, file, &format!("{at}.{name}"), errs);
                            }
                        }
                    }
                }
                "patternProperties" => {
                    if let Some(d) = doc.as_object() {
                        for (p, sub) in v.as_object().unwrap() {
                            if p != ".{1,}" {
                                errs.push(format!("{at}: validator does not know pattern {p}"));
                                continue;
                            }
                            for (name, dv) in d.iter().filter(|(n, _)| !n.is_empty()) {
                                self.node(dv, sub, file, &format!("{at}.{name}"), errs);
                            }
                        }
                    }
                }
                "items" => {
                    if let Some(a) = doc.as_array() {
                        for (i, dv) in a.iter().enumerate() {
                            self.node(dv, v, file, &format!("{at}[{i}]"), errs);
                        }
                    }
                }
                _ => errs.push(format!("{at}: validator does not know keyword {k}")),
            }
        }
    }
}

#[test]
fn features_validates_against_the_spec_schema() {
    let dir = spec_schema_dir();
    if !dir.join("features-schema.json").is_file() {
        eprintln!("skip: no runtime-spec schema at {}", dir.display());
        return;
    }
    let v = Validator { dir };
    let out = run(rt_cmd(
        Path::new("/nonexistent-root"),
        Path::new("/"),
        &["features"],
    ));
    assert!(out.status.success(), "{out:#?}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("features prints JSON");
    let errs = v.check(&doc, "features-schema.json");
    assert!(
        errs.is_empty(),
        "features does not validate: {errs:#?}\n{}",
        out.stdout
    );
    // Kubernetes reads these; runc 1.1 predates mountExtensions (runtime-spec 1.1).
    let mut keys = vec!["namespaces", "capabilities", "cgroup", "seccomp"];
    if !is_runc() {
        keys.push("mountExtensions");
    }
    for k in keys {
        assert!(doc["linux"].get(k).is_some(), "features lacks linux.{k}");
    }

    // The validator can fail: each of these breaks one rule of the schema.
    let mut bad = doc.clone();
    bad.as_object_mut().unwrap().remove("ociVersionMin");
    bad["linux"]["namespaces"][0] = "bogus".into();
    bad["linux"]["capabilities"][0] = "cap_chown".into();
    bad["linux"]["cgroup"]["v1"] = "yes".into();
    bad["annotations"]["x"] = 1.into();
    bad["linux"]["seccomp"]["actions"][0] = "SCMP_ACT_MAYBE".into();
    let errs = v.check(&bad, "features-schema.json");
    assert_eq!(errs.len(), 6, "{errs:#?}");
}
