//! The Router served over a real TCP socket, spoken to in raw HTTP/1.1.

// Test code: helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reclaim_tests::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;

struct Raw {
    status: u16,
    body: String,
}

async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    // A plain blocking socket, off the runtime's threads: nothing of the server's stack.
    let out = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    // The router answers JSON errors with a length; pages may come chunked.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Raw { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn code(r: &Raw) -> String {
    let v: Value = serde_json::from_str(&r.body).unwrap();
    v["error"]["code"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn bad_input_over_a_real_socket_and_the_peer_address_on_answers() {
    let h = Harness::new().await;
    let n = h.create_one(json!({})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let before = h.snapshot(&n).await;
    let auth = format!("Bearer {SAM}");
    let json_headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let reclaim = format!("/api/v1/candidates/{n}/reclaim");

    let r = raw(addr, "POST", &reclaim, &json_headers, "{oops").await;
    assert_eq!((r.status, code(&r).as_str()), (400, "malformed_json"));
    let r = raw(
        addr,
        "POST",
        &reclaim,
        &json_headers,
        r#"{"expected_version":0,"x":1}"#,
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (422, "invalid_body"));
    assert!(r.body.contains("\"field\":\"x\""), "{}", r.body);
    let r = raw(
        addr,
        "POST",
        &reclaim,
        &[("Content-Type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (401, "unauthorized"));
    let r = raw(
        addr,
        "POST",
        &reclaim,
        &json_headers,
        r#"{"expected_version":7}"#,
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (409, "stale_version"));
    let r = raw(
        addr,
        "POST",
        "/api/v1/candidates/nope/reclaim",
        &json_headers,
        "{}",
    )
    .await;
    assert_eq!((r.status, code(&r).as_str()), (404, "not_found"));
    assert_eq!(h.snapshot(&n).await, before);

    // A real answer through the link page records the peer address.
    let r = raw(
        addr,
        "POST",
        &reclaim,
        &json_headers,
        r#"{"expected_version":0}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    h.drain().await;
    let no = link_path(&h.mail_to("uma@example.com").await[0].text, "No, remove it");
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "raw-test"),
        ("Origin", PUBLIC_URL),
    ];
    let r = raw(addr, "GET", &no, &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("No, remove it"));
    let r = raw(addr, "POST", &no, &form, "comment=").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let entry = h
        .history(&n)
        .await
        .into_iter()
        .find(|e| e.event == "answer-remove")
        .unwrap();
    assert_eq!(entry.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(entry.user_agent.as_deref(), Some("raw-test"));
    server.abort();
}

#[tokio::test]
async fn forwarded_for_is_used_only_when_trusted() {
    for (trust, expected) in [(true, "203.0.113.9"), (false, "none")] {
        let h = if trust {
            Harness::trusting_proxy().await
        } else {
            Harness::new().await
        };
        let n = h.create_one(json!({})).await;
        h.post(&format!("/api/v1/candidates/{n}/reclaim"), SAM, json!({}))
            .await;
        h.drain().await;
        let yes = link_path(&h.mail_to("uma@example.com").await[0].text, "Yes, keep it");
        let req = axum::http::Request::post(&yes)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", PUBLIC_URL)
            .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
            .body(axum::body::Body::from("comment="))
            .unwrap();
        let r = h.send(req).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let entry = h.history(&n).await.pop().unwrap();
        assert_eq!(entry.ip.as_deref().unwrap_or("none"), expected);
    }
}
