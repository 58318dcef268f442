//! DescribeClientQuotas and AlterClientQuotas (KIP-546): the quotas of users, client ids
//! and IPs, as `kafka-configs.sh --entity-type users|clients|ips` manages them. The rules
//! are Kafka's, in `weir_meta::client_quotas`; this file decodes, asks the broker state
//! (which persists before answering), encodes. The cluster operations they need
//! (DESCRIBE_CONFIGS, ALTER_CONFIGS) are checked before, in `cluster_access`.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::describe_client_quotas_response::{
    EntityData as DescribedEntity, EntryData as DescribedEntry, ValueData,
};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use weir_meta::client_quotas::{FilterComponent, QuotaAlteration, RequestEntity};

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::errors::meta_error_code;
use crate::state::BrokerState;

pub fn describe(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: DescribeClientQuotasRequest,
) -> Reply {
    let components: Vec<FilterComponent> = request
        .components
        .iter()
        .map(|c| FilterComponent {
            entity_type: c.entity_type.to_string(),
            match_type: c.match_type,
            name: c._match.as_ref().map(|m| m.to_string()),
        })
        .collect();
    let response = match state.describe_client_quotas(&components, request.strict) {
        Ok(entries) => DescribeClientQuotasResponse::default().with_entries(Some(
            entries
                .into_iter()
                .map(|(entity, values)| {
                    DescribedEntry::default()
                        .with_entity(
                            entity
                                .parts()
                                .into_iter()
                                .map(|(t, n)| {
                                    DescribedEntity::default()
                                        .with_entity_type(str_bytes(t))
                                        .with_entity_name(n.map(str_bytes))
                                })
                                .collect(),
                        )
                        .with_values(
                            values
                                .into_iter()
                                .map(|(k, v)| {
                                    ValueData::default().with_key(str_bytes(&k)).with_value(v)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )),
        Err(e) => DescribeClientQuotasResponse::default()
            .with_error_code(meta_error_code(&e))
            .with_error_message(Some(str_bytes(&e.to_string())))
            .with_entries(None),
    };
    meta.reply(&response)
}

pub fn alter(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: AlterClientQuotasRequest,
) -> Reply {
    let alterations: Vec<QuotaAlteration> = request
        .entries
        .iter()
        .map(|e| QuotaAlteration {
            entity: e
                .entity
                .iter()
                .map(|p| {
                    (
                        p.entity_type.to_string(),
                        p.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect(),
            ops: e
                .ops
                .iter()
                .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                .collect(),
        })
        .collect();
    let entry = |entity: &RequestEntity, code: i16, message: Option<String>| {
        AlteredEntry::default()
            .with_error_code(code)
            .with_error_message(message.as_deref().map(str_bytes))
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        AlteredEntity::default()
                            .with_entity_type(str_bytes(t))
                            .with_entity_name(n.as_deref().map(str_bytes))
                    })
                    .collect(),
            )
    };
    let entries = match state.alter_client_quotas(&alterations, request.validate_only) {
        Ok(results) => results
            .iter()
            .map(|(entity, r)| match r {
                Ok(()) => entry(entity, 0, None),
                Err(e) => entry(entity, meta_error_code(e), Some(e.to_string())),
            })
            .collect(),
        Err(e) => {
            // The catalog could not be written: no entity was changed.
            let mut entities: Vec<&RequestEntity> = alterations.iter().map(|a| &a.entity).collect();
            entities.dedup();
            entities
                .into_iter()
                .map(|entity| entry(entity, e.code, Some(e.message.clone())))
                .collect()
        }
    };
    meta.reply(&AlterClientQuotasResponse::default().with_entries(entries))
}
