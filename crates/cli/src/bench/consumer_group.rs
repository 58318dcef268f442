//! Consumer-protocol (KIP-848) group members, simulated: many members over a few
//! connections, for `weir bench rebalance --protocol consumer` and `weir bench heartbeats`.
//!
//! A member speaks ConsumerGroupHeartbeat only, as the Java consumer does:
//!
//! - it joins with epoch 0, its topic subscription and no partitions, and, from version 1
//!   on, a member id of its own (KIP-1082);
//! - it heartbeats at the interval the broker returns, with its epoch;
//! - an answer with an assignment replaces the partitions it owns at once (a real consumer
//!   would first stop fetching the partitions it loses), and its next heartbeat leaves
//!   straight away carrying the partitions it now owns. That is the acknowledgement the
//!   coordinator waits for before it gives revoked partitions to other members;
//! - a FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID answer makes it drop its partitions and
//!   rejoin with epoch 0; a coordinator not ready yet makes it try again 100 ms later;
//! - it leaves with epoch -1.
//!
//! Each connection has one driver task for its members. While paced, a driver sends, in
//! one pipelined round, a heartbeat for each of its members that is due, then reads the
//! answers in order. While flooding (`weir bench heartbeats`), it keeps a window of
//! heartbeats in flight, round robin over its members, at most one per member.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::Args;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::*;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::rebalance::{MemberView, Watch, CRASH, LEAVE, MEMBERS_MAX};
use super::{ensure_topic, find_group_coordinator, report, wait_coordinator_ready};
use crate::client::{sb, Connection};

/// Connections one run may open.
const CONNECTIONS_MAX: usize = 256;
/// Heartbeats one driver pipelines in one paced round, or keeps in flight while flooding.
const IN_FLIGHT_PER_CONNECTION_MAX: usize = 1_024;
/// Longest a paced driver sleeps before it looks at its commands and mode again.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// Wait before a member tries again when the coordinator is not ready.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Tries in a row a member makes while the coordinator is not ready (60 s).
const RETRIES_MAX: u32 = 600;
/// The interval a member uses until the broker names one.
const HEARTBEAT_INTERVAL_DEFAULT: Duration = Duration::from_millis(500);
/// The member epoch that leaves the group.
const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Seconds `weir bench heartbeats` may flood for.
const FLOOD_SECONDS_MAX: u64 = 3_600;

/// How the drivers behave.
const MODE_PACED: u8 = 0;
const MODE_FLOOD: u8 = 1;
const MODE_STOP: u8 = 2;

#[derive(Args)]
pub struct HeartbeatsArgs {
    #[arg(long, default_value = "bench-heartbeats")]
    topic: String,
    /// Members of the group, all heartbeating.
    #[arg(long, default_value_t = 1_000)]
    members: usize,
    /// Partitions of the topic, when the bench creates it.
    #[arg(long, default_value_t = 2_000)]
    partitions: i32,
    /// Connections the members share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Heartbeats in flight per connection (at most one per member).
    #[arg(long, default_value_t = 64)]
    in_flight: usize,
    /// How long to flood, once the group is stable.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 30_000)]
    rebalance_timeout_ms: i32,
    /// The server-side assignor to ask for; the broker's default when not given.
    #[arg(long)]
    assignor: Option<String>,
    /// How long the group may take to reconcile before the flood.
    #[arg(long, default_value_t = 120_000)]
    converge_timeout_ms: u64,
}

/// What a run of simulated members is.
pub(super) struct SimConfig {
    pub group: String,
    pub topic: String,
    pub topic_id: Uuid,
    pub partitions: i32,
    pub members: usize,
    pub connections: usize,
    pub rebalance_timeout_ms: i32,
    pub assignor: Option<String>,
    /// Heartbeats each connection keeps in flight while flooding.
    pub flood_in_flight: usize,
}

/// The topic id the broker gave `topic` (Metadata v10 and later carry it).
pub(super) async fn topic_id(conn: &mut Connection, topic: &str) -> anyhow::Result<Uuid> {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(sb(topic)))),
    ]));
    let (meta, version) = conn.call(&req).await?;
    let id = meta
        .topics
        .first()
        .filter(|t| t.error_code == 0)
        .map(|t| t.topic_id)
        .ok_or_else(|| anyhow!("no metadata for topic '{topic}'"))?;
    if id.is_nil() {
        bail!("broker at {} gave topic '{topic}' no topic id (Metadata v{version}); the consumer protocol names topics by id", conn.address);
    }
    Ok(id)
}

/// Where a simulated member stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Status {
    Active,
    Left,
    Crashed,
}

/// One simulated member.
#[derive(Clone, Debug)]
struct SimMember {
    /// Its index in the run, and in the watch's views.
    index: usize,
    member_id: String,
    /// 0 while (re)joining.
    epoch: i32,
    /// Its partitions, sorted: the last assignment the coordinator sent.
    owned: Vec<i32>,
    /// The partitions its last heartbeat reported; None when the coordinator must be told
    /// again (nothing reported yet in this epoch, or an answer was lost to an error).
    reported: Option<Vec<i32>>,
    interval: Duration,
    next_at: Instant,
    retries: u32,
    status: Status,
}

impl SimMember {
    fn new(index: usize, member_id: String, now: Instant) -> SimMember {
        SimMember {
            index,
            member_id,
            epoch: 0,
            owned: Vec::new(),
            reported: None,
            interval: HEARTBEAT_INTERVAL_DEFAULT,
            next_at: now,
            retries: 0,
            status: Status::Active,
        }
    }

    /// Due for a heartbeat: its interval (or its wait for a coordinator not ready) passed,
    /// or it owes the coordinator its owned partitions after a new assignment.
    fn is_due(&self, now: Instant) -> bool {
        let owes_ack =
            self.epoch > 0 && self.retries == 0 && self.reported.as_ref() != Some(&self.owned);
        self.status == Status::Active && (self.next_at <= now || owes_ack)
    }

    fn view(&self) -> MemberView {
        MemberView {
            live: self.status == Status::Active,
            epoch: self.epoch,
            owned: self.owned.clone(),
        }
    }
}

/// The heartbeat `m` sends next: the full join at epoch 0; later its epoch and, when they
/// changed since it last said, the partitions it owns. Records what it reported.
fn heartbeat_request(m: &mut SimMember, cfg: &SimConfig) -> ConsumerGroupHeartbeatRequest {
    let req = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(&cfg.group)))
        .with_member_id(sb(&m.member_id))
        .with_member_epoch(m.epoch);
    if m.epoch == 0 {
        m.owned.clear();
        m.reported = Some(Vec::new());
        return req
            .with_rebalance_timeout_ms(cfg.rebalance_timeout_ms)
            .with_subscribed_topic_names(Some(vec![TopicName(sb(&cfg.topic))]))
            .with_server_assignor(cfg.assignor.as_deref().map(sb))
            .with_topic_partitions(Some(Vec::new()));
    }
    if m.reported.as_ref() == Some(&m.owned) {
        return req;
    }
    m.reported = Some(m.owned.clone());
    req.with_topic_partitions(Some(vec![TopicPartitions::default()
        .with_topic_id(cfg.topic_id)
        .with_partitions(m.owned.clone())]))
}

fn leave_request(m: &SimMember, cfg: &SimConfig) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(sb(&cfg.group)))
        .with_member_id(sb(&m.member_id))
        .with_member_epoch(LEAVE_GROUP_MEMBER_EPOCH)
}

/// What an answer did to a member.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Answered,
    /// The coordinator is not ready; the member tries again later.
    Retry,
    /// The member was fenced and rejoins.
    Fenced,
}

/// Applies one heartbeat answer to `m`. Errors a member cannot act on end the run.
fn apply(
    m: &mut SimMember,
    resp: &ConsumerGroupHeartbeatResponse,
    topic_id: Uuid,
    now: Instant,
) -> anyhow::Result<Outcome> {
    let code = resp.error_code;
    if code == 0 {
        if let Some(id) = resp.member_id.as_ref().filter(|id| !id.is_empty()) {
            if m.member_id != id.as_str() {
                m.member_id = id.to_string();
            }
        }
        m.epoch = resp.member_epoch;
        m.retries = 0;
        if resp.heartbeat_interval_ms > 0 {
            m.interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
        }
        m.next_at = now + m.interval;
        if let Some(a) = &resp.assignment {
            let mut owned = Vec::new();
            for tp in &a.topic_partitions {
                if tp.topic_id != topic_id {
                    bail!(
                        "member {} was assigned partitions of topic id {}, which it does not subscribe to",
                        m.member_id,
                        tp.topic_id
                    );
                }
                owned.extend(tp.partitions.iter().copied());
            }
            owned.sort_unstable();
            owned.dedup();
            m.owned = owned;
        }
        return Ok(Outcome::Answered);
    }
    let message = resp.error_message.as_deref().unwrap_or("");
    if [
        ResponseError::CoordinatorNotAvailable.code(),
        ResponseError::CoordinatorLoadInProgress.code(),
        ResponseError::NotCoordinator.code(),
    ]
    .contains(&code)
    {
        m.retries += 1;
        if m.retries > RETRIES_MAX {
            bail!("ConsumerGroupHeartbeat kept failing with error {code} ({message}) after {RETRIES_MAX} tries");
        }
        m.reported = None;
        m.next_at = now + RETRY_BACKOFF;
        return Ok(Outcome::Retry);
    }
    if code == ResponseError::FencedMemberEpoch.code()
        || code == ResponseError::UnknownMemberId.code()
    {
        m.epoch = 0;
        m.owned.clear();
        m.reported = None;
        m.next_at = now;
        return Ok(Outcome::Fenced);
    }
    if code == ResponseError::GroupMaxSizeReached.code() {
        bail!("the group is full ({message}); raise the broker's group.consumer.max.size (weir: --group-consumer-max-size)");
    }
    bail!("ConsumerGroupHeartbeat failed: error {code} ({message})")
}

/// What every driver of a run shares.
struct Shared {
    cfg: SimConfig,
    watch: Arc<Watch>,
    mode: AtomicU8,
    /// One per connection: a command or a mode change for its driver.
    wakes: Vec<Notify>,
    /// Heartbeats answered without error, joins and acknowledgements included.
    answered: AtomicU64,
    fenced: AtomicU64,
    /// Answers that said the coordinator was not ready.
    retried: AtomicU64,
    /// Answers other than success while flooding.
    flood_errors: AtomicU64,
}

/// A running group of simulated members.
pub(super) struct Sim {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    /// When the members started to join.
    pub started: Instant,
}

impl Sim {
    /// Connects `cfg.connections` connections to the group's coordinator, then starts
    /// every member at once.
    pub async fn start(
        admin: &mut Connection,
        cfg: SimConfig,
        watch: Arc<Watch>,
    ) -> anyhow::Result<Sim> {
        if cfg.members == 0 || cfg.members > MEMBERS_MAX {
            bail!("--members must be between 1 and {MEMBERS_MAX}");
        }
        if cfg.connections == 0 || cfg.connections > CONNECTIONS_MAX {
            bail!("--connections must be between 1 and {CONNECTIONS_MAX}");
        }
        if cfg.flood_in_flight == 0 || cfg.flood_in_flight > IN_FLIGHT_PER_CONNECTION_MAX {
            bail!("--in-flight must be between 1 and {IN_FLIGHT_PER_CONNECTION_MAX}");
        }
        let connections = cfg.connections.min(cfg.members);
        let address = find_group_coordinator(admin, &cfg.group).await?;
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections {
            conns.push(Connection::connect(&address).await?);
        }
        wait_coordinator_ready(&mut conns[0], &cfg.group).await?;
        let version = conns[0].version::<ConsumerGroupHeartbeatRequest>()?;
        let shared = Arc::new(Shared {
            cfg,
            watch,
            mode: AtomicU8::new(MODE_PACED),
            wakes: (0..connections).map(|_| Notify::new()).collect(),
            answered: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            flood_errors: AtomicU64::new(0),
        });
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(connections);
        for (slot, conn) in conns.into_iter().enumerate() {
            // Version 0 has the coordinator choose member ids; from 1 on the member does.
            let members: Vec<SimMember> = (slot..shared.cfg.members)
                .step_by(connections)
                .map(|i| {
                    let id = if version >= 1 {
                        Uuid::new_v4().to_string()
                    } else {
                        String::new()
                    };
                    SimMember::new(i, id, started)
                })
                .collect();
            let shared = Arc::clone(&shared);
            tasks.push(tokio::spawn(async move {
                let mut d = Driver {
                    conn,
                    version,
                    members,
                    slot,
                };
                if let Err(e) = d.run(&shared).await {
                    shared.watch.fail(&e);
                }
            }));
        }
        Ok(Sim {
            shared,
            tasks,
            started,
        })
    }

    pub fn connections(&self) -> usize {
        self.tasks.len()
    }

    /// Asks member `index` to LEAVE or CRASH.
    pub fn command(&self, index: usize, command: u8) {
        self.shared.watch.commands[index].store(command, Ordering::Relaxed);
        let slot = index % self.shared.wakes.len();
        self.shared.wakes[slot].notify_one();
    }

    fn set_mode(&self, mode: u8) {
        self.shared.mode.store(mode, Ordering::Relaxed);
        for w in &self.shared.wakes {
            w.notify_one();
        }
    }

    /// Heartbeats as fast as the drivers can for `seconds`; returns the answers per second
    /// without error and the answers with one.
    pub async fn flood(&self, seconds: u64) -> anyhow::Result<(f64, u64)> {
        let errors_before = self.shared.flood_errors.load(Ordering::Relaxed);
        self.set_mode(MODE_FLOOD);
        let (t0, n0) = (Instant::now(), self.shared.answered.load(Ordering::Relaxed));
        let end = t0 + Duration::from_secs(seconds);
        while Instant::now() < end {
            if let Some(e) = self.shared.watch.failure.lock().clone() {
                bail!("a member failed while flooding: {e}");
            }
            tokio::time::sleep(Duration::from_millis(10).min(end - Instant::now())).await;
        }
        let (t1, n1) = (Instant::now(), self.shared.answered.load(Ordering::Relaxed));
        self.set_mode(MODE_PACED);
        let rate = (n1 - n0) as f64 / (t1 - t0).as_secs_f64();
        let errors = self.shared.flood_errors.load(Ordering::Relaxed) - errors_before;
        Ok((rate, errors))
    }

    /// Every active member leaves; waits up to `wait` for the drivers to end. Returns how
    /// many answers fenced a member during the run, and how many said the coordinator was
    /// not ready.
    pub async fn stop(self, wait: Duration) -> anyhow::Result<(u64, u64)> {
        self.set_mode(MODE_STOP);
        let deadline = tokio::time::Instant::now() + wait;
        for t in self.tasks {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                eprintln!("some members had not left after {} s", wait.as_secs());
                break;
            }
        }
        if let Some(e) = self.shared.watch.failure.lock().clone() {
            bail!("a member failed: {e}");
        }
        Ok((
            self.shared.fenced.load(Ordering::Relaxed),
            self.shared.retried.load(Ordering::Relaxed),
        ))
    }
}

/// The task that speaks for the members on one connection.
struct Driver {
    conn: Connection,
    version: i16,
    members: Vec<SimMember>,
    slot: usize,
}

impl Driver {
    async fn run(&mut self, s: &Shared) -> anyhow::Result<()> {
        // Bounded by the bench: it ends every run with MODE_STOP, and each round is bounded
        // by the members of this connection.
        loop {
            match s.mode.load(Ordering::Relaxed) {
                MODE_STOP => return self.leave_all(s).await,
                MODE_FLOOD => {
                    self.flood(s).await?;
                    continue;
                }
                _ => {}
            }
            let now = Instant::now();
            let mut batch = Vec::new();
            let mut leaving = Vec::new();
            for (k, m) in self.members.iter_mut().enumerate() {
                if m.status != Status::Active {
                    continue;
                }
                match s.watch.commands[m.index].load(Ordering::Relaxed) {
                    LEAVE => {
                        m.status = Status::Left;
                        s.watch.views.lock()[m.index].live = false;
                        leaving.push(leave_request(m, &s.cfg));
                    }
                    CRASH => {
                        m.status = Status::Crashed;
                        s.watch.views.lock()[m.index].live = false;
                    }
                    _ => {
                        if m.is_due(now) && batch.len() < IN_FLIGHT_PER_CONNECTION_MAX {
                            batch.push((k, heartbeat_request(m, &s.cfg)));
                        }
                    }
                }
            }
            if batch.is_empty() && leaving.is_empty() {
                let next = self
                    .members
                    .iter()
                    .filter(|m| m.status == Status::Active)
                    .map(|m| m.next_at)
                    .min()
                    .unwrap_or(now + IDLE_TICK)
                    .min(now + IDLE_TICK);
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => {}
                    _ = s.wakes[self.slot].notified() => {}
                }
                continue;
            }
            for req in &leaving {
                self.conn.send_at(req, self.version).await?;
            }
            for (_, req) in &batch {
                self.conn.send_at(req, self.version).await?;
            }
            for _ in &leaving {
                let r: ConsumerGroupHeartbeatResponse = self.conn.recv().await?;
                check_leave(&r)?;
            }
            let mut answers = Vec::with_capacity(batch.len());
            for _ in &batch {
                answers.push(self.conn.recv::<ConsumerGroupHeartbeatResponse>().await?);
            }
            let now = Instant::now();
            let mut views = Vec::with_capacity(batch.len());
            for ((k, _), r) in batch.iter().zip(&answers) {
                let m = &mut self.members[*k];
                count(s, apply(m, r, s.cfg.topic_id, now)?, false);
                views.push((m.index, m.view()));
            }
            let mut all = s.watch.views.lock();
            for (i, v) in views {
                all[i] = v;
            }
        }
    }

    /// Keeps a window of heartbeats in flight, round robin over the active members, until
    /// the mode changes; at most one heartbeat per member is in flight.
    async fn flood(&mut self, s: &Shared) -> anyhow::Result<()> {
        let active: Vec<usize> = (0..self.members.len())
            .filter(|&k| self.members[k].status == Status::Active)
            .collect();
        if active.is_empty() {
            while s.mode.load(Ordering::Relaxed) == MODE_FLOOD {
                s.wakes[self.slot].notified().await;
            }
            return Ok(());
        }
        let window = s.cfg.flood_in_flight.min(active.len());
        let mut in_flight = VecDeque::with_capacity(window);
        let mut next = 0usize;
        loop {
            let flooding = s.mode.load(Ordering::Relaxed) == MODE_FLOOD;
            while flooding && in_flight.len() < window {
                let k = active[next % active.len()];
                next += 1;
                let req = heartbeat_request(&mut self.members[k], &s.cfg);
                self.conn.send_at(&req, self.version).await?;
                in_flight.push_back(k);
            }
            let Some(k) = in_flight.pop_front() else {
                break;
            };
            let r: ConsumerGroupHeartbeatResponse = self.conn.recv().await?;
            let m = &mut self.members[k];
            count(s, apply(m, &r, s.cfg.topic_id, Instant::now())?, true);
        }
        let mut all = s.watch.views.lock();
        for m in &self.members {
            all[m.index] = m.view();
        }
        Ok(())
    }

    /// Every active member leaves, in one pipelined round.
    async fn leave_all(&mut self, s: &Shared) -> anyhow::Result<()> {
        let mut n = 0;
        for m in self
            .members
            .iter_mut()
            .filter(|m| m.status == Status::Active)
        {
            m.status = Status::Left;
            self.conn
                .send_at(&leave_request(m, &s.cfg), self.version)
                .await?;
            n += 1;
        }
        for _ in 0..n {
            let r: ConsumerGroupHeartbeatResponse = self.conn.recv().await?;
            check_leave(&r)?;
        }
        Ok(())
    }
}

fn count(s: &Shared, outcome: Outcome, flooding: bool) {
    match outcome {
        Outcome::Answered => {
            s.answered.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Fenced => {
            s.fenced.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Retry => {
            s.retried.fetch_add(1, Ordering::Relaxed);
        }
    }
    if flooding && outcome != Outcome::Answered {
        s.flood_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// A leave is answered with epoch -1; a member the coordinator already forgot is gone too.
fn check_leave(r: &ConsumerGroupHeartbeatResponse) -> anyhow::Result<()> {
    if r.error_code != 0 && r.error_code != ResponseError::UnknownMemberId.code() {
        bail!(
            "a member's leave was refused: error {} ({})",
            r.error_code,
            r.error_message.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// `weir bench heartbeats`: a stable group of M members, then heartbeats as fast as the
/// coordinator answers them.
pub async fn heartbeats(bootstrap: &str, a: HeartbeatsArgs) -> anyhow::Result<()> {
    if a.seconds == 0 || a.seconds > FLOOD_SECONDS_MAX {
        bail!("--seconds must be between 1 and {FLOOD_SECONDS_MAX}");
    }
    let mut admin = Connection::connect(bootstrap).await?;
    let partitions = ensure_topic(&mut admin, &a.topic, a.partitions).await?;
    let group = format!("weir-bench-heartbeats-{}-{}", a.members, std::process::id());
    let cfg = SimConfig {
        group,
        topic: a.topic.clone(),
        topic_id: topic_id(&mut admin, &a.topic).await?,
        partitions,
        members: a.members,
        connections: a.connections,
        rebalance_timeout_ms: a.rebalance_timeout_ms,
        assignor: a.assignor.clone(),
        flood_in_flight: a.in_flight,
    };
    let watch = Arc::new(Watch::new(a.members));
    let sim = Sim::start(&mut admin, cfg, Arc::clone(&watch)).await?;
    let timeout = Duration::from_millis(a.converge_timeout_ms);
    let (join_ms, epoch) = watch
        .reconciled(partitions, 0, sim.started, timeout, "initial join")
        .await?;
    eprintln!("all members reconciled at epoch {epoch} after {join_ms:.0} ms; flooding");
    let (rate, errors) = sim.flood(a.seconds).await?;
    // The flood must not have moved the group.
    let after = super::rebalance::check(&watch.views.lock(), partitions, 0).reconciled_epoch;
    let connections = sim.connections();
    let (fenced, _) = sim.stop(Duration::from_secs(60)).await?;
    report(
        &[
            (
                "members / partitions / connections",
                format!("{} / {partitions} / {connections}", a.members),
            ),
            ("in flight per connection", a.in_flight.to_string()),
            ("heartbeats/s", format!("{rate:.0}")),
            ("answers with an error", errors.to_string()),
            ("members fenced (rejoined)", fenced.to_string()),
            (
                "epoch before / after the flood",
                format!("{epoch} / {}", after.map_or("-".into(), |e| e.to_string())),
            ),
        ],
        serde_json::json!({"workload":"heartbeats","members":a.members,"partitions":partitions,"connections":connections,"in_flight":a.in_flight,"seconds":a.seconds,"heartbeats_per_s":rate,"errors":errors,"fenced":fenced,"join_ms":join_ms,"epoch_before":epoch,"epoch_after":after}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_group_heartbeat_response::{
        Assignment, TopicPartitions as AssignedPartitions,
    };

    fn cfg() -> SimConfig {
        SimConfig {
            group: "g".into(),
            topic: "t".into(),
            topic_id: Uuid::from_u128(7),
            partitions: 4,
            members: 2,
            connections: 1,
            rebalance_timeout_ms: 30_000,
            assignor: Some("uniform".into()),
            flood_in_flight: 1,
        }
    }

    fn answer(epoch: i32, assigned: Option<&[i32]>) -> ConsumerGroupHeartbeatResponse {
        ConsumerGroupHeartbeatResponse::default()
            .with_member_epoch(epoch)
            .with_heartbeat_interval_ms(250)
            .with_assignment(assigned.map(|ps| {
                Assignment::default().with_topic_partitions(vec![AssignedPartitions::default()
                    .with_topic_id(Uuid::from_u128(7))
                    .with_partitions(ps.to_vec())])
            }))
    }

    // Goal: a member joins the way Kafka requires (epoch 0, rebalance timeout, topics,
    // an empty list of partitions), then heartbeats with its epoch and no partitions until
    // an assignment changes them, reports them once right after, and not again.
    #[test]
    fn a_member_joins_then_reports_what_it_owns_once_after_each_assignment() {
        let cfg = cfg();
        let t0 = Instant::now();
        let mut m = SimMember::new(0, "m0".into(), t0);
        assert!(m.is_due(t0));
        let join = heartbeat_request(&mut m, &cfg);
        assert_eq!(join.member_epoch, 0);
        assert_eq!(join.rebalance_timeout_ms, 30_000);
        assert_eq!(join.subscribed_topic_names, Some(vec![TopicName(sb("t"))]));
        assert_eq!(join.topic_partitions, Some(vec![]));
        assert_eq!(join.server_assignor.as_deref(), Some("uniform"));

        let t1 = t0 + Duration::from_millis(3);
        assert_eq!(
            apply(&mut m, &answer(5, Some(&[3, 1])), Uuid::from_u128(7), t1).unwrap(),
            Outcome::Answered
        );
        assert_eq!((m.epoch, m.owned.clone()), (5, vec![1, 3]));
        assert_eq!(m.interval, Duration::from_millis(250));
        // The acknowledgement is due at once, before the interval.
        assert!(m.is_due(t1));
        let ack = heartbeat_request(&mut m, &cfg);
        assert_eq!(ack.member_epoch, 5);
        assert_eq!(ack.rebalance_timeout_ms, -1);
        assert_eq!(ack.subscribed_topic_names, None);
        let tps = ack.topic_partitions.expect("owned partitions reported");
        assert_eq!(
            (tps[0].topic_id, tps[0].partitions.clone()),
            (Uuid::from_u128(7), vec![1, 3])
        );

        // An answer without an assignment keeps the partitions; nothing more is owed.
        apply(&mut m, &answer(6, None), Uuid::from_u128(7), t1).unwrap();
        assert_eq!((m.epoch, m.owned.clone()), (6, vec![1, 3]));
        assert!(!m.is_due(t1));
        assert!(m.is_due(t1 + Duration::from_millis(250)));
        assert_eq!(heartbeat_request(&mut m, &cfg).topic_partitions, None);

        // A revocation: the member keeps what it is told to keep and says so at once.
        apply(&mut m, &answer(6, Some(&[1])), Uuid::from_u128(7), t1).unwrap();
        assert!(m.is_due(t1));
        let tps = heartbeat_request(&mut m, &cfg).topic_partitions.unwrap();
        assert_eq!(tps[0].partitions, vec![1]);
    }

    // Goal: a fenced or unknown member drops its partitions and rejoins at once with a
    // full join; a coordinator not ready makes it try again later and report its
    // partitions again; an assignment of a topic it does not subscribe to, or an error it
    // cannot act on, ends the run.
    #[test]
    fn errors_fence_retry_or_end_the_run() {
        let cfg = cfg();
        let t0 = Instant::now();
        let mut m = SimMember::new(0, "m0".into(), t0);
        heartbeat_request(&mut m, &cfg);
        apply(&mut m, &answer(2, Some(&[0])), cfg.topic_id, t0).unwrap();
        heartbeat_request(&mut m, &cfg);

        let busy = ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::CoordinatorLoadInProgress.code());
        assert_eq!(
            apply(&mut m, &busy, cfg.topic_id, t0).unwrap(),
            Outcome::Retry
        );
        assert_eq!((m.epoch, m.owned.clone()), (2, vec![0]));
        assert!(!m.is_due(t0), "it waits before it tries again");
        assert!(m.is_due(t0 + RETRY_BACKOFF));
        assert!(
            heartbeat_request(&mut m, &cfg).topic_partitions.is_some(),
            "the partitions are owed again"
        );

        for code in [
            ResponseError::FencedMemberEpoch,
            ResponseError::UnknownMemberId,
        ] {
            let mut f = m.clone();
            let r = ConsumerGroupHeartbeatResponse::default().with_error_code(code.code());
            assert_eq!(
                apply(&mut f, &r, cfg.topic_id, t0).unwrap(),
                Outcome::Fenced
            );
            assert_eq!((f.epoch, f.owned.len()), (0, 0));
            assert!(f.is_due(t0));
            let rejoin = heartbeat_request(&mut f, &cfg);
            assert_eq!(
                (rejoin.member_epoch, rejoin.topic_partitions),
                (0, Some(vec![]))
            );
        }

        let stranger = ConsumerGroupHeartbeatResponse::default()
            .with_member_epoch(3)
            .with_assignment(Some(Assignment::default().with_topic_partitions(
                vec![AssignedPartitions::default()
                    .with_topic_id(Uuid::from_u128(8))
                    .with_partitions(vec![0])],
            )));
        assert!(apply(&mut m.clone(), &stranger, cfg.topic_id, t0).is_err());
        let full = ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::GroupMaxSizeReached.code());
        assert!(apply(&mut m.clone(), &full, cfg.topic_id, t0).is_err());
        let invalid = ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
        assert!(apply(&mut m, &invalid, cfg.topic_id, t0).is_err());
    }

    // Goal: with version 0 the coordinator names the member id in its first answer and
    // the member uses it from then on.
    #[test]
    fn a_member_takes_the_id_the_coordinator_gives() {
        let t0 = Instant::now();
        let mut m = SimMember::new(0, String::new(), t0);
        let r = answer(1, Some(&[])).with_member_id(Some(sb("given")));
        apply(&mut m, &r, Uuid::from_u128(7), t0).unwrap();
        assert_eq!(m.member_id, "given");
        assert_eq!(leave_request(&m, &cfg()).member_id.as_str(), "given");
        assert_eq!(leave_request(&m, &cfg()).member_epoch, -1);
    }
}
