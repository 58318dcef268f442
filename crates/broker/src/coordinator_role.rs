//! Which broker runs the group and transaction coordinators: the one the membership names
//! controller ([`weir_meta::membership::Membership::controller`]). On a single node that is
//! always this broker, and the coordinators start at bind. In a cluster, brokers share one
//! log, so exactly one of them may own groups and transactions: the others answer the
//! coordinators' APIs with NOT_COORDINATOR (see [`BrokerState::coordinator_refusal`]), and
//! FindCoordinator sends clients to the controller.
//!
//! [`follow`] polls the membership every [`CONTROLLER_POLL_MS`]. A broker that becomes
//! controller replays `__consumer_offsets` and `__transaction_state` from the shared log
//! (what the previous controller committed comes back) and then installs both runtimes;
//! until then it answers COORDINATOR_LOAD_IN_PROGRESS. A broker that stops being
//! controller takes its runtimes away and ends their tasks; their members reconnect to the
//! new controller. The storage engine fences the writes of a former controller that has
//! not noticed yet (the cluster engine checks the controller in the write's commit).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::group_runtime::GroupRuntime;
use crate::state::BrokerState;
use crate::txn_runtime::TxnRuntime;

/// How often a broker checks whether it is (still) the controller.
pub const CONTROLLER_POLL_MS: u64 = 200;

/// Replays both internal topics and installs the coordinators, replacing (and ending) any
/// that ran before, unless the role moved on meanwhile. The replay runs on the blocking
/// pool.
pub async fn start(state: &Arc<BrokerState>) -> anyhow::Result<()> {
    let s = Arc::clone(state);
    let groups = tokio::task::spawn_blocking(move || GroupRuntime::start_blocking(&s)).await??;
    let s = Arc::clone(state);
    let txns = tokio::task::spawn_blocking(move || TxnRuntime::start_blocking(&s)).await??;
    if !state.is_controller() {
        // The role moved on during the replay: nothing to install.
        return Ok(());
    }
    if let Some(old) = state.set_groups(Some(groups.spawn(state))) {
        old.stop();
    }
    if let Some(old) = state.set_txns(Some(txns.spawn(state))) {
        old.stop();
    }
    Ok(())
}

/// Takes the coordinators away and ends their tasks.
pub fn stop(state: &BrokerState) {
    if let Some(groups) = state.set_groups(None) {
        groups.stop();
    }
    if let Some(txns) = state.set_txns(None) {
        txns.stop();
    }
}

/// Brings the coordinators in line with the membership once: starts them on the controller
/// when they do not run, stops them on any other broker.
pub async fn reconcile(state: &Arc<BrokerState>) -> anyhow::Result<()> {
    let running = state.groups().is_some() && state.txns().is_some();
    if state.is_controller() {
        if !running {
            tracing::info!("this broker is the controller: loading the coordinators");
            start(state).await?;
        }
    } else if state.groups().is_some() || state.txns().is_some() {
        tracing::info!(
            controller = state.membership().controller(),
            "this broker is no longer the controller: stopping the coordinators"
        );
        stop(state);
    }
    Ok(())
}

/// Follows the controller until `stop` turns true.
pub fn follow(
    state: Arc<BrokerState>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(CONTROLLER_POLL_MS)) => {}
            }
            if let Err(e) = reconcile(&state).await {
                tracing::warn!(error = %e, "could not load the coordinators; trying again");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI32, Ordering};

    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use uuid::Uuid;
    use weir_log::LocalLog;
    use weir_meta::membership::{BrokerEndpoint, Membership};
    use weir_wire::request::{DecodedRequest, Request};
    use weir_wire::ResponseError;

    use super::*;
    use crate::config::BrokerConfig;
    use crate::connection::{ClientInfo, Reply};
    use crate::security::listener::ListenerConfig;
    use crate::security::principal::Principal;
    use crate::security::Listener;

    /// Two brokers, 1 and 2, both live; the controller is whichever the test says.
    struct Switchable {
        controller: AtomicI32,
    }

    impl Membership for Switchable {
        fn brokers(&self, _listener: &str, this_broker: &BrokerEndpoint) -> Vec<BrokerEndpoint> {
            // Broker n listens on port 9090 + n of the same host.
            [1, 2]
                .into_iter()
                .map(|node_id| BrokerEndpoint {
                    node_id,
                    host: this_broker.host.clone(),
                    port: 9090 + node_id,
                })
                .collect()
        }

        fn leader(&self, _topic_id: Uuid, _partition: i32) -> i32 {
            1
        }

        fn controller(&self) -> i32 {
            self.controller.load(Ordering::Relaxed)
        }
    }

    fn broker(
        dir: &std::path::Path,
        node_id: i32,
        logs: &Arc<LocalLog>,
        membership: &Arc<Switchable>,
    ) -> (Arc<BrokerState>, ClientInfo) {
        let bind = format!("127.0.0.1:{}", 9090 + node_id).parse().unwrap();
        let mut config = BrokerConfig::new(bind, dir.to_path_buf());
        config.node_id = node_id;
        config.offsets_topic_partitions = 1;
        config.transaction_state_partitions = 1;
        let listener = Listener::new(ListenerConfig::plaintext(bind), &config.security).unwrap();
        let state = BrokerState::open_shared(
            config,
            Arc::clone(logs),
            Arc::clone(membership) as Arc<dyn Membership>,
        );
        let client = ClientInfo {
            peer: "127.0.0.1:50000".parse().unwrap(),
            client_id: "test".into(),
            software: Arc::new((String::new(), String::new())),
            listener: Arc::new(listener),
            principal: Arc::new(Principal::anonymous()),
        };
        (state, client)
    }

    /// Sends one request through dispatch and decodes the answer.
    async fn ask<T: Decodable>(
        state: &Arc<BrokerState>,
        client: &ClientInfo,
        api_key: ApiKey,
        api_version: i16,
        body: Request,
    ) -> T {
        let request = DecodedRequest {
            api_key,
            api_version,
            correlation_id: 7,
            client_id: Some("test".into()),
            body,
        };
        let meta = crate::handlers::request_meta(state, &request);
        let frame = match crate::handlers::dispatch(state, client, meta, request) {
            Reply::Now(f) => f,
            Reply::Later(f) => f.await.expect("an answer"),
            Reply::Nothing | Reply::Gate(_) | Reply::Close(_) => panic!("no answer"),
        };
        let mut bytes: Bytes = frame.concat().into();
        let _size = bytes.get_i32();
        let _header =
            ResponseHeader::decode(&mut bytes, api_key.response_header_version(api_version))
                .unwrap();
        T::decode(&mut bytes, api_version).unwrap()
    }

    fn sb(s: &str) -> StrBytes {
        StrBytes::from_string(s.to_string())
    }

    async fn find_group_coordinator(
        state: &Arc<BrokerState>,
        client: &ClientInfo,
    ) -> FindCoordinatorResponse {
        let request = FindCoordinatorRequest::default().with_coordinator_keys(vec![sb("g")]);
        ask(
            state,
            client,
            ApiKey::FindCoordinator,
            4,
            Request::FindCoordinator(request),
        )
        .await
    }

    async fn commit(
        state: &Arc<BrokerState>,
        client: &ClientInfo,
        offset: i64,
    ) -> OffsetCommitResponse {
        // A simple (standalone) commit: generation -1, no member.
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb("g")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb("orders")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]);
        ask(
            state,
            client,
            ApiKey::OffsetCommit,
            8,
            Request::OffsetCommit(request),
        )
        .await
    }

    async fn fetch(state: &Arc<BrokerState>, client: &ClientInfo) -> OffsetFetchResponse {
        let request =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(sb("g")))
                .with_topics(None)]);
        ask(
            state,
            client,
            ApiKey::OffsetFetch,
            8,
            Request::OffsetFetch(request),
        )
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_controller_coordinates_and_a_new_one_serves_what_the_old_one_committed() {
        // Goal: FindCoordinator names the controller with its endpoint; a group API sent
        // to the other broker answers NOT_COORDINATOR (ListGroups an empty list); when the
        // role moves, the former controller stops its coordinators and the new one,
        // over the same engine, replays and serves the offsets its predecessor committed.
        let dir = tempfile::tempdir().unwrap();
        let logs = Arc::new(LocalLog::new(
            dir.path(),
            weir_log::FsyncPolicy::Never,
            crate::metrics::BrokerMetrics::default().fsync_observer(),
        ));
        let membership = Arc::new(Switchable {
            controller: AtomicI32::new(1),
        });
        let (one, one_client) = broker(dir.path(), 1, &logs, &membership);
        one.create_topic("orders", 1, 1, Default::default(), false, true)
            .unwrap();
        reconcile(&one).await.unwrap();
        assert!(one.groups().is_some() && one.txns().is_some());

        // 1. Broker 1 is the controller: both brokers send clients there.
        let found = find_group_coordinator(&one, &one_client).await;
        assert_eq!(found.coordinators[0].error_code, 0);
        assert_eq!(
            (found.coordinators[0].node_id.0, found.coordinators[0].port),
            (1, 9091)
        );
        let committed = commit(&one, &one_client, 42).await;
        assert_eq!(committed.topics[0].partitions[0].error_code, 0);

        let (two, two_client) = broker(dir.path(), 2, &logs, &membership);
        reconcile(&two).await.unwrap();
        assert!(
            two.groups().is_none(),
            "not the controller: no coordinators"
        );
        let found = find_group_coordinator(&two, &two_client).await;
        assert_eq!(found.coordinators[0].node_id.0, 1);
        let refused = commit(&two, &two_client, 43).await;
        assert_eq!(
            refused.topics[0].partitions[0].error_code,
            ResponseError::NotCoordinator.code()
        );
        let refused = fetch(&two, &two_client).await;
        assert_eq!(
            refused.groups[0].error_code,
            ResponseError::NotCoordinator.code()
        );
        let listed: ListGroupsResponse = ask(
            &two,
            &two_client,
            ApiKey::ListGroups,
            4,
            Request::ListGroups(ListGroupsRequest::default()),
        )
        .await;
        assert_eq!((listed.error_code, listed.groups.len()), (0, 0));
        // An idempotent producer is served by any broker.
        let idempotent: InitProducerIdResponse = ask(
            &two,
            &two_client,
            ApiKey::InitProducerId,
            4,
            Request::InitProducerId(
                InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
        )
        .await;
        assert_eq!(idempotent.error_code, 0);
        assert!(idempotent.producer_id.0 >= 0);
        let transactional: InitProducerIdResponse = ask(
            &two,
            &two_client,
            ApiKey::InitProducerId,
            4,
            Request::InitProducerId(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(sb("tx"))))
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ),
        )
        .await;
        assert_eq!(
            transactional.error_code,
            ResponseError::NotCoordinator.code()
        );

        // 2. The role moves to broker 2, whose catalog now holds the internal topics
        // broker 1 created.
        membership.controller.store(2, Ordering::Relaxed);
        let (two, two_client) = broker(dir.path(), 2, &logs, &membership);
        reconcile(&one).await.unwrap();
        assert!(one.groups().is_none() && one.txns().is_none());
        let refused = fetch(&one, &one_client).await;
        assert_eq!(
            refused.groups[0].error_code,
            ResponseError::NotCoordinator.code()
        );
        let loading = fetch(&two, &two_client).await;
        assert_eq!(
            loading.groups[0].error_code,
            ResponseError::CoordinatorLoadInProgress.code()
        );
        reconcile(&two).await.unwrap();
        let found = find_group_coordinator(&one, &one_client).await;
        assert_eq!(
            (found.coordinators[0].node_id.0, found.coordinators[0].port),
            (2, 9092)
        );
        let fetched = fetch(&two, &two_client).await;
        assert_eq!(fetched.groups[0].error_code, 0);
        let partitions: Vec<(i32, i64)> = fetched.groups[0]
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        assert_eq!(partitions, [(0, 42)]);
    }
}
