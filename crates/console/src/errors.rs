//! HTTP errors: a status and a JSON body `{"error": "<one sentence>", "code": "<snake_case>"}`,
//! the sentence for a person and the code for a program.
//!
//! A broker service answers with a Kafka error code; [`status_of`] is the one place that
//! turns such a code into an HTTP status, an exhaustive match so that every Kafka error has
//! a decided status.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use weir_broker::state::ApiError;
use weir_wire::ResponseError;

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The body of every error answer, as the OpenAPI document describes it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// One sentence saying what went wrong and, where it helps, what to do.
    pub error: String,
    /// A stable snake_case code to branch on, e.g. `unknown_topic`, `malformed_json`.
    pub code: String,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::CONFLICT, code, message)
    }

    /// The group coordinator is not running: the broker is starting or stopping.
    pub fn coordinator_unavailable() -> HttpError {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "coordinator_not_available",
            "The group coordinator is not running (the broker is starting or stopping); try again in a moment.",
        )
    }

    /// A Kafka error code with its message, as a broker service returned it.
    pub fn from_kafka(code: i16, message: impl Into<String>) -> HttpError {
        let message = sentence(message.into());
        match ResponseError::try_from_code(code) {
            Some(e) => {
                let (status, code) = status_of(e);
                HttpError::new(status, code, message)
            }
            None => HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        }
    }
}

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> HttpError {
        HttpError::from_kafka(e.code, e.message)
    }
}

impl From<weir_log::store::StoreError> for HttpError {
    fn from(e: weir_log::store::StoreError) -> HttpError {
        match e {
            weir_log::store::StoreError::Log(e) => e.into(),
            weir_log::store::StoreError::UnknownPartition => HttpError::not_found(
                "unknown_partition",
                "The partition was deleted while it was being read.",
            ),
        }
    }
}

impl From<weir_log::LogError> for HttpError {
    fn from(e: weir_log::LogError) -> HttpError {
        ApiError::from(e).into()
    }
}

/// A service's message as one sentence: capitalised, with a full stop.
fn sentence(mut message: String) -> String {
    if let Some(first) = message.chars().next() {
        let upper: String = first.to_uppercase().collect();
        message.replace_range(..first.len_utf8(), &upper);
    }
    if !message.ends_with(['.', '!', '?']) {
        message.push('.');
    }
    message
}

/// The HTTP status and code of a Kafka error. Bad input is a 4xx; only the broker's own
/// failures (storage, an unexpected state) are a 5xx.
pub fn status_of(e: ResponseError) -> (StatusCode, &'static str) {
    use ResponseError as E;
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    const CONFLICT: StatusCode = StatusCode::CONFLICT;
    const UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
    const INTERNAL: StatusCode = StatusCode::INTERNAL_SERVER_ERROR;
    const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
    match e {
        E::UnknownTopicOrPartition | E::UnknownTopicId => {
            (StatusCode::NOT_FOUND, "unknown_topic_or_partition")
        }
        E::GroupIdNotFound => (StatusCode::NOT_FOUND, "unknown_group"),
        E::ResourceNotFound
        | E::TransactionalIdNotFound
        | E::DelegationTokenNotFound
        | E::LogDirNotFound
        | E::ListenerNotFound
        | E::SnapshotNotFound
        | E::VoterNotFound
        | E::UnknownSubscriptionId
        | E::UnknownProducerId => (StatusCode::NOT_FOUND, "not_found"),
        E::TopicAlreadyExists => (CONFLICT, "topic_exists"),
        E::NonEmptyGroup => (CONFLICT, "group_not_empty"),
        E::RebalanceInProgress | E::UnknownMemberId | E::IllegalGeneration => {
            (CONFLICT, "group_active")
        }
        E::GroupSubscribedToTopic => (CONFLICT, "group_subscribed_to_topic"),
        E::ReassignmentInProgress
        | E::ConcurrentTransactions
        | E::DuplicateResource
        | E::DuplicateBrokerRegistration
        | E::DuplicateVoter
        | E::InconsistentGroupProtocol
        | E::InconsistentTopicId
        | E::InconsistentClusterId
        | E::InconsistentVoterSet
        | E::FencedInstanceId
        | E::UnreleasedInstanceId
        | E::FencedMemberEpoch
        | E::StaleMemberEpoch
        | E::FencedLeaderEpoch
        | E::FencedStateEpoch
        | E::ProducerFenced
        | E::TransactionCoordinatorFenced
        | E::InvalidProducerEpoch
        | E::InvalidTxnState
        | E::TransactionAbortable
        | E::OutOfOrderSequenceNumber
        | E::DuplicateSequenceNumber
        | E::StreamsTopologyFenced
        | E::InvalidUpdateVersion
        | E::StaleBrokerEpoch
        | E::StaleControllerEpoch => (CONFLICT, "conflict"),
        E::InvalidPartitions => (BAD, "invalid_partitions"),
        E::InvalidConfig => (BAD, "invalid_config"),
        E::InvalidTopicException => (BAD, "invalid_topic"),
        E::InvalidReplicationFactor | E::InvalidReplicaAssignment => (BAD, "invalid_replication"),
        E::PolicyViolation => (BAD, "policy_violation"),
        E::MessageTooLarge | E::RecordListTooLarge | E::OffsetMetadataTooLarge => {
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        }
        E::TelemetryTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        E::OffsetOutOfRange | E::PositionOutOfRange | E::OffsetMovedToTieredStorage => {
            (BAD, "offset_out_of_range")
        }
        E::InvalidGroupId => (BAD, "invalid_group"),
        E::InvalidRecord | E::CorruptMessage | E::InvalidTimestamp => (BAD, "invalid_record"),
        E::InvalidRequest
        | E::InvalidFetchSize
        | E::InvalidRequiredAcks
        | E::InvalidSessionTimeout
        | E::InvalidCommitOffsetSize
        | E::UnsupportedVersion
        | E::UnsupportedForMessageFormat
        | E::UnsupportedCompressionType
        | E::UnsupportedAssignor
        | E::UnsupportedEndpointType
        | E::UnsupportedSaslMechanism
        | E::MismatchedEndpointType
        | E::InvalidProducerIdMapping
        | E::InvalidTransactionTimeout
        | E::InvalidPrincipalType
        | E::InvalidFetchSessionEpoch
        | E::FetchSessionIdNotFound
        | E::FetchSessionTopicIdError
        | E::InvalidRegularExpression
        | E::InvalidRecordState
        | E::InvalidRegistration
        | E::InvalidShareSessionEpoch
        | E::ShareSessionNotFound
        | E::InvalidVoterKey
        | E::StreamsInvalidTopology
        | E::StreamsInvalidTopologyEpoch
        | E::MemberIdRequired
        | E::GroupMaxSizeReached
        | E::IllegalSaslState
        | E::UnacceptableCredential
        | E::PrincipalDeserializationFailure
        | E::IneligibleReplica
        | E::ElectionNotNeeded
        | E::NoReassignmentInProgress
        | E::OperationNotAttempted
        | E::TopicDeletionDisabled
        | E::FeatureUpdateFailed
        | E::UnknownLeaderEpoch
        | E::DelegationTokenOwnerMismatch
        | E::DelegationTokenRequestNotAllowed
        | E::DelegationTokenExpired
        | E::DelegationTokenAuthDisabled
        | E::SecurityDisabled
        | E::UnknownControllerId
        | E::BrokerIdNotRegistered => (BAD, "invalid_request"),
        E::TopicAuthorizationFailed
        | E::GroupAuthorizationFailed
        | E::ClusterAuthorizationFailed
        | E::TransactionalIdAuthorizationFailed
        | E::DelegationTokenAuthorizationFailed
        | E::SaslAuthenticationFailed => (FORBIDDEN, "not_authorized"),
        E::ThrottlingQuotaExceeded | E::ShareSessionLimitReached => {
            (StatusCode::TOO_MANY_REQUESTS, "throttled")
        }
        E::CoordinatorLoadInProgress
        | E::CoordinatorNotAvailable
        | E::NotCoordinator
        | E::LeaderNotAvailable
        | E::NotLeaderOrFollower
        | E::BrokerNotAvailable
        | E::ReplicaNotAvailable
        | E::NotEnoughReplicas
        | E::NotEnoughReplicasAfterAppend
        | E::NotController
        | E::RequestTimedOut
        | E::NetworkException
        | E::PreferredLeaderNotAvailable
        | E::EligibleLeadersNotAvailable
        | E::NewLeaderElected
        | E::OffsetNotAvailable
        | E::UnstableOffsetCommit
        | E::RebootstrapRequired => (UNAVAILABLE, "unavailable"),
        E::KafkaStorageError => (INTERNAL, "storage_error"),
        E::UnknownServerError | E::Unknown(_) => (INTERNAL, "internal"),
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message, "code": self.code });
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The answer to any path no route serves.
pub async fn not_found(uri: Uri) -> HttpError {
    HttpError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!(
            "There is nothing at {}; metrics are at /metrics and the API is described at /api/v1/openapi.json.",
            uri.path()
        ),
    }
}

/// The answer to a method a path does not serve.
pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> HttpError {
    HttpError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!(
            "The path {} does not take {method}; /api/v1/openapi.json lists what each path takes.",
            uri.path()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statuses callers rely on: unknown things are 404, conflicts 409, bad input 400,
    /// and a code outside Kafka's table is the broker's fault, never the caller's.
    #[test]
    fn kafka_codes_map_to_the_documented_statuses() {
        let status = |e: ResponseError| HttpError::from_kafka(e.code(), "x").status;
        assert_eq!(status(ResponseError::UnknownTopicOrPartition), 404);
        assert_eq!(status(ResponseError::GroupIdNotFound), 404);
        assert_eq!(status(ResponseError::TopicAlreadyExists), 409);
        assert_eq!(status(ResponseError::NonEmptyGroup), 409);
        assert_eq!(status(ResponseError::InvalidPartitions), 400);
        assert_eq!(status(ResponseError::InvalidConfig), 400);
        assert_eq!(status(ResponseError::InvalidTopicException), 400);
        assert_eq!(status(ResponseError::KafkaStorageError), 500);
        assert_eq!(HttpError::from_kafka(31_000, "x").status, 500);
    }

    /// A service's lower-case fragment reads as a sentence in the body.
    #[test]
    fn messages_become_sentences() {
        let e = HttpError::from_kafka(36, "topic 'a' already exists");
        assert_eq!(e.message, "Topic 'a' already exists.");
        assert_eq!(e.code, "topic_exists");
        let e = HttpError::from_kafka(36, "Done.");
        assert_eq!(e.message, "Done.");
    }
}
