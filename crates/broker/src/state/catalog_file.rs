//! The single node's [`CatalogStore`]: `meta/catalog.json` in the data directory, replaced
//! whole and fsynced on every change (written beside it, fsynced, renamed over it, and the
//! directory fsynced), so a crash leaves the old catalog or the new one, never a mix.

use std::fs;
use std::path::{Path, PathBuf};

use weir_meta::{Catalog, CatalogStore, MetaError};

pub const CATALOG_DIR: &str = "meta";
pub const CATALOG_FILE: &str = "catalog.json";

/// The catalog file of one data directory. Its only writer is this broker, so versions
/// never conflict.
pub struct CatalogFile {
    dir: PathBuf,
}

impl CatalogFile {
    pub fn new(data_dir: &Path) -> CatalogFile {
        CatalogFile {
            dir: data_dir.join(CATALOG_DIR),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CATALOG_FILE)
    }

    /// The stored catalog, or `None` for a data directory that has none yet.
    pub fn load(&self) -> anyhow::Result<Option<Catalog>> {
        fs::create_dir_all(&self.dir)?;
        let path = self.path();
        match fs::read(&path) {
            Ok(bytes) => Catalog::from_bytes(&bytes).map(Some).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e}; restore it from a backup or move the data directory away",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn write(&self, catalog: &Catalog) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{CATALOG_FILE}.tmp"));
        fs::write(&tmp, catalog.to_bytes())?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, self.path())?;
        fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

impl CatalogStore for CatalogFile {
    fn commit(&self, catalog: &Catalog) -> Result<u64, MetaError> {
        let version = catalog.version + 1;
        let mut stored = catalog.clone();
        stored.version = version;
        self.write(&stored).map_err(|e| {
            MetaError::CatalogUnavailable(format!("{}: {e}", self.path().display()))
        })?;
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_commit_is_the_next_version_and_loads_back() {
        // Goal: the file store numbers commits one after another, the file holds the
        // version it was committed under, and a store it cannot write refuses with
        // CatalogUnavailable (NOT_CONTROLLER to clients) rather than losing the change.
        let dir = tempfile::tempdir().unwrap();
        let store = CatalogFile::new(dir.path());
        assert!(store.load().unwrap().is_none());
        let mut catalog = Catalog::new("c".into());
        catalog.version = store.commit(&catalog).unwrap();
        catalog.version = store.commit(&catalog).unwrap();
        assert_eq!(catalog.version, 2);
        assert_eq!(store.load().unwrap().unwrap().version, 2);

        std::fs::remove_dir_all(dir.path().join(CATALOG_DIR)).unwrap();
        std::fs::write(dir.path().join(CATALOG_DIR), b"a file in the way").unwrap();
        assert!(matches!(
            store.commit(&catalog),
            Err(MetaError::CatalogUnavailable(_))
        ));
    }
}
