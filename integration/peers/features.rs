//! `features` against the runtime-spec features schema, by the hand validator of `schema`.

use super::*;
use crate::schema::{spec_schema_dir, Validator};

#[test]
fn features_validates_against_the_spec_schema() {
    let dir = spec_schema_dir();
    if !dir.join("features-schema.json").is_file() {
        eprintln!("skip: no runtime-spec schema at {}", dir.display());
        return;
    }
    let v = Validator::new(dir);
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
