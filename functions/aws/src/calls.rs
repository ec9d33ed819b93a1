//! Every AWS call a function makes, as IAM will authorize it: recorded at the SDK, by an
//! interceptor on each client the wiring builds ([`crate::wiring::Clients`]), so no call
//! escapes, and attributed to the function whose wiring built the client.
//!
//! Off unless asked for: tests build their functions with a [`CallLog`], and a process started
//! with `RECLAIM_AWS_CALL_LOG=FILE` (read once at init) appends each call to `FILE` as a JSON
//! line. Without either, no interceptor is registered at all.
//!
//! One call can be several authorization requests: IAM has no `TransactWriteItems` action,
//! it authorizes each item of a transaction as its own `PutItem`, `UpdateItem`, `DeleteItem` or
//! `ConditionCheckItem`; an SES `SendEmail` is authorized on the sending identity and on the
//! configuration set, if any. [`AwsCall::requests`] lists them, each with its resource and,
//! for DynamoDB's item-level calls, the partition keys IAM sees as `dynamodb:LeadingKeys` (on
//! a secondary index, the index's partition key).

use crate::dynamo::keys::{
    G1PK, G2PK, G3PK, G4PK, G5PK, G6PK, G7PK, GSI1, GSI2, GSI3, GSI4, GSI5, GSI6, GSI7, PK,
};
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// The environment variable naming a file to append every AWS call to (JSON lines).
pub const CALL_LOG_ENV: &str = "RECLAIM_AWS_CALL_LOG";

/// The five Lambda functions, each with its own role in `infra/template.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    Respond,
    Api,
    Effects,
    Sweep,
    /// Runs the usage connectors on a schedule ([`crate::connectors`]).
    Connectors,
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Respond,
        Function::Api,
        Function::Effects,
        Function::Sweep,
        Function::Connectors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Function::Respond => "respond",
            Function::Api => "api",
            Function::Effects => "effects",
            Function::Sweep => "sweep",
            Function::Connectors => "connectors",
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log that keeps entries only while it is switched on, shared by its clones' owners.
#[derive(Debug)]
pub struct Recording<T>(Mutex<Option<Vec<T>>>);

impl<T> Default for Recording<T> {
    fn default() -> Self {
        Recording(Mutex::new(None))
    }
}

impl<T> Recording<T> {
    /// Starts keeping entries (already kept ones stay).
    pub fn start(&self) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Vec::new);
    }

    /// Keeps `entry` if the log is on; drops it otherwise.
    pub fn push(&self, entry: T) {
        if let Some(log) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            log.push(entry);
        }
    }

    /// The entries kept since the last take (the log stays on).
    pub fn take(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// What a request is made on, as IAM names resources.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Resource {
    Table {
        table: String,
    },
    Index {
        table: String,
        index: String,
    },
    /// The secret id the call named: a name or an ARN.
    Secret {
        id: String,
    },
    /// The SES identity a message is sent from, given by its From address.
    SesIdentity {
        from: String,
    },
    SesConfigurationSet {
        name: String,
    },
    /// A resource this module does not know how to name (the check refuses it).
    Unknown {
        what: String,
    },
}

/// One authorization request: an action on a resource, with the context IAM's conditions see.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IamRequest {
    /// `dynamodb:PutItem`, `ses:SendEmail`, `secretsmanager:GetSecretValue`, ...
    pub action: String,
    pub resource: Resource,
    /// `dynamodb:LeadingKeys`: the partition key values the request touches (item-level calls
    /// only; empty for a scan, which names none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leading_keys: Vec<String>,
    /// `ses:FromAddress`: the address part of the From header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_address: Option<String>,
}

/// One SDK call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsCall {
    pub function: Function,
    /// The SDK's names: `DynamoDB` / `TransactWriteItems`, `SESv2` / `SendEmail`, ...
    pub service: String,
    pub operation: String,
    pub requests: Vec<IamRequest>,
}

impl AwsCall {
    /// The call as one line: `respond DynamoDB TransactWriteItems`.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.function, self.service, self.operation)
    }
}

/// The prefix of a partition key value that names its kind of item: up to and including the
/// first `#` (`C#`, `N#`, `M#`, `S#`), or the whole value when it has none (`DIR`, `RULE`).
pub fn key_prefix(value: &str) -> &str {
    match value.find('#') {
        Some(i) => &value[..=i],
        None => value,
    }
}

/// Where recorded calls go: kept in memory for [`CallLog::take`], and appended to a file when
/// one was given.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    calls: Arc<Recording<AwsCall>>,
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl CallLog {
    /// A log that keeps every call in memory.
    pub fn new() -> Self {
        let log = CallLog::default();
        log.calls.start();
        log
    }

    /// A log that also appends every call to `path` as a JSON line.
    pub fn to_file(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut log = CallLog::new();
        log.file = Some(Arc::new(Mutex::new(file)));
        Ok(log)
    }

    /// The log [`CALL_LOG_ENV`] asks for, if any (read once, at init). A file that cannot be
    /// opened is logged and recording stays off: it is a diagnostic, never a reason not to start.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os(CALL_LOG_ENV).filter(|p| !p.is_empty())?;
        match CallLog::to_file(std::path::Path::new(&path)) {
            Ok(log) => Some(log),
            Err(e) => {
                tracing::error!(path = ?path, error = %e, "cannot open the AWS call log; not recording");
                None
            }
        }
    }

    /// The calls recorded since the last take.
    pub fn take(&self) -> Vec<AwsCall> {
        self.calls.take()
    }

    /// The interceptor that records `function`'s calls here.
    pub fn interceptor(&self, function: Function) -> RecordCalls {
        RecordCalls {
            function,
            log: self.clone(),
        }
    }

    fn record(&self, call: AwsCall) {
        if let Some(file) = &self.file {
            match serde_json::to_string(&call) {
                Ok(mut line) => {
                    line.push('\n');
                    let mut f = file.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Err(e) = f.write_all(line.as_bytes()) {
                        tracing::warn!(error = %e, "cannot append to the AWS call log");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode an AWS call"),
            }
        }
        self.calls.push(call);
    }
}

/// The SDK interceptor: reads each request once, after it is serialized (before signing and
/// before any retry), and records what it asks of IAM.
#[derive(Clone, Debug)]
pub struct RecordCalls {
    function: Function,
    log: CallLog,
}

impl Intercept for RecordCalls {
    fn name(&self) -> &'static str {
        "RecordCalls"
    }

    fn read_after_serialization(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_string(), m.name().to_string()),
            None => ("unknown".to_string(), "unknown".to_string()),
        };
        let body: Value = context
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let requests = requests(&service, &operation, &body);
        self.log.record(AwsCall {
            function: self.function,
            service,
            operation,
            requests,
        });
        // Recording never fails a call.
        Ok(())
    }
}

/// The authorization requests one call makes, from its serialized JSON body.
pub fn requests(service: &str, operation: &str, body: &Value) -> Vec<IamRequest> {
    match service {
        "DynamoDB" => dynamodb_requests(operation, body),
        "SESv2" => ses_requests(operation, body),
        "Secrets Manager" => vec![IamRequest {
            action: format!("secretsmanager:{operation}"),
            resource: match body.get("SecretId").and_then(Value::as_str) {
                Some(id) => Resource::Secret { id: id.to_string() },
                None => Resource::Unknown {
                    what: format!("{operation} without a SecretId"),
                },
            },
            leading_keys: Vec::new(),
            from_address: None,
        }],
        other => vec![IamRequest {
            action: format!("{}:{operation}", other.to_ascii_lowercase()),
            resource: Resource::Unknown {
                what: format!("a {other} request"),
            },
            leading_keys: Vec::new(),
            from_address: None,
        }],
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The string value of an attribute in DynamoDB's JSON (`{"S": "..."}`).
fn attr_string<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|a| str_of(a, "S"))
}

fn table_resource(table: Option<&str>, index: Option<&str>) -> Resource {
    match (table, index) {
        (Some(t), Some(i)) => Resource::Index {
            table: t.to_string(),
            index: i.to_string(),
        },
        (Some(t), None) => Resource::Table {
            table: t.to_string(),
        },
        (None, _) => Resource::Unknown {
            what: "a DynamoDB request without a TableName".into(),
        },
    }
}

fn item_request(action: &str, table: Option<&str>, key_or_item: Option<&Value>) -> IamRequest {
    IamRequest {
        action: format!("dynamodb:{action}"),
        resource: table_resource(table, None),
        leading_keys: key_or_item
            .and_then(|k| attr_string(k, PK))
            .map(|v| vec![v.to_string()])
            .unwrap_or_default(),
        from_address: None,
    }
}

/// The partition key value a query's key condition fixes (`#pk = :pk`), resolving the
/// expression's names and values; the partition attribute is the table's or the index's.
fn queried_partition(body: &Value) -> Option<String> {
    let attribute = match str_of(body, "IndexName") {
        None => PK,
        Some(i) if i == GSI1 => G1PK,
        Some(i) if i == GSI2 => G2PK,
        Some(i) if i == GSI3 => G3PK,
        Some(i) if i == GSI4 => G4PK,
        Some(i) if i == GSI5 => G5PK,
        Some(i) if i == GSI6 => G6PK,
        Some(i) if i == GSI7 => G7PK,
        Some(_) => return None,
    };
    let condition = str_of(body, "KeyConditionExpression")?;
    let names = body.get("ExpressionAttributeNames");
    let values = body.get("ExpressionAttributeValues")?;
    condition.split(" AND ").find_map(|clause| {
        let (lhs, rhs) = clause.split_once('=')?;
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let name = if lhs.starts_with('#') {
            names.and_then(|n| str_of(n, lhs))?
        } else {
            lhs
        };
        if name != attribute {
            return None;
        }
        values
            .get(rhs)
            .and_then(|v| str_of(v, "S"))
            .map(String::from)
    })
}

fn dynamodb_requests(operation: &str, body: &Value) -> Vec<IamRequest> {
    let table = str_of(body, "TableName");
    match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => {
            vec![item_request(operation, table, body.get("Key"))]
        }
        "PutItem" => vec![item_request(operation, table, body.get("Item"))],
        "Query" => vec![IamRequest {
            action: "dynamodb:Query".into(),
            resource: table_resource(table, str_of(body, "IndexName")),
            leading_keys: queried_partition(body).into_iter().collect(),
            from_address: None,
        }],
        "Scan" => vec![IamRequest {
            action: "dynamodb:Scan".into(),
            resource: table_resource(table, str_of(body, "IndexName")),
            leading_keys: Vec::new(),
            from_address: None,
        }],
        "BatchGetItem" | "BatchWriteItem" => {
            let Some(tables) = body.get("RequestItems").and_then(Value::as_object) else {
                return vec![item_request(operation, None, None)];
            };
            tables
                .iter()
                .map(|(name, spec)| {
                    let entries: Vec<&Value> = match spec {
                        // BatchGetItem: {"Keys": [...]}
                        Value::Object(o) => o
                            .get("Keys")
                            .and_then(Value::as_array)
                            .map(|ks| ks.iter().collect())
                            .unwrap_or_default(),
                        // BatchWriteItem: [{"PutRequest": {"Item"}} | {"DeleteRequest": {"Key"}}]
                        Value::Array(rs) => rs
                            .iter()
                            .filter_map(|r| {
                                r.pointer("/PutRequest/Item")
                                    .or_else(|| r.pointer("/DeleteRequest/Key"))
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    let mut keys: Vec<String> = entries
                        .iter()
                        .filter_map(|k| attr_string(k, PK).map(String::from))
                        .collect();
                    keys.sort();
                    keys.dedup();
                    IamRequest {
                        action: format!("dynamodb:{operation}"),
                        resource: table_resource(Some(name), None),
                        leading_keys: keys,
                        from_address: None,
                    }
                })
                .collect()
        }
        // Each item of a transaction is authorized as the single-item action it performs.
        "TransactWriteItems" | "TransactGetItems" => body
            .get("TransactItems")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|t| {
                        let (action, part) = [
                            ("PutItem", "Put"),
                            ("UpdateItem", "Update"),
                            ("DeleteItem", "Delete"),
                            ("ConditionCheckItem", "ConditionCheck"),
                            ("GetItem", "Get"),
                        ]
                        .into_iter()
                        .find_map(|(action, part)| t.get(part).map(|p| (action, p)))
                        .unwrap_or(("Unknown", &Value::Null));
                        let key = part.get("Key").or_else(|| part.get("Item"));
                        item_request(action, str_of(part, "TableName"), key)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        other => vec![IamRequest {
            action: format!("dynamodb:{other}"),
            resource: table_resource(table, None),
            leading_keys: Vec::new(),
            from_address: None,
        }],
    }
}

/// `reclaim@example.com` from `Reclaim <reclaim@example.com>` or the bare address.
pub fn bare_address(from: &str) -> &str {
    match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => from[a + 1..b].trim(),
        _ => from.trim(),
    }
}

fn ses_requests(operation: &str, body: &Value) -> Vec<IamRequest> {
    let action = format!("ses:{operation}");
    let from = str_of(body, "FromEmailAddress").map(|f| bare_address(f).to_string());
    let mut out = vec![IamRequest {
        action: action.clone(),
        resource: match &from {
            Some(f) => Resource::SesIdentity { from: f.clone() },
            None => Resource::Unknown {
                what: format!("{operation} without a FromEmailAddress"),
            },
        },
        leading_keys: Vec::new(),
        from_address: from.clone(),
    }];
    if let Some(set) = str_of(body, "ConfigurationSetName") {
        out.push(IamRequest {
            action,
            resource: Resource::SesConfigurationSet {
                name: set.to_string(),
            },
            leading_keys: Vec::new(),
            from_address: from,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_transaction_is_one_request_per_item_with_its_partition_key() {
        let body = json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "C#c-1"}, "sk": {"S": "C"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "C#c-1"}, "sk": {"S": "H#1"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "N#RC1"}, "sk": {"S": "N"}}}}
        ]});
        let r = requests("DynamoDB", "TransactWriteItems", &body);
        let got: Vec<(&str, &[String])> = r
            .iter()
            .map(|r| (r.action.as_str(), r.leading_keys.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("dynamodb:PutItem", &["C#c-1".to_string()][..]),
                ("dynamodb:PutItem", &["C#c-1".to_string()][..]),
                ("dynamodb:ConditionCheckItem", &["N#RC1".to_string()][..]),
            ]
        );
        assert!(r
            .iter()
            .all(|r| r.resource == Resource::Table { table: "t".into() }));
    }

    #[test]
    fn a_query_names_the_index_and_the_partition_it_reads() {
        let body = json!({
            "TableName": "t", "IndexName": "by-state-due",
            "KeyConditionExpression": "#pk = :pk AND #sk < :bound",
            "ExpressionAttributeNames": {"#pk": "g1pk", "#sk": "g1sk"},
            "ExpressionAttributeValues": {":pk": {"S": "S#ready#2"}, ":bound": {"S": "2026"}}
        });
        let r = requests("DynamoDB", "Query", &body);
        assert_eq!(
            r[0].resource,
            Resource::Index {
                table: "t".into(),
                index: "by-state-due".into()
            }
        );
        assert_eq!(r[0].leading_keys, ["S#ready#2"]);
        assert_eq!(key_prefix(&r[0].leading_keys[0]), "S#");
        assert_eq!(key_prefix("DIR"), "DIR");
    }

    #[test]
    fn batches_name_every_partition_and_mail_names_identity_and_set() {
        let body = json!({"RequestItems": {"t": [
            {"PutRequest": {"Item": {"pk": {"S": "C#a"}}}},
            {"PutRequest": {"Item": {"pk": {"S": "N#1"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "C#a"}}}}
        ]}});
        let r = requests("DynamoDB", "BatchWriteItem", &body);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].leading_keys, ["C#a", "N#1"]);
        let mail =
            json!({"FromEmailAddress": "Reclaim <r@example.com>", "ConfigurationSetName": "cs"});
        let r = requests("SESv2", "SendEmail", &mail);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].resource,
            Resource::SesIdentity {
                from: "r@example.com".into()
            }
        );
        assert_eq!(r[1].from_address.as_deref(), Some("r@example.com"));
    }

    #[test]
    fn a_recording_keeps_entries_only_while_on() {
        let r = Recording::default();
        r.push(1);
        assert!(r.take().is_empty());
        r.start();
        r.push(2);
        assert_eq!(r.take(), [2]);
    }
}
