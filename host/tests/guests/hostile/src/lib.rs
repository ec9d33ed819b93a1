//! A reclaimer plugin for the host's tests and benchmark. `describe` is trivial (the benchmark's
//! call); `reclaim` does what `request.candidate-id` names, from well-behaved to hostile:
//!
//! | candidate-id         | behaviour                                                        |
//! |----------------------|------------------------------------------------------------------|
//! | `good`               | `removed("ok good")`                                             |
//! | `config`             | `removed(<config "greeting">)`                                   |
//! | `loop`               | spins forever                                                    |
//! | `oom`                | allocates 1 GiB                                                  |
//! | `trap`               | panics (message on stderr, then a trap)                          |
//! | `exit`               | calls `exit(3)`                                                  |
//! | `huge`               | answers with 10 MB of evidence                                   |
//! | `http:<config key>`  | GETs the URL in that config key; `removed(<body length + body prefix>)` |
//! | `post:<config key>`  | POSTs 256 KiB to the URL in that config key, the body written after `handle`; the permanent error names where it failed |
//! | `secret:<name>`      | reads the secret, logs it (the host must redact), reports its length |
//! | `sandbox`            | reports env vars, args, and whether `/` or `.` can be listed     |
//! | anything else        | a permanent error                                                |

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "reclaim:plugin/reclaimer",
    generate_all,
});

use reclaim::plugin::config;
use reclaim::plugin::log::{self, Level};
use reclaim::plugin::types::{AppliesTo, Justification, Requirement};
use wasi::http::outgoing_handler;
use wasi::http::types::{Fields, OutgoingRequest, Scheme};

struct Hostile;

impl Guest for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo {
            id: "hostile".into(),
            name: "Hostile test guest".into(),
            version: "0.1.0".into(),
            vendor: "Reclaim tests".into(),
            applies_to: vec![AppliesTo::Subscription, AppliesTo::InstalledSoftware],
            justifications: vec![Justification::Unused, Justification::LowUsage],
            config_keys: vec![Requirement {
                name: "greeting".into(),
                description: "echoed by the `config` behaviour".into(),
                required: false,
            }],
            secrets: vec![Requirement {
                name: "api-token".into(),
                description: "read by the `secret:` behaviour".into(),
                required: false,
            }],
        }
    }

    fn reclaim(req: Request) -> Result<Outcome, PluginError> {
        let id = req.candidate_id.as_str();
        match id {
            "good" => Ok(Outcome::Removed(format!("ok {id}"))),
            "config" => Ok(Outcome::Removed(
                config::get("greeting").unwrap_or_else(|| "<none>".into()),
            )),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "oom" => {
                let big = vec![7u8; 1 << 30];
                Ok(Outcome::Removed(format!(
                    "allocated {}",
                    std::hint::black_box(&big).len()
                )))
            }
            "trap" => panic!("deliberate panic in the hostile guest"),
            "exit" => std::process::exit(3),
            "huge" => Ok(Outcome::Removed("x".repeat(10 * 1000 * 1000))),
            "sandbox" => {
                let env = std::env::vars().count();
                let args = std::env::args().count();
                let root = std::fs::read_dir("/").is_ok();
                let cwd = std::fs::read_dir(".").is_ok();
                Ok(Outcome::Removed(format!(
                    "env={env} args={args} root={root} cwd={cwd}"
                )))
            }
            _ => {
                if let Some(key) = id.strip_prefix("http:") {
                    let url = config::get(key)
                        .ok_or_else(|| PluginError::Misconfigured(format!("no config `{key}`")))?;
                    let body = http_get(&url).map_err(PluginError::Permanent)?;
                    let prefix: String = body.chars().take(64).collect();
                    Ok(Outcome::Removed(format!("{} bytes: {prefix}", body.len())))
                } else if let Some(key) = id.strip_prefix("post:") {
                    let url = config::get(key)
                        .ok_or_else(|| PluginError::Misconfigured(format!("no config `{key}`")))?;
                    Err(PluginError::Permanent(http_post_big(&url)))
                } else if let Some(name) = id.strip_prefix("secret:") {
                    let value = config::secret(name).map_err(PluginError::Misconfigured)?;
                    log::log(Level::Info, &format!("the secret is {value}"));
                    eprintln!("stderr also sees {value}");
                    Err(PluginError::Permanent(format!(
                        "read a secret of {} bytes: {value}",
                        value.len()
                    )))
                } else {
                    Err(PluginError::Permanent(format!("unknown behaviour `{id}`")))
                }
            }
        }
    }

    fn verify(req: Request) -> Result<Presence, PluginError> {
        Ok(if req.candidate_id == "absent" {
            Presence::Absent
        } else {
            Presence::Present
        })
    }
}

/// POSTs 256 KiB in 4 KiB writes, as a plugin sending a large body does (the body is written
/// after `handle`), and says where it stopped: `handle refused: ...`, `body write failed: ...`,
/// `response: ...`.
fn http_post_big(url: &str) -> String {
    let Some(rest) = url.strip_prefix("http://") else {
        return format!("unsupported url {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let size = 256 * 1024;
    let headers =
        match Fields::from_list(&[("content-length".to_string(), size.to_string().into_bytes())]) {
            Ok(h) => h,
            Err(e) => return format!("headers refused: {e:?}"),
        };
    let req = OutgoingRequest::new(headers);
    let _ = req.set_method(&wasi::http::types::Method::Post);
    let _ = req.set_scheme(Some(&Scheme::Http));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some(path));
    let Ok(body) = req.body() else {
        return "no request body".into();
    };
    let pending = match outgoing_handler::handle(req, None) {
        Ok(p) => p,
        Err(e) => return format!("handle refused: error-code {e:?}"),
    };
    {
        let Ok(stream) = body.write() else {
            return "no body stream".into();
        };
        let chunk = vec![b'x'; 4096];
        for _ in 0..size / chunk.len() {
            if let Err(e) = stream.blocking_write_and_flush(&chunk) {
                return format!("body write failed: {e:?}");
            }
        }
    }
    if let Err(e) = wasi::http::types::OutgoingBody::finish(body, None) {
        return format!("body finish failed: error-code {e:?}");
    }
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(r))) => format!("response: status {}", r.status()),
        Some(Ok(Err(code))) => format!("response: error-code {code:?}"),
        _ => "response: none".into(),
    }
}

/// A minimal blocking GET over wasi:http; errors are the host's error codes, spelled out.
fn http_get(url: &str) -> Result<String, String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (Scheme::Http, r)
    } else {
        return Err(format!("unsupported url {url}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    req.set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme".to_string())?;
    req.set_authority(Some(authority))
        .map_err(|()| "bad authority".to_string())?;
    req.set_path_with_query(Some(path))
        .map_err(|()| "bad path".to_string())?;
    let pending = outgoing_handler::handle(req, None).map_err(|e| format!("error-code {e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(code))) => return Err(format!("error-code {code:?}")),
        Some(Err(())) => return Err("response already taken".into()),
        None => return Err("response not ready".into()),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no body stream".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(wasi::io::streams::StreamError::Closed) => break,
            Err(wasi::io::streams::StreamError::LastOperationFailed(e)) => {
                return Err(format!("body read failed: {}", e.to_debug_string()))
            }
        }
    }
    if status != 200 {
        return Err(format!("status {status}"));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

export!(Hostile);
