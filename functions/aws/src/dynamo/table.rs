//! The table's definition in code, for tests, benchmarks and emulators. It mirrors
//! `infra/template.yaml` (a test compares the two), which is what deployments use.

use super::keys::*;
use crate::error::store_error;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use reclaim_workflow::ports::StoreError;

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| StoreError::Refused(format!("key schema: {e}")))
}

fn attr(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| StoreError::Refused(format!("attribute: {e}")))
}

fn gsi(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, StoreError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| StoreError::Refused(format!("index: {e}")))
}

/// Creates the table (on-demand capacity, stream with old and new images, TTL on
/// [`EXPIRES`]) and waits until it is active.
pub async fn create(client: &Client, table: &str) -> Result<(), StoreError> {
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(gsi(GSI1, G1PK, G1SK)?)
        .global_secondary_indexes(gsi(GSI2, G2PK, G2SK)?)
        .global_secondary_indexes(gsi(GSI3, G3PK, G3SK)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|e| StoreError::Refused(format!("stream: {e}")))?,
        );
    for a in [PK, SK, G1PK, G1SK, G2PK, G2SK, G3PK, G3SK] {
        req = req.attribute_definitions(attr(a)?);
    }
    req.send()
        .await
        .map_err(|e| store_error("CreateTable", &e))?;
    for _ in 0..100 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| store_error("DescribeTable", &e))?;
        if d.table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(EXPIRES)
                .build()
                .map_err(|e| StoreError::Refused(format!("ttl: {e}")))?,
        )
        .send()
        .await
        .map_err(|e| store_error("UpdateTimeToLive", &e))?;
    Ok(())
}

/// Deletes the table (tests clean up after themselves).
pub async fn delete(client: &Client, table: &str) -> Result<(), StoreError> {
    client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| store_error("DeleteTable", &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deployed table (`infra/template.yaml`) has the keys, indexes and TTL attribute the
    /// code uses.
    #[test]
    fn the_sam_template_declares_what_the_code_uses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
        let template = std::fs::read_to_string(path).unwrap();
        for a in [PK, SK, G1PK, G1SK, G2PK, G2SK, G3PK, G3SK] {
            assert!(
                template.contains(&format!("{{ AttributeName: {a}, AttributeType: S }}")),
                "attribute {a}"
            );
        }
        for index in [GSI1, GSI2] {
            assert!(template.contains(&format!("IndexName: {index}")), "{index}");
        }
        assert!(template.contains(&format!("AttributeName: {EXPIRES}")));
        assert!(template.contains("StreamViewType: NEW_AND_OLD_IMAGES"));
        assert!(template.contains(&format!("\"{EFFECTS}\": {{\"S\": [{{\"exists\": true}}]}}")));
    }
}
