//! A small Lambda Runtime API server (`/2018-06-01/runtime/invocation/next`, `/response`,
//! `/error`, `/init/error`) that hands a built function binary its events as Lambda does and
//! notes when each answer came. Shared by the runtime test and the benchmark (which includes
//! this file by path), so both speak the protocol the same way.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One answer the function gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request_id: String,
    /// `response` or `error`.
    pub kind: String,
    pub body: String,
    pub at: Instant,
}

/// What the runtime API saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub outcomes: Vec<Outcome>,
    pub init_errors: Vec<String>,
    /// When the function first asked for work: its init was done.
    pub first_next: Option<Instant>,
}

#[derive(Debug)]
pub struct RuntimeApi {
    events: Mutex<VecDeque<(String, String)>>,
    seen: Mutex<Seen>,
    changed: Notify,
    function_arn: String,
}

impl RuntimeApi {
    /// A runtime API that will hand out `events` (request id, JSON) in order.
    pub fn new(function: &str, events: Vec<(String, String)>) -> Arc<RuntimeApi> {
        Arc::new(RuntimeApi {
            events: Mutex::new(events.into()),
            seen: Mutex::new(Seen::default()),
            changed: Notify::new(),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
        })
    }

    /// Listens on a free loopback port; the address goes in `AWS_LAMBDA_RUNTIME_API`.
    pub async fn serve(self: &Arc<Self>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = self.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(api.clone(), stream));
            }
        });
        (addr, server)
    }

    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Waits until `n` answers came, failing on an init error, an exit of `child` or after
    /// `timeout`.
    pub async fn wait_for_outcomes(
        &self,
        n: usize,
        child: &mut tokio::process::Child,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let seen = self.seen();
                assert!(seen.init_errors.is_empty(), "{:?}", seen.init_errors);
                if seen.outcomes.len() >= n {
                    return;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the function exited: {status}");
            }
            assert!(Instant::now() < deadline, "{:?}", self.seen());
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
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
            api.seen().first_next.get_or_insert_with(Instant::now);
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
                    api.function_arn.clone(),
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
            api.seen().outcomes.push(Outcome {
                request_id: id.to_string(),
                kind: kind.to_string(),
                body,
                at: Instant::now(),
            });
            api.changed.notify_waiters();
            reply(&mut r, "202 Accepted", &[], "{\"status\":\"OK\"}").await;
        } else if path.ends_with("/runtime/init/error") {
            api.seen().init_errors.push(body);
            api.changed.notify_waiters();
            reply(&mut r, "202 Accepted", &[], "{\"status\":\"OK\"}").await;
        } else {
            reply(&mut r, "404 Not Found", &[], "{}").await;
        }
    }
}
