//! Incremental reconciliation (KIP-848): moves one member from what it holds towards its
//! target assignment without ever letting two members hold a partition.
//!
//! A member first gives up what its target no longer holds (it stays at its epoch, in
//! `UnrevokedPartitions`, until a heartbeat's owned partitions show the revocation done);
//! then it moves to the target epoch and gets every target partition that no other member
//! still holds; the rest come on later heartbeats, once released (`UnreleasedPartitions`).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::consumer_group::{ConsumerMember, MemberState};
use crate::consumer_records::Assignment;

/// The partitions a member says it owns in a heartbeat; `None` when it did not say.
pub type Owned<'a> = Option<&'a Assignment>;

fn owns_any(owned: Owned<'_>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else {
        // Not told: assume the member still holds them.
        return true;
    };
    owned.iter().any(|(id, ps)| {
        partitions
            .get(id)
            .is_some_and(|pending| ps.iter().any(|p| pending.contains(p)))
    })
}

/// The member after one reconciliation step; `Err` when it must be fenced (its stored state
/// is unknown to this version and it did not give up everything).
pub fn reconcile(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    partition_epoch: &dyn Fn(Uuid, i32) -> i32,
    owned: Owned<'_>,
) -> Result<ConsumerMember, &'static str> {
    match member.state {
        MemberState::Stable if member.member_epoch == target_epoch => Ok(member.clone()),
        MemberState::Stable | MemberState::UnreleasedPartitions => Ok(next(
            member,
            member.member_epoch,
            target_epoch,
            target,
            partition_epoch,
            owned,
        )),
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                return Ok(member.clone());
            }
            Ok(next(
                member,
                member.member_epoch + 1,
                target_epoch,
                target,
                partition_epoch,
                owned,
            ))
        }
        MemberState::Unknown => {
            if owned.is_none_or(|o| !o.is_empty()) {
                return Err("The consumer group member is in an unknown state. The member must abandon all its partitions and rejoin.");
            }
            Ok(next(
                member,
                target_epoch,
                target_epoch,
                target,
                partition_epoch,
                owned,
            ))
        }
    }
}

fn with_epoch(member: &ConsumerMember, epoch: i32) -> ConsumerMember {
    let mut m = member.clone();
    if m.member_epoch != epoch {
        m.previous_member_epoch = m.member_epoch;
        m.member_epoch = epoch;
    }
    m
}

fn next(
    member: &ConsumerMember,
    revoking_epoch: i32,
    target_epoch: i32,
    target: &Assignment,
    partition_epoch: &dyn Fn(Uuid, i32) -> i32,
    owned: Owned<'_>,
) -> ConsumerMember {
    let mut kept = Assignment::new();
    let mut revoke = Assignment::new();
    let mut gain = Assignment::new();
    let mut unreleased = false;
    let topics: BTreeSet<Uuid> = target
        .keys()
        .chain(member.assigned.keys())
        .copied()
        .collect();
    let empty = BTreeSet::new();
    for id in topics {
        let want = target.get(&id).unwrap_or(&empty);
        let have = member.assigned.get(&id).unwrap_or(&empty);
        let keep: BTreeSet<i32> = have.intersection(want).copied().collect();
        let give: BTreeSet<i32> = have.difference(&keep).copied().collect();
        let mut take = BTreeSet::new();
        for p in want.difference(&keep) {
            if partition_epoch(id, *p) == -1 {
                take.insert(*p);
            } else {
                unreleased = true;
            }
        }
        if !keep.is_empty() {
            kept.insert(id, keep);
        }
        if !give.is_empty() {
            revoke.insert(id, give);
        }
        if !take.is_empty() {
            gain.insert(id, take);
        }
    }
    if !revoke.is_empty() && owns_any(owned, &revoke) {
        let mut m = with_epoch(member, revoking_epoch);
        m.state = MemberState::UnrevokedPartitions;
        m.assigned = kept;
        m.pending_revocation = revoke;
        return m;
    }
    for (id, ps) in gain {
        kept.entry(id).or_default().extend(ps);
    }
    let mut m = with_epoch(member, target_epoch);
    m.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    m.assigned = kept;
    m.pending_revocation = Assignment::new();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[(u128, &[i32])]) -> Assignment {
        parts
            .iter()
            .map(|(t, ps)| (Uuid::from_u128(*t), ps.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn revoke_first_then_move_to_the_target_epoch() {
        // Goal: a member that must give up a partition stays at its epoch until its
        // heartbeat no longer lists it, then moves to the target epoch with what is free.
        let mut m = ConsumerMember::new("m");
        m.member_epoch = 1;
        m.assigned = a(&[(1, &[0, 1, 2])]);
        let target = a(&[(1, &[0, 1])]);
        let free = |_: Uuid, _: i32| -1;
        let owned = a(&[(1, &[0, 1, 2])]);
        let r = reconcile(&m, 2, &target, &free, Some(&owned)).unwrap();
        assert_eq!(r.state, MemberState::UnrevokedPartitions);
        assert_eq!(r.member_epoch, 1);
        assert_eq!(r.pending_revocation, a(&[(1, &[2])]));
        let still = reconcile(&r, 2, &target, &free, Some(&owned)).unwrap();
        assert_eq!(still, r);
        let owned = a(&[(1, &[0, 1])]);
        let done = reconcile(&r, 2, &target, &free, Some(&owned)).unwrap();
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.member_epoch, 2);
        assert_eq!(done.previous_member_epoch, 1);
        assert_eq!(done.assigned, target);
    }

    #[test]
    fn a_partition_held_elsewhere_waits() {
        // Goal: a target partition another member still holds is not given; the member is
        // at the target epoch, UnreleasedPartitions, and gets it once it is free.
        let m = ConsumerMember::new("m");
        let target = a(&[(1, &[0, 1])]);
        let held = |_: Uuid, p: i32| if p == 1 { 3 } else { -1 };
        let r = reconcile(&m, 4, &target, &held, Some(&Assignment::new())).unwrap();
        assert_eq!(r.state, MemberState::UnreleasedPartitions);
        assert_eq!(r.member_epoch, 4);
        assert_eq!(r.assigned, a(&[(1, &[0])]));
        let free = |_: Uuid, _: i32| -1;
        let r = reconcile(&r, 4, &target, &free, None).unwrap();
        assert_eq!(r.state, MemberState::Stable);
        assert_eq!(r.assigned, target);
    }
}
