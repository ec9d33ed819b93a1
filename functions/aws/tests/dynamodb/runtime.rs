//! Built Lambda binaries (`sweep`, `connectors`) run as Lambda runs them: a small Lambda Runtime API server
//! here (`/2018-06-01/runtime/invocation/next`, `/response`, `/error`) hands it events,
//! including ones its handler refuses, and the process answers each and serves on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::runtime_api::RuntimeApi;
use reclaim_workflow::ports::CandidateWrite;
use std::time::{Duration, Instant};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn the_sweep_binary_answers_each_event_and_serves_on_after_errors() {
    let store = common::fresh_store("runtime").await;
    let mut due = reclaim_workflow::testing::contract::varied(2);
    due.due_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
    store.insert(&[due]).await.unwrap();

    let scheduled = fixture("eventbridge-scheduled.json");
    let other_source = scheduled
        .replace("\"Scheduled Event\"", "\"Object Created\"")
        .replace("\"aws.events\"", "\"aws.s3\"");
    let api = RuntimeApi::new(
        "reclaim-sweep",
        vec![
            ("req-1".to_string(), scheduled.clone()),
            (
                "req-2".to_string(),
                "{\"not\": \"an EventBridge event\"}".to_string(),
            ),
            ("req-3".to_string(), other_source),
            ("req-4".to_string(), scheduled),
        ],
    );
    let (addr, server) = api.serve().await;
    // The deployment's link key in Secrets Manager, and the binary's AWS calls recorded to a
    // file (`RECLAIM_AWS_CALL_LOG`) to check them against the sweep function's role.
    let functions = common::Functions::new(
        &store,
        "reclaim@example.com",
        "0123456789abcdef0123456789abcdef-runtime",
    )
    .await;
    let call_log = tempfile::NamedTempFile::new().unwrap();

    let started = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sweep"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "reclaim-sweep")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/05/[$LATEST]test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/reclaim-sweep")
        .env("AWS_ENDPOINT_URL", common::moto_url())
        .env("AWS_ENDPOINT_URL_DYNAMODB", common::dynamodb_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RECLAIM_TABLE", store.table())
        .env("RECLAIM_PUBLIC_URL", "https://links.reclaim.example.com")
        .env(
            "RECLAIM_LINK_KEY_SECRET",
            &functions.deployment.link_key_secret,
        )
        .env(reclaim_aws::calls::CALL_LOG_ENV, call_log.path())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    api.wait_for_outcomes(4, &mut child, Duration::from_secs(60))
        .await;
    // It asks for the next event again after the last answer: still serving.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(child.try_wait().unwrap().is_none(), "the process serves on");

    {
        let seen = api.seen();
        let kinds: Vec<(&str, &str)> = seen
            .outcomes
            .iter()
            .map(|o| (o.request_id.as_str(), o.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("req-1", "response"),
                ("req-2", "error"),
                ("req-3", "error"),
                ("req-4", "response"),
            ]
        );
        let first: serde_json::Value = serde_json::from_str(&seen.outcomes[0].body).unwrap();
        assert_eq!(first["examined"], 1, "{first}");
        assert!(
            seen.outcomes[2].body.contains("not a scheduled event"),
            "{}",
            seen.outcomes[2].body
        );
        let init = seen.first_next.unwrap() - started;
        eprintln!("sweep: process start to first /next: {init:?}");
    }
    child.kill().await.unwrap();
    server.abort();

    let calls: Vec<reclaim_aws::calls::AwsCall> = std::fs::read_to_string(call_log.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        calls.iter().any(|c| c.operation == "GetSecretValue"),
        "{calls:?}"
    );
    assert!(calls.iter().any(|c| c.operation == "Query"), "{calls:?}");
    assert!(calls
        .iter()
        .all(|c| c.function == reclaim_aws::calls::Function::Sweep));
    common::roles::assert_allowed(&functions.deployment, &calls);
}

#[tokio::test]
async fn the_connectors_binary_without_plugins_answers_each_tick_at_once() {
    let store = common::fresh_store("runtime-connectors").await;
    let scheduled = fixture("eventbridge-scheduled.json");
    let other_source = scheduled.replace("\"aws.events\"", "\"aws.s3\"");
    let api = RuntimeApi::new(
        "reclaim-connectors",
        vec![
            ("req-1".to_string(), scheduled.clone()),
            ("req-2".to_string(), other_source),
            ("req-3".to_string(), scheduled),
        ],
    );
    let (addr, server) = api.serve().await;
    let functions = common::Functions::new(
        &store,
        "reclaim@example.com",
        "0123456789abcdef0123456789abcdef-runtime",
    )
    .await;
    let call_log = tempfile::NamedTempFile::new().unwrap();
    // No RECLAIM_PLUGINS_DIR: no connectors, nothing to collect.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_connectors"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "reclaim-connectors")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/05/[$LATEST]test")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/reclaim-connectors",
        )
        .env("AWS_ENDPOINT_URL", common::moto_url())
        .env("AWS_ENDPOINT_URL_DYNAMODB", common::dynamodb_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RECLAIM_TABLE", store.table())
        .env("RECLAIM_PUBLIC_URL", "https://links.reclaim.example.com")
        .env(
            "RECLAIM_LINK_KEY_SECRET",
            &functions.deployment.link_key_secret,
        )
        .env(reclaim_aws::calls::CALL_LOG_ENV, call_log.path())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    api.wait_for_outcomes(3, &mut child, Duration::from_secs(60))
        .await;
    {
        let seen = api.seen();
        let kinds: Vec<(&str, &str)> = seen
            .outcomes
            .iter()
            .map(|o| (o.request_id.as_str(), o.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("req-1", "response"),
                ("req-2", "error"),
                ("req-3", "response")
            ]
        );
        let first: serde_json::Value = serde_json::from_str(&seen.outcomes[0].body).unwrap();
        assert_eq!(first, serde_json::json!({"runs": []}));
        assert!(
            seen.outcomes[1].body.contains("NotScheduled"),
            "{}",
            seen.outcomes[1].body
        );
    }
    child.kill().await.unwrap();
    server.abort();

    // Init read the link key; the ticks, with nothing loaded, called nothing.
    let calls: Vec<reclaim_aws::calls::AwsCall> = std::fs::read_to_string(call_log.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let operations: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(operations, ["GetSecretValue"], "{calls:?}");
    assert!(calls
        .iter()
        .all(|c| c.function == reclaim_aws::calls::Function::Connectors));
    common::roles::assert_allowed(&functions.deployment, &calls);
}
