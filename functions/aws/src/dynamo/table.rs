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
    let projection = if KEYS_ONLY.contains(&name) {
        Projection::builder().projection_type(ProjectionType::KeysOnly)
    } else {
        Projection::builder().projection_type(ProjectionType::All)
    };
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(projection.build())
        .build()
        .map_err(|e| StoreError::Refused(format!("index: {e}")))
}

/// Every key attribute of the table and its indexes (strings, all of them).
const ATTRIBUTES: [&str; 16] = [
    PK, SK, G1PK, G1SK, G2PK, G2SK, G3PK, G3SK, G4PK, G4SK, G5PK, G5SK, G6PK, G6SK, G7PK, G7SK,
];

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
        .global_secondary_indexes(gsi(GSI4, G4PK, G4SK)?)
        .global_secondary_indexes(gsi(GSI5, G5PK, G5SK)?)
        .global_secondary_indexes(gsi(GSI6, G6PK, G6SK)?)
        .global_secondary_indexes(gsi(GSI7, G7PK, G7SK)?)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(|e| StoreError::Refused(format!("stream: {e}")))?,
        );
    for a in ATTRIBUTES {
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
        for a in ATTRIBUTES {
            assert!(
                template.contains(&format!("{{ AttributeName: {a}, AttributeType: S }}")),
                "attribute {a}"
            );
        }
        for index in [GSI1, GSI2, GSI3] {
            assert!(template.contains(&format!("IndexName: {index}")), "{index}");
        }
        // Keys only: a transition that keeps a candidate's user, software and alert time
        // writes nothing to these.
        for index in KEYS_ONLY {
            let at = template.find(&format!("IndexName: {index}")).unwrap();
            let projection = template[at..].find("Projection:").unwrap() + at;
            assert!(
                template[projection..].starts_with("Projection: { ProjectionType: KEYS_ONLY }"),
                "{index} projects keys only"
            );
        }
        assert!(template.contains(&format!("AttributeName: {EXPIRES}")));
        assert!(template.contains("StreamViewType: NEW_AND_OLD_IMAGES"));
        assert!(template.contains(&format!("\"{EFFECTS}\": {{\"S\": [{{\"exists\": true}}]}}")));
    }
}
