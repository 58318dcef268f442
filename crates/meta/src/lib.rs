//! weir-meta
