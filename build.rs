//! Records the git commit rt was built from, for `rt --version` (callers such as `docker info`
//! show it); "unknown" outside a git checkout. Lays out the release binary hot functions first.
fn main() {
    hot_functions_first();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=RT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
}

/// Puts the functions a container's life runs next to each other at the start of the text
/// (bench/hotpath.py lists them; the reason is there). Only lld knows the option, and lld is
/// rustc's linker for x86_64-unknown-linux-gnu from Rust 1.90 on. Names the list has but the
/// build lacks (code changed since the list was made) are skipped quietly. The link map lets
/// hotpath.py name the functions of this very (stripped) binary: symbol names carry a hash of
/// the build profile, so a list taken from a build with other settings would not match.
fn hot_functions_first() {
    let list = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/hot-functions.txt");
    println!("cargo:rerun-if-changed=bench/hot-functions.txt");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu")
        && rustc_minor() >= 90;
    if !(release && lld_target) {
        return;
    }
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    // Mangled, as the ordering file needs them: lld's map demangles by default.
    println!("cargo:rustc-link-arg-bin=rt=-Wl,-Map={out}/rt.map");
    println!("cargo:rustc-link-arg-bin=rt=-Wl,--no-demangle");
    if std::path::Path::new(list).exists() {
        println!("cargo:rustc-link-arg-bin=rt=-Wl,--symbol-ordering-file={list}");
        println!("cargo:rustc-link-arg-bin=rt=-Wl,--no-warn-symbol-ordering");
    }
}

fn rustc_minor() -> u32 {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let v = String::from_utf8_lossy(&o.stdout).into_owned();
            v.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
