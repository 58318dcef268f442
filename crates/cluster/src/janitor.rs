//! `Janitor`: the cluster's background cleaning: retention and deletions by one broker at
//! a time, compaction by every broker, one partition each.
//!
//! Whoever holds the `janitor` row of `leases` (timed by PostgreSQL's clock, as broker
//! registrations are) runs a pass every `interval`; a broker that dies stops renewing and
//! another takes the lease within one lease period. The lease saves work, not safety:
//! every step below is safe when two brokers overlap (the old holder finishing its last
//! statement as the new one starts), because each one locks the rows it changes and
//! re-checks its condition under the lock.
//!
//! One pass, in order:
//! 1. deleted topics (`dropped.rs`): the partitions rows with `deleted_at` set lose their
//!    chunks, producer states, aborted transactions and compaction job, then the row;
//! 2. retention (`retention.rs`): per partition of a topic with `cleanup.policy=delete`,
//!    whole chunks from the oldest that `retention.ms` or `retention.bytes` no longer
//!    keeps, and for every topic the chunks wholly below a log start offset moved by
//!    DeleteRecords; never a partition's newest chunk (Kafka never deletes the active
//!    segment). The log start offset moves to the first remaining chunk's base offset;
//! 3. objects (`objects.rs`): an object whose last chunk went is marked deleting with
//!    `delete_after = now() + grace`, so a reader that looked its chunk up just before can
//!    still GET it; an object left pending (a PUT whose commit never came) longer than
//!    `pending_max` is marked deleting at once; objects past `delete_after` are deleted
//!    from the bucket, then their rows.
//!
//! Compaction (`compaction.rs`) runs in a loop of its own, on every broker, lease or not:
//! each job is one partition's, claimed in `compaction_jobs`, so one broker at a time
//! cleans a partition while several clean different ones, and a long job delays neither
//! the lease's renewal nor retention.
//!
//! Topic configs come from the caller as [`TopicConfigs`], a function from topic id to the
//! topic's [`LogConfig`] (the broker answers it from its catalog cache); a topic it does not
//! know keeps its data, except below its log start offset.
//!
//! Every statement is bounded (`Session::bounded`), every pass does a bounded amount of
//! work (the `*_PER_PASS_MAX` constants), and an error ends only the step it happened in:
//! it is logged, counted, and the step runs again next pass. Nothing here panics on what
//! PostgreSQL or the bucket return.
//!
//! Not here yet: a `weir_leases` notification when the lease changes hands (others find
//! out at their next pass), and a bound of retention by the last stable offset: retention
//! here may move the log start past an open transaction's first offset.
//!
//! Layout: `janitor/compaction.rs` and `janitor/compaction/` (compaction's jobs, plans
//! and cleaning), `janitor/lease.rs` (taking, renewing and giving up the lease),
//! `janitor/retention.rs` (which chunks go, and the transaction that deletes them),
//! `janitor/objects.rs` (marking and deleting objects), `janitor/dropped.rs` (deleted
//! topics), `janitor/transaction.rs` (one transaction on a connection of its own).

mod compaction;
mod dropped;
mod lease;
mod objects;
mod retention;
mod transaction;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;
use weir_log::LogConfig;

use crate::bucket::Bucket;
use crate::error::ClusterError;
use crate::pg::Session;
use lease::Lease;

/// How often a pass runs, by default.
pub const INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
/// How long the janitor lease lasts without renewal, by default: a dead holder's work
/// moves to another broker within this. Renewed at every pass, so it must exceed the
/// interval.
pub const LEASE_DEFAULT: Duration = Duration::from_secs(30);
/// How long an object stays in the bucket after its last chunk row is gone, by default.
/// A reader that found the chunk just before it went may still GET it within this; it
/// must exceed the longest read (statement plus GETs, each bounded far below it).
pub const GRACE_DEFAULT: Duration = Duration::from_secs(60);
/// How long an object may stay pending before it is taken for a PUT whose commit never
/// came, by default. Far above the produce path's statement timeout (its commit either
/// happens within that or never), so no commit can still make it live.
pub const PENDING_MAX_DEFAULT: Duration = Duration::from_secs(10 * 60);
/// How long one of the janitor's statements or transactions may take, by default.
pub const STATEMENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// Partitions looked at by retention in one pass; a larger cluster is covered over
/// several passes, continuing where the last one stopped.
pub const PARTITIONS_PER_PASS_MAX: i64 = 1_000;
/// Chunks one transaction deletes from one partition. A partition with more to delete
/// goes on in the next transaction (retention) or the next pass.
pub const CHUNKS_PER_TRANSACTION_MAX: i64 = 500;
/// Transactions retention runs on one partition in one pass.
pub const TRANSACTIONS_PER_PARTITION_MAX: usize = 4;
/// Deleted partitions cleaned up in one pass.
pub const DROPPED_PARTITIONS_PER_PASS_MAX: i64 = 100;
/// Live objects checked for chunks left in one pass (the sweep that catches an object
/// whose last chunk was deleted without it being marked).
pub const OBJECTS_SWEPT_PER_PASS_MAX: i64 = 1_000;
/// Pending objects marked stale, and objects deleted from the bucket, in one pass.
pub const OBJECTS_DELETED_PER_PASS_MAX: i64 = 1_000;
/// DELETE requests to the bucket in flight at once.
pub const DELETES_IN_FLIGHT_MAX: usize = 8;

/// The name of the lease in `leases`.
pub const LEASE_NAME: &str = "janitor";

/// The topic configs retention follows: the config of a topic by its id, `None` for a
/// topic the caller does not know (its chunks are then kept, except below its log start).
pub type TopicConfigs = Arc<dyn Fn(Uuid) -> Option<LogConfig> + Send + Sync>;

/// The janitor's timing and bounds.
#[derive(Debug, Clone)]
pub struct JanitorSettings {
    /// Between the starts of two passes.
    pub interval: Duration,
    /// The lease's length; above `interval`.
    pub lease: Duration,
    /// How long an object whose chunks are gone stays readable.
    pub grace: Duration,
    /// How long an object may stay pending.
    pub pending_max: Duration,
    /// The bound of each statement or transaction.
    pub statement_timeout: Duration,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        JanitorSettings {
            interval: INTERVAL_DEFAULT,
            lease: LEASE_DEFAULT,
            grace: GRACE_DEFAULT,
            pending_max: PENDING_MAX_DEFAULT,
            statement_timeout: STATEMENT_TIMEOUT_DEFAULT,
        }
    }
}

/// What the janitor has done since it started, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JanitorStats {
    /// Passes started, with or without the lease.
    pub passes: u64,
    /// Passes run while holding the lease.
    pub passes_worked: u64,
    pub chunks_deleted: u64,
    /// Objects marked deleting (their chunks gone, or pending too long).
    pub objects_marked: u64,
    /// Objects deleted from the bucket, their rows with them.
    pub objects_deleted: u64,
    /// Deleted partitions whose rows are gone.
    pub partitions_dropped: u64,
    /// Compactions finished, and the bytes they took off their partitions.
    pub partitions_compacted: u64,
    pub compaction_bytes_removed: u64,
    /// Steps that failed (each is retried next pass).
    pub errors: u64,
    /// Whether this broker held the lease at its last pass.
    pub lease_held: bool,
    /// The lease's epoch when last held: it grows each time the lease changes hands.
    pub lease_epoch: i64,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub lease_held: bool,
    pub chunks_deleted: u64,
    pub objects_marked: u64,
    pub objects_deleted: u64,
    pub partitions_dropped: u64,
    /// Partitions whose compaction finished, and the bytes it took off them.
    pub partitions_compacted: u64,
    pub compaction_bytes_removed: u64,
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    passes: AtomicU64,
    passes_worked: AtomicU64,
    chunks_deleted: AtomicU64,
    objects_marked: AtomicU64,
    objects_deleted: AtomicU64,
    partitions_dropped: AtomicU64,
    partitions_compacted: AtomicU64,
    compaction_bytes_removed: AtomicU64,
    errors: AtomicU64,
    lease_held: AtomicBool,
    lease_epoch: AtomicI64,
}

impl Counters {
    fn snapshot(&self) -> JanitorStats {
        JanitorStats {
            passes: self.passes.load(Ordering::Relaxed),
            passes_worked: self.passes_worked.load(Ordering::Relaxed),
            chunks_deleted: self.chunks_deleted.load(Ordering::Relaxed),
            objects_marked: self.objects_marked.load(Ordering::Relaxed),
            objects_deleted: self.objects_deleted.load(Ordering::Relaxed),
            partitions_dropped: self.partitions_dropped.load(Ordering::Relaxed),
            partitions_compacted: self.partitions_compacted.load(Ordering::Relaxed),
            compaction_bytes_removed: self.compaction_bytes_removed.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            lease_held: self.lease_held.load(Ordering::Relaxed),
            lease_epoch: self.lease_epoch.load(Ordering::Relaxed),
        }
    }
}

/// Reads a janitor's running totals ([`Janitor::stats_handle`]).
#[derive(Clone)]
pub struct JanitorStatsHandle(Arc<Counters>);

impl JanitorStatsHandle {
    pub fn stats(&self) -> JanitorStats {
        self.0.snapshot()
    }
}

/// What passes carry from one to the next.
struct PassState {
    lease: Lease,
    /// Retention goes on after this partition id; 0 starts over.
    partition_cursor: i64,
    /// The sweep of live objects goes on after this object id; 0 starts over.
    object_cursor: i64,
}

/// Everything a pass reads.
struct Context {
    /// Single statements.
    session: Arc<Session>,
    /// Transactions, on a connection of their own: `BEGIN` must not share a connection
    /// with other work. The lease's loop uses `transactions`, the compaction loop
    /// `compaction_transactions`, as the two run at once.
    transactions: Session,
    compaction_transactions: Session,
    bucket: Bucket,
    /// This broker, as compaction claims name it.
    node_id: i32,
    settings: JanitorSettings,
    configs: TopicConfigs,
    counters: Arc<Counters>,
    /// Held for a whole pass, so the loop and `run_once` never overlap.
    state: tokio::sync::Mutex<PassState>,
    /// Compaction's own: it goes on after this partition id (0 starts over). Held for a
    /// whole compaction pass.
    compaction_cursor: tokio::sync::Mutex<i64>,
    /// Set by [`Janitor::stop`]: a long step (a compaction) ends early.
    stopping: AtomicBool,
}

impl Context {
    fn error(&self, step: &'static str, error: &ClusterError, report: &mut PassReport) {
        tracing::warn!(step, %error, "a janitor step failed; it runs again next pass");
        report.errors += 1;
    }
}

/// The janitor of one broker. Dropping it stops the loop without giving the lease up (as
/// a crash would: another broker takes over once it expires); [`Janitor::stop`] gives it
/// up so another takes over at once.
pub struct Janitor {
    context: Arc<Context>,
    stop: watch::Sender<bool>,
    /// The lease's loop and the compaction loop.
    tasks: Vec<JoinHandle<()>>,
}

impl Janitor {
    /// Starts the loop: a pass every `settings.interval`, the first one an interval from
    /// now. `node_id` and `incarnation` name this broker as the lease's holder.
    pub fn start(
        session: Arc<Session>,
        bucket: Bucket,
        node_id: i32,
        incarnation: Uuid,
        settings: JanitorSettings,
        configs: TopicConfigs,
    ) -> Janitor {
        assert!(!settings.interval.is_zero(), "a zero janitor interval");
        assert!(
            settings.lease > settings.interval,
            "the janitor lease ({:?}) must outlast the interval between its renewals ({:?})",
            settings.lease,
            settings.interval
        );
        let transactions = Session::new(session.connector().clone());
        let compaction_transactions = Session::new(session.connector().clone());
        let context = Arc::new(Context {
            session,
            transactions,
            compaction_transactions,
            bucket,
            node_id,
            configs,
            counters: Arc::default(),
            state: tokio::sync::Mutex::new(PassState {
                lease: Lease::new(node_id, incarnation, settings.lease),
                partition_cursor: 0,
                object_cursor: 0,
            }),
            compaction_cursor: tokio::sync::Mutex::new(0),
            stopping: AtomicBool::new(false),
            settings,
        });
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(run(Arc::clone(&context), stopped.clone(), Loop::Lease)),
            tokio::spawn(run(Arc::clone(&context), stopped, Loop::Compaction)),
        ];
        Janitor {
            context,
            stop,
            tasks,
        }
    }

    /// Runs one pass of each loop now, with `now_ms` as the time retention and compaction
    /// compare records' timestamps with (the loops pass the wall clock): takes or renews
    /// the lease, and does the lease's work only if it holds it; then compaction.
    pub async fn run_once(&self, now_ms: i64) -> PassReport {
        let lease = pass(&self.context, now_ms).await;
        let compaction = compaction_pass(&self.context, now_ms).await;
        PassReport {
            objects_marked: lease.objects_marked + compaction.objects_marked,
            partitions_compacted: compaction.partitions_compacted,
            compaction_bytes_removed: compaction.compaction_bytes_removed,
            errors: lease.errors + compaction.errors,
            ..lease
        }
    }

    pub fn stats(&self) -> JanitorStats {
        self.context.counters.snapshot()
    }

    /// A handle that reads this janitor's running totals, for the metrics endpoint.
    pub fn stats_handle(&self) -> JanitorStatsHandle {
        JanitorStatsHandle(Arc::clone(&self.context.counters))
    }

    /// Stops the loop (a pass under way finishes first; every step is bounded) and gives
    /// the lease up, so another broker's janitor takes it at its next pass.
    pub async fn stop(mut self) {
        self.context.stopping.store(true, Ordering::Relaxed);
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let context = &self.context;
        let mut state = context.state.lock().await;
        if let Err(e) = state.lease.release(&context.session).await {
            tracing::warn!(error = %e, "giving up the janitor lease failed; it expires on its own");
        }
        context.counters.lease_held.store(false, Ordering::Relaxed);
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Which of the two loops.
#[derive(Clone, Copy)]
enum Loop {
    /// Under the lease: deleted topics, retention, objects.
    Lease,
    /// On every broker: compaction.
    Compaction,
}

/// A loop: a pass every interval until told to stop.
async fn run(context: Arc<Context>, mut stopped: watch::Receiver<bool>, which: Loop) {
    let interval = context.settings.interval;
    let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => return,
            _ = ticker.tick() => {}
        }
        match which {
            Loop::Lease => pass(&context, wall_clock_ms()).await,
            Loop::Compaction => compaction_pass(&context, wall_clock_ms()).await,
        };
    }
}

/// One pass of compaction (its module's opening), on every broker.
async fn compaction_pass(context: &Context, now_ms: i64) -> PassReport {
    let mut cursor = context.compaction_cursor.lock().await;
    let mut report = PassReport::default();
    *cursor = compaction::apply(context, context.node_id, *cursor, now_ms, &mut report).await;
    record(&context.counters, &report);
    report
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One pass: the lease, then the steps of the module's opening, each stopped early once
/// the lease's local deadline has passed.
async fn pass(context: &Context, now_ms: i64) -> PassReport {
    let mut state = context.state.lock().await;
    let counters = &context.counters;
    counters.passes.fetch_add(1, Ordering::Relaxed);
    let mut report = PassReport::default();
    match state.lease.acquire(&context.session).await {
        Ok(held) => report.lease_held = held,
        // Whether PostgreSQL renewed it is unknown: no work this pass.
        Err(e) => context.error("the janitor lease", &e, &mut report),
    }
    counters
        .lease_held
        .store(report.lease_held, Ordering::Relaxed);
    if report.lease_held {
        counters.passes_worked.fetch_add(1, Ordering::Relaxed);
        counters
            .lease_epoch
            .store(state.lease.epoch(), Ordering::Relaxed);
        work(context, &mut state, now_ms, &mut report).await;
    }
    record(counters, &report);
    report
}

/// Adds what a pass did to the running totals.
fn record(counters: &Counters, report: &PassReport) {
    counters
        .chunks_deleted
        .fetch_add(report.chunks_deleted, Ordering::Relaxed);
    counters
        .objects_marked
        .fetch_add(report.objects_marked, Ordering::Relaxed);
    counters
        .objects_deleted
        .fetch_add(report.objects_deleted, Ordering::Relaxed);
    counters
        .partitions_dropped
        .fetch_add(report.partitions_dropped, Ordering::Relaxed);
    counters
        .partitions_compacted
        .fetch_add(report.partitions_compacted, Ordering::Relaxed);
    counters
        .compaction_bytes_removed
        .fetch_add(report.compaction_bytes_removed, Ordering::Relaxed);
    counters.errors.fetch_add(report.errors, Ordering::Relaxed);
}

async fn work(context: &Context, state: &mut PassState, now_ms: i64, report: &mut PassReport) {
    // 1. Deleted topics.
    if state.lease.held() {
        dropped::clean(context, &state.lease, report).await;
    }
    // 2. Retention.
    if state.lease.held() {
        let cursor = state.partition_cursor;
        state.partition_cursor =
            retention::apply(context, &state.lease, cursor, now_ms, report).await;
    }
    // 3. Objects: the stale pending ones, the sweep, then the deletions that are due.
    if state.lease.held() {
        objects::mark_stale_pending(context, report).await;
    }
    if state.lease.held() {
        let cursor = state.object_cursor;
        state.object_cursor = objects::sweep(context, cursor, report).await;
    }
    if state.lease.held() {
        objects::delete_due(context, report).await;
    }
}
