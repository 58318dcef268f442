//! `GET /api/v1/cluster`: the cluster id, this node, its listeners, the version, and how
//! many topics, partitions and groups there are.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiContext;
use crate::errors::{ErrorBody, HttpError};

#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    pub cluster_id: String,
    /// This broker's node id; weir runs as one node, which is also the controller.
    pub node_id: i32,
    /// weir's version.
    pub version: String,
    pub listeners: Vec<Listener>,
    pub counts: Counts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Listener {
    /// A Kafka listener's name (`PLAINTEXT`, `SASL_SSL`, or one of `--listeners`), or
    /// `http` (this API, the console and /metrics).
    pub name: String,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`, `HTTP` or `HTTPS`.
    pub protocol: String,
    /// host:port where it listens.
    pub address: String,
    /// host:port clients are told to connect to (Kafka listeners only).
    pub advertised: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    /// Topics the caller may describe, internal ones (`__consumer_offsets`, …) aside.
    pub topics: usize,
    pub internal_topics: usize,
    /// Partitions of every topic, internal ones included.
    pub partitions: usize,
    /// Groups the caller may describe, of any protocol.
    pub groups: usize,
}

#[utoipa::path(
    get,
    path = "/api/v1/cluster",
    tag = "cluster",
    responses(
        (status = 200, description = "The cluster", body = Cluster),
        (status = 503, description = "The group coordinator is not running", body = ErrorBody),
    )
)]
pub async fn get_cluster(ctx: ApiContext) -> Result<Json<Cluster>, HttpError> {
    let broker = &ctx.broker;
    // Counted as the lists show them: what the caller may describe.
    let mut topics = broker.topics();
    topics.retain(|t| ctx.may_describe_topic(&t.name));
    let internal_topics = topics.iter().filter(|t| t.internal).count();
    let partitions = topics
        .iter()
        .map(|t| usize::try_from(t.partitions).unwrap_or(0))
        .sum();
    let groups = if crate::forward::coordinator_elsewhere(broker).is_some() {
        // Another broker coordinates the groups (a cluster's controller): the list, which
        // asks it, counts them.
        let listed = super::groups::list_groups(ctx.clone()).await?.0;
        listed.groups.len() + listed.truncated
    } else {
        super::groups::list(&ctx).await?.len()
    };
    let config = &broker.config;
    Ok(Json(Cluster {
        cluster_id: broker.cluster_id(),
        node_id: config.node_id,
        version: env!("CARGO_PKG_VERSION").to_string(),
        listeners: config
            .listeners
            .iter()
            .map(|l| Listener {
                name: l.name.clone(),
                protocol: l.protocol.name().to_string(),
                address: l.bind.to_string(),
                advertised: Some(format!("{}:{}", l.advertised_host, l.advertised_port)),
            })
            .chain(std::iter::once(Listener {
                name: "http".into(),
                protocol: if ctx.https { "HTTPS" } else { "HTTP" }.into(),
                address: ctx.http_addr.to_string(),
                advertised: None,
            }))
            .collect(),
        counts: Counts {
            topics: topics.len() - internal_topics,
            internal_topics,
            partitions,
            groups,
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Throughput {
    /// Seconds between samples.
    pub sample_interval_s: f64,
    /// Oldest first: records and bytes produced and bytes fetched per second over each
    /// interval of the last hour, as the console sampled them while it ran.
    pub samples: Vec<crate::throughput_history::ThroughputSample>,
}

#[utoipa::path(
    get,
    path = "/api/v1/cluster/throughput",
    tag = "cluster",
    responses((status = 200, description = "Produce and fetch rates over the last hour", body = Throughput))
)]
pub async fn get_throughput(ctx: ApiContext) -> Json<Throughput> {
    Json(Throughput {
        sample_interval_s: crate::throughput_history::THROUGHPUT_SAMPLE_INTERVAL.as_secs_f64(),
        samples: ctx.throughput.samples(),
    })
}
