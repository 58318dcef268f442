//! `weir bench rebalance`: how long a group of M members takes to own every partition, and
//! to get back there after one member leaves and after one crashes, over either group
//! protocol.
//!
//! - classic: each member joins, syncs and heartbeats on its own connection, because
//!   JoinGroup and SyncGroup wait at the coordinator until the group forms, and Kafka reads
//!   a connection's next request only once it answered the previous one. The member the
//!   coordinator names leader assigns the partitions in contiguous ranges.
//! - consumer (KIP-848): M members share `--connections` connections
//!   ([`super::consumer_group`]); the broker assigns.
//!
//! Both record, per member, the epoch (classic: generation) of its assignment and the
//! partitions it owns, in a [`MemberView`]. The group counts as reconciled when every live
//! member is at one epoch, newer than before the event measured, and they own every
//! partition exactly once ([`check`]). A crashed member goes silent but keeps its
//! connection open, so only the session timeout removes it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args, ValueEnum};
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};

use super::consumer_group::{self, SimConfig};
use super::{ensure_topic, find_group_coordinator, report, wait_coordinator_ready, Member};
use crate::client::Connection;

/// Members one run may simulate.
pub(super) const MEMBERS_MAX: usize = 10_000;
/// Connections opened at once while classic members connect: Kafka's listen backlog
/// (socket.listen.backlog.size) is 50, and a full backlog costs a SYN retry of a second.
const CONNECTS_AT_ONCE_MAX: usize = 32;
/// How often the bench looks at the group while it waits for it to reconcile.
const CHECK_INTERVAL: Duration = Duration::from_millis(1);
/// How long the members may take to leave at the end, after the measurements.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// What the bench asks of one member.
pub(super) const RUN: u8 = 0;
/// Leave the group (classic: LeaveGroup; consumer: a heartbeat with epoch -1).
pub(super) const LEAVE: u8 = 1;
/// Go silent without a word, connection open.
pub(super) const CRASH: u8 = 2;
/// A crashed classic member may close its connection: the bench is over.
const RELEASE: u8 = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum Protocol {
    /// JoinGroup, SyncGroup, Heartbeat, LeaveGroup; the leader member assigns.
    Classic,
    /// ConsumerGroupHeartbeat (KIP-848); the broker assigns.
    Consumer,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Classic => "classic",
            Protocol::Consumer => "consumer",
        }
    }
}

#[derive(Args)]
pub struct RebalanceArgs {
    #[arg(long, default_value = "bench-rebalance")]
    topic: String,
    #[arg(long, value_enum, default_value_t = Protocol::Classic)]
    protocol: Protocol,
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Partitions of the topic, when the bench creates it.
    #[arg(long, default_value_t = 20)]
    partitions: i32,
    /// Classic only: the session timeout each member asks for. Consumer-protocol members
    /// get theirs from the broker (group.consumer.session.timeout.ms).
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: i32,
    #[arg(long, default_value_t = 30_000)]
    rebalance_timeout_ms: i32,
    /// Classic only: how often a member heartbeats. Consumer-protocol members heartbeat at
    /// the interval the broker returns (group.consumer.heartbeat.interval.ms).
    #[arg(long, default_value_t = 500)]
    heartbeat_interval_ms: u64,
    /// Consumer only: connections the members share.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Consumer only: the server-side assignor to ask for (uniform or range); the broker's
    /// default when not given.
    #[arg(long)]
    assignor: Option<String>,
    /// How long each phase (join, after the leave, after the crash) may take to reconcile.
    #[arg(long, default_value_t = 120_000)]
    converge_timeout_ms: u64,
}

/// One member as the bench sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberView {
    /// False once it left or crashed.
    pub live: bool,
    /// The epoch (classic: generation) of its assignment; 0 or less while it (re)joins.
    pub epoch: i32,
    /// Its partitions of the one topic.
    pub owned: Vec<i32>,
}

impl MemberView {
    pub fn joining() -> MemberView {
        MemberView {
            live: true,
            epoch: 0,
            owned: Vec::new(),
        }
    }
}

/// What one look at the group shows.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupCheck {
    /// The epoch of the group when it is reconciled: every live member at this one epoch,
    /// above the epoch asked for, and every partition owned by exactly one of them.
    pub reconciled_epoch: Option<i32>,
    /// Partitions two live members own at once. A correct coordinator never lets that
    /// happen: a member gets a partition only once its previous owner gave it up.
    pub owned_twice: Vec<i32>,
}

/// Looks at the live members of a group over a topic of `partitions` partitions; it is
/// reconciled only at an epoch above `epoch_above` (the epoch before the event measured,
/// so the members still at that epoch are not taken for reconciled).
pub fn check(views: &[MemberView], partitions: i32, epoch_above: i32) -> GroupCheck {
    assert!(partitions > 0, "a topic has at least one partition");
    let mut owners = vec![0u32; partitions as usize];
    let mut owned_twice = Vec::new();
    let (mut epoch, mut one_epoch, mut in_range) = (None, true, true);
    for v in views.iter().filter(|v| v.live) {
        match epoch {
            None => epoch = Some(v.epoch),
            Some(e) if e != v.epoch => one_epoch = false,
            Some(_) => {}
        }
        for &p in &v.owned {
            match usize::try_from(p).ok().and_then(|p| owners.get_mut(p)) {
                Some(n) => {
                    *n += 1;
                    if *n == 2 {
                        owned_twice.push(p);
                    }
                }
                None => in_range = false,
            }
        }
    }
    owned_twice.sort_unstable();
    let reconciled = one_epoch
        && in_range
        && owners.iter().all(|&n| n == 1)
        && epoch.is_some_and(|e| e > epoch_above.max(0));
    GroupCheck {
        reconciled_epoch: if reconciled { epoch } else { None },
        owned_twice,
    }
}

/// The shared state a run's members write and the bench reads.
pub(super) struct Watch {
    pub views: Mutex<Vec<MemberView>>,
    /// Per member: RUN, LEAVE or CRASH (classic also RELEASE).
    pub commands: Vec<AtomicU8>,
    /// The first error a member task met; the bench stops on it.
    pub failure: Mutex<Option<String>>,
    /// Looks that saw a partition owned by two live members.
    pub owned_twice_seen: Mutex<u64>,
}

impl Watch {
    pub fn new(members: usize) -> Watch {
        Watch {
            views: Mutex::new(vec![MemberView::joining(); members]),
            commands: (0..members).map(|_| AtomicU8::new(RUN)).collect(),
            failure: Mutex::new(None),
            owned_twice_seen: Mutex::new(0),
        }
    }

    pub fn fail(&self, e: &anyhow::Error) {
        self.failure.lock().get_or_insert_with(|| format!("{e:#}"));
    }

    /// Waits until the group is reconciled at an epoch above `epoch_above`; returns the ms
    /// since `from` and that epoch.
    pub async fn reconciled(
        &self,
        partitions: i32,
        epoch_above: i32,
        from: Instant,
        timeout: Duration,
        what: &str,
    ) -> anyhow::Result<(f64, i32)> {
        let deadline = from + timeout;
        loop {
            if let Some(e) = self.failure.lock().clone() {
                bail!("{what}: a member failed: {e}");
            }
            let c = check(&self.views.lock(), partitions, epoch_above);
            if !c.owned_twice.is_empty() {
                *self.owned_twice_seen.lock() += 1;
            }
            if let Some(epoch) = c.reconciled_epoch {
                return Ok((from.elapsed().as_secs_f64() * 1000.0, epoch));
            }
            if Instant::now() > deadline {
                let views = self.views.lock();
                let live: Vec<&MemberView> = views.iter().filter(|v| v.live).collect();
                let mut epochs: Vec<i32> = live.iter().map(|v| v.epoch).collect();
                epochs.sort_unstable();
                epochs.dedup();
                let owned: usize = live.iter().map(|v| v.owned.len()).sum();
                bail!(
                    "{what}: the group did not reconcile within {} ms ({} live members at epochs {:?}, {owned} of {partitions} partitions owned, partitions owned twice: {:?})",
                    timeout.as_millis(),
                    live.len(),
                    &epochs[..epochs.len().min(10)],
                    c.owned_twice
                );
            }
            tokio::time::sleep(CHECK_INTERVAL).await;
        }
    }
}

/// The three figures of one run, in ms, and what the run saw on the way.
struct Timings {
    connections: usize,
    join_ms: f64,
    leave_ms: f64,
    crash_ms: f64,
    epochs: [i32; 3],
    /// Consumer protocol: answers that fenced a member (it rejoined).
    fenced: u64,
    /// Consumer protocol: answers that said the coordinator was not ready.
    retried: u64,
}

pub async fn rebalance(bootstrap: &str, a: RebalanceArgs) -> anyhow::Result<()> {
    if a.members < 3 || a.members > MEMBERS_MAX {
        bail!("--members must be between 3 (one leaves, one crashes) and {MEMBERS_MAX}");
    }
    let mut admin = Connection::connect(bootstrap).await?;
    let partitions = ensure_topic(&mut admin, &a.topic, a.partitions).await?;
    let group = format!(
        "weir-bench-rebalance-{}-{}-{}",
        a.protocol.name(),
        a.members,
        std::process::id()
    );
    let timeout = Duration::from_millis(a.converge_timeout_ms);
    let watch = Arc::new(Watch::new(a.members));
    let t = match a.protocol {
        Protocol::Classic => {
            let address = find_group_coordinator(&mut admin, &group).await?;
            classic(&address, &group, &a, partitions, &watch, timeout).await?
        }
        Protocol::Consumer => {
            let cfg = SimConfig {
                group: group.clone(),
                topic: a.topic.clone(),
                topic_id: consumer_group::topic_id(&mut admin, &a.topic).await?,
                partitions,
                members: a.members,
                connections: a.connections,
                rebalance_timeout_ms: a.rebalance_timeout_ms,
                assignor: a.assignor.clone(),
                flood_in_flight: 1,
            };
            consumer(&mut admin, cfg, &watch, timeout).await?
        }
    };
    let owned_twice = *watch.owned_twice_seen.lock();
    report(
        &[
            ("protocol", a.protocol.name().to_string()),
            (
                "members / partitions / connections",
                format!("{} / {partitions} / {}", a.members, t.connections),
            ),
            ("all assigned ms", format!("{:.0}", t.join_ms)),
            ("reassigned after a leave ms", format!("{:.0}", t.leave_ms)),
            ("reassigned after a crash ms", format!("{:.0}", t.crash_ms)),
            (
                "epochs (joined / after leave / after crash)",
                format!("{} / {} / {}", t.epochs[0], t.epochs[1], t.epochs[2]),
            ),
            ("members fenced (rejoined)", t.fenced.to_string()),
            (
                "heartbeats tried again (coordinator not ready)",
                t.retried.to_string(),
            ),
            (
                "looks with a partition owned twice",
                owned_twice.to_string(),
            ),
        ],
        serde_json::json!({"workload":"rebalance","protocol":a.protocol.name(),"members":a.members,"partitions":partitions,"connections":t.connections,"session_timeout_ms":a.session_timeout_ms,"rebalance_timeout_ms":a.rebalance_timeout_ms,"all_assigned_ms":t.join_ms,"after_leave_ms":t.leave_ms,"after_crash_ms":t.crash_ms,"epochs":t.epochs,"fenced":t.fenced,"retried":t.retried,"owned_twice_seen":owned_twice}),
    );
    Ok(())
}

/// The consumer protocol: members on shared connections, driven by [`consumer_group::Sim`].
async fn consumer(
    admin: &mut Connection,
    cfg: SimConfig,
    watch: &Arc<Watch>,
    timeout: Duration,
) -> anyhow::Result<Timings> {
    let partitions = cfg.partitions;
    let sim = consumer_group::Sim::start(admin, cfg, Arc::clone(watch)).await?;
    let (join_ms, e1) = watch
        .reconciled(partitions, 0, sim.started, timeout, "initial join")
        .await?;
    eprintln!("all members reconciled at epoch {e1} after {join_ms:.0} ms");
    let t = Instant::now();
    sim.command(0, LEAVE);
    let (leave_ms, e2) = watch
        .reconciled(partitions, e1, t, timeout, "after a leave")
        .await?;
    eprintln!("reconciled at epoch {e2} {leave_ms:.0} ms after a leave");
    let t = Instant::now();
    sim.command(1, CRASH);
    let (crash_ms, e3) = watch
        .reconciled(partitions, e2, t, timeout, "after a crash")
        .await?;
    eprintln!("reconciled at epoch {e3} {crash_ms:.0} ms after a crash");
    let connections = sim.connections();
    let (fenced, retried) = sim.stop(STOP_WAIT).await?;
    Ok(Timings {
        connections,
        join_ms,
        leave_ms,
        crash_ms,
        epochs: [e1, e2, e3],
        fenced,
        retried,
    })
}

/// The classic protocol: one connection and one task per member.
async fn classic(
    address: &str,
    group: &str,
    a: &RebalanceArgs,
    partitions: i32,
    watch: &Arc<Watch>,
    timeout: Duration,
) -> anyhow::Result<Timings> {
    // 1. Connect every member before the clock starts, so it measures the group, not TCP.
    let permits = Arc::new(Semaphore::new(CONNECTS_AT_ONCE_MAX));
    let mut connecting = Vec::with_capacity(a.members);
    for _ in 0..a.members {
        let (address, permits) = (address.to_string(), Arc::clone(&permits));
        connecting.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await?;
            Connection::connect(&address).await
        }));
    }
    let mut conns = Vec::with_capacity(a.members);
    for c in connecting {
        conns.push(c.await??);
    }
    wait_coordinator_ready(&mut conns[0], group).await?;
    // 2. Start every member at once.
    let wakes: Arc<Vec<Notify>> = Arc::new((0..a.members).map(|_| Notify::new()).collect());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(a.members);
    for (i, conn) in conns.into_iter().enumerate() {
        let m = Member::with_connection(
            conn,
            group,
            &a.topic,
            partitions,
            a.session_timeout_ms,
            a.rebalance_timeout_ms,
        );
        let (watch, wakes) = (Arc::clone(watch), Arc::clone(&wakes));
        let beat = Duration::from_millis(a.heartbeat_interval_ms);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = classic_member(i, m, &watch, &wakes[i], beat).await {
                watch.fail(&e);
            }
        }));
    }
    // 3. Measure.
    let (join_ms, e1) = watch
        .reconciled(partitions, 0, started, timeout, "initial join")
        .await?;
    eprintln!("all members assigned in generation {e1} after {join_ms:.0} ms");
    let t = Instant::now();
    watch.commands[0].store(LEAVE, Ordering::Relaxed);
    wakes[0].notify_one();
    let (leave_ms, e2) = watch
        .reconciled(partitions, e1, t, timeout, "after a leave")
        .await?;
    eprintln!("reassigned in generation {e2} {leave_ms:.0} ms after a leave");
    let t = Instant::now();
    watch.commands[1].store(CRASH, Ordering::Relaxed);
    wakes[1].notify_one();
    let (crash_ms, e3) = watch
        .reconciled(partitions, e2, t, timeout, "after a crash")
        .await?;
    eprintln!("reassigned in generation {e3} {crash_ms:.0} ms after a crash");
    // 4. Everyone leaves; a member stuck in a JoinGroup is left behind after STOP_WAIT.
    for (i, c) in watch.commands.iter().enumerate() {
        let next = if i == 1 { RELEASE } else { LEAVE };
        c.store(next, Ordering::Relaxed);
        wakes[i].notify_one();
    }
    let deadline = tokio::time::Instant::now() + STOP_WAIT;
    for t in tasks {
        if tokio::time::timeout_at(deadline, t).await.is_err() {
            eprintln!("some members had not left after {} s", STOP_WAIT.as_secs());
            break;
        }
    }
    Ok(Timings {
        connections: a.members,
        join_ms,
        leave_ms,
        crash_ms,
        epochs: [e1, e2, e3],
        fenced: 0,
        retried: 0,
    })
}

/// Member `i` of a classic group: join, then heartbeat every `beat` until a rebalance
/// (rejoin) or a command.
async fn classic_member(
    i: usize,
    mut m: Member,
    watch: &Watch,
    wake: &Notify,
    beat: Duration,
) -> anyhow::Result<()> {
    // Bounded by the bench: it ends every member with LEAVE or RELEASE.
    loop {
        if watch.commands[i].load(Ordering::Relaxed) == LEAVE {
            return Ok(());
        }
        let mine = m.join().await?;
        watch.views.lock()[i] = MemberView {
            live: true,
            epoch: m.generation,
            owned: mine,
        };
        loop {
            tokio::select! {
                _ = tokio::time::sleep(beat) => {}
                _ = wake.notified() => {}
            }
            match watch.commands[i].load(Ordering::Relaxed) {
                LEAVE => {
                    watch.views.lock()[i].live = false;
                    m.leave().await?;
                    return Ok(());
                }
                CRASH => {
                    watch.views.lock()[i].live = false;
                    // Silent, with the connection open, until the bench is over.
                    while watch.commands[i].load(Ordering::Relaxed) == CRASH {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            _ = wake.notified() => {}
                        }
                    }
                    return Ok(());
                }
                _ => {}
            }
            if m.heartbeat().await? {
                watch.views.lock()[i] = MemberView {
                    live: true,
                    epoch: -1,
                    owned: Vec::new(),
                };
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(epoch: i32, owned: &[i32]) -> MemberView {
        MemberView {
            live: true,
            epoch,
            owned: owned.to_vec(),
        }
    }

    // Goal: a group is reconciled when its live members share one epoch and own every
    // partition once, and the check names that epoch.
    #[test]
    fn one_epoch_and_every_partition_once_is_reconciled() {
        let views = [view(3, &[0, 1]), view(3, &[3]), view(3, &[2]), view(3, &[])];
        assert_eq!(
            check(&views, 4, 0),
            GroupCheck {
                reconciled_epoch: Some(3),
                owned_twice: vec![]
            }
        );
        assert_eq!(check(&views, 4, 2).reconciled_epoch, Some(3));
    }

    // Goal: a member still at the previous epoch, or still joining, keeps the group
    // unreconciled even when the partitions happen to be covered.
    #[test]
    fn members_at_different_epochs_are_not_reconciled() {
        let views = [view(4, &[0, 1]), view(3, &[2, 3])];
        assert_eq!(check(&views, 4, 0).reconciled_epoch, None);
        let views = [view(4, &[0, 1, 2, 3]), view(0, &[])];
        assert_eq!(check(&views, 4, 0).reconciled_epoch, None);
        // Classic members rejoining are at -1 and own nothing.
        let views = [view(-1, &[]), view(-1, &[])];
        assert_eq!(check(&views, 1, 0).reconciled_epoch, None);
    }

    // Goal: right after a leave every remaining member is still at the old epoch and the
    // leaver's partitions are unowned; the check waits for an epoch above the old one even
    // when coverage looks complete at it.
    #[test]
    fn the_epoch_must_move_past_the_one_before_the_event() {
        let views = [view(5, &[0, 1]), view(5, &[2, 3])];
        assert_eq!(check(&views, 4, 5).reconciled_epoch, None);
        assert_eq!(check(&views, 4, 4).reconciled_epoch, Some(5));
    }

    // Goal: an unowned partition, a partition owned twice or a partition the topic does
    // not have keeps the group unreconciled; partitions owned twice are named, once each.
    #[test]
    fn gaps_doubles_and_strangers_are_not_reconciled() {
        let gap = [view(2, &[0, 1]), view(2, &[3])];
        assert_eq!(check(&gap, 4, 0).reconciled_epoch, None);
        let double = [view(2, &[0, 1, 2]), view(2, &[2, 3]), view(2, &[2])];
        assert_eq!(
            check(&double, 4, 0),
            GroupCheck {
                reconciled_epoch: None,
                owned_twice: vec![2]
            }
        );
        let stranger = [view(2, &[0, 1]), view(2, &[2, 3, 4])];
        assert_eq!(check(&stranger, 4, 0).reconciled_epoch, None);
        let negative = [view(2, &[0, 1, 2, 3, -1])];
        assert_eq!(check(&negative, 4, 0).reconciled_epoch, None);
    }

    // Goal: members that left or crashed do not count: their stale partitions are neither
    // owned twice nor needed, and their epoch does not hold the others back.
    #[test]
    fn members_gone_do_not_count() {
        let mut gone = view(1, &[0, 1]);
        gone.live = false;
        let views = [gone, view(2, &[0, 1]), view(2, &[2])];
        assert_eq!(
            check(&views, 3, 1),
            GroupCheck {
                reconciled_epoch: Some(2),
                owned_twice: vec![]
            }
        );
        // A group with no live member is never reconciled.
        let mut alone = view(2, &[0]);
        alone.live = false;
        assert_eq!(check(&[alone], 1, 0).reconciled_epoch, None);
    }
}
