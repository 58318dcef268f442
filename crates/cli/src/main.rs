//! `weir`: the single binary. `weir serve` runs the broker; `weir topics`, `weir groups`,
//! `weir produce` and `weir consume` manage and use any Kafka-protocol broker; `weir bench`
//! measures one.
//!
//! `weir serve` runs a single node by default, its records in `--data-dir`; with
//! `--cluster` and `--object-store` it is one broker of a cluster over PostgreSQL and a
//! bucket (`serve_cluster.rs` assembles it).

mod bench;
mod client;
mod client_sasl;
mod client_security;
mod cluster;
mod data;
mod groups;
mod output;
mod profile;
mod serve_cluster;
mod serve_security;
mod topics;
mod transactions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use weir_broker::{Broker, BrokerConfig, MigrationPolicy};
use weir_log::FsyncPolicy;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A Kafka-compatible streaming platform in one binary"
)]
struct Cli {
    /// Broker to talk to, host:port [env: WEIR_BOOTSTRAP; else the config file's profile; else localhost:9092].
    #[arg(long, short = 'b', global = true)]
    bootstrap: Option<String>,
    /// Profile of the config file to take the bootstrap address from [env: WEIR_PROFILE].
    #[arg(long, env = "WEIR_PROFILE", global = true)]
    profile: Option<String>,
    /// Config file with named profiles [env: WEIR_CONFIG; default ~/.config/weir/config.toml].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A client property, librdkafka's name: -X security.protocol=SASL_SSL
    /// -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=alice -X ssl.ca.location=ca.pem
    /// (password from WEIR_SASL_PASSWORD). Repeatable; overrides the profile's.
    #[arg(short = 'X', long = "client-property", global = true, value_name = "KEY=VALUE", value_parser = client_security::parse_property)]
    client_properties: Vec<(String, String)>,
    /// Output of read commands.
    #[arg(long, short = 'o', value_enum, default_value = "table", global = true)]
    output: output::Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    ///
    /// Examples:
    ///   weir serve
    ///   weir serve --listen 0.0.0.0:9092 --advertised-address broker1.example.com:9092
    ///   weir serve --data-dir /var/lib/weir --fsync interval --fsync-interval-ms 200
    ///   weir serve --http-listen 0.0.0.0:9644      # /metrics, and the admin API under /api/v1
    ///   weir serve --listeners SASL_SSL://0.0.0.0:9094 \
    ///       --ssl-certificate-location broker.pem --ssl-key-location broker-key.pem \
    ///       --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'
    ///
    /// A broker of a cluster (records in the bucket, order and metadata in PostgreSQL;
    /// start as many as you like, each with its own address):
    ///   weir serve --listen 0.0.0.0:9092 --advertised-address broker1.example.com:9092 \
    ///       --cluster postgresql://weir@db.example.com:5432/weir \
    ///       --object-store 's3://weir-data/prod?endpoint=https://s3.example.com&region=eu-1'
    Serve(ServeArgs),
    /// Create, list, describe, delete and configure topics.
    #[command(subcommand)]
    Topics(topics::TopicsCommand),
    /// List and describe consumer groups, see their lag, reset and delete their offsets.
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// List and describe transactions and the producers holding them open; abort a hanging one.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// Produce lines from stdin or a file as records.
    ///
    /// Examples:
    ///   echo hello | weir produce orders
    ///   weir produce orders --key-separator : < keyed-lines.txt
    ///   weir produce orders --file big.txt --compression zstd --acks all
    ///   weir produce orders --header source=cli --partition 2
    Produce(data::ProduceArgs),
    /// Print records of a topic.
    ///
    /// Examples:
    ///   weir consume orders --from-beginning --max-messages 10
    ///   weir consume orders --group audit
    ///   weir consume orders --partition 0 --offset 1200 --format '%p:%o %k=%v'
    ///   weir consume orders --timestamp 2026-11-24T09:00:00Z --json
    Consume(data::ConsumeArgs),
    /// Benchmarks against any Kafka-protocol broker (weir or Apache Kafka).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print a shell completion script.
    ///
    /// Example:
    ///   weir completions bash > /etc/bash_completion.d/weir
    Completions { shell: clap_complete::Shell },
}

#[derive(Clone, Copy, ValueEnum)]
enum Fsync {
    /// acks=all is acknowledged only after fsync (default).
    Always,
    /// fsync every --fsync-interval-ms; a crash may lose that much.
    Interval,
    /// Leave flushing to the operating system; clean shutdown still flushes.
    Never,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to accept plaintext Kafka clients on (see --listeners for more, and for TLS
    /// and SASL).
    #[arg(long, env = "WEIR_LISTEN", default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    #[command(flatten)]
    security: serve_security::SecurityArgs,
    /// Address to serve HTTP on (Prometheus /metrics, the admin API under /api/v1), or `off`.
    #[arg(long, env = "WEIR_HTTP_LISTEN", default_value = weir_console::server::HTTP_LISTEN_DEFAULT)]
    http_listen: String,
    /// Serve HTTPS instead of HTTP, with the broker's certificate and key
    /// (--ssl-certificate-location, --ssl-key-location).
    #[arg(long, env = "WEIR_HTTP_TLS")]
    http_tls: bool,
    /// host:port clients are told to connect to; defaults to the listen address.
    #[arg(long, env = "WEIR_ADVERTISED_ADDRESS")]
    advertised_address: Option<String>,
    /// Directory holding topics, segments and metadata. In cluster mode (records and
    /// metadata live in --object-store and --cluster) it holds only the disk cache.
    #[arg(long, env = "WEIR_DATA_DIR", default_value = "./weir-data")]
    data_dir: PathBuf,
    /// This broker's node id (Kafka's node.id). A single node is 0 unless given; a broker
    /// of a cluster without one takes the lowest id no live broker holds.
    #[arg(long, env = "WEIR_NODE_ID")]
    node_id: Option<i32>,
    #[command(flatten)]
    cluster: serve_cluster::ClusterArgs,
    /// When appended records are forced to disk.
    #[arg(long, env = "WEIR_FSYNC", value_enum, default_value = "always")]
    fsync: Fsync,
    /// Flush period for --fsync interval (and for acks=0/1 data under --fsync always).
    #[arg(long, env = "WEIR_FSYNC_INTERVAL_MS", default_value_t = 1000)]
    fsync_interval_ms: u64,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, env = "WEIR_LOG", default_value = "info")]
    log_level: String,
    /// Largest request accepted, in bytes (Kafka's socket.request.max.bytes).
    #[arg(long, env = "WEIR_REQUEST_MAX_BYTES", default_value_t = 104_857_600)]
    request_max_bytes: usize,
    /// Create a topic when a client asks for its metadata (Kafka's auto.create.topics.enable).
    #[arg(long, env = "WEIR_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    auto_create_topics: bool,
    /// Partitions of a topic created without a count (Kafka's num.partitions).
    #[arg(long, env = "WEIR_DEFAULT_PARTITIONS", default_value_t = 1)]
    default_partitions: i32,
    /// How often retention deletes old segments, in ms.
    #[arg(
        long,
        env = "WEIR_RETENTION_CHECK_INTERVAL_MS",
        default_value_t = 300_000
    )]
    retention_check_interval_ms: u64,
    /// How often compacted topics are checked for cleaning, in ms (Kafka's log.cleaner.backoff.ms).
    #[arg(long, env = "WEIR_LOG_CLEANER_INTERVAL_MS", default_value_t = 15_000)]
    log_cleaner_interval_ms: u64,
    /// Partitions of __consumer_offsets (Kafka's offsets.topic.num.partitions).
    #[arg(long, env = "WEIR_OFFSETS_TOPIC_PARTITIONS", default_value_t = 50)]
    offsets_topic_partitions: i32,
    /// Segment size of __consumer_offsets, in bytes (Kafka's offsets.topic.segment.bytes).
    #[arg(
        long,
        env = "WEIR_OFFSETS_TOPIC_SEGMENT_BYTES",
        default_value_t = 104_857_600
    )]
    offsets_topic_segment_bytes: u64,
    /// Delay before the first rebalance of an empty group (Kafka's group.initial.rebalance.delay.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_INITIAL_REBALANCE_DELAY_MS",
        default_value_t = 3000
    )]
    group_initial_rebalance_delay_ms: i64,
    /// Smallest session timeout a member may ask for (Kafka's group.min.session.timeout.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 6_000
    )]
    group_min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for (Kafka's group.max.session.timeout.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 1_800_000
    )]
    group_max_session_timeout_ms: i32,
    /// Members allowed in one group (Kafka's group.max.size; at most 10000).
    #[arg(long, env = "WEIR_GROUP_MAX_SIZE", default_value_t = 10_000)]
    group_max_size: usize,
    /// How often consumer-protocol members heartbeat (Kafka's group.consumer.heartbeat.interval.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000
    )]
    group_consumer_heartbeat_interval_ms: i32,
    /// Bounds of a group's consumer.heartbeat.interval.ms (Kafka's group.consumer.min.heartbeat.interval.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_MIN_HEARTBEAT_INTERVAL_MS",
        default_value_t = 5_000
    )]
    group_consumer_min_heartbeat_interval_ms: i32,
    /// Kafka's group.consumer.max.heartbeat.interval.ms.
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_MAX_HEARTBEAT_INTERVAL_MS",
        default_value_t = 15_000
    )]
    group_consumer_max_heartbeat_interval_ms: i32,
    /// When a silent consumer-protocol member is removed (Kafka's group.consumer.session.timeout.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    group_consumer_session_timeout_ms: i32,
    /// Bounds of a group's consumer.session.timeout.ms (Kafka's group.consumer.min.session.timeout.ms).
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_MIN_SESSION_TIMEOUT_MS",
        default_value_t = 45_000
    )]
    group_consumer_min_session_timeout_ms: i32,
    /// Kafka's group.consumer.max.session.timeout.ms.
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_MAX_SESSION_TIMEOUT_MS",
        default_value_t = 60_000
    )]
    group_consumer_max_session_timeout_ms: i32,
    /// Members allowed in one consumer-protocol group (Kafka's group.consumer.max.size).
    #[arg(long, env = "WEIR_GROUP_CONSUMER_MAX_SIZE", default_value_t = 10_000)]
    group_consumer_max_size: usize,
    /// Which way groups may switch protocol as members roll over: bidirectional, upgrade,
    /// downgrade or disabled (Kafka's group.consumer.migration.policy).
    #[arg(
        long,
        env = "WEIR_GROUP_CONSUMER_MIGRATION_POLICY",
        default_value = "bidirectional"
    )]
    group_consumer_migration_policy: String,
    /// How long an empty group's committed offsets are kept (Kafka's offsets.retention.minutes).
    #[arg(long, env = "WEIR_OFFSETS_RETENTION_MINUTES", default_value_t = 10_080)]
    offsets_retention_minutes: i64,
    /// Longest transaction timeout a producer may ask for (Kafka's transaction.max.timeout.ms).
    #[arg(
        long,
        env = "WEIR_TRANSACTION_MAX_TIMEOUT_MS",
        default_value_t = 900_000
    )]
    transaction_max_timeout_ms: i32,
    /// Partitions of __transaction_state (Kafka's transaction.state.log.num.partitions).
    #[arg(long, env = "WEIR_TRANSACTION_STATE_PARTITIONS", default_value_t = 50)]
    transaction_state_partitions: i32,
}

fn parse_advertised(s: &str) -> Result<(String, i32), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("advertised address '{s}' must be host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("advertised address '{s}' has a bad port"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
}

/// `--http-listen`: an address, or `off` for no HTTP listener.
fn parse_http_listen(s: &str) -> anyhow::Result<Option<SocketAddr>> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.trim().parse().map(Some).map_err(|_| {
        anyhow::anyhow!(
            "--http-listen '{s}' is not an address: give ip:port, such as {}, or off",
            weir_console::server::HTTP_LISTEN_DEFAULT
        )
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let http_listen = parse_http_listen(&args.http_listen)?;
    if args.http_tls && http_listen.is_none() {
        anyhow::bail!("--http-tls needs the HTTP listener: give --http-listen an address, or leave out --http-tls");
    }
    let cluster = args
        .cluster
        .settings(args.node_id, &args.data_dir)?
        .map(|settings| settings.with_http(http_listen, args.http_tls));
    let mut config = BrokerConfig::new(args.listen, args.data_dir.clone());
    if let Some(node_id) = args.node_id {
        if node_id < 0 {
            anyhow::bail!("--node-id is {node_id} but must be 0 or more");
        }
        config.node_id = node_id;
    }
    let advertised = match &args.advertised_address {
        Some(adv) => Some(parse_advertised(adv).map_err(anyhow::Error::msg)?),
        None => None,
    };
    args.security.apply(advertised, &mut config)?;
    config.fsync = match args.fsync {
        Fsync::Always => FsyncPolicy::Always,
        Fsync::Interval => FsyncPolicy::Interval,
        Fsync::Never => FsyncPolicy::Never,
    };
    config.fsync_interval_ms = args.fsync_interval_ms;
    config.request_bytes_max = args.request_max_bytes;
    config.auto_create_topics = args.auto_create_topics;
    if args.default_partitions < 1 {
        anyhow::bail!("--default-partitions must be at least 1");
    }
    config.default_partitions = args.default_partitions;
    config.retention_check_interval_ms = args.retention_check_interval_ms;
    config.log_cleaner_interval_ms = args.log_cleaner_interval_ms;
    config.offsets_topic_partitions = args.offsets_topic_partitions;
    if args.offsets_topic_segment_bytes < 1024 {
        anyhow::bail!("--offsets-topic-segment-bytes must be at least 1024");
    }
    config.offsets_topic_segment_bytes = args.offsets_topic_segment_bytes;
    config.group_initial_rebalance_delay_ms = args.group_initial_rebalance_delay_ms;
    if args.group_min_session_timeout_ms > args.group_max_session_timeout_ms {
        anyhow::bail!(
            "--group-min-session-timeout-ms must not exceed --group-max-session-timeout-ms"
        );
    }
    config.group_min_session_timeout_ms = args.group_min_session_timeout_ms;
    config.group_max_session_timeout_ms = args.group_max_session_timeout_ms;
    if args.group_max_size == 0 || args.group_max_size > 10_000 {
        anyhow::bail!("--group-max-size must be between 1 and 10000");
    }
    config.group_max_size = args.group_max_size;
    consumer_group_config(&args, &mut config)?;
    if args.offsets_retention_minutes < 1 {
        anyhow::bail!("--offsets-retention-minutes must be at least 1");
    }
    config.offsets_retention_ms = args.offsets_retention_minutes.saturating_mul(60_000);
    if args.transaction_max_timeout_ms < 1 {
        anyhow::bail!("--transaction-max-timeout-ms must be at least 1");
    }
    config.transaction_max_timeout_ms = args.transaction_max_timeout_ms;
    if !(1..=1000).contains(&args.transaction_state_partitions) {
        anyhow::bail!("--transaction-state-partitions must be between 1 and 1000");
    }
    config.transaction_state_partitions = args.transaction_state_partitions;

    let (broker, cluster) = match cluster {
        None => (Broker::bind(config).await?, None),
        Some(settings) => {
            let (broker, node) =
                serve_cluster::start(Broker::listen(config).await?, settings).await?;
            (broker, Some(node))
        }
    };
    let listening: Vec<String> = broker
        .state()
        .config
        .listeners
        .iter()
        .map(|l| {
            format!(
                "{}://{} (advertised {}:{})",
                l.name, l.bind, l.advertised_host, l.advertised_port
            )
        })
        .collect();
    if cluster.is_some() {
        tracing::info!(
            "weir listening on {} (node {} of a cluster)",
            listening.join(", "),
            broker.state().config.node_id
        );
    } else {
        tracing::info!(
            "weir listening on {} (data in {}, fsync {})",
            listening.join(", "),
            args.data_dir.display(),
            match args.fsync {
                Fsync::Always => "always",
                Fsync::Interval => "interval",
                Fsync::Never => "never",
            }
        );
    }
    let console = match http_listen {
        Some(addr) => {
            let console =
                weir_console::Console::bind_with(addr, &broker.state(), args.http_tls).await?;
            tracing::info!(
                "weir serving HTTP on {}://{} (metrics at /metrics)",
                if args.http_tls { "https" } else { "http" },
                console.local_addr()
            );
            // The broker's run ends the process; the console needs no shutdown of its own.
            Some(tokio::spawn(console.run(std::future::pending())))
        }
        None => {
            tracing::info!("weir HTTP listener off");
            None
        }
    };
    let Some(node) = cluster else {
        let result = broker.run(shutdown_signal()).await;
        if let Some(console) = console {
            console.abort();
        }
        return result;
    };
    // A broker of a cluster also stops when it loses its registration.
    let lost = std::sync::OnceLock::new();
    let stopping = async {
        tokio::select! {
            _ = shutdown_signal() => {}
            loss = node.lease_lost() => { let _ = lost.set(loss); }
        }
    };
    let result = broker.run(stopping).await;
    if let Some(console) = console {
        console.abort();
    }
    if let Some(loss) = lost.get() {
        anyhow::bail!(
            "stopped serving: this broker lost its registration in the cluster ({loss}), and another broker may now hold its node id; start it again to rejoin"
        );
    }
    node.stop().await;
    result
}

/// The consumer-protocol settings, checked as Kafka checks them at start-up: each default
/// within its bounds, and the heartbeat shorter than the session.
fn consumer_group_config(args: &ServeArgs, config: &mut BrokerConfig) -> anyhow::Result<()> {
    let hb = (
        args.group_consumer_min_heartbeat_interval_ms,
        args.group_consumer_max_heartbeat_interval_ms,
    );
    let session = (
        args.group_consumer_min_session_timeout_ms,
        args.group_consumer_max_session_timeout_ms,
    );
    let interval = args.group_consumer_heartbeat_interval_ms;
    let timeout = args.group_consumer_session_timeout_ms;
    if hb.0 < 1 || hb.0 > hb.1 || !(hb.0..=hb.1).contains(&interval) {
        anyhow::bail!(
            "--group-consumer-heartbeat-interval-ms ({interval}) must lie between \
             --group-consumer-min-heartbeat-interval-ms ({}) and \
             --group-consumer-max-heartbeat-interval-ms ({})",
            hb.0,
            hb.1
        );
    }
    if session.0 < 1 || session.0 > session.1 || !(session.0..=session.1).contains(&timeout) {
        anyhow::bail!(
            "--group-consumer-session-timeout-ms ({timeout}) must lie between \
             --group-consumer-min-session-timeout-ms ({}) and \
             --group-consumer-max-session-timeout-ms ({})",
            session.0,
            session.1
        );
    }
    if interval >= timeout {
        anyhow::bail!(
            "--group-consumer-heartbeat-interval-ms ({interval}) must be shorter than \
             --group-consumer-session-timeout-ms ({timeout})"
        );
    }
    if args.group_consumer_max_size == 0 || args.group_consumer_max_size > 10_000 {
        anyhow::bail!("--group-consumer-max-size must be between 1 and 10000");
    }
    config.group_consumer_heartbeat_interval_ms = interval;
    config.group_consumer_session_timeout_ms = timeout;
    config.group_consumer_heartbeat_interval_bounds_ms = hb;
    config.group_consumer_session_timeout_bounds_ms = session;
    config.group_consumer_max_size = args.group_consumer_max_size;
    config.group_consumer_migration_policy =
        MigrationPolicy::parse(&args.group_consumer_migration_policy).ok_or_else(
            || {
                anyhow::anyhow!(
                    "--group-consumer-migration-policy '{}' is not one of bidirectional, upgrade, downgrade, disabled",
                    args.group_consumer_migration_policy
                )
            },
        )?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs a client command: resolves the broker, connects, and turns any error into one line.
fn client_command(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli.output;
    let result = runtime.block_on(async move {
        let (bootstrap, mut properties) = profile::resolve(cli.bootstrap, cli.profile, cli.config)?;
        properties.extend(cli.client_properties);
        client_security::configure(&properties)?;
        match cli.command {
            Command::Bench(command) => bench::run(&bootstrap, command).await,
            Command::Topics(c) => {
                topics::run(&mut cluster::Cluster::connect(&bootstrap).await?, format, c).await
            }
            Command::Groups(c) => {
                groups::run(&mut cluster::Cluster::connect(&bootstrap).await?, format, c).await
            }
            Command::Transactions(c) => {
                transactions::run(&mut cluster::Cluster::connect(&bootstrap).await?, format, c)
                    .await
            }
            Command::Produce(a) => {
                data::produce(&mut cluster::Cluster::connect(&bootstrap).await?, a).await
            }
            Command::Consume(a) => {
                data::consume(&mut cluster::Cluster::connect(&bootstrap).await?, a).await
            }
            Command::Serve(_) | Command::Completions { .. } => Ok(()),
        }
    });
    // Pending connections must not hold the process open.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "weir", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Bench(_)
        | Command::Topics(_)
        | Command::Groups(_)
        | Command::Transactions(_)
        | Command::Produce(_)
        | Command::Consume(_) => client_command(cli),
        Command::Serve(args) => {
            let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .init();
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_http_listen;

    /// `--http-listen` takes an address or `off`, and anything else is one sentence naming
    /// the flag.
    #[test]
    fn http_listen_is_an_address_or_off() {
        assert_eq!(
            parse_http_listen("127.0.0.1:9644").unwrap(),
            Some("127.0.0.1:9644".parse().unwrap())
        );
        assert_eq!(parse_http_listen("off").unwrap(), None);
        assert_eq!(parse_http_listen("OFF").unwrap(), None);
        let e = parse_http_listen("localhost").unwrap_err().to_string();
        assert!(
            e.starts_with("--http-listen 'localhost' is not an address"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}
