//! weir-log
