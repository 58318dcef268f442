//! Durable writes of the partition directory's small files: checkpoints, producer-state
//! snapshots and rewritten transaction indexes.

use std::fs::{self, File};
use std::path::Path;

use crate::LogError;

/// Writes a small file in `dir` atomically and durably: a temp file, fsynced, renamed over
/// the old one, then the directory fsynced. A crash leaves either the old file or the new.
pub fn persist_file(dir: &Path, name: &str, contents: &[u8]) -> Result<(), LogError> {
    let tmp = dir.join(format!("{name}{TEMP_SUFFIX}"));
    fs::write(&tmp, contents)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Suffix of a file [`persist_file`] has not renamed into place yet.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Fsyncs a directory, so the files created or renamed in it keep their names after a power
/// loss.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}
