//! Hostile guests against the real host: every misbehaviour ends in a clean `PluginError`, and
//! a well-behaved call right after it succeeds.

// Test helpers outside #[test] fns may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use reclaim_host::{HostConfig, HostError, Outcome, PluginError, PluginHost, Presence};

const BASIC: &str = r#"
id = "hostile"
deadline_ms = 300
memory_mb = 32
[config]
greeting = "hello from the manifest"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_calls_return_outcomes_and_config() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    assert_eq!(host.plugins()[0].id, "hostile");
    assert_still_serves(&host).await;
    assert_eq!(
        host.reclaim("hostile", &req("config")).await,
        Ok(Outcome::Removed("hello from the manifest".into()))
    );
    assert_eq!(
        host.verify("hostile", &req("absent")).await,
        Ok(Presence::Absent)
    );
    assert!(matches!(
        host.reclaim("hostile", &req("nonsense")).await,
        Err(PluginError::Permanent { .. })
    ));
    assert!(matches!(
        host.reclaim("nobody", &req("good")).await,
        Err(PluginError::UnknownPlugin { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_is_stopped_within_twice_the_deadline() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    let started = Instant::now();
    let err = host.reclaim("hostile", &req("loop")).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(
        err,
        PluginError::DeadlineExceeded {
            plugin: "hostile".into(),
            deadline_ms: 300
        }
    );
    assert!(err.is_retryable());
    assert!(
        took < Duration::from_millis(600),
        "stopped after {took:?}, more than 2x the 300 ms deadline"
    );
    assert!(
        took >= Duration::from_millis(300),
        "stopped early: {took:?}"
    );
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_does_not_block_other_plugin_calls() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    let looping = {
        let host = host.clone();
        tokio::spawn(async move { host.reclaim("hostile", &req("loop")).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    assert_still_serves(&host).await;
    assert!(started.elapsed() < Duration::from_millis(250));
    assert!(matches!(
        looping.await.unwrap(),
        Err(PluginError::DeadlineExceeded { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocating_one_gib_is_out_of_memory() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    let err = host.reclaim("hostile", &req("oom")).await.unwrap_err();
    match &err {
        PluginError::OutOfMemory {
            plugin,
            limit_mb,
            requested_mb,
        } => {
            assert_eq!(plugin, "hostile");
            assert_eq!(*limit_mb, 32);
            assert!(*requested_mb >= 1024, "requested {requested_mb} MiB");
        }
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_a_crash_with_the_panic_message() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    let err = host.reclaim("hostile", &req("trap")).await.unwrap_err();
    match &err {
        PluginError::Crashed { message, .. } => {
            assert!(message.contains("wasm trap"), "{message}");
            if guests().wasi_std {
                assert!(
                    message.contains("deliberate panic in the hostile guest"),
                    "the guest's panic message should be in the error: {message}"
                );
            }
        }
        other => panic!("expected Crashed, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_still_serves(&host).await;

    let err = host.reclaim("hostile", &req("exit")).await.unwrap_err();
    assert!(matches!(err, PluginError::Crashed { .. }), "{err:?}");
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_megabyte_answer_is_malformed() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    let err = host.reclaim("hostile", &req("huge")).await.unwrap_err();
    match &err {
        PluginError::Malformed { message, .. } => {
            assert!(message.contains("10000000 bytes"), "{message}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_host_not_granted_is_denied_and_never_sent() {
    let granted = FakeVendor::start(b"granted body".to_vec(), Duration::ZERO);
    let forbidden = FakeVendor::start(b"secret internal data".to_vec(), Duration::ZERO);
    let manifest = format!(
        r#"
        id = "hostile"
        deadline_ms = 2000
        allowed_outbound_hosts = ["http://127.0.0.1:{granted}"]
        [config]
        granted = "http://127.0.0.1:{granted}/ok"
        forbidden = "http://127.0.0.1:{forbidden}/steal"
        by-name = "http://localhost:{granted}/ok"
        metadata = "http://169.254.169.254/latest/meta-data/"
        "#,
        granted = granted.port,
        forbidden = forbidden.port
    );
    let (host, _tmp) = hostile_host(test_config(), &manifest);

    assert_eq!(
        host.reclaim("hostile", &req("http:granted")).await,
        Ok(Outcome::Removed("12 bytes: granted body".into()))
    );
    assert_eq!(granted.hits(), 1);

    for key in ["forbidden", "by-name", "metadata"] {
        let err = host
            .reclaim("hostile", &req(&format!("http:{key}")))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PluginError::Permanent {
                message: "error-code ErrorCode::HttpRequestDenied".into()
            },
            "{key}"
        );
        assert_still_serves(&host).await;
    }
    assert_eq!(forbidden.hits(), 0, "a refused request must never connect");
    assert_eq!(granted.hits(), 1, "a name not granted must not connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_refused_unless_the_host_allows_private_addresses() {
    let vendor = FakeVendor::start(b"internal".to_vec(), Duration::ZERO);
    let manifest = format!(
        r#"
        id = "hostile"
        allowed_outbound_hosts = ["http://127.0.0.1:*", "http://localhost:*"]
        [config]
        ip = "http://127.0.0.1:{p}/"
        name = "http://localhost:{p}/"
        "#,
        p = vendor.port
    );
    let cfg = HostConfig {
        allow_private_addresses: false,
        ..test_config()
    };
    let (host, _tmp) = hostile_host(cfg, &manifest);
    for key in ["ip", "name"] {
        let err = host
            .reclaim("hostile", &req(&format!("http:{key}")))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            PluginError::Permanent {
                message: "error-code ErrorCode::DestinationIpProhibited".into()
            },
            "{key}: a granted name resolving to loopback is still refused"
        );
    }
    assert_eq!(vendor.hits(), 0);
    assert_still_serves(&host).await;

    let (open_host, _tmp2) = hostile_host(test_config(), &manifest);
    assert_eq!(
        open_host.reclaim("hostile", &req("http:name")).await,
        Ok(Outcome::Removed("8 bytes: internal".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_response_over_the_cap_is_cut_off() {
    let vendor = FakeVendor::start(vec![b'v'; 64 * 1024], Duration::ZERO);
    let manifest = format!(
        r#"
        id = "hostile"
        allowed_outbound_hosts = ["http://127.0.0.1:{p}"]
        [config]
        big = "http://127.0.0.1:{p}/big"
        "#,
        p = vendor.port
    );
    let cfg = HostConfig {
        max_response_bytes: 16 * 1024,
        ..test_config()
    };
    let (host, _tmp) = hostile_host(cfg, &manifest);
    let err = host.reclaim("hostile", &req("http:big")).await.unwrap_err();
    match err {
        PluginError::Permanent { message } => {
            assert!(message.contains("body read failed"), "{message}")
        }
        other => panic!("expected the guest to see a failed body read, got {other:?}"),
    }
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_vendor_hits_the_deadline() {
    let vendor = FakeVendor::start(b"late".to_vec(), Duration::from_secs(3));
    let manifest = format!(
        r#"
        id = "hostile"
        deadline_ms = 300
        allowed_outbound_hosts = ["http://127.0.0.1:{p}"]
        [config]
        slow = "http://127.0.0.1:{p}/slow"
        "#,
        p = vendor.port
    );
    let (host, _tmp) = hostile_host(test_config(), &manifest);
    let started = Instant::now();
    let err = host
        .reclaim("hostile", &req("http:slow"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PluginError::DeadlineExceeded { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(600));
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_not_granted_is_refused() {
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    let err = host
        .reclaim("hostile", &req("secret:root-password"))
        .await
        .unwrap_err();
    match &err {
        PluginError::Misconfigured { message } => {
            assert!(
                message.contains("secret `root-password` is not granted"),
                "{message}"
            )
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_secret_is_readable_and_redacted_from_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let secret_file = tmp.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-t0ken\n").unwrap();
    let manifest = format!(
        r#"
        id = "hostile"
        secrets = ["api-token", "unset-token"]
        [secret_sources]
        api-token = "file:{}"
        "#,
        secret_file.display()
    );
    let (host, _tmp) = hostile_host(test_config(), &manifest);
    let err = host
        .reclaim("hostile", &req("secret:api-token"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PluginError::Permanent {
            message: "read a secret of 12 bytes: <redacted>".into()
        }
    );
    let err = host
        .reclaim("hostile", &req("secret:unset-token"))
        .await
        .unwrap_err();
    match err {
        PluginError::Misconfigured { message } => assert!(
            message.contains("RECLAIM_SECRET_HOSTILE_UNSET_TOKEN"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_no_environment_arguments_or_files() {
    if !guests().wasi_std {
        // Built without WASI (Debian fallback): std has no env, args or files to ask for.
        return;
    }
    std::env::set_var("RECLAIM_HOST_TEST_LEAK", "should-not-be-visible");
    let (host, _tmp) = hostile_host(test_config(), BASIC);
    assert_eq!(
        host.reclaim("hostile", &req("sandbox")).await,
        Ok(Outcome::Removed("env=0 args=0 root=false cwd=false".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_another_world_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(
        tmp.path(),
        "wrong",
        &guests().wrong_world,
        "id = \"wrong\"\n",
    );
    let host = PluginHost::new(test_config()).unwrap();
    let err = host.load_dir(&dir).unwrap_err();
    assert!(matches!(err, HostError::WorldMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("does not match the reclaim:plugin/reclaimer@0.1.0 world"),
        "{text}"
    );
    assert!(host.plugins().is_empty());

    // Not a component at all.
    std::fs::write(dir.join("plugin.wasm"), b"\0asm garbage").unwrap();
    let err = host.load_dir(&dir).unwrap_err();
    assert!(matches!(err, HostError::InvalidComponent { .. }), "{err:?}");

    // The same host still loads and serves a good plugin.
    let good = plugin_dir(tmp.path(), "hostile", &guests().hostile, BASIC);
    host.load_dir(&good).unwrap();
    assert_still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_id_must_match_describe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_dir(
        tmp.path(),
        "x",
        &guests().hostile,
        "id = \"someone-else\"\n",
    );
    let host = PluginHost::new(test_config()).unwrap();
    let err = host.load_dir(&dir).unwrap_err();
    assert!(matches!(err, HostError::IdMismatch { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_each_get_a_fresh_instance() {
    let cfg = HostConfig {
        max_concurrent_calls: 4,
        ..test_config()
    };
    let (host, _tmp) = hostile_host(cfg, BASIC);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let behaviour = if i % 10 == 0 { "trap" } else { "good" };
            (behaviour, host.reclaim("hostile", &req(behaviour)).await)
        }));
    }
    for t in tasks {
        let (behaviour, out) = t.await.unwrap();
        match behaviour {
            "good" => assert_eq!(out, Ok(Outcome::Removed("ok good".into()))),
            _ => assert!(matches!(out, Err(PluginError::Crashed { .. }))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_ungranted_host_is_refused_before_any_of_its_body_is_written() {
    // A plugin that writes a large body after handing the request over used to see its body
    // stream closed (the refusal came later, through the response future, and dropped the
    // body); the refusal must come from `handle` itself, every time.
    let manifest = "id = \"hostile\"\nallowed_outbound_hosts = []\n[config]\nurl = \"http://127.0.0.1:9/upload\"\n";
    let (host, _tmp) = hostile_host(test_config(), manifest);
    for _ in 0..5 {
        match host.reclaim("hostile", &req("post:url")).await {
            Err(PluginError::Permanent { message }) => assert_eq!(
                message, "handle refused: error-code ErrorCode::HttpRequestDenied",
                "the refusal must come before the body"
            ),
            other => panic!("expected the guest's report, got {other:?}"),
        }
    }
    assert_still_serves(&host).await;
}
