//! `ClusterMembership`: the broker's [`Membership`] in a cluster, read from the live
//! brokers that registration follows (`members.rs`), without I/O.
//!
//! Any broker can serve any partition (they share the storage), so leadership only routes
//! clients: each partition's leader is picked among the live brokers by
//! [`spread_leader`], and moves when a broker joins or leaves. A client that still sends
//! to a broker that left finds it gone, refreshes its metadata and follows the new
//! leader; one that reaches any live broker is served.

use std::sync::Arc;

use tokio::sync::watch;
use uuid::Uuid;
use weir_meta::membership::{spread_leader, BrokerEndpoint, Membership};

use crate::members::MembersView;

/// The cluster as the registration last saw it.
pub struct ClusterMembership {
    node_id: i32,
    view: watch::Receiver<Arc<MembersView>>,
}

impl ClusterMembership {
    /// `node_id` is this broker's; `view` follows the live brokers
    /// (`Registration::view`).
    pub fn new(node_id: i32, view: watch::Receiver<Arc<MembersView>>) -> ClusterMembership {
        ClusterMembership { node_id, view }
    }

    /// The live node ids, in order; this broker's alone while the view is empty (just
    /// registered, before the first read of the members).
    fn node_ids(&self) -> Vec<i32> {
        let view = self.view.borrow();
        let mut ids: Vec<i32> = view.brokers.iter().map(|b| b.node_id).collect();
        if ids.is_empty() {
            ids.push(self.node_id);
        }
        ids
    }
}

impl Membership for ClusterMembership {
    fn brokers(&self, listener: &str, this_broker: &BrokerEndpoint) -> Vec<BrokerEndpoint> {
        let view = self.view.borrow();
        let mut brokers: Vec<BrokerEndpoint> = view
            .brokers
            .iter()
            .filter_map(|b| {
                if b.node_id == self.node_id {
                    // This broker as the client reached it (its own listener's view).
                    return Some(this_broker.clone());
                }
                let endpoint = b.endpoints.get(listener)?;
                Some(BrokerEndpoint {
                    node_id: b.node_id,
                    host: endpoint.host.clone(),
                    port: i32::from(endpoint.port),
                })
            })
            .collect();
        if !brokers.iter().any(|b| b.node_id == self.node_id) {
            brokers.push(this_broker.clone());
            brokers.sort_by_key(|b| b.node_id);
        }
        brokers
    }

    fn leader(&self, topic_id: Uuid, partition: i32) -> i32 {
        spread_leader(&self.node_ids(), topic_id, partition)
    }

    fn controller(&self) -> i32 {
        self.node_ids()[0]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Endpoint;
    use crate::members::LiveBroker;

    fn live(node_id: i32, port: u16) -> LiveBroker {
        LiveBroker {
            node_id,
            endpoints: BTreeMap::from([(
                "PLAINTEXT".to_string(),
                Endpoint {
                    host: "127.0.0.1".into(),
                    port,
                },
            )]),
        }
    }

    #[test]
    fn leaders_follow_the_live_brokers() {
        // Goal: clients are told every live broker on their listener (this one as they
        // reached it), leaders are spread over the live brokers only, and a broker that
        // leaves stops leading at once.
        let (tx, rx) = watch::channel(Arc::new(MembersView {
            generation: 1,
            brokers: vec![live(0, 9000), live(1, 9001), live(2, 9002)].into(),
        }));
        let membership = ClusterMembership::new(1, rx);
        let me = BrokerEndpoint {
            node_id: 1,
            host: "localhost".into(),
            port: 9001,
        };
        let brokers = membership.brokers("PLAINTEXT", &me);
        assert_eq!(
            brokers.iter().map(|b| b.node_id).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(brokers[1].host, "localhost");
        assert!(membership.brokers("SSL", &me) == vec![me.clone()]);
        let topic = Uuid::new_v4();
        let leaders: std::collections::BTreeSet<i32> =
            (0..6).map(|p| membership.leader(topic, p)).collect();
        assert_eq!(leaders.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(membership.controller(), 0);

        tx.send(Arc::new(MembersView {
            generation: 2,
            brokers: vec![live(1, 9001), live(2, 9002)].into(),
        }))
        .unwrap();
        assert!((0..6).all(|p| membership.leader(topic, p) != 0));
        assert_eq!(membership.controller(), 1);
    }
}
