//! Real-kernel tests.
