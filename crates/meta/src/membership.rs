//! [`Membership`]: which brokers make up the cluster, how a client reaches each, and which
//! one it should send a partition's requests to. The broker's Metadata, DescribeCluster
//! and DescribeTopicPartitions answer from it.
//!
//! A single node is the whole cluster ([`SingleNode`]). Brokers of a cluster share their
//! storage, so any of them can serve any partition; a partition's leader only tells
//! clients where to go, spread evenly over the live brokers ([`spread_leader`]) so that
//! each takes a share of the load. The cluster's membership lives with the cluster engine.

use uuid::Uuid;

/// The name a cluster broker registers its HTTP listener (the console and the admin API)
/// under, beside its Kafka listeners, so that other brokers can forward to it what only
/// the controller can answer. No Kafka listener can have this name.
pub const HTTP_ENDPOINT: &str = "(http)";
/// As [`HTTP_ENDPOINT`], for a listener that serves HTTPS (`--http-tls`).
pub const HTTPS_ENDPOINT: &str = "(https)";

/// A broker as a client on one listener reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
}

impl BrokerEndpoint {
    /// `host:port` to connect to, an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The cluster as the broker sees it now.
pub trait Membership: Send + Sync + 'static {
    /// The live brokers, by node id, as a client that came in on the listener named
    /// `listener` reaches them (brokers without a listener of that name are left out);
    /// `this_broker` is this broker as that client reached it.
    fn brokers(&self, listener: &str, this_broker: &BrokerEndpoint) -> Vec<BrokerEndpoint>;

    /// The node clients should send `partition`'s requests to.
    fn leader(&self, topic_id: Uuid, partition: i32) -> i32;

    /// The node named as the controller (admin clients send topic changes there; every
    /// weir broker takes them).
    fn controller(&self) -> i32;
}

/// One broker that is the whole cluster.
#[derive(Debug, Clone, Copy)]
pub struct SingleNode {
    pub node_id: i32,
}

impl Membership for SingleNode {
    fn brokers(&self, _listener: &str, this_broker: &BrokerEndpoint) -> Vec<BrokerEndpoint> {
        vec![this_broker.clone()]
    }

    fn leader(&self, _topic_id: Uuid, _partition: i32) -> i32 {
        self.node_id
    }

    fn controller(&self) -> i32 {
        self.node_id
    }
}

/// The leader of `partition` among `node_ids` (sorted, not empty): a topic's partitions go
/// round the brokers from a place its id picks, so the partitions of many topics spread
/// evenly and one topic's partitions land on different brokers.
pub fn spread_leader(node_ids: &[i32], topic_id: Uuid, partition: i32) -> i32 {
    assert!(!node_ids.is_empty(), "a cluster has at least this broker");
    let (high, low) = topic_id.as_u64_pair();
    let start = (high ^ low) % node_ids.len() as u64;
    let index = (start + u64::from(partition.unsigned_abs())) % node_ids.len() as u64;
    node_ids[index as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_bracketed_in_an_authority() {
        let at = |host: &str| {
            BrokerEndpoint {
                node_id: 1,
                host: host.to_string(),
                port: 9644,
            }
            .authority()
        };
        assert_eq!(at("broker1.example.com"), "broker1.example.com:9644");
        assert_eq!(at("10.0.0.5"), "10.0.0.5:9644");
        assert_eq!(at("2001:db8::5"), "[2001:db8::5]:9644");
        assert_eq!(at("[2001:db8::5]"), "[2001:db8::5]:9644");
    }

    #[test]
    fn partitions_spread_evenly_over_the_brokers() {
        // Goal: with three brokers, every broker leads a third of a topic's partitions,
        // the choice is the same every time, and over many topics the load is even too.
        let nodes = [1, 2, 5];
        let topic = Uuid::new_v4();
        let mut counts = std::collections::BTreeMap::new();
        for p in 0..30 {
            let leader = spread_leader(&nodes, topic, p);
            assert_eq!(leader, spread_leader(&nodes, topic, p));
            *counts.entry(leader).or_insert(0) += 1;
        }
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![10, 10, 10]
        );
        let mut first = std::collections::BTreeMap::new();
        for _ in 0..300 {
            *first
                .entry(spread_leader(&nodes, Uuid::new_v4(), 0))
                .or_insert(0) += 1;
        }
        assert!(first.values().all(|&n| n > 60), "{first:?}");
    }
}
