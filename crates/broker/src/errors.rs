//! Mapping crate errors to Kafka error codes: one exhaustive match per crate.

use weir_log::store::StoreError;
use weir_log::LogError;
use weir_meta::MetaError;
use weir_wire::ResponseError;

pub fn log_error_code(e: &LogError) -> i16 {
    match e {
        LogError::CorruptMessage(_) => ResponseError::CorruptMessage.code(),
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord.code(),
        LogError::InvalidRecords(_) => ResponseError::InvalidRecord.code(),
        LogError::InvalidTimestamps(_) => ResponseError::InvalidTimestamp.code(),
        LogError::RecordTooLarge { .. } => ResponseError::MessageTooLarge.code(),
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber.code(),
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch.code(),
        LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState.code(),
        LogError::TransactionCoordinatorFenced { .. } => {
            ResponseError::TransactionCoordinatorFenced.code()
        }
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange.code(),
        LogError::UnknownCompression(_) => ResponseError::UnsupportedCompressionType.code(),
        LogError::Decompress(_) => ResponseError::CorruptMessage.code(),
        LogError::DecompressedTooLarge { .. } => ResponseError::TelemetryTooLarge.code(),
        LogError::Io(_) => ResponseError::KafkaStorageError.code(),
        LogError::NotCoordinator(_) => ResponseError::NotCoordinator.code(),
    }
}

/// A storage engine's refusal about one partition.
pub fn store_error_code(e: &StoreError) -> i16 {
    match e {
        StoreError::UnknownPartition => ResponseError::UnknownTopicOrPartition.code(),
        StoreError::Log(e) => log_error_code(e),
    }
}

pub fn meta_error_code(e: &MetaError) -> i16 {
    match e {
        MetaError::TopicExists(_) => ResponseError::TopicAlreadyExists.code(),
        MetaError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition.code(),
        MetaError::InvalidTopicName { .. } => ResponseError::InvalidTopicException.code(),
        MetaError::InvalidPartitions(_) => ResponseError::InvalidPartitions.code(),
        MetaError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor.code(),
        MetaError::InvalidConfig(_) => ResponseError::InvalidConfig.code(),
        MetaError::InvalidGroupConfig(_) => ResponseError::InvalidConfig.code(),
        MetaError::TooManyGroupConfigs(_) => ResponseError::PolicyViolation.code(),
        MetaError::InvalidClientMetricsRequest(_) => ResponseError::InvalidRequest.code(),
        MetaError::InvalidClientMetricsConfig(_) => ResponseError::InvalidConfig.code(),
        MetaError::TooManyClientMetrics(_) => ResponseError::PolicyViolation.code(),
        MetaError::UnacceptableCredential(_) => ResponseError::UnacceptableCredential.code(),
        MetaError::UnknownScramMechanism(_) => ResponseError::UnsupportedSaslMechanism.code(),
        MetaError::UnknownScramCredential { .. } => ResponseError::ResourceNotFound.code(),
        MetaError::ScramUserAlteredTwice(_) => ResponseError::DuplicateResource.code(),
        MetaError::ScramUserDescribedTwice(_) => ResponseError::DuplicateResource.code(),
        MetaError::UnknownScramUser(_) => ResponseError::ResourceNotFound.code(),
        MetaError::TooManyScramUsers(_) => ResponseError::PolicyViolation.code(),
        MetaError::InvalidScramBootstrap(_) => ResponseError::InvalidConfig.code(),
        MetaError::InvalidAcl(_) => ResponseError::InvalidRequest.code(),
        MetaError::TooManyAcls(_) => ResponseError::PolicyViolation.code(),
        // Kafka's controller fails such a request with a plain runtime exception.
        MetaError::TooManyAclDeletions(_) => ResponseError::UnknownServerError.code(),
        MetaError::InvalidQuotaRequest(_) => ResponseError::InvalidRequest.code(),
        MetaError::UnsupportedQuotaEntity(_) => ResponseError::UnsupportedVersion.code(),
        MetaError::TooManyClientQuotaEntities(_) => ResponseError::PolicyViolation.code(),
        MetaError::Corrupt(_) => ResponseError::UnknownServerError.code(),
        // Both mean "try again": admin clients retry NOT_CONTROLLER after refreshing their
        // metadata, which is what a change decided on a stale catalog needs.
        MetaError::CatalogConflict | MetaError::CatalogUnavailable(_) => {
            ResponseError::NotController.code()
        }
        // Kafka's answer while its producer id manager waits for a block: retriable.
        MetaError::ProducerIdsUnavailable(_) => ResponseError::CoordinatorLoadInProgress.code(),
    }
}
