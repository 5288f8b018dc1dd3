//! A hand validator for the subset of JSON Schema draft-04 the runtime-spec schemas use
//! (`../shared/spec/runtime/schema`): `features` and `spec` output are checked against it.

use serde_json::Value;
use std::fs;
use std::path::PathBuf;

pub fn spec_schema_dir() -> PathBuf {
    let here = crate::common::repo().join("../shared/spec/runtime/schema");
    if here.is_dir() {
        here
    } else {
        PathBuf::from("/work/shared/spec/runtime/schema")
    }
}

/// A hand validator for the subset of JSON Schema draft-04 the runtime-spec schemas use.
/// Any keyword or pattern it does not know is an error, so a schema change cannot make
/// it silently check less.
pub struct Validator {
    dir: PathBuf,
}

impl Validator {
    pub fn new(dir: PathBuf) -> Validator {
        Validator { dir }
    }

    fn load(&self, file: &str) -> Value {
        let p = self.dir.join(file);
        serde_json::from_str(
            &fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    }

    /// What in `doc` breaks the schema `file` (empty: it validates).
    pub fn check(&self, doc: &Value, file: &str) -> Vec<String> {
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
                    match pattern_matches(p, sv) {
                        Some(true) => {}
                        Some(false) => errs.push(format!("{at}: {sv:?} does not match {p}")),
                        None => errs.push(format!("{at}: validator does not know pattern {p}")),
                    }
                }
                "minimum" | "maximum" => {
                    let (Some(limit), Some(n)) = (v.as_f64(), doc.as_f64()) else {
                        continue;
                    };
                    if (k == "minimum" && n < limit) || (k == "maximum" && n > limit) {
                        errs.push(format!("{at}: {n} is beyond the {k} {limit}"));
                    }
                }
                "anyOf" => {
                    let all: Vec<Vec<String>> = v
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|sub| {
                            let mut e = vec![];
                            self.node(doc, sub, file, at, &mut e);
                            e
                        })
                        .collect();
                    if all.iter().all(|e| !e.is_empty()) {
                        errs.push(format!("{at}: matches none of anyOf: {all:?}"));
                    }
                }
                "minItems" => {
                    let (Some(min), Some(a)) = (v.as_u64(), doc.as_array()) else {
                        continue;
                    };
                    if (a.len() as u64) < min {
                        errs.push(format!("{at}: fewer than {min} items"));
                    }
                }
                "allOf" => {
                    for sub in v.as_array().unwrap() {
                        self.node(doc, sub, file, at, errs);
                    }
                }
                "additionalProperties" => {
                    let Some(d) = doc.as_object() else { continue };
                    let named = obj.get("properties").and_then(Value::as_object);
                    if obj.contains_key("patternProperties") {
                        errs.push(format!("{at}: validator does not combine additionalProperties with patternProperties"));
                        continue;
                    }
                    for (name, dv) in d {
                        if named.is_some_and(|n| n.contains_key(name)) {
                            continue;
                        }
                        match v {
                            Value::Bool(true) => {}
                            Value::Bool(false) => errs.push(format!("{at}: {name} is not allowed")),
                            sub => self.node(dv, sub, file, &format!("{at}.{name}"), errs),
                        }
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

/// The schemas' regular expressions, each matched by hand; None for one not known here.
fn pattern_matches(p: &str, s: &str) -> Option<bool> {
    let upper_after = |prefix: &str, extra: &str| {
        s.strip_prefix(prefix).is_some_and(|r| {
            !r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_uppercase() || extra.contains(c))
        })
    };
    Some(match p {
        "^CAP_[A-Z_]+$" => upper_after("CAP_", "_"),
        "^RLIMIT_[A-Z]+$" => upper_after("RLIMIT_", ""),
        "^[cbup]$" => matches!(s, "c" | "b" | "u" | "p"),
        "^[0-9, -]*$" => s.chars().all(|c| c.is_ascii_digit() || ", -".contains(c)),
        "^MB:[^\\n]*$" => s.starts_with("MB:") && !s.contains('\n'),
        "^[1-9][0-9]*[KMG]B$" => {
            let Some(num) = s
                .strip_suffix("KB")
                .or(s.strip_suffix("MB"))
                .or(s.strip_suffix("GB"))
            else {
                return Some(false);
            };
            !num.is_empty() && !num.starts_with('0') && num.chars().all(|c| c.is_ascii_digit())
        }
        _ => return None,
    })
}
