/// The runtime-spec version rt implements.
pub const OCI_VERSION: &str = "1.2.1";

pub fn print() {
    println!("rt version {}", env!("CARGO_PKG_VERSION"));
    println!("spec: {OCI_VERSION}");
}
