//! [`ProducerIdSource`]: where a broker takes new producer ids from when they are not kept
//! in its catalog. A single node records its blocks in the catalog it alone writes; the
//! brokers of a cluster take blocks from a sequence they share, so that no two of them
//! ever hand out the same id, without a catalog commit per block.

use crate::MetaError;

/// New producer ids, never handed out before by any broker of the cluster.
pub trait ProducerIdSource: Send + Sync + 'static {
    /// One new producer id. Fails with [`MetaError::ProducerIdsUnavailable`] when the
    /// source cannot be reached; the client retries.
    fn next_producer_id(&self) -> Result<i64, MetaError>;
}

/// One source shared with its other users (a cluster's catalog store hands out the ids).
impl<T: ProducerIdSource + ?Sized> ProducerIdSource for std::sync::Arc<T> {
    fn next_producer_id(&self) -> Result<i64, MetaError> {
        (**self).next_producer_id()
    }
}
