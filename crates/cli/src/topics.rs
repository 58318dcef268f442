//! `weir topics`: list, create, describe, delete, alter-config, add-partitions.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use serde_json::json;

use crate::client::sb;
use crate::cluster::{error_name, Cluster};
use crate::output::{self, emit, Format};

#[derive(Subcommand)]
pub enum TopicsCommand {
    /// List topics with their partition counts.
    ///
    /// Examples:
    ///   weir topics list
    ///   weir topics list --internal --output json
    List {
        /// Include internal topics such as __consumer_offsets.
        #[arg(long)]
        internal: bool,
    },
    /// Create a topic.
    ///
    /// Examples:
    ///   weir topics create orders --partitions 6
    ///   weir topics create audit --config retention.ms=604800000 --config cleanup.policy=delete
    Create {
        name: String,
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication_factor: i16,
        /// Topic config as key=value; repeat for more.
        #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Succeed without change when the topic already exists.
        #[arg(long)]
        if_not_exists: bool,
        /// Ask the broker to check the request without creating the topic.
        #[arg(long)]
        validate_only: bool,
    },
    /// Show partitions, leaders, earliest and latest offsets, message counts, sizes and configs.
    ///
    /// Examples:
    ///   weir topics describe orders
    ///   weir topics describe orders --all-configs --output yaml
    Describe {
        name: String,
        /// Show every config, not only those set on the topic.
        #[arg(long)]
        all_configs: bool,
    },
    /// Delete topics and all their records.
    ///
    /// Example:
    ///   weir topics delete orders-old orders-test
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
        /// Succeed when a topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Set or remove topic configs.
    ///
    /// Examples:
    ///   weir topics alter-config orders --set retention.ms=86400000
    ///   weir topics alter-config orders --delete retention.ms
    AlterConfig {
        name: String,
        /// key=value to set; repeat for more.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Key to return to its default; repeat for more.
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raise a topic's partition count (Kafka cannot lower it).
    ///
    /// Example:
    ///   weir topics add-partitions orders --total 12
    AddPartitions {
        name: String,
        /// The new total number of partitions.
        #[arg(long)]
        total: i32,
    },
}

pub fn parse_kv(s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("'{s}' is not key=value; write it as e.g. retention.ms=86400000"))?;
    if k.is_empty() {
        bail!("'{s}' has an empty key; write it as e.g. retention.ms=86400000");
    }
    Ok((k.to_string(), v.to_string()))
}

pub async fn run(cluster: &mut Cluster, format: Format, cmd: TopicsCommand) -> anyhow::Result<()> {
    match cmd {
        TopicsCommand::List { internal } => list(cluster, format, internal).await,
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
            validate_only,
        } => {
            create(
                cluster,
                &name,
                partitions,
                replication_factor,
                &configs,
                if_not_exists,
                validate_only,
            )
            .await
        }
        TopicsCommand::Describe { name, all_configs } => {
            describe(cluster, format, &name, all_configs).await
        }
        TopicsCommand::Delete { names, if_exists } => delete(cluster, &names, if_exists).await,
        TopicsCommand::AlterConfig { name, set, delete } => {
            alter_config(cluster, &name, &set, &delete).await
        }
        TopicsCommand::AddPartitions { name, total } => add_partitions(cluster, &name, total).await,
    }
}

async fn list(cluster: &mut Cluster, format: Format, internal: bool) -> anyhow::Result<()> {
    let topics: Vec<_> = cluster
        .metadata(None)
        .await?
        .into_iter()
        .filter(|t| internal || !t.internal)
        .collect();
    let value = json!(topics.iter().map(|t| json!({"name": t.name, "partitions": t.partitions.len(), "internal": t.internal, "id": t.id})).collect::<Vec<_>>());
    emit(format, &value, || {
        let mut tab = output::table(&["TOPIC", "PARTITIONS", "ID"]);
        for t in &topics {
            tab.add_row(vec![
                t.name.clone(),
                t.partitions.len().to_string(),
                t.id.clone(),
            ]);
        }
        if topics.is_empty() {
            println!("no topics; create one with `weir topics create NAME --partitions 3`");
        } else {
            println!("{tab}");
        }
    })
}

async fn create(
    cluster: &mut Cluster,
    name: &str,
    partitions: i32,
    rf: i16,
    configs: &[String],
    if_not_exists: bool,
    validate_only: bool,
) -> anyhow::Result<()> {
    if partitions < 1 {
        bail!("--partitions must be at least 1");
    }
    let mut cfgs = Vec::new();
    for c in configs {
        let (k, v) = parse_kv(c)?;
        cfgs.push(
            create_topics_request::CreatableTopicConfig::default()
                .with_name(sb(&k))
                .with_value(Some(sb(&v))),
        );
    }
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(sb(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(rf)
            .with_configs(cfgs)]);
    let resp = cluster.call(&req).await?;
    let t = resp
        .topics
        .first()
        .ok_or_else(|| anyhow!("the broker did not answer for topic '{name}'"))?;
    match ResponseError::try_from_code(t.error_code) {
        None => {
            let verb = if validate_only {
                "would be created"
            } else {
                "created"
            };
            println!(
                "topic '{name}' {verb} with {partitions} partition{}",
                if partitions == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Some(ResponseError::TopicAlreadyExists) if if_not_exists => {
            println!("topic '{name}' already exists");
            Ok(())
        }
        Some(ResponseError::TopicAlreadyExists) => {
            bail!("topic '{name}' already exists; pass --if-not-exists to accept that")
        }
        Some(_) => {
            let msg = t
                .error_message
                .as_ref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            bail!(
                "cannot create topic '{name}': {}{msg}",
                error_name(t.error_code)
            )
        }
    }
}

/// Configs of one topic: name -> (value, is default, is sensitive).
async fn topic_configs(
    cluster: &mut Cluster,
    name: &str,
) -> anyhow::Result<BTreeMap<String, (Option<String>, bool)>> {
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(sb(name))
            .with_configuration_keys(None),
    ]);
    let resp = cluster.call(&req).await?;
    let r = resp
        .results
        .first()
        .ok_or_else(|| anyhow!("no configs returned for topic '{name}'"))?;
    if r.error_code != 0 {
        bail!(
            "cannot read the configs of topic '{name}': {}",
            error_name(r.error_code)
        );
    }
    Ok(r.configs
        .iter()
        .map(|c| {
            // Source 1 is a config set on the topic; the others (broker settings, defaults) are inherited.
            let is_default = c.config_source != 1;
            (
                c.name.to_string(),
                (c.value.as_ref().map(|v| v.to_string()), is_default),
            )
        })
        .collect())
}

/// Partition sizes in bytes from DescribeLogDirs, when the broker offers it.
async fn partition_sizes(
    cluster: &mut Cluster,
    name: &str,
    partitions: &[i32],
) -> Option<BTreeMap<i32, u64>> {
    let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(TopicName(sb(name)))
            .with_partitions(partitions.to_vec()),
    ]));
    let brokers: Vec<i32> = cluster.brokers.keys().copied().collect();
    let mut out = BTreeMap::new();
    for b in brokers {
        let resp = cluster.call_on(b, &req).await.ok()?;
        for dir in resp.results {
            for t in dir.topics {
                for p in t.partitions {
                    *out.entry(p.partition_index).or_insert(0) += p.partition_size.max(0) as u64;
                }
            }
        }
    }
    Some(out)
}

async fn describe(
    cluster: &mut Cluster,
    format: Format,
    name: &str,
    all_configs: bool,
) -> anyhow::Result<()> {
    let t = cluster.topic(name).await?;
    let ps: Vec<i32> = t.partitions.iter().map(|p| p.partition).collect();
    let earliest = cluster.list_offsets(&t, &ps, -2).await?;
    let latest = cluster.list_offsets(&t, &ps, -1).await?;
    let sizes = partition_sizes(cluster, name, &ps).await;
    let configs = topic_configs(cluster, name).await?;
    let shown: BTreeMap<&String, &Option<String>> = configs
        .iter()
        .filter(|(_, (_, d))| all_configs || !*d)
        .map(|(k, (v, _))| (k, v))
        .collect();
    let mut rows = Vec::new();
    for p in &t.partitions {
        let e = earliest.get(&p.partition).map(|x| x.0).unwrap_or(-1);
        let l = latest.get(&p.partition).map(|x| x.0).unwrap_or(-1);
        let size = sizes.as_ref().and_then(|s| s.get(&p.partition).copied());
        rows.push((p, e, l, (l - e).max(0), size));
    }
    let total_msgs: i64 = rows.iter().map(|r| r.3).sum();
    let total_size: Option<u64> = sizes.as_ref().map(|s| s.values().sum());
    let value = json!({
        "name": t.name, "id": t.id, "internal": t.internal, "partitions": rows.iter().map(|(p, e, l, n, s)| json!({
            "partition": p.partition, "leader": p.leader, "replicas": p.replicas, "isr": p.isr,
            "earliest_offset": e, "latest_offset": l, "messages": n, "size_bytes": s,
        })).collect::<Vec<_>>(),
        "messages": total_msgs, "size_bytes": total_size, "configs": shown,
    });
    emit(format, &value, || {
        println!(
            "topic {}  id {}  {} partitions  {} messages{}",
            t.name,
            t.id,
            t.partitions.len(),
            total_msgs,
            total_size
                .map(|s| format!("  {}", output::bytes(s)))
                .unwrap_or_default()
        );
        let mut tab = output::table(&[
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "EARLIEST",
            "LATEST",
            "MESSAGES",
            "SIZE",
        ]);
        let ids = |v: &[i32]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        for (p, e, l, n, s) in &rows {
            tab.add_row(vec![
                p.partition.to_string(),
                p.leader.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                e.to_string(),
                l.to_string(),
                n.to_string(),
                s.map(output::bytes).unwrap_or_else(|| "-".into()),
            ]);
        }
        println!("{tab}");
        if shown.is_empty() {
            println!("configs: all defaults (--all-configs shows them)");
        } else {
            let mut c = output::table(&["CONFIG", "VALUE"]);
            for (k, v) in &shown {
                c.add_row(vec![
                    k.to_string(),
                    v.as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "(sensitive)".into()),
                ]);
            }
            println!("{c}");
        }
    })
}

async fn delete(cluster: &mut Cluster, names: &[String], if_exists: bool) -> anyhow::Result<()> {
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topic_names(names.iter().map(|n| TopicName(sb(n))).collect())
        .with_topics(
            names
                .iter()
                .map(|n| {
                    delete_topics_request::DeleteTopicState::default()
                        .with_name(Some(TopicName(sb(n))))
                })
                .collect(),
        );
    let resp = cluster.call(&req).await?;
    let mut failed = None;
    for r in &resp.responses {
        let n = r.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
        match ResponseError::try_from_code(r.error_code) {
            None => println!("topic '{n}' deleted"),
            Some(ResponseError::UnknownTopicOrPartition) if if_exists => {
                println!("topic '{n}' does not exist")
            }
            Some(ResponseError::UnknownTopicOrPartition) => {
                failed = Some(format!(
                    "topic '{n}' does not exist; list topics with `weir topics list`"
                ))
            }
            Some(_) => {
                failed = Some(format!(
                    "cannot delete topic '{n}': {}",
                    error_name(r.error_code)
                ))
            }
        }
    }
    match failed {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}

async fn alter_config(
    cluster: &mut Cluster,
    name: &str,
    set: &[String],
    delete: &[String],
) -> anyhow::Result<()> {
    if set.is_empty() && delete.is_empty() {
        bail!("nothing to change; pass --set key=value or --delete key");
    }
    cluster.topic(name).await?;
    let mut cfgs = Vec::new();
    for s in set {
        let (k, v) = parse_kv(s)?;
        cfgs.push(
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(sb(&k))
                .with_config_operation(0)
                .with_value(Some(sb(&v))),
        );
    }
    for k in delete {
        cfgs.push(
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(1)
                .with_value(None),
        );
    }
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(sb(name))
            .with_configs(cfgs),
    ]);
    let resp = cluster.call(&req).await?;
    let r = resp
        .responses
        .first()
        .ok_or_else(|| anyhow!("the broker did not answer for topic '{name}'"))?;
    if r.error_code != 0 {
        let msg = r
            .error_message
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        bail!(
            "cannot change the configs of topic '{name}': {}{msg}",
            error_name(r.error_code)
        );
    }
    println!("topic '{name}' configs updated");
    Ok(())
}

async fn add_partitions(cluster: &mut Cluster, name: &str, total: i32) -> anyhow::Result<()> {
    let t = cluster.topic(name).await?;
    if total <= t.partitions.len() as i32 {
        bail!("topic '{name}' already has {} partitions; --total must be larger (Kafka cannot remove partitions)", t.partitions.len());
    }
    let req = CreatePartitionsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(TopicName(sb(name)))
                .with_count(total)
                .with_assignments(None),
        ]);
    let resp = cluster.call(&req).await?;
    let r = resp
        .results
        .first()
        .ok_or_else(|| anyhow!("the broker did not answer for topic '{name}'"))?;
    if r.error_code != 0 {
        let msg = r
            .error_message
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        bail!(
            "cannot add partitions to topic '{name}': {}{msg}",
            error_name(r.error_code)
        );
    }
    println!("topic '{name}' now has {total} partitions");
    Ok(())
}
