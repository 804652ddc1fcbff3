//! grove facade.
