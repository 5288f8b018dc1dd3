/// The runtime-spec version rt implements.
pub const OCI_VERSION: &str = "1.2.1";

pub fn print() {
    crate::out!("rt version {}", env!("CARGO_PKG_VERSION"));
    crate::out!("commit: {}", env!("RT_COMMIT"));
    crate::out!("spec: {OCI_VERSION}");
}
