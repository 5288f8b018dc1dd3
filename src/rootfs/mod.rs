//! Mounts, propagation, pivot_root, devices, masked and read-only paths.
