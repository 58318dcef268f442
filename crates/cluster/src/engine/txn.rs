//! `TxnLog` for [`ClusterLog`]: markers through the appender's ordered commit path (whose
//! commit checks the epochs, closes the transaction, records an abort and moves the last
//! stable offset); open transactions and producers read from `producer_state`.

use weir_log::store::{BoxFuture, MarkerWrite, StoreError, TopicPartition, TxnLog};
use weir_log::ProducerStateView;

use super::{refused_error, ClusterLog};

impl TxnLog for ClusterLog {
    fn write_markers(
        &self,
        markers: Vec<MarkerWrite>,
        now_ms: i64,
    ) -> BoxFuture<'static, Vec<Result<(), StoreError>>> {
        let answers = self.appender.write_markers(&markers, now_ms);
        Box::pin(async move {
            answers
                .await
                .into_iter()
                .map(|result| result.map(|_| ()).map_err(refused_error))
                .collect()
        })
    }

    fn has_open_transaction(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move {
            let partition_id = self.partition_id(&tp).await?;
            self.bounded("the lookup of an open transaction", async {
                let client = self.session.client().await?;
                Ok(client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM producer_state \
                         WHERE partition_id = $1 AND producer_id = $2 \
                           AND producer_epoch = $3 AND txn_first_offset IS NOT NULL)",
                        &[&partition_id, &producer_id, &producer_epoch],
                    )
                    .await?
                    .get(0))
            })
            .await
        })
    }

    /// The rows of `producer_state`, by producer id; the last sequence is the last of the
    /// batches the row remembers (-1 when none of the current epoch is).
    fn producers(
        &self,
        tp: &TopicPartition,
    ) -> BoxFuture<'_, Result<Vec<ProducerStateView>, StoreError>> {
        let tp = tp.clone();
        Box::pin(async move {
            let partition_id = self.partition_id(&tp).await?;
            let rows = self
                .bounded("the read of producer states", async {
                    let client = self.session.client().await?;
                    Ok(client
                        .query(
                            "SELECT producer_id, producer_epoch, \
                                    coalesce((recent -> -1 ->> 'last_seq')::int, -1), \
                                    last_timestamp, coordinator_epoch, \
                                    coalesce(txn_first_offset, -1) \
                             FROM producer_state WHERE partition_id = $1 \
                             ORDER BY producer_id",
                            &[&partition_id],
                        )
                        .await?)
                })
                .await?;
            Ok(rows
                .iter()
                .map(|row| ProducerStateView {
                    producer_id: row.get(0),
                    producer_epoch: row.get(1),
                    last_sequence: row.get(2),
                    last_timestamp_ms: row.get(3),
                    coordinator_epoch: row.get(4),
                    current_txn_start_offset: row.get(5),
                })
                .collect())
        })
    }
}
