//! What runs inside the new namespaces as `rt init`.
pub fn main() -> ! {
    std::process::exit(1)
}
