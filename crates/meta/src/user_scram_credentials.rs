//! DescribeUserScramCredentials and AlterUserScramCredentials decided as Kafka's
//! controller decides them, over the [`Catalog`]: which users are described or changed, and
//! each user's error. The broker decodes the request, persists the catalog and encodes.
//!
//! Kafka's rules, kept here:
//! - A describe without users (null or empty) describes every user with a credential; a
//!   user named twice gets DUPLICATE_RESOURCE, one without credentials RESOURCE_NOT_FOUND.
//! - An alter names each user once: a second deletion or upsertion for the same user, of
//!   whichever mechanism, fails that user with DUPLICATE_RESOURCE, and nothing is changed
//!   for it. The other users' changes still apply.
//! - A deletion must name a credential that exists (checked against the catalog before the
//!   request); an upsertion carries the salted password, from which the keys are derived.

use std::collections::{BTreeMap, BTreeSet};

use crate::scram::{self, ScramCredential, ScramMechanism};
use crate::{Catalog, MetaError};

/// One deletion of AlterUserScramCredentials; `mechanism` is Kafka's type number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramDeletion {
    pub user: String,
    pub mechanism: i8,
}

/// One upsertion of AlterUserScramCredentials; `mechanism` is Kafka's type number.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramUpsertion {
    pub user: String,
    pub mechanism: i8,
    pub iterations: i32,
    pub salt: Vec<u8>,
    pub salted_password: Vec<u8>,
}

/// What one described user gets: each mechanism it has with its iteration count.
pub type DescribedUser = Result<Vec<(ScramMechanism, i32)>, MetaError>;

/// What one altered user gets: nothing, or why its alteration was refused.
pub type AlteredUser = Result<(), MetaError>;

/// DescribeUserScramCredentials: `None` or no names describes every user, sorted;
/// otherwise each distinct name once, in the order first named.
pub fn describe(catalog: &Catalog, users: Option<&[String]>) -> Vec<(String, DescribedUser)> {
    let all = catalog.scram_users();
    let named = match users {
        None => return all.into_iter().map(|(u, infos)| (u, Ok(infos))).collect(),
        Some([]) => return all.into_iter().map(|(u, infos)| (u, Ok(infos))).collect(),
        Some(named) => named,
    };
    let mut times_named: BTreeMap<&str, usize> = BTreeMap::new();
    for user in named {
        *times_named.entry(user.as_str()).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for user in named {
        if !seen.insert(user.as_str()) {
            continue;
        }
        let result = if times_named[user.as_str()] > 1 {
            Err(MetaError::ScramUserDescribedTwice(user.clone()))
        } else {
            all.get(user)
                .cloned()
                .ok_or_else(|| MetaError::UnknownScramUser(user.clone()))
        };
        out.push((user.clone(), result));
    }
    out
}

/// AlterUserScramCredentials: checks every alteration, applies those that pass to the
/// catalog, and returns one result per user named: successful deletions first, then
/// successful upsertions, then the failures, each group in request order.
pub fn alter(
    catalog: &mut Catalog,
    deletions: &[ScramDeletion],
    upsertions: &[ScramUpsertion],
) -> Vec<(String, AlteredUser)> {
    // 1. Sort each alteration into accepted or failed, one per user. Accepted ones are
    //    keyed by user (a request may name many) with their position, for the answer's order.
    let mut failed: Vec<(String, MetaError)> = Vec::new();
    let mut failed_users: BTreeSet<String> = BTreeSet::new();
    let mut deleting: BTreeMap<&str, (usize, ScramMechanism)> = BTreeMap::new();
    let mut upserting: BTreeMap<&str, (usize, ScramMechanism, &ScramUpsertion)> = BTreeMap::new();
    let mut fail = |user: &str, e: MetaError, failed_users: &mut BTreeSet<String>| {
        failed_users.insert(user.to_string());
        failed.push((user.to_string(), e));
    };
    for (position, d) in deletions.iter().enumerate() {
        if failed_users.contains(&d.user) {
            continue;
        }
        if deleting.remove(d.user.as_str()).is_some() {
            let twice = MetaError::ScramUserAlteredTwice(d.user.clone());
            fail(&d.user, twice, &mut failed_users);
            continue;
        }
        match check_deletion(catalog, d) {
            Ok(m) => {
                deleting.insert(&d.user, (position, m));
            }
            Err(e) => fail(&d.user, e, &mut failed_users),
        }
    }
    for (position, u) in upsertions.iter().enumerate() {
        if failed_users.contains(&u.user) {
            continue;
        }
        let earlier_deletion = deleting.remove(u.user.as_str()).is_some();
        let earlier_upsertion = upserting.remove(u.user.as_str()).is_some();
        if earlier_deletion || earlier_upsertion {
            let twice = MetaError::ScramUserAlteredTwice(u.user.clone());
            fail(&u.user, twice, &mut failed_users);
            continue;
        }
        match check_upsertion(u) {
            Ok(m) => {
                upserting.insert(&u.user, (position, m, u));
            }
            Err(e) => fail(&u.user, e, &mut failed_users),
        }
    }

    // 2. Apply what passed. An upsertion can still fail on the catalog's user bound.
    let mut deleting: Vec<_> = deleting.into_iter().collect();
    deleting.sort_by_key(|(_, (position, _))| *position);
    let mut upserting: Vec<_> = upserting.into_iter().collect();
    upserting.sort_by_key(|(_, (position, _, _))| *position);
    let mut out = Vec::new();
    for (user, (_, mechanism)) in deleting {
        let removed = catalog.delete_scram_credential(user, mechanism);
        assert!(
            removed,
            "checked that {user} has a {mechanism:?} credential"
        );
        out.push((user.to_string(), Ok(())));
    }
    let mut late_failures = Vec::new();
    for (user, (_, mechanism, u)) in upserting {
        let credential = ScramCredential::from_salted_password(
            mechanism,
            &u.salt,
            &u.salted_password,
            u.iterations,
        );
        match catalog.set_scram_credential(user, mechanism, credential) {
            Ok(()) => out.push((user.to_string(), Ok(()))),
            Err(e) => late_failures.push((user.to_string(), Err(e))),
        }
    }
    out.extend(late_failures);
    out.extend(failed.into_iter().map(|(user, e)| (user, Err(e))));
    out
}

fn check_user_and_mechanism(user: &str, mechanism: i8) -> Result<ScramMechanism, MetaError> {
    if user.is_empty() {
        return Err(MetaError::UnacceptableCredential(
            "Username must not be empty".to_string(),
        ));
    }
    ScramMechanism::from_type(mechanism).ok_or(MetaError::UnknownScramMechanism(mechanism))
}

fn check_deletion(catalog: &Catalog, d: &ScramDeletion) -> Result<ScramMechanism, MetaError> {
    let mechanism = check_user_and_mechanism(&d.user, d.mechanism)?;
    if catalog.scram_credential(&d.user, mechanism).is_none() {
        return Err(MetaError::UnknownScramCredential {
            user: d.user.clone(),
            mechanism: mechanism.name(),
        });
    }
    Ok(mechanism)
}

fn check_upsertion(u: &ScramUpsertion) -> Result<ScramMechanism, MetaError> {
    let mechanism = check_user_and_mechanism(&u.user, u.mechanism)?;
    scram::check_iterations(u.iterations)?;
    if u.salted_password.len() > scram::SALTED_PASSWORD_BYTES_MAX {
        return Err(MetaError::UnacceptableCredential(format!(
            "Salted password must not be longer than {} bytes",
            scram::SALTED_PASSWORD_BYTES_MAX
        )));
    }
    // The name and salt bounds are the catalog's own, checked again as it stores the
    // credential; checking them here makes the user's error come before any change. The
    // keys are derived only once the upsertion has passed.
    let unkeyed = ScramCredential {
        salt: u.salt.clone(),
        iterations: u.iterations,
        stored_key: Vec::new(),
        server_key: Vec::new(),
    };
    crate::catalog::check_scram_credential(&u.user, &unkeyed)?;
    Ok(mechanism)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramUpsertion {
        let m = ScramMechanism::from_type(mechanism).unwrap_or(ScramMechanism::Sha256);
        ScramUpsertion {
            user: user.to_string(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: m.salted_password(b"pw", b"salt", 4096),
        }
    }

    fn delete(user: &str, mechanism: i8) -> ScramDeletion {
        ScramDeletion {
            user: user.to_string(),
            mechanism,
        }
    }

    fn codes(results: &[(String, Result<(), MetaError>)]) -> Vec<(&str, Option<&MetaError>)> {
        results
            .iter()
            .map(|(u, r)| (u.as_str(), r.as_ref().err()))
            .collect()
    }

    #[test]
    fn upsertions_store_keys_derived_from_the_salted_password() {
        // Goal: an upserted credential verifies the password that was salted client-side,
        // and describe shows each mechanism with its iterations.
        let mut c = Catalog::new("c".into());
        let r = alter(
            &mut c,
            &[],
            &[upsert("alice", 1, 4096), upsert("bob", 2, 8192)],
        );
        assert_eq!(codes(&r), vec![("alice", None), ("bob", None)]);
        assert!(c
            .scram_credential("alice", ScramMechanism::Sha256)
            .unwrap()
            .verify_password(ScramMechanism::Sha256, "pw"));
        let d = describe(&c, None);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[1],
            ("bob".into(), Ok(vec![(ScramMechanism::Sha512, 8192)]))
        );
        assert_eq!(describe(&c, Some(&[])), d, "no names is every user");
    }

    #[test]
    fn each_refusal_has_kafkas_error() {
        // Goal: empty names, unknown mechanisms, iteration bounds, deleting what does not
        // exist and naming a user twice are refused per user; other users still change.
        let mut c = Catalog::new("c".into());
        alter(
            &mut c,
            &[],
            &[upsert("carol", 1, 4096), upsert("twice", 1, 4096)],
        );
        let r = alter(
            &mut c,
            &[
                delete("", 1),
                delete("x", 0),
                delete("nobody", 1),
                delete("carol", 1),
                delete("twice", 1),
                delete("twice", 1),
            ],
            &[
                upsert("few", 1, 4095),
                upsert("many", 2, 16385),
                upsert("weird", 3, 4096),
                upsert("carol", 2, 4096),
                upsert("dave", 1, 4096),
                upsert("dave", 2, 4096),
                upsert("erin", 2, 16384),
            ],
        );
        let got: BTreeMap<&str, Option<&MetaError>> = codes(&r).into_iter().collect();
        assert_eq!(got.len(), 10, "{r:?}");
        assert_eq!(got["erin"], None);
        assert!(matches!(
            got[""],
            Some(MetaError::UnacceptableCredential(_))
        ));
        assert_eq!(got["x"], Some(&MetaError::UnknownScramMechanism(0)));
        assert_eq!(got["weird"], Some(&MetaError::UnknownScramMechanism(3)));
        assert!(matches!(
            got["nobody"],
            Some(MetaError::UnknownScramCredential { .. })
        ));
        assert_eq!(
            got["few"],
            Some(&MetaError::UnacceptableCredential(
                "Too few iterations".into()
            ))
        );
        assert_eq!(
            got["many"],
            Some(&MetaError::UnacceptableCredential(
                "Too many iterations".into()
            ))
        );
        for twice in ["carol", "twice", "dave"] {
            assert_eq!(
                got[twice],
                Some(&MetaError::ScramUserAlteredTwice(twice.into())),
                "{twice}"
            );
        }
        assert!(
            c.scram_credential("carol", ScramMechanism::Sha256)
                .is_some(),
            "a user altered twice is left as it was"
        );
        assert!(c
            .scram_credential("twice", ScramMechanism::Sha256)
            .is_some());
        assert!(c.scram_credential("dave", ScramMechanism::Sha256).is_none());
        assert!(c.scram_credential("erin", ScramMechanism::Sha512).is_some());
        assert_eq!(r.last().unwrap().0, "dave", "failures come last");
    }

    #[test]
    fn deletions_remove_and_describe_reports_missing_and_repeated_users() {
        // Goal: a deletion removes one mechanism; describe answers a named user without
        // credentials with RESOURCE_NOT_FOUND and one named twice with DUPLICATE_RESOURCE.
        let mut c = Catalog::new("c".into());
        alter(&mut c, &[], &[upsert("alice", 1, 4096)]);
        alter(&mut c, &[], &[upsert("alice", 2, 4096)]);
        let r = alter(&mut c, &[delete("alice", 1)], &[]);
        assert_eq!(codes(&r), vec![("alice", None)]);
        let names: Vec<String> = ["alice", "nobody", "twice", "twice"]
            .map(String::from)
            .to_vec();
        let d = describe(&c, Some(&names));
        assert_eq!(
            d,
            vec![
                ("alice".into(), Ok(vec![(ScramMechanism::Sha512, 4096)])),
                (
                    "nobody".into(),
                    Err(MetaError::UnknownScramUser("nobody".into()))
                ),
                (
                    "twice".into(),
                    Err(MetaError::ScramUserDescribedTwice("twice".into()))
                ),
            ]
        );
    }
}
