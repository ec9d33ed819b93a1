//! The per-call store data: an empty WASI context, the HTTP policy, the memory limiter, and
//! the host side of the `log` and `config` imports. A fresh one is made for every call, so
//! nothing a plugin does survives into the next call.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_io::bytes::Bytes;

use crate::bindings::reclaim::plugin::{config, log};
use crate::manifest::Manifest;
use crate::net::OutboundPolicy;

/// Longest log line kept; a plugin cannot flood the host's log with one call.
const MAX_LOG_LINE: usize = 8 * 1024;
/// Log lines (import + stdout/stderr) per call; the rest are counted and dropped.
const MAX_LOG_LINES: usize = 1_000;
/// stderr lines kept to explain a crash (a Rust panic prints its message there).
const STDERR_TAIL_LINES: usize = 6;

/// What one call's guest output and revealed secrets share.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    /// Secret values handed to the guest in this call; removed from anything logged.
    revealed: Vec<String>,
    lines: usize,
    dropped: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stderr_tail: VecDeque<String>,
}

impl Transcript {
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.revealed {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "<redacted>");
            }
        }
        out
    }

    fn emit(&mut self, plugin: &str, level: log::Level, source: &str, text: &str) {
        if self.lines >= MAX_LOG_LINES {
            self.dropped += 1;
            return;
        }
        self.lines += 1;
        let mut text = self.redact(text);
        if text.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" …(truncated)");
        }
        match level {
            log::Level::Trace => tracing::trace!(plugin, source, "{text}"),
            log::Level::Debug => tracing::debug!(plugin, source, "{text}"),
            log::Level::Info => tracing::info!(plugin, source, "{text}"),
            log::Level::Warn => tracing::warn!(plugin, source, "{text}"),
            log::Level::Error => tracing::error!(plugin, source, "{text}"),
        }
    }

    fn write_stdio(&mut self, plugin: &str, is_err: bool, bytes: &[u8]) {
        let buf = if is_err {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        buf.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        if buf.len() > MAX_LOG_LINE {
            let line: Vec<u8> = std::mem::take(buf);
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        for line in lines {
            self.line(plugin, is_err, line);
        }
    }

    fn line(&mut self, plugin: &str, is_err: bool, line: String) {
        if is_err {
            self.emit(plugin, log::Level::Warn, "stderr", &line);
            if self.stderr_tail.len() == STDERR_TAIL_LINES {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail.push_back(self.redact(&line));
        } else {
            self.emit(plugin, log::Level::Info, "stdout", &line);
        }
    }

    /// Flushes partial lines and reports dropped lines; called when the call ends.
    pub(crate) fn finish(&mut self, plugin: &str) {
        for is_err in [false, true] {
            let rest = std::mem::take(if is_err {
                &mut self.stderr
            } else {
                &mut self.stdout
            });
            if !rest.is_empty() {
                self.line(plugin, is_err, String::from_utf8_lossy(&rest).into_owned());
            }
        }
        if self.dropped > 0 {
            tracing::warn!(
                plugin,
                dropped = self.dropped,
                "plugin wrote more log lines than allowed per call"
            );
        }
    }

    /// The last stderr lines, for a crash report.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        (!self.stderr_tail.is_empty()).then(|| {
            self.stderr_tail
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(" | ")
        })
    }
}

pub(crate) type SharedTranscript = Arc<Mutex<Transcript>>;

fn lock(t: &SharedTranscript) -> std::sync::MutexGuard<'_, Transcript> {
    t.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Guest stdout or stderr: lines go to tracing, tagged with the plugin id.
#[derive(Clone)]
pub(crate) struct GuestStdio {
    plugin: Arc<str>,
    is_err: bool,
    transcript: SharedTranscript,
}

impl IsTerminal for GuestStdio {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStdio {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestStdio {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestStdio {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        lock(&self.transcript).write_stdio(&self.plugin, self.is_err, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestStdio {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        lock(&self.transcript).write_stdio(&self.plugin, self.is_err, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Caps one call's linear memory at the manifest's `memory_mb`, and remembers a refusal so
/// the resulting trap can be reported as out-of-memory rather than as a crash.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    pub(crate) max_bytes: usize,
    pub(crate) refused: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(self.refused.map_or(desired, |r| r.max(desired)));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Everything one call's store holds.
pub(crate) struct CallState {
    pub(crate) plugin: Arc<str>,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) table: ResourceTable,
    /// Made at the guest's first WASI call (see [`empty_wasi`]); many calls make none.
    pub(crate) wasi: Option<WasiCtx>,
    pub(crate) http: WasiHttpCtx,
    pub(crate) policy: OutboundPolicy,
    pub(crate) memory: MemoryCap,
    pub(crate) transcript: SharedTranscript,
    pub(crate) provided: Arc<crate::manifest::ProvidedSecrets>,
}

impl CallState {
    pub(crate) fn new(
        plugin: Arc<str>,
        manifest: Arc<Manifest>,
        policy: OutboundPolicy,
        provided: Arc<crate::manifest::ProvidedSecrets>,
    ) -> Self {
        let transcript: SharedTranscript = Arc::default();
        let max_bytes =
            usize::try_from(manifest.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        CallState {
            plugin,
            manifest,
            table: ResourceTable::new(),
            wasi: None,
            http: WasiHttpCtx::new(),
            policy,
            memory: MemoryCap {
                max_bytes,
                refused: None,
            },
            transcript,
            provided,
        }
    }

    pub(crate) fn transcript(&self) -> std::sync::MutexGuard<'_, Transcript> {
        lock(&self.transcript)
    }
}

/// The WASI context of one call: no preopened dirs, env, args or network (the only way out
/// is `wasi:http`, behind the grant check); stdout and stderr go to the call's transcript.
///
/// Building one was most of our per-call policy cost (about 1 µs of a 17 µs `describe()`,
/// BENCHMARKS.md: wasmtime-wasi seeds two random generators for the context and two more for
/// the builder it leaves behind, and boxes each), so [`CallState`] makes it only when the
/// guest first uses WASI. That is still once per call and store: nothing carries over.
fn empty_wasi(plugin: &Arc<str>, transcript: &SharedTranscript) -> WasiCtx {
    let stdio = |is_err| GuestStdio {
        plugin: Arc::clone(plugin),
        is_err,
        transcript: Arc::clone(transcript),
    };
    WasiCtx::builder()
        .stdout(stdio(false))
        .stderr(stdio(true))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (plugin, transcript) = (&self.plugin, &self.transcript);
        WasiCtxView {
            ctx: self
                .wasi
                .get_or_insert_with(|| empty_wasi(plugin, transcript)),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

impl log::Host for CallState {
    fn log(&mut self, level: log::Level, message: String) {
        let plugin = Arc::clone(&self.plugin);
        lock(&self.transcript).emit(&plugin, level, "log", &message);
    }
}

impl config::Host for CallState {
    fn get(&mut self, key: String) -> Option<String> {
        self.manifest.config.get(&key).cloned()
    }

    fn secret(&mut self, name: String) -> Result<String, String> {
        let Some(source) = self.manifest.secrets.get(&name) else {
            tracing::warn!(plugin = %self.plugin, secret = %name, "plugin asked for a secret it is not granted");
            return Err(format!(
                "secret `{name}` is not granted to plugin `{}` (add it to `secrets` in its manifest)",
                self.plugin
            ));
        };
        match source.read(&self.provided) {
            Some(secret) => {
                lock(&self.transcript).revealed.push(secret.0.clone());
                Ok(secret.0)
            }
            None => {
                tracing::warn!(plugin = %self.plugin, secret = %name, %source, "granted secret has no value on this host");
                Err(format!(
                    "secret `{name}` is granted but has no value on this host (expected in {source})"
                ))
            }
        }
    }
}
