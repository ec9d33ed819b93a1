//! A built Lambda binary (`sweep`) run as Lambda runs it: a small Lambda Runtime API server
//! here (`/2018-06-01/runtime/invocation/next`, `/response`, `/error`) hands it events,
//! including ones its handler refuses, and the process answers each and serves on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reclaim_workflow::ports::CandidateWrite;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the runtime API saw.
#[derive(Debug, Default)]
struct Seen {
    /// (request id, "response" or "error", body)
    outcomes: Vec<(String, String, String)>,
    init_errors: Vec<String>,
    first_next: Option<Instant>,
}

struct RuntimeApi {
    events: Mutex<VecDeque<(String, String)>>,
    seen: Mutex<Seen>,
    changed: Notify,
}

async fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String, String)> {
    let mut line = String::new();
    if r.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await.ok()?;
    Some((method, path, String::from_utf8_lossy(&body).to_string()))
}

async fn reply(w: &mut BufReader<TcpStream>, status: &str, headers: &[(&str, String)], body: &str) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = w.get_mut().write_all(out.as_bytes()).await;
}

async fn serve_connection(api: Arc<RuntimeApi>, stream: TcpStream) {
    let mut r = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut r).await {
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            {
                let mut seen = api.seen.lock().unwrap();
                seen.first_next.get_or_insert_with(Instant::now);
            }
            api.changed.notify_waiters();
            let next = api.events.lock().unwrap().pop_front();
            let Some((id, event)) = next else {
                // No more work: hold the request, as Lambda does between invocations.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            };
            let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let headers = [
                ("Lambda-Runtime-Aws-Request-Id", id),
                ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:reclaim-sweep".to_string(),
                ),
                (
                    "Lambda-Runtime-Trace-Id",
                    "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                        .to_string(),
                ),
            ];
            reply(&mut r, "200 OK", &headers, &event).await;
        } else if let Some(rest) = path.strip_prefix("/2018-06-01/runtime/invocation/") {
            let (id, kind) = rest.split_once('/').unwrap_or((rest, ""));
            api.seen.lock().unwrap().outcomes.push((
                id.to_string(),
                kind.to_string(),
                body.clone(),
            ));
            api.changed.notify_waiters();
            reply(&mut r, "202 Accepted", &[], "{\"status\":\"OK\"}").await;
        } else if path.ends_with("/runtime/init/error") {
            api.seen.lock().unwrap().init_errors.push(body);
            api.changed.notify_waiters();
            reply(&mut r, "202 Accepted", &[], "{\"status\":\"OK\"}").await;
        } else {
            reply(&mut r, "404 Not Found", &[], "{}").await;
        }
    }
}

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
    let api = Arc::new(RuntimeApi {
        events: Mutex::new(VecDeque::from([
            ("req-1".to_string(), scheduled.clone()),
            (
                "req-2".to_string(),
                "{\"not\": \"an EventBridge event\"}".to_string(),
            ),
            ("req-3".to_string(), other_source),
            ("req-4".to_string(), scheduled),
        ])),
        seen: Mutex::new(Seen::default()),
        changed: Notify::new(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = {
        let api = api.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(api.clone(), stream));
            }
        })
    };

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
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RECLAIM_TABLE", store.table())
        .env("RECLAIM_PUBLIC_URL", "https://links.reclaim.example.com")
        .env(
            "RECLAIM_LINK_KEY",
            "0123456789abcdef0123456789abcdef-runtime",
        )
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let notified = api.changed.notified();
        {
            let seen = api.seen.lock().unwrap();
            assert!(seen.init_errors.is_empty(), "{:?}", seen.init_errors);
            if seen.outcomes.len() == 4 {
                break;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the function exited: {status}");
        }
        assert!(Instant::now() < deadline, "{:?}", api.seen.lock().unwrap());
        let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
    }
    // It asks for the next event again after the last answer: still serving.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(child.try_wait().unwrap().is_none(), "the process serves on");

    {
        let seen = api.seen.lock().unwrap();
        let kinds: Vec<(&str, &str)> = seen
            .outcomes
            .iter()
            .map(|(id, k, _)| (id.as_str(), k.as_str()))
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
        let first: serde_json::Value = serde_json::from_str(&seen.outcomes[0].2).unwrap();
        assert_eq!(first["examined"], 1, "{first}");
        assert!(
            seen.outcomes[2].2.contains("not a scheduled event"),
            "{}",
            seen.outcomes[2].2
        );
        let init = seen.first_next.unwrap() - started;
        eprintln!("sweep: process start to first /next: {init:?}");
    }
    child.kill().await.unwrap();
    server.abort();
}
