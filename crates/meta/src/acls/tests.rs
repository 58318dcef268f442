//! Tests of the ACL model, the filters and the authorizer's decision.

use super::*;

fn binding(
    resource_type: ResourceType,
    name: &str,
    pattern: PatternType,
    principal: &str,
    host: &str,
    operation: Operation,
    permission: PermissionType,
) -> AclBinding {
    AclBinding {
        resource_type,
        resource_name: name.to_string(),
        pattern_type: pattern,
        principal: principal.to_string(),
        host: host.to_string(),
        operation,
        permission,
    }
}

fn allow_topic(name: &str, pattern: PatternType, principal: &str, op: Operation) -> AclBinding {
    binding(
        ResourceType::Topic,
        name,
        pattern,
        principal,
        "*",
        op,
        PermissionType::Allow,
    )
}

fn deny_topic(name: &str, pattern: PatternType, principal: &str, op: Operation) -> AclBinding {
    binding(
        ResourceType::Topic,
        name,
        pattern,
        principal,
        "*",
        op,
        PermissionType::Deny,
    )
}

fn local() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

fn can(acls: &Acls, principal: &str, op: Operation, topic: &str) -> bool {
    acls.authorize(
        &HashSet::new(),
        principal,
        local(),
        op,
        ResourceType::Topic,
        topic,
    )
}

fn acls_of(bindings: Vec<AclBinding>) -> Acls {
    let mut acls = Acls::default();
    for b in bindings {
        assert!(acls.create(b).unwrap());
    }
    acls
}

#[test]
fn codes_and_names_are_kafkas() {
    // Goal: every enum value has Kafka's wire code and name, and codes round-trip.
    assert_eq!(ResourceType::Topic.code(), 2);
    assert_eq!(ResourceType::User.code(), 7);
    assert_eq!(ResourceType::TransactionalId.name(), "TRANSACTIONAL_ID");
    assert_eq!(PatternType::Literal.code(), 3);
    assert_eq!(PatternType::Prefixed.code(), 4);
    assert_eq!(Operation::All.code(), 2);
    assert_eq!(Operation::TwoPhaseCommit.code(), 15);
    assert_eq!(Operation::DescribeConfigs.name(), "DESCRIBE_CONFIGS");
    assert_eq!(PermissionType::Deny.code(), 2);
    assert_eq!(PermissionType::Allow.code(), 3);
    for t in ResourceType::ALL {
        assert_eq!(ResourceType::from_code(t.code()), Some(t));
    }
    for o in Operation::ALL {
        assert_eq!(Operation::from_code(o.code()), Some(o));
    }
    assert_eq!(ResourceType::from_code(CODE_ANY), None);
    assert_eq!(Operation::from_code(16), None);
    assert!(is_known_pattern_type(CODE_MATCH));
    assert!(!is_known_operation(CODE_MATCH - 2));
    assert!(!is_known_resource_type(8));
    assert!(is_known_permission(CODE_ANY));
}

#[test]
fn allow_of_read_write_delete_alter_implies_describe_but_deny_does_not() {
    // Goal: Kafka's implied operations, for ALLOW only.
    for op in [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::Alter,
    ] {
        let acls = acls_of(vec![allow_topic("t", PatternType::Literal, "User:a", op)]);
        assert!(can(&acls, "User:a", Operation::Describe, "t"), "{op:?}");
        assert!(can(&acls, "User:a", op, "t"));
        assert!(!can(&acls, "User:a", Operation::DescribeConfigs, "t"));
    }
    let acls = acls_of(vec![allow_topic(
        "t",
        PatternType::Literal,
        "User:a",
        Operation::AlterConfigs,
    )]);
    assert!(can(&acls, "User:a", Operation::DescribeConfigs, "t"));
    assert!(!can(&acls, "User:a", Operation::Describe, "t"));
    // CREATE implies nothing.
    let acls = acls_of(vec![allow_topic(
        "t",
        PatternType::Literal,
        "User:a",
        Operation::Create,
    )]);
    assert!(!can(&acls, "User:a", Operation::Describe, "t"));
    // A DENY of READ leaves DESCRIBE to the ALLOW of WRITE.
    let acls = acls_of(vec![
        allow_topic("t", PatternType::Literal, "User:a", Operation::Write),
        deny_topic("t", PatternType::Literal, "User:a", Operation::Read),
    ]);
    assert!(can(&acls, "User:a", Operation::Describe, "t"));
    assert!(!can(&acls, "User:a", Operation::Read, "t"));
    // A DENY of DESCRIBE refuses DESCRIBE only, not the READ that implies it.
    let acls = acls_of(vec![
        allow_topic("t", PatternType::Literal, "User:a", Operation::Read),
        deny_topic("t", PatternType::Literal, "User:a", Operation::Describe),
    ]);
    assert!(!can(&acls, "User:a", Operation::Describe, "t"));
    assert!(can(&acls, "User:a", Operation::Read, "t"));
}

#[test]
fn deny_beats_allow_wherever_each_comes_from() {
    // Goal: one applying DENY refuses, whether it is literal, prefixed or wildcard and
    // whatever ALLOWs (ALL included) match.
    let cases = [
        deny_topic("orders", PatternType::Literal, "User:a", Operation::Read),
        deny_topic("ord", PatternType::Prefixed, "User:a", Operation::Read),
        deny_topic("*", PatternType::Literal, "User:a", Operation::Read),
        deny_topic("orders", PatternType::Literal, "User:*", Operation::All),
    ];
    for deny in cases {
        let acls = acls_of(vec![
            allow_topic("orders", PatternType::Literal, "User:a", Operation::All),
            allow_topic("o", PatternType::Prefixed, "User:a", Operation::Read),
            deny,
        ]);
        assert!(!can(&acls, "User:a", Operation::Read, "orders"));
    }
}

#[test]
fn literal_prefixed_and_wildcard_names_apply_as_kafka_applies_them() {
    // Goal: literal is exact, `*` literal is every name, prefixed is a prefix (not a
    // literal prefix); a prefixed `*` is only names starting with '*'.
    let acls = acls_of(vec![
        allow_topic("foo", PatternType::Literal, "User:lit", Operation::Read),
        allow_topic("foo", PatternType::Prefixed, "User:pre", Operation::Read),
        allow_topic("*", PatternType::Literal, "User:any", Operation::Read),
        allow_topic("*", PatternType::Prefixed, "User:star", Operation::Read),
    ]);
    assert!(can(&acls, "User:lit", Operation::Read, "foo"));
    assert!(!can(&acls, "User:lit", Operation::Read, "foobar"));
    assert!(can(&acls, "User:pre", Operation::Read, "foo"));
    assert!(can(&acls, "User:pre", Operation::Read, "foobar"));
    assert!(!can(&acls, "User:pre", Operation::Read, "fo"));
    assert!(can(&acls, "User:any", Operation::Read, "anything"));
    assert!(!can(&acls, "User:star", Operation::Read, "anything"));
    assert!(can(&acls, "User:star", Operation::Read, "*x"));
    // Another resource type is another world.
    assert!(!acls.authorize(
        &HashSet::new(),
        "User:any",
        local(),
        Operation::Read,
        ResourceType::Group,
        "foo"
    ));
}

#[test]
fn principals_and_hosts_match_exactly_or_by_wildcard() {
    // Goal: `User:*` is any user; a host is `*`, the exact address, or a CIDR range.
    let mut acls = acls_of(vec![
        allow_topic("t", PatternType::Literal, "User:*", Operation::Read),
        binding(
            ResourceType::Topic,
            "h",
            PatternType::Literal,
            "User:a",
            "10.0.0.7",
            Operation::Read,
            PermissionType::Allow,
        ),
        binding(
            ResourceType::Topic,
            "r",
            PatternType::Literal,
            "User:a",
            "10.1.0.0/16",
            Operation::Read,
            PermissionType::Allow,
        ),
        binding(
            ResourceType::Topic,
            "n",
            PatternType::Literal,
            "User:a",
            "example.com",
            Operation::Read,
            PermissionType::Allow,
        ),
    ]);
    let none = HashSet::new();
    let at = |acls: &Acls, ip: &str, topic: &str| {
        acls.authorize(
            &none,
            "User:a",
            ip.parse().unwrap(),
            Operation::Read,
            ResourceType::Topic,
            topic,
        )
    };
    assert!(can(&acls, "User:anyone", Operation::Read, "t"));
    assert!(!can(&acls, "Group:anyone", Operation::Read, "h"));
    assert!(at(&acls, "10.0.0.7", "h"));
    assert!(
        at(&acls, "::ffff:10.0.0.7", "h"),
        "an IPv4-mapped client is its IPv4"
    );
    assert!(!at(&acls, "10.0.0.8", "h"));
    assert!(at(&acls, "10.1.200.3", "r"));
    assert!(!at(&acls, "10.2.0.1", "r"));
    assert!(!at(&acls, "::1", "r"));
    assert!(!at(&acls, "10.0.0.7", "n"));
    acls.create(binding(
        ResourceType::Topic,
        "v6",
        PatternType::Literal,
        "User:a",
        "fd00::/8",
        Operation::Read,
        PermissionType::Allow,
    ))
    .unwrap();
    assert!(at(&acls, "fd12::1", "v6"));
    assert!(!at(&acls, "fe80::1", "v6"));
}

#[test]
fn super_users_and_the_no_acl_default() {
    // Goal: super users pass even a DENY; without any ACL on the resource the answer
    // is the `allow.everyone.if.no.acl.found` flag, but ACLs for someone else deny.
    let mut acls = acls_of(vec![deny_topic(
        "t",
        PatternType::Literal,
        "User:*",
        Operation::All,
    )]);
    let supers: HashSet<String> = ["User:admin".to_string()].into();
    let ask = |acls: &Acls, who: &str, topic: &str| {
        acls.authorize(
            &supers,
            who,
            local(),
            Operation::Write,
            ResourceType::Topic,
            topic,
        )
    };
    assert!(ask(&acls, "User:admin", "t"));
    assert!(!ask(&acls, "User:bob", "t"));
    assert!(!ask(&acls, "User:bob", "free"));
    acls.set_allow_everyone_if_no_acl_found(true);
    assert!(ask(&acls, "User:bob", "free"));
    assert!(!ask(&acls, "User:bob", "t"));
    acls.create(allow_topic(
        "other",
        PatternType::Literal,
        "User:carol",
        Operation::Read,
    ))
    .unwrap();
    assert!(
        !ask(&acls, "User:bob", "other"),
        "ACLs exist for the resource"
    );
}

#[test]
fn filters_match_as_kafkas_do_including_match() {
    // Goal: ANY compares names exactly across pattern types; MATCH finds every
    // pattern applying to the name; entry fields filter exactly.
    let foo_lit = allow_topic("foo", PatternType::Literal, "User:a", Operation::Read);
    let star = allow_topic("*", PatternType::Literal, "User:a", Operation::Read);
    let fo_pre = allow_topic("fo", PatternType::Prefixed, "User:b", Operation::Write);
    let foo_pre = allow_topic("foo", PatternType::Prefixed, "User:a", Operation::Read);
    let bar = allow_topic("bar", PatternType::Prefixed, "User:a", Operation::Read);
    let group = binding(
        ResourceType::Group,
        "foo",
        PatternType::Literal,
        "User:a",
        "*",
        Operation::Read,
        PermissionType::Deny,
    );
    let acls = acls_of(vec![
        foo_lit.clone(),
        star.clone(),
        fo_pre.clone(),
        foo_pre.clone(),
        bar.clone(),
        group.clone(),
    ]);
    let mut f = AclBindingFilter::any();
    assert_eq!(acls.describe(&f).len(), 6);
    f.resource_type = Some(ResourceType::Topic);
    f.resource_name = Some("foo".into());
    f.pattern_type = PatternFilter::Match;
    let mut want = vec![
        foo_lit.clone(),
        star.clone(),
        fo_pre.clone(),
        foo_pre.clone(),
    ];
    want.sort();
    assert_eq!(acls.describe(&f), want);
    f.pattern_type = PatternFilter::Any;
    let mut want = vec![foo_lit.clone(), foo_pre.clone()];
    want.sort();
    assert_eq!(acls.describe(&f), want);
    f.pattern_type = PatternFilter::Only(PatternType::Prefixed);
    assert_eq!(acls.describe(&f), vec![foo_pre.clone()]);
    f.resource_name = None;
    let mut want = vec![fo_pre.clone(), foo_pre.clone(), bar.clone()];
    want.sort();
    assert_eq!(acls.describe(&f), want);
    let mut by_entry = AclBindingFilter::any();
    by_entry.principal = Some("User:b".into());
    assert_eq!(acls.describe(&by_entry), vec![fo_pre]);
    by_entry.principal = None;
    by_entry.permission = Some(PermissionType::Deny);
    assert_eq!(acls.describe(&by_entry), vec![group]);
    by_entry.permission = None;
    by_entry.host = Some("10.0.0.1".into());
    assert!(acls.describe(&by_entry).is_empty());
}

#[test]
fn filters_from_codes_refuse_codes_kafka_does_not_know() {
    // Goal: ANY and MATCH read as filters; UNKNOWN and codes past the end refuse.
    let f = AclBindingFilter::from_codes(1, None, 2, None, None, 1, 1).unwrap();
    assert_eq!(f.pattern_type, PatternFilter::Match);
    assert_eq!(f.resource_type, None);
    let f = AclBindingFilter::from_codes(2, Some("t"), 3, Some("User:a"), Some("*"), 3, 3).unwrap();
    assert_eq!(f.resource_type, Some(ResourceType::Topic));
    assert_eq!(f.operation, Some(Operation::Read));
    assert!(AclBindingFilter::from_codes(0, None, 1, None, None, 1, 1).is_none());
    assert!(AclBindingFilter::from_codes(1, None, 0, None, None, 1, 1).is_none());
    assert!(AclBindingFilter::from_codes(1, None, 1, None, None, 16, 1).is_none());
    assert!(AclBindingFilter::from_codes(1, None, 1, None, None, 1, 4).is_none());
    assert!(AclBindingFilter::from_codes(8, None, 1, None, None, 1, 1).is_none());
}

#[test]
fn creations_are_checked_with_kafkas_sentences() {
    // Goal: each refusal Kafka's CreateAcls gives, in Kafka's order and words.
    let err = |rt: i8, name: &str, pt: i8, principal: &str, host: &str, op: i8, perm: i8| {
        match AclBinding::from_codes(rt, name, pt, principal, host, op, perm) {
            Err(MetaError::InvalidAcl(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert_eq!(
        err(4, "c", 3, "User:a", "*", 3, 3),
        "The only valid name for the CLUSTER resource is kafka-cluster"
    );
    assert_eq!(
        err(2, "", 3, "User:a", "*", 3, 3),
        "Invalid empty resource name"
    );
    assert_eq!(
        err(1, "t", 3, "User:a", "*", 3, 3),
        "Invalid resourceType ANY"
    );
    assert_eq!(
        err(2, "t", 1, "User:a", "*", 3, 3),
        "Invalid patternType ANY"
    );
    assert_eq!(
        err(2, "t", 2, "User:a", "*", 3, 3),
        "Invalid patternType MATCH"
    );
    assert_eq!(err(2, "t", 3, "User:a", "*", 1, 3), "Invalid operation ANY");
    assert_eq!(
        err(2, "t", 3, "User:a", "*", 3, 1),
        "Invalid permissionType ANY"
    );
    assert_eq!(
        err(2, "t", 3, "alice", "*", 3, 3),
        "Could not parse principal from `alice` (no colon is present separating the principal type from the principal name)"
    );
    assert_eq!(
        err(2, "t", 3, "User:a", "", 3, 3),
        "Host pattern cannot be null or empty"
    );
    assert_eq!(
        err(2, "t", 3, "User:a", "10.0.0.0/33", 3, 3),
        "Invalid CIDR notation '10.0.0.0/33': Value [33] not in range [0,32]"
    );
    assert!(err(2, "t", 3, "User:a", "host/8", 3, 3).starts_with("Invalid CIDR notation"));
    // Accepted as Kafka accepts them.
    for (principal, host) in [
        ("User:*", "*"),
        ("User:a", "192.168.1.1"),
        ("User:a", "::1"),
        ("Group:x", "10.0.0.0/8"),
        ("User:a", "some-host"),
    ] {
        AclBinding::from_codes(2, "t", 4, principal, host, 2, 2).unwrap();
    }
    let cluster = AclBinding::from_codes(4, "kafka-cluster", 3, "User:a", "*", 7, 3).unwrap();
    assert_eq!(cluster.resource_type, ResourceType::Cluster);
    assert_eq!(cluster.operation, Operation::Alter);
}

#[test]
fn create_is_idempotent_and_bounded() {
    // Goal: a binding created twice is kept once and both creations succeed; the
    // store refuses a new binding past ACLS_MAX but still accepts existing ones.
    let mut acls = Acls::default();
    let b = allow_topic("t", PatternType::Literal, "User:a", Operation::Read);
    assert!(acls.create(b.clone()).unwrap());
    assert!(!acls.create(b.clone()).unwrap());
    assert_eq!(acls.len(), 1);
    for i in 1..ACLS_MAX {
        acls.create(allow_topic(
            &format!("t{i}"),
            PatternType::Literal,
            "User:a",
            Operation::Read,
        ))
        .unwrap();
    }
    assert_eq!(acls.len(), ACLS_MAX);
    assert_eq!(
        acls.create(allow_topic(
            "new",
            PatternType::Literal,
            "User:a",
            Operation::Read
        )),
        Err(MetaError::TooManyAcls(ACLS_MAX))
    );
    assert_eq!(acls.create(b), Ok(false));
    let mut bad = allow_topic("", PatternType::Literal, "User:a", Operation::Read);
    assert!(matches!(
        acls.create(bad.clone()),
        Err(MetaError::InvalidAcl(_))
    ));
    bad.resource_name = "t".into();
    bad.principal = "nobody".into();
    assert!(matches!(acls.create(bad), Err(MetaError::InvalidAcl(_))));
}

#[test]
fn delete_reports_per_filter_and_updates_decisions() {
    // Goal: each filter lists what it matched before the request (overlaps under both),
    // the index forgets removed ACLs, and a filter past the per-request bound fails
    // without removing anything.
    let read = allow_topic("p", PatternType::Prefixed, "User:a", Operation::Read);
    let write = allow_topic("pay", PatternType::Literal, "User:a", Operation::Write);
    let mut acls = acls_of(vec![read.clone(), write.clone()]);
    assert!(can(&acls, "User:a", Operation::Read, "payments"));
    let mut by_principal = AclBindingFilter::any();
    by_principal.principal = Some("User:a".into());
    let mut by_op = AclBindingFilter::any();
    by_op.operation = Some(Operation::Write);
    let results = acls.delete(&[by_op.clone(), by_principal, AclBindingFilter::any()]);
    assert_eq!(results[0], Ok(vec![write.clone()]));
    let mut both = vec![read.clone(), write.clone()];
    both.sort();
    assert_eq!(results[1], Ok(both.clone()));
    assert_eq!(results[2], Ok(both));
    assert!(acls.is_empty());
    assert!(!can(&acls, "User:a", Operation::Read, "payments"));
    assert_eq!(acls.delete(&[by_op]), vec![Ok(vec![])]);

    for i in 0..=ACL_DELETIONS_PER_REQUEST_MAX {
        acls.create(allow_topic(
            &format!("t{i}"),
            PatternType::Literal,
            "User:a",
            Operation::Read,
        ))
        .unwrap();
    }
    let mut one = AclBindingFilter::any();
    one.resource_name = Some("t0".into());
    let results = acls.delete(&[one, AclBindingFilter::any()]);
    assert_eq!(results[0].as_ref().unwrap().len(), 1);
    assert_eq!(
        results[1],
        Err(MetaError::TooManyAclDeletions(
            ACL_DELETIONS_PER_REQUEST_MAX
        ))
    );
    assert_eq!(acls.len(), ACL_DELETIONS_PER_REQUEST_MAX);
}

#[test]
fn removing_keeps_the_index_in_step_with_the_set() {
    // Goal: after any sequence of creations and removals, every decision equals the
    // one a store built from scratch with the same bindings gives.
    let names = ["a", "ab", "abc", "b", "*"];
    let mut acls = Acls::default();
    let mut seed: u64 = 7;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for _ in 0..400 {
        let b = binding(
            ResourceType::Topic,
            names[next() % names.len()],
            PatternType::ALL[next() % 2],
            ["User:a", "User:*"][next() % 2],
            "*",
            [Operation::Read, Operation::Write, Operation::All][next() % 3],
            PermissionType::ALL[next() % 2],
        );
        if next() % 3 == 0 {
            acls.remove(&b);
        } else {
            acls.create(b).unwrap();
        }
        let fresh = acls_of(acls.iter().cloned().collect());
        for topic in ["a", "abc", "abd", "b", "c", "*"] {
            for op in [Operation::Read, Operation::Write, Operation::Describe] {
                assert_eq!(
                    can(&acls, "User:a", op, topic),
                    can(&fresh, "User:a", op, topic)
                );
            }
        }
    }
}

#[test]
fn acls_round_trip_through_serde_and_rebuild_their_index() {
    // Goal: what is persisted is the list of bindings, read back into the same store
    // with working decisions.
    let acls = acls_of(vec![
        allow_topic("orders", PatternType::Prefixed, "User:a", Operation::Read),
        binding(
            ResourceType::Cluster,
            CLUSTER_RESOURCE_NAME,
            PatternType::Literal,
            "User:ops",
            "10.0.0.0/8",
            Operation::Alter,
            PermissionType::Allow,
        ),
    ]);
    let json = serde_json::to_string(&acls).unwrap();
    assert!(json.contains("\"PREFIXED\"") && json.contains("\"CLUSTER\""));
    let back: Acls = serde_json::from_str(&json).unwrap();
    assert_eq!(back, acls);
    assert!(can(&back, "User:a", Operation::Describe, "orders-eu"));
}

#[test]
fn the_catalog_persists_acls_and_loads_files_written_before_them() {
    // Goal: ACLs survive a catalog round trip, and an older catalog without them loads
    // with none.
    let mut c = crate::Catalog::new("c".into());
    c.acls
        .create(allow_topic(
            "t",
            PatternType::Literal,
            "User:a",
            Operation::Write,
        ))
        .unwrap();
    let back = crate::Catalog::from_bytes(&c.to_bytes()).unwrap();
    assert_eq!(back.acls, c.acls);
    assert!(can(&back.acls, "User:a", Operation::Write, "t"));
    let old = br#"{"cluster_id":"c","topics":{},"producer_id_block_next":0}"#;
    assert!(crate::Catalog::from_bytes(old).unwrap().acls.is_empty());
}

fn can_any(acls: &Acls, principal: &str, op: Operation) -> bool {
    acls.authorize_any(&HashSet::new(), principal, local(), op, ResourceType::Topic)
}

#[test]
fn authorize_any_needs_an_allow_no_deny_covers() {
    let mut acls = Acls::default();
    assert!(!can_any(&acls, "User:alice", Operation::Write));
    acls.create(allow_topic(
        "orders",
        PatternType::Literal,
        "User:alice",
        Operation::Write,
    ))
    .unwrap();
    assert!(can_any(&acls, "User:alice", Operation::Write));
    assert!(!can_any(&acls, "User:bob", Operation::Write));
    assert!(!can_any(&acls, "User:alice", Operation::Read));
    // A prefixed DENY that starts the allowed name covers it.
    acls.create(deny_topic(
        "ord",
        PatternType::Prefixed,
        "User:alice",
        Operation::Write,
    ))
    .unwrap();
    assert!(!can_any(&acls, "User:alice", Operation::Write));
    // Another ALLOW outside the denied prefix is enough.
    acls.create(allow_topic(
        "pay",
        PatternType::Prefixed,
        "User:*",
        Operation::All,
    ))
    .unwrap();
    assert!(can_any(&acls, "User:alice", Operation::Write));
    // A DENY on the wildcard covers every topic.
    acls.create(deny_topic(
        "*",
        PatternType::Literal,
        "User:alice",
        Operation::All,
    ))
    .unwrap();
    assert!(!can_any(&acls, "User:alice", Operation::Write));
    assert!(can_any(&acls, "User:bob", Operation::Write));
}
