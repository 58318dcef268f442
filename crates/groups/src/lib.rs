//! weir-groups
