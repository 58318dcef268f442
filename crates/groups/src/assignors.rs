//! Server-side assignors of the consumer protocol, chosen by a member's
//! `group.remote.assignor`:
//! - `uniform` (the default): every member gets as many partitions as it can (counts differ
//!   by at most one among members with the same subscription), keeping what it had where the
//!   balance allows.
//! - `range`: per topic, contiguous ranges over the members subscribed to it, ordered by
//!   instance id (static members first) then member id, the first ones getting one more.
//! - `load-aware` (weir's own): weighs every partition by its recent bytes-in rate and gives
//!   each, heaviest first, to the subscribed member with the least load, so a skewed topic is
//!   spread by traffic rather than by partition count.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::consumer_records::Assignment;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
pub const LOAD_AWARE: &str = "load-aware";
/// Every assignor a member may name, the default first.
pub const ASSIGNORS: [&str; 3] = [UNIFORM, RANGE, LOAD_AWARE];

/// One member as an assignor sees it.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// Subscribed topics that exist.
    pub topics: BTreeSet<Uuid>,
}

/// A subscribed topic: its partition count and, per partition, a weight (bytes-in rate;
/// used by `load-aware` only).
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub partitions: i32,
    pub weights: Vec<u64>,
}

/// The target assignment, by member id, for every member of `members`.
pub fn assign(
    assignor: &str,
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, TopicSpec>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        RANGE => range(members, topics),
        LOAD_AWARE => load_aware(members, topics),
        _ => uniform(members, topics, previous),
    }
}

fn empty_result(members: &[MemberSpec]) -> BTreeMap<String, Assignment> {
    members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect()
}

fn count(a: &Assignment) -> usize {
    a.values().map(|p| p.len()).sum()
}

fn uniform(
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, TopicSpec>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut result = empty_result(members);
    let by_id: BTreeMap<&str, &MemberSpec> =
        members.iter().map(|m| (m.member_id.as_str(), m)).collect();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    // 1. Keep what each member had and may still have.
    for (member_id, had) in previous {
        let Some(spec) = by_id.get(member_id.as_str()) else {
            continue;
        };
        let mine = result.get_mut(member_id).expect("member is in the result");
        for (id, ps) in had {
            let Some(t) = topics.get(id) else { continue };
            if !spec.topics.contains(id) {
                continue;
            }
            for p in ps {
                if *p < t.partitions && taken.insert((*id, *p)) {
                    mine.entry(*id).or_default().insert(*p);
                }
            }
        }
    }
    // 2. Give each free partition to the least-loaded member subscribed to its topic.
    for (id, t) in topics {
        let eligible: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(id))
            .map(|m| m.member_id.as_str())
            .collect();
        if eligible.is_empty() {
            continue;
        }
        for p in 0..t.partitions {
            if taken.contains(&(*id, p)) {
                continue;
            }
            let to = eligible
                .iter()
                .min_by_key(|m| count(&result[**m]))
                .expect("eligible is not empty");
            result
                .get_mut(*to)
                .expect("member is in the result")
                .entry(*id)
                .or_default()
                .insert(p);
            taken.insert((*id, p));
        }
    }
    // 3. Move partitions from the most to the least loaded member that may take them until
    //    no move narrows the gap. Each move lowers the sum of squared counts, so the loop
    //    ends; the bound is a guard.
    let total: usize = topics.values().map(|t| t.partitions.max(0) as usize).sum();
    for _ in 0..=total {
        let mut order: Vec<(&str, usize)> =
            result.iter().map(|(m, a)| (m.as_str(), count(a))).collect();
        order.sort_by_key(|(m, n)| (std::cmp::Reverse(*n), *m));
        let mut moved = None;
        'find: for (from, from_count) in &order {
            let from_assignment = &result[*from];
            for (id, ps) in from_assignment.iter().rev() {
                let target = order
                    .iter()
                    .rev()
                    .find(|(m, n)| n + 1 < *from_count && by_id[m].topics.contains(id));
                if let Some((to, _)) = target {
                    let p = *ps.iter().next_back().expect("non-empty set");
                    moved = Some((from.to_string(), to.to_string(), *id, p));
                    break 'find;
                }
            }
        }
        let Some((from, to, id, p)) = moved else {
            break;
        };
        let f = result.get_mut(&from).expect("member is in the result");
        let set = f.get_mut(&id).expect("topic is held");
        set.remove(&p);
        if set.is_empty() {
            f.remove(&id);
        }
        result
            .get_mut(&to)
            .expect("member is in the result")
            .entry(id)
            .or_default()
            .insert(p);
    }
    result
}

fn range(
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, TopicSpec>,
) -> BTreeMap<String, Assignment> {
    let mut result = empty_result(members);
    let mut ordered: Vec<&MemberSpec> = members.iter().collect();
    ordered.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    for (id, t) in topics {
        let subscribed: Vec<&&MemberSpec> =
            ordered.iter().filter(|m| m.topics.contains(id)).collect();
        if subscribed.is_empty() {
            continue;
        }
        let n = subscribed.len() as i32;
        let quota = t.partitions / n;
        let mut extra = t.partitions % n;
        let mut start = 0;
        for m in subscribed {
            let mut size = quota;
            if extra > 0 {
                size += 1;
                extra -= 1;
            }
            let end = (start + size).min(t.partitions);
            if start < end {
                result
                    .get_mut(&m.member_id)
                    .expect("member is in the result")
                    .insert(*id, (start..end).collect());
            }
            start = end;
        }
    }
    result
}

fn load_aware(
    members: &[MemberSpec],
    topics: &BTreeMap<Uuid, TopicSpec>,
) -> BTreeMap<String, Assignment> {
    let mut result = empty_result(members);
    // Every partition with its weight; one byte/s at least, so idle partitions still spread.
    let mut partitions: Vec<(u64, Uuid, i32)> = Vec::new();
    for (id, t) in topics {
        for p in 0..t.partitions {
            let w = t.weights.get(p as usize).copied().unwrap_or(0).max(1);
            partitions.push((w, *id, p));
        }
    }
    partitions.sort_by_key(|(w, id, p)| (std::cmp::Reverse(*w), *id, *p));
    let mut load: BTreeMap<&str, (u64, usize)> = members
        .iter()
        .map(|m| (m.member_id.as_str(), (0, 0)))
        .collect();
    for (w, id, p) in partitions {
        let to = members
            .iter()
            .filter(|m| m.topics.contains(&id))
            .min_by_key(|m| load[m.member_id.as_str()]);
        let Some(to) = to else { continue };
        let l = load
            .get_mut(to.member_id.as_str())
            .expect("member has a load");
        l.0 += w;
        l.1 += 1;
        result
            .get_mut(&to.member_id)
            .expect("member is in the result")
            .entry(id)
            .or_default()
            .insert(p);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[u128]) -> MemberSpec {
        MemberSpec {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| Uuid::from_u128(*t)).collect(),
        }
    }

    fn topic(partitions: i32) -> TopicSpec {
        TopicSpec {
            partitions,
            weights: Vec::new(),
        }
    }

    fn counts(r: &BTreeMap<String, Assignment>) -> Vec<usize> {
        r.values().map(count).collect()
    }

    #[test]
    fn uniform_balances_and_keeps_what_it_can() {
        // Goal: 7 partitions over 3 members split 3/2/2; when a fourth joins, the others
        // keep all but what the newcomer needs.
        let topics: BTreeMap<Uuid, TopicSpec> = [(Uuid::from_u128(1), topic(7))].into();
        let three = vec![member("a", &[1]), member("b", &[1]), member("c", &[1])];
        let r = uniform(&three, &topics, &BTreeMap::new());
        let mut c = counts(&r);
        c.sort();
        assert_eq!(c, vec![2, 2, 3]);
        let mut four = three.clone();
        four.push(member("d", &[1]));
        let r2 = uniform(&four, &topics, &r);
        let mut c = counts(&r2);
        c.sort();
        assert_eq!(c, vec![1, 2, 2, 2]);
        let moved: usize = ["a", "b", "c"]
            .iter()
            .map(|m| {
                let before = &r[*m][&Uuid::from_u128(1)];
                let after = r2[*m].get(&Uuid::from_u128(1)).cloned().unwrap_or_default();
                before.difference(&after).count()
            })
            .sum();
        assert_eq!(moved, 1);
    }

    #[test]
    fn uniform_respects_subscriptions() {
        // Goal: with different subscriptions every partition goes to a subscriber only.
        let topics: BTreeMap<Uuid, TopicSpec> = [
            (Uuid::from_u128(1), topic(4)),
            (Uuid::from_u128(2), topic(2)),
        ]
        .into();
        let ms = vec![member("a", &[1, 2]), member("b", &[2]), member("c", &[1])];
        let r = uniform(&ms, &topics, &BTreeMap::new());
        assert!(!r["b"].contains_key(&Uuid::from_u128(1)));
        assert!(!r["c"].contains_key(&Uuid::from_u128(2)));
        assert_eq!(counts(&r).iter().sum::<usize>(), 6);
        assert_eq!(counts(&r), vec![2, 2, 2]);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        // Goal: Kafka's range: 7 partitions over 3 members are 0-2, 3-4, 5-6.
        let topics: BTreeMap<Uuid, TopicSpec> = [(Uuid::from_u128(1), topic(7))].into();
        let ms = vec![member("c", &[1]), member("a", &[1]), member("b", &[1])];
        let r = range(&ms, &topics);
        let t = Uuid::from_u128(1);
        assert_eq!(r["a"][&t], (0..3).collect());
        assert_eq!(r["b"][&t], (3..5).collect());
        assert_eq!(r["c"][&t], (5..7).collect());
    }

    #[test]
    fn load_aware_spreads_a_skewed_topic_better_than_uniform() {
        // Goal: one partition of six carries most of the traffic; the load-aware assignor
        // gives its owner nothing else, so the busiest member's share of bytes is lower
        // than under uniform.
        let t = Uuid::from_u128(1);
        let weights = vec![1000, 10, 10, 10, 10, 10];
        let topics: BTreeMap<Uuid, TopicSpec> = [(
            t,
            TopicSpec {
                partitions: 6,
                weights: weights.clone(),
            },
        )]
        .into();
        let ms = vec![member("a", &[1]), member("b", &[1]), member("c", &[1])];
        let busiest = |r: &BTreeMap<String, Assignment>| {
            r.values()
                .map(|a| {
                    a.get(&t)
                        .map_or(0, |ps| ps.iter().map(|p| weights[*p as usize]).sum::<u64>())
                })
                .max()
                .unwrap()
        };
        let u = uniform(&ms, &topics, &BTreeMap::new());
        let l = load_aware(&ms, &topics);
        assert_eq!(busiest(&l), 1000);
        assert!(
            busiest(&u) > busiest(&l),
            "{} vs {}",
            busiest(&u),
            busiest(&l)
        );
        let spread: Vec<u64> = l
            .values()
            .map(|a| {
                a.get(&t)
                    .map_or(0, |ps| ps.iter().map(|p| weights[*p as usize]).sum())
            })
            .collect();
        assert_eq!(spread.iter().sum::<u64>(), 1050);
    }
}
