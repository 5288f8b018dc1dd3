//! Integration tests: run the built rt as root on real bundles.
mod image;
