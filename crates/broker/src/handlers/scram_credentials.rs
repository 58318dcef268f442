//! DescribeUserScramCredentials and AlterUserScramCredentials (KIP-554): the users' SCRAM
//! credentials, as `kafka-configs.sh --entity-type users` and the Admin client manage
//! them. The rules are Kafka's controller's, in `weir_meta::user_scram_credentials`;
//! this file decodes, asks the broker state (which persists before answering), encodes.

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use weir_meta::user_scram_credentials::{ScramDeletion, ScramUpsertion};

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::errors::meta_error_code;
use crate::state::BrokerState;

pub fn describe(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: DescribeUserScramCredentialsRequest,
) -> Reply {
    // Authorization: DESCRIBE on CLUSTER is checked in dispatch (`cluster_access`).
    let users: Option<Vec<String>> = request
        .users
        .map(|users| users.iter().map(|u| u.name.to_string()).collect());
    let results = state
        .describe_scram_credentials(users.as_deref())
        .into_iter()
        .map(|(user, described)| {
            let result = DescribeUserScramCredentialsResult::default().with_user(str_bytes(&user));
            match described {
                Ok(infos) => result.with_credential_infos(
                    infos
                        .into_iter()
                        .map(|(m, iterations)| {
                            CredentialInfo::default()
                                .with_mechanism(m.type_id())
                                .with_iterations(iterations)
                        })
                        .collect(),
                ),
                Err(e) => result
                    .with_error_code(meta_error_code(&e))
                    .with_error_message(Some(str_bytes(&e.to_string()))),
            }
        })
        .collect();
    meta.reply(&DescribeUserScramCredentialsResponse::default().with_results(results))
}

pub fn alter(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: AlterUserScramCredentialsRequest,
) -> Reply {
    // Authorization: ALTER on CLUSTER is checked in dispatch (`cluster_access`).
    let deletions: Vec<ScramDeletion> = request
        .deletions
        .iter()
        .map(|d| ScramDeletion {
            user: d.name.to_string(),
            mechanism: d.mechanism,
        })
        .collect();
    let upsertions: Vec<ScramUpsertion> = request
        .upsertions
        .iter()
        .map(|u| ScramUpsertion {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            iterations: u.iterations,
            salt: u.salt.to_vec(),
            salted_password: u.salted_password.to_vec(),
        })
        .collect();
    let result = |user: &str, code: i16, message: Option<String>| {
        AlterUserScramCredentialsResult::default()
            .with_user(str_bytes(user))
            .with_error_code(code)
            .with_error_message(message.as_deref().map(str_bytes))
    };
    let results = match state.alter_scram_credentials(&deletions, &upsertions) {
        Ok(results) => results
            .into_iter()
            .map(|(user, r)| match r {
                Ok(()) => result(&user, 0, None),
                Err(e) => result(&user, meta_error_code(&e), Some(e.to_string())),
            })
            .collect(),
        Err(e) => {
            // The catalog could not be written: no user was changed.
            let mut users: Vec<&str> = deletions
                .iter()
                .map(|d| d.user.as_str())
                .chain(upsertions.iter().map(|u| u.user.as_str()))
                .collect();
            users.sort_unstable();
            users.dedup();
            users
                .into_iter()
                .map(|u| result(u, e.code, Some(e.message.clone())))
                .collect()
        }
    };
    meta.reply(&AlterUserScramCredentialsResponse::default().with_results(results))
}
