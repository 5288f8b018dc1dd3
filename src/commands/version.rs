use crate::libcontainer::OCI_VERSION;

/// runc's three lines, under the name rt was invoked by (docker info and scripts parse
/// "NAME version X", "commit: C", "spec: S").
pub fn print() {
    crate::out!(
        "{} version {}",
        super::program_name(),
        env!("CARGO_PKG_VERSION")
    );
    crate::out!("commit: {}", env!("RT_COMMIT"));
    crate::out!("spec: {OCI_VERSION}");
}
