//! The error codes a response carries, for `weir_request_errors_total`.
//!
//! Every response type weir sends implements [`ErrorCodes`], which walks each `error_code`
//! field of the response: the top-level one and those of its topics, partitions, groups,
//! members or resources, wherever the message has them. [`crate::handlers::RequestMeta`]
//! walks a response just before encoding it, so each response is counted once, whichever
//! handler built it. Responses without any error field (none today) would walk nothing.
//!
//! The walk reads fields already in memory and allocates nothing; a code of 0 (no error) is
//! skipped by the caller, so a response without errors costs one pass over its parts.

use kafka_protocol::messages::*;

/// A response whose error codes can be walked.
pub trait ErrorCodes {
    /// Calls `each` with every error code in the response, 0 included.
    fn each_error_code(&self, each: &mut dyn FnMut(i16));
}

/// Responses whose only error code is their top-level `error_code`.
macro_rules! top_level_only {
    ($($response:ty),* $(,)?) => {
        $(
            impl ErrorCodes for $response {
                fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
                    each(self.error_code);
                }
            }
        )*
    };
}

top_level_only!(
    ApiVersionsResponse,
    ListConfigResourcesResponse,
    DescribeClusterResponse,
    InitProducerIdResponse,
    ListPartitionReassignmentsResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    ListGroupsResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    ListTransactionsResponse,
    ConsumerGroupHeartbeatResponse,
    GetTelemetrySubscriptionsResponse,
    PushTelemetryResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
);

impl ErrorCodes for CreateAclsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for r in &self.results {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for DescribeAclsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for DeleteAclsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for r in &self.filter_results {
            each(r.error_code);
            for m in &r.matching_acls {
                each(m.error_code);
            }
        }
    }
}

impl ErrorCodes for ProduceResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.responses {
            for p in &t.partition_responses {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for FetchResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for t in &self.responses {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for ListOffsetsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for MetadataResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for t in &self.topics {
            each(t.error_code);
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for CreateTopicsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            each(t.error_code);
        }
    }
}

impl ErrorCodes for DeleteTopicsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.responses {
            each(t.error_code);
        }
    }
}

impl ErrorCodes for CreatePartitionsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.results {
            each(t.error_code);
        }
    }
}

impl ErrorCodes for DescribeConfigsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for r in &self.results {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for AlterConfigsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for r in &self.responses {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for IncrementalAlterConfigsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for r in &self.responses {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for DeleteRecordsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeLogDirsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for r in &self.results {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for OffsetForLeaderEpochResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeTopicPartitionsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            each(t.error_code);
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for ElectLeadersResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for r in &self.replica_election_results {
            for p in &r.partition_result {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for AlterPartitionReassignmentsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for t in &self.responses {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for FindCoordinatorResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        // Before v4 the answer is the top-level fields; from v4 one entry per key asked.
        each(self.error_code);
        for c in &self.coordinators {
            each(c.error_code);
        }
    }
}

impl ErrorCodes for LeaveGroupResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for m in &self.members {
            each(m.error_code);
        }
    }
}

impl ErrorCodes for OffsetCommitResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for OffsetFetchResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        // Up to v7 one group at the top level; from v8 a list of groups.
        each(self.error_code);
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
        for g in &self.groups {
            each(g.error_code);
            for t in &g.topics {
                for p in &t.partitions {
                    each(p.error_code);
                }
            }
        }
    }
}

impl ErrorCodes for OffsetDeleteResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeGroupsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for g in &self.groups {
            each(g.error_code);
        }
    }
}

impl ErrorCodes for DeleteGroupsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for g in &self.results {
            each(g.error_code);
        }
    }
}

impl ErrorCodes for AddPartitionsToTxnResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        // Up to v3 one transaction's topics; from v4 (brokers verifying) several.
        each(self.error_code);
        let topics = self.results_by_topic_v3_and_below.iter().chain(
            self.results_by_transaction
                .iter()
                .flat_map(|r| &r.topic_results),
        );
        for t in topics {
            for p in &t.results_by_partition {
                each(p.partition_error_code);
            }
        }
    }
}

impl ErrorCodes for TxnOffsetCommitResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for DescribeTransactionsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for s in &self.transaction_states {
            each(s.error_code);
        }
    }
}

impl ErrorCodes for DescribeProducersResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for t in &self.topics {
            for p in &t.partitions {
                each(p.error_code);
            }
        }
    }
}

impl ErrorCodes for WriteTxnMarkersResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for m in &self.markers {
            for t in &m.topics {
                for p in &t.partitions {
                    each(p.error_code);
                }
            }
        }
    }
}

impl ErrorCodes for ConsumerGroupDescribeResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for g in &self.groups {
            each(g.error_code);
        }
    }
}

impl ErrorCodes for DescribeUserScramCredentialsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
        for r in &self.results {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for AlterUserScramCredentialsResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for r in &self.results {
            each(r.error_code);
        }
    }
}

impl ErrorCodes for DescribeClientQuotasResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        each(self.error_code);
    }
}

impl ErrorCodes for AlterClientQuotasResponse {
    fn each_error_code(&self, each: &mut dyn FnMut(i16)) {
        for e in &self.entries {
            each(e.error_code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(response: &dyn ErrorCodes) -> Vec<i16> {
        let mut out = Vec::new();
        response.each_error_code(&mut |c| out.push(c));
        out
    }

    /// A Metadata response is walked at every level: the top, each topic, each partition.
    #[test]
    fn metadata_walks_topics_and_partitions() {
        use kafka_protocol::messages::metadata_response::*;
        let body = MetadataResponse::default().with_topics(vec![
            MetadataResponseTopic::default()
                .with_error_code(3)
                .with_partitions(vec![
                    MetadataResponsePartition::default().with_error_code(5),
                    MetadataResponsePartition::default(),
                ]),
            MetadataResponseTopic::default().with_error_code(29),
        ]);
        assert_eq!(codes(&body), vec![0, 3, 5, 0, 29]);
    }

    /// OffsetFetch counts both its old single-group shape and its v8 list of groups.
    #[test]
    fn offset_fetch_walks_both_shapes() {
        use kafka_protocol::messages::offset_fetch_response::*;
        let body = OffsetFetchResponse::default()
            .with_error_code(16)
            .with_groups(vec![OffsetFetchResponseGroup::default()
                .with_error_code(69)
                .with_topics(vec![OffsetFetchResponseTopics::default()
                    .with_partitions(vec![
                        OffsetFetchResponsePartitions::default().with_error_code(3),
                    ])])]);
        assert_eq!(codes(&body), vec![16, 69, 3]);
    }

    /// AddPartitionsToTxn's partition codes are found under either version's layout.
    #[test]
    fn add_partitions_to_txn_walks_both_layouts() {
        use kafka_protocol::messages::add_partitions_to_txn_response::*;
        let topic = |code| {
            AddPartitionsToTxnTopicResult::default().with_results_by_partition(vec![
                AddPartitionsToTxnPartitionResult::default().with_partition_error_code(code),
            ])
        };
        let body = AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(vec![topic(48)])
            .with_results_by_transaction(vec![
                AddPartitionsToTxnResult::default().with_topic_results(vec![topic(51)])
            ]);
        assert_eq!(codes(&body), vec![0, 48, 51]);
    }
}
