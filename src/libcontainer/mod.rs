//! The factory and the container lifecycle.
