//! [`CatalogStore`]: where the catalog is kept between changes. The single node writes it
//! to a file in its data directory; a cluster keeps it in PostgreSQL, where several brokers
//! change it. The broker changes its copy in memory, commits it through the store, and
//! keeps the change only if the commit succeeds.
//!
//! Every committed catalog carries a version ([`Catalog::version`]), one more than the
//! version it was changed from. A store shared by several writers refuses a commit whose
//! predecessor is no longer the stored version ([`MetaError::CatalogConflict`]): another
//! broker changed the catalog meanwhile, so this change was decided on a stale copy. The
//! broker then takes the stored catalog and the client retries (Kafka's NOT_CONTROLLER,
//! which admin clients retry after refreshing their metadata).

use crate::{Catalog, MetaError};

/// Where the catalog is kept.
pub trait CatalogStore: Send + Sync + 'static {
    /// Stores `catalog` as the successor of version `catalog.version` and returns the
    /// version it is stored under. Fails with [`MetaError::CatalogConflict`] when the stored
    /// version is no longer `catalog.version`, and with [`MetaError::CatalogUnavailable`]
    /// when the store cannot be reached or written.
    fn commit(&self, catalog: &Catalog) -> Result<u64, MetaError>;

    /// The stored catalog read afresh, when other brokers may have committed since this
    /// one's copy (a shared store); `None` for a store only this broker writes. A broker
    /// asks when a client names a topic it does not know, which another broker may have
    /// just created.
    fn latest(&self) -> Result<Option<Catalog>, MetaError> {
        Ok(None)
    }
}

/// One store shared with others that read it (a cluster's broker follows its commits too).
impl<T: CatalogStore + ?Sized> CatalogStore for std::sync::Arc<T> {
    fn commit(&self, catalog: &Catalog) -> Result<u64, MetaError> {
        (**self).commit(catalog)
    }

    fn latest(&self) -> Result<Option<Catalog>, MetaError> {
        (**self).latest()
    }
}
