//! Shared by the tests that run against the AWS emulator (moto in server mode, started by
//! `test.sh`, which exports `RECLAIM_MOTO_URL`). Every test makes its own table.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod roles;
pub mod runtime_api;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use reclaim_aws::calls::{AwsCall, CallLog, Function};
use reclaim_aws::config::{AwsSettings, LinkKeySource};
use reclaim_aws::dynamo::table;
use reclaim_aws::wiring::{self, Clients, Wiring};
use reclaim_aws::DynamoStore;
use reclaim_workflow::ports::Revoker;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The emulator's URL. Without it these tests cannot mean anything, so they fail loudly
/// instead of passing silently.
pub fn moto_url() -> String {
    match std::env::var("RECLAIM_MOTO_URL") {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => panic!(
            "RECLAIM_MOTO_URL is not set: these tests run against the AWS emulator. Run \
             ./test.sh (it starts moto), or start `python -m moto.server -H 127.0.0.1 -p 5000` \
             and export RECLAIM_MOTO_URL=http://127.0.0.1:5000"
        ),
    }
}

/// Where DynamoDB calls go: DynamoDB Local when `RECLAIM_DYNAMODB_URL` is set (test.sh's second
/// run, because moto does not enforce DynamoDB's limits, such as the 400 KB item), otherwise
/// moto like every other service.
pub fn dynamodb_url() -> String {
    match std::env::var("RECLAIM_DYNAMODB_URL") {
        Ok(u) if !u.is_empty() => u.trim_end_matches('/').to_string(),
        _ => moto_url(),
    }
}

/// Each service's endpoint, as `AWS_ENDPOINT_URL_<SERVICE>` gives it to a deployed function:
/// DynamoDB (and its streams) to [`dynamodb_url`], everything else to moto.
#[derive(Debug)]
struct Endpoints {
    moto: String,
    dynamodb: String,
}

impl LoadServiceConfig for Endpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.profile() != "endpoint_url" {
            return None;
        }
        Some(if key.service_id().starts_with("DynamoDB") {
            self.dynamodb.clone()
        } else {
            self.moto.clone()
        })
    }
}

/// SDK configuration pointed at the emulators, with their dummy credentials.
pub async fn sdk() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
        .into_builder()
        .service_config(Endpoints {
            moto: moto_url(),
            dynamodb: dynamodb_url(),
        })
        .build()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A table name no other test (or earlier run against the same emulator) uses.
pub fn table_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "reclaim-{what}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An empty store over a new table.
pub async fn fresh_store(what: &str) -> DynamoStore {
    let sdk = sdk().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let name = table_name(what);
    table::create(&client, &name).await.unwrap();
    DynamoStore::new(client, name)
}

/// What the store contract suite needs: something that derefs to an empty store.
pub struct Fixture(pub DynamoStore);

impl std::ops::Deref for Fixture {
    type Target = DynamoStore;
    fn deref(&self) -> &DynamoStore {
        &self.0
    }
}

pub async fn fresh() -> Fixture {
    Fixture(fresh_store("contract").await)
}

/// A minimal HTTP/1.1 exchange with the emulator (its management API and raw JSON calls),
/// so the tests need no HTTP client crate. Returns status and body.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A JSON call to an emulated AWS API by its target header (neither emulator checks
/// signatures); DynamoDB's and its streams' go where [`dynamodb_url`] says.
pub async fn aws_json(target: &str, body: &serde_json::Value) -> serde_json::Value {
    let (status, text) = aws_json_answer(target, body).await;
    assert_eq!(status, 200, "{target}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// [`aws_json`], with the status and the text as they came, for a caller that handles errors.
pub async fn aws_json_answer(target: &str, body: &serde_json::Value) -> (u16, String) {
    let url = if target.starts_with("DynamoDB") {
        dynamodb_url()
    } else {
        moto_url()
    };
    let (status, text) = http(
        "POST",
        &format!("{url}/"),
        &[
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", target),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            ),
        ],
        &body.to_string(),
    )
    .await;
    (status, text)
}

/// One test at a time reads a table's stream, holding this for the whole test: DynamoDB Local
/// answers `TrimmedDataAccessException` to stream reads when several tables' streams are read
/// at once (each alone reads fine; moto reads fine either way), and the DynamoDB tests share one
/// binary.
pub static STREAM_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reads a table's stream from where it left off in each shard (started at TRIM_HORIZON) and
/// returns the new records as the Lambda event source mapping would deliver them. As a real
/// consumer does, a shard whose iterator DynamoDB Local has trimmed (`TrimmedDataAccessException`,
/// seen when other tables are busy) is read again from just after the last record taken.
pub struct StreamReader {
    table: String,
    arn: String,
    shards: Vec<Shard>,
}

struct Shard {
    id: String,
    iterator: String,
    last: Option<String>,
}

impl StreamReader {
    pub async fn open(table: &str) -> StreamReader {
        let d = aws_json(
            "DynamoDB_20120810.DescribeTable",
            &serde_json::json!({ "TableName": table }),
        )
        .await;
        let arn = d["Table"]["LatestStreamArn"].as_str().unwrap().to_string();
        let s = aws_json(
            "DynamoDBStreams_20120810.DescribeStream",
            &serde_json::json!({ "StreamArn": arn }),
        )
        .await;
        let mut shards = Vec::new();
        for shard in s["StreamDescription"]["Shards"].as_array().unwrap() {
            let id = shard["ShardId"].as_str().unwrap().to_string();
            let iterator = iterator(&arn, &id, None).await;
            shards.push(Shard {
                id,
                iterator,
                last: None,
            });
        }
        StreamReader {
            table: table.to_string(),
            arn,
            shards,
        }
    }

    /// New records since the last call, as a Lambda DynamoDB event (`{"Records": [...]}`).
    pub async fn next_event(&mut self) -> serde_json::Value {
        let mut records = Vec::new();
        for shard in &mut self.shards {
            let mut tries = 0;
            let r = loop {
                let (status, text) = aws_json_answer(
                    "DynamoDBStreams_20120810.GetRecords",
                    &serde_json::json!({ "ShardIterator": shard.iterator }),
                )
                .await;
                if status == 400 && text.contains("TrimmedDataAccessException") && tries < 5 {
                    tries += 1;
                    shard.iterator = iterator(&self.arn, &shard.id, shard.last.as_deref()).await;
                    continue;
                }
                assert_eq!(status, 200, "GetRecords: {text}");
                break serde_json::from_str::<serde_json::Value>(&text).unwrap();
            };
            for mut rec in r["Records"].as_array().cloned().unwrap_or_default() {
                if let Some(seq) = rec["dynamodb"]["SequenceNumber"].as_str() {
                    shard.last = Some(seq.to_string());
                }
                rec["awsRegion"] = "us-east-1".into();
                rec["eventSourceARN"] = format!(
                    "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/x",
                    self.table
                )
                .into();
                records.push(rec);
            }
            if let Some(next) = r["NextShardIterator"].as_str() {
                shard.iterator = next.to_string();
            }
        }
        serde_json::json!({ "Records": records })
    }
}

/// A shard iterator: from the oldest record, or just after `after`.
async fn iterator(arn: &str, shard: &str, after: Option<&str>) -> String {
    let mut ask = serde_json::json!({ "StreamArn": arn, "ShardId": shard });
    match after {
        Some(seq) => {
            ask["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER".into();
            ask["SequenceNumber"] = seq.into();
        }
        None => ask["ShardIteratorType"] = "TRIM_HORIZON".into(),
    }
    let it = aws_json("DynamoDBStreams_20120810.GetShardIterator", &ask).await;
    it["ShardIterator"].as_str().unwrap().to_string()
}

/// Every message the emulated SES has accepted, as moto reports them.
pub async fn sent_mail() -> Vec<serde_json::Value> {
    let (status, body) = http(
        "GET",
        &format!("{}/moto-api/data.json", moto_url()),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["ses"]["Message"].as_array().cloned().unwrap_or_default()
}

/// The client id the workspace is registered under at the tests' identity provider.
pub const OIDC_CLIENT_ID: &str = "reclaim-workspace";

/// The functions of one deployment on the emulator, built as their `main`s build them
/// (`wiring::build_with`: the link key read from Secrets Manager, every client from the
/// function's [`Clients`]), with every AWS call they make recorded. [`Functions::check`] fails
/// on any call the function's role in `infra/template.yaml` would deny.
pub struct Functions {
    pub deployment: roles::Deployment,
    pub calls: CallLog,
    pub sdk: SdkConfig,
}

impl Functions {
    /// A deployment over `store`'s table that sends from `sender`, whose link key `key` is a
    /// Secrets Manager secret.
    pub async fn new(store: &DynamoStore, sender: &str, key: &str) -> Functions {
        let sdk = sdk().await;
        let name = format!("reclaim/link-key/{}", table_name("key"));
        let created = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(&name)
            .secret_string(key)
            .send()
            .await
            .unwrap();
        Functions {
            deployment: roles::Deployment {
                table: store.table().to_string(),
                sender: sender.to_string(),
                configuration_set: None,
                link_key_secret: created.arn().unwrap().to_string(),
                vendor_prefix: "reclaim/plugins/".into(),
                oidc: None,
            },
            calls: CallLog::new(),
            sdk,
        }
    }

    /// The workspace signs people in with the identity provider at `issuer`, whose client
    /// secret is a Secrets Manager secret (by the name `OidcClientSecretName` gives).
    pub async fn with_oidc(&mut self, issuer: &str, client_secret: &str) {
        let name = format!("reclaim/oidc/{}", table_name("oidc"));
        aws_sdk_secretsmanager::Client::new(&self.sdk)
            .create_secret()
            .name(&name)
            .secret_string(client_secret)
            .send()
            .await
            .unwrap();
        self.deployment.oidc = Some((issuer.to_string(), name));
    }

    /// What the template's environment tells the functions.
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            table: self.deployment.table.clone(),
            sender: self.deployment.sender.clone(),
            configuration_set: self.deployment.configuration_set.clone(),
            public_url: "https://links.reclaim.example.com".into(),
            link_key: LinkKeySource::Secret(self.deployment.link_key_secret.clone()),
            link_ttl_days: 14,
            currency: "USD".into(),
            price_period: reclaim_workflow::PricePeriod::Yearly,
            user_claim: "sub".into(),
            oidc: self.deployment.oidc.as_ref().map(|(issuer, secret)| {
                reclaim_aws::config::OidcSettings {
                    issuer: issuer.clone(),
                    client_id: OIDC_CLIENT_ID.into(),
                    client_secret: LinkKeySource::Secret(secret.clone()),
                    claim: "email".into(),
                    name: "Example ID".into(),
                }
            }),
        }
    }

    /// One cold start of `function`.
    pub async fn start(&self, function: Function, revoker: Arc<dyn Revoker>) -> Wiring {
        wiring::build_with(
            Clients::new(function, &self.sdk, Some(self.calls.clone())),
            self.settings(),
            revoker,
            std::time::Instant::now(),
        )
        .await
        .unwrap()
    }

    /// Fails on any call recorded so far that its function's role would deny; returns them.
    pub fn check(&self) -> Vec<AwsCall> {
        let calls = self.calls.take();
        roles::assert_allowed(&self.deployment, &calls);
        calls
    }
}
