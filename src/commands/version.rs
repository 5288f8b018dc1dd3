use crate::libcontainer::OCI_VERSION;

pub fn print() {
    crate::out!("rt version {}", env!("CARGO_PKG_VERSION"));
    crate::out!("commit: {}", env!("RT_COMMIT"));
    crate::out!("spec: {OCI_VERSION}");
}
