//! The local engine's [`LogLifecycle`]: partitions are directories named
//! `<topic>-<partition>` under the data directory, opened (recovering what a crash left)
//! or made empty, and removed with their topic.

use std::path::Path;

use uuid::Uuid;

use super::LocalLog;
use crate::store::{LogLifecycle, Opening, StoreError};
use crate::{LogConfig, LogError};

/// Attempts at removing a partition's directory.
const REMOVE_DIR_TRIES_MAX: u32 = 4;

impl LogLifecycle for LocalLog {
    fn open_partitions(
        &self,
        topic: &str,
        _topic_id: Uuid,
        partitions: std::ops::Range<i32>,
        config: &LogConfig,
        opening: Opening,
    ) -> Result<(), StoreError> {
        let opened = partitions
            .map(|i| {
                if opening == Opening::New {
                    // A leftover directory of an earlier topic of the same name must not
                    // leak into this one.
                    remove_dir_if_present(&self.partition_dir(topic, i))?;
                }
                self.open_partition(topic, i, config.clone())
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        self.add_partitions(topic, opened);
        Ok(())
    }

    fn delete_topic(&self, topic: &str, _topic_id: Uuid) -> Result<(), StoreError> {
        for p in self.remove_topic(topic) {
            // Wake fetches waiting on it so they notice the topic is gone.
            p.appended.notify_waiters();
            // Under the log's lock, so a compaction in flight cannot swap files in
            // meanwhile; marked deleted, so it discards its work afterwards.
            let mut log = p.log.lock();
            log.mark_deleted();
            remove_dir_if_present(log.dir()).map_err(LogError::from)?;
        }
        Ok(())
    }

    fn set_config(&self, topic: &str, _topic_id: Uuid, config: &LogConfig) {
        for p in self.topic_partitions(topic) {
            p.log.lock().set_config(config.clone());
        }
    }
}

/// Removes a partition directory. Tried a few times: the log cleaner may be writing a file
/// into it at that moment (it gives up on a deleted log at its next step).
fn remove_dir_if_present(dir: &Path) -> std::io::Result<()> {
    let mut tries = 1;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tries < REMOVE_DIR_TRIES_MAX => {
                tracing::debug!(dir = %dir.display(), error = %e, "removing a partition directory again");
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}
