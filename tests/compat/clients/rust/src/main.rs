//! The rdkafka crate in the compatibility harness. Two roles, whose output run.py checks:
//!
//!   basic BOOTSTRAP TOPIC COUNT   create TOPIC (3 partitions), produce COUNT keyed records,
//!                                 read them back, delete TOPIC ("T", "P", "C", "D")
//!   member BOOTSTRAP TOPIC GROUP  a consumer group member: "R partition offset value" per
//!                                 record, "A p1,p2,..." for its assignment, commits what it
//!                                 read, leaves the group cleanly when stdin closes.

use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: rdkafka-driver basic BOOTSTRAP TOPIC COUNT | member BOOTSTRAP TOPIC GROUP");
        std::process::exit(2);
    }
    let result = match args[1].as_str() {
        "basic" => basic(&args[2], &args[3], args[4].parse().unwrap_or(0)).await,
        _ => member(&args[2], &args[3], &args[4]).await,
    };
    if let Err(e) = result {
        println!("E {e}");
        std::process::exit(1);
    }
}

async fn basic(bootstrap: &str, topic: &str, count: usize) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in admin.create_topics(&[NewTopic::new(topic, 3, TopicReplication::Fixed(1))], &opts).await? {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut partitions = 0;
    while Instant::now() < deadline {
        let md = producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
        partitions = md.topics().first().map(|t| t.partitions().len()).unwrap_or(0);
        if partitions == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("T {partitions}");
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let (k, v) = (format!("k{}", i % 30), format!("v{i}"));
        let fut = producer.send_result(FutureRecord::to(topic).key(&k).payload(&v)).map_err(|(e, _)| e)?;
        pending.push((k, v, fut));
    }
    let mut out = String::new();
    for (k, v, fut) in pending {
        match fut.await {
            Ok(Ok(d)) => out.push_str(&format!("P {} {} {k} {v}\n", d.partition, d.offset)),
            Ok(Err((e, _))) => out.push_str(&format!("E produce: {e}\n")),
            Err(_) => out.push_str("E produce: cancelled\n"),
        }
    }
    print!("{out}");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let (mut n, deadline) = (0, Instant::now() + Duration::from_secs(60));
    let mut out = std::io::BufWriter::new(std::io::stdout());
    while n < count && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m?;
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            writeln!(out, "C {} {} {key} {value}", m.partition(), m.offset())?;
            n += 1;
        }
    }
    out.flush()?;
    drop(consumer);
    for r in admin.delete_topics(&[topic], &opts).await? {
        r.map_err(|(t, e)| format!("delete topic {t}: {e}"))?;
    }
    println!("D");
    Ok(())
}

async fn member(bootstrap: &str, topic: &str, group: &str) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", "range")
        .create()?;
    consumer.subscribe(&[topic])?;
    let (tx, closed) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let mut out = std::io::BufWriter::new(std::io::stdout());
    while closed.try_recv().is_err() {
        let mut read = 0;
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                    writeln!(out, "R {} {} {value}", m.partition(), m.offset())?;
                    read += 1;
                }
                Some(Err(_)) | None => {}
            }
        }
        if read > 0 {
            // A rebalance can interrupt a commit; the records then come again.
            let _ = consumer.commit_consumer_state(CommitMode::Sync);
        }
        let mut parts: Vec<i32> = consumer.assignment()?.elements().iter().map(|e| e.partition()).collect();
        parts.sort_unstable();
        let parts: Vec<String> = parts.iter().map(i32::to_string).collect();
        writeln!(out, "A {}", parts.join(","))?;
        out.flush()?;
    }
    consumer.unsubscribe();
    drop(consumer); // closes the consumer: leaves the group
    Ok(())
}
