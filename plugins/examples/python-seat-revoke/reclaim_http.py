"""Blocking HTTP over `wasi:http/outgoing-handler` for Reclaim plugins written in Python.

The host gives a plugin no sockets: `urllib`, `http.client` and `requests` cannot work inside
the sandbox. Every request goes through the `wasi:http` import instead, and the host lets it
out only to the hosts the manifest's `allowed_outbound_hosts` grants.

`send()` returns a `Response` for every HTTP status; only a transport failure (a host refused
by the sandbox, DNS, connection, a body over the host's cap) raises, already as the
`PluginError` the workflow should see. Blocking is right here: a call does one thing at a time
and the host bounds the whole call with the manifest's `deadline_ms`.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import wasi_http_types as http
from wit_world.imports.reclaim_plugin_types import (
    PluginError_Misconfigured,
    PluginError_Permanent,
    PluginError_Transient,
    TransientError,
)

# The host refuses a vendor body over 1 MiB (HostConfig::max_response_bytes); the read then
# fails with `http-response-body-size`. Reading in chunks keeps the guest's memory small.
READ_CHUNK = 64 * 1024
# The most one wasi:io `blocking-write-and-flush` may carry.
WRITE_CHUNK = 4096
# The most vendor text carried into an error message.
MAX_VENDOR_TEXT = 300

_METHODS = {
    "GET": http.Method_Get(),
    "POST": http.Method_Post(),
    "PUT": http.Method_Put(),
    "PATCH": http.Method_Patch(),
    "DELETE": http.Method_Delete(),
}


def transient(message: str, retry_after: Optional[int] = None) -> Err:
    return Err(PluginError_Transient(TransientError(message, retry_after)))


def permanent(message: str) -> Err:
    return Err(PluginError_Permanent(message))


def misconfigured(message: str) -> Err:
    return Err(PluginError_Misconfigured(message))


@dataclass
class Response:
    request: str  # "METHOD url", for messages
    status: int
    headers: List[Tuple[str, bytes]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value.decode("utf-8", "replace")
        return None

    def retry_after(self) -> Optional[int]:
        """Retry-After in seconds (the HTTP-date form is left to the workflow's backoff)."""
        value = (self.header("retry-after") or "").strip()
        return min(int(value), 2**32 - 1) if value.isdigit() else None

    def error(self, context: str) -> Err:
        """The error this status means, as the Rust SDK maps it (plugins/README.md)."""
        text = self.body.decode("utf-8", "replace").strip()[:MAX_VENDOR_TEXT]
        detail = f"{context} ({self.request}): HTTP {self.status}" + (f": {text}" if text else "")
        if self.status in (401, 403):
            return misconfigured(f"{detail} (check the api-token and its permissions)")
        if self.status in (408, 425, 429) or (500 <= self.status <= 599 and self.status not in (501, 505)):
            return transient(detail, self.retry_after())
        return permanent(detail)


def send(method: str, url: str, headers: List[Tuple[str, str]], body: bytes = b"") -> Response:
    what = f"{method} {url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise misconfigured(f"{what}: not an http(s) URL")
    fields = [(name.lower(), value.encode()) for name, value in headers]
    if body:
        fields.append(("content-length", str(len(body)).encode()))
    try:
        request = http.OutgoingRequest(http.Fields.from_list(fields))
    except Err as e:
        raise permanent(f"{what}: header refused: {e.value}")
    request.set_method(_METHODS[method])
    request.set_scheme(http.Scheme_Https() if parts.scheme == "https" else http.Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    outgoing = request.body()
    try:
        pending = outgoing_handler.handle(request, None)
    except Err as e:
        raise _transport(what, e.value)
    # The stream must be dropped before the body is finished.
    with outgoing.write() as stream:
        for start in range(0, len(body), WRITE_CHUNK):
            stream.blocking_write_and_flush(body[start : start + WRITE_CHUNK])
    try:
        http.OutgoingBody.finish(outgoing, None)
    except Err as e:
        raise _transport(what, e.value)

    with pending:
        with pending.subscribe() as ready:
            ready.block()
        answer = pending.get()
    if answer is None or isinstance(answer, Err):
        raise transient(f"{what}: no response from the host")
    if isinstance(answer.value, Err):
        raise _transport(what, answer.value.value)
    with answer.value.value as response:
        status = response.status()
        with response.headers() as fields_in:
            response_headers = fields_in.entries()
        incoming = response.consume()
        return Response(what, status, response_headers, _read_body(what, incoming))


def _read_body(what: str, incoming: http.IncomingBody) -> bytes:
    chunks = []
    with incoming.stream() as stream:
        while True:
            try:
                chunks.append(stream.blocking_read(READ_CHUNK))
            except Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    break
                # The host's cap on vendor bodies shows up here too.
                raise permanent(f"{what}: reading the response failed: {e.value.value.to_debug_string()}")
    http.IncomingBody.finish(incoming).__exit__(None, None, None)
    return b"".join(chunks)


def _transport(what: str, code: http.ErrorCode) -> Err:
    if isinstance(code, http.ErrorCode_HttpRequestDenied):
        return misconfigured(f"{what}: the host refused the request (is the URL's host in allowed_outbound_hosts?)")
    if isinstance(code, http.ErrorCode_DestinationIpProhibited):
        return misconfigured(f"{what}: the host refuses private and loopback addresses")
    if isinstance(code, (http.ErrorCode_HttpRequestUriInvalid, http.ErrorCode_HttpProtocolError)):
        return permanent(f"{what}: {type(code).__name__}")
    return transient(f"{what}: {type(code).__name__}")
