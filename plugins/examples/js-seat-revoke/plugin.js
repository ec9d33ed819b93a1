// `js-seat-revoke`: a Reclaim plugin in JavaScript (componentize-js).
//
// Frees a seat through a small REST API (described in plugins/README.md, "Example vendor API"):
//
//   GET    {base}/seats/{sku}/users/{user}   200 = the user holds a seat, 404 = not
//   DELETE {base}/seats/{sku}/users/{user}   2xx = removed, 404 = already gone
//
// `sku` is the candidate's `software.sku` (else its product name) and `user` its UPN (else
// email, else directory id), each percent-encoded as one path segment. Every request carries
// `Authorization: Bearer <api-token>`; the DELETE carries `Idempotency-Key`.
//
// `fetch` is StarlingMonkey's, over `wasi:http/outgoing-handler`: the host lets it reach only
// the manifest's `allowed_outbound_hosts`. The exports may be async: componentize-js runs the
// event loop until the returned promise settles, so each export is still one synchronous call.

import { get, secret } from 'reclaim:plugin/config@0.1.0';
import { log } from 'reclaim:plugin/log@0.1.0';

const PLUGIN_ID = 'js-seat-revoke'; // must equal the manifest's id

// The most vendor text carried into an error message.
const MAX_VENDOR_TEXT = 300;

const JUSTIFICATIONS = [
  'low-usage', 'unused', 'unallocated', 'unlicensed',
  'restricted', 'overlapping', 'consolidation', 'downgrade',
];

// A `plugin-error` for the host: componentize-js lowers a thrown value's `payload` as the
// export's `result` error (a thrown plain Error would trap instead).
class PluginError extends Error {
  constructor(tag, val) {
    super(typeof val === 'string' ? val : val.message);
    this.payload = { tag, val };
  }
}
const transient = (message, retryAfterSecs) =>
  new PluginError('transient', { message, retryAfterSecs });
const permanent = (message) => new PluginError('permanent', message);
const misconfigured = (message) => new PluginError('misconfigured', message);

export function describe() {
  return {
    id: PLUGIN_ID,
    name: 'Seat removal over REST (JavaScript example)',
    version: '0.1.0',
    vendor: 'Example REST vendor',
    appliesTo: ['subscription'],
    justifications: JUSTIFICATIONS,
    configKeys: [
      { name: 'base', description: 'API root, e.g. https://seats.example.com/api/v1', required: true },
    ],
    secrets: [
      { name: 'api-token', description: 'bearer token of an account that may remove seats', required: true },
    ],
  };
}

export async function reclaim(req) {
  const url = seatUrl(req);
  const token = apiToken();
  if (req.dryRun) {
    // Read, never write: say exactly what a real run would do.
    const found = await send('GET', url, headers(token));
    if (found.status === 404) return { tag: 'already-absent' };
    if (found.status !== 200) throw await statusError('looking up the seat', found);
    return { tag: 'removed', val: `dry run: would DELETE ${url}` };
  }
  log('info', `removing seat: DELETE ${url}`);
  const answer = await send('DELETE', url, {
    ...headers(token),
    'idempotency-key': req.idempotencyKey,
  });
  if (answer.status >= 200 && answer.status <= 299) {
    return { tag: 'removed', val: `DELETE ${url}: HTTP ${answer.status}` };
  }
  if (answer.status === 404) return { tag: 'already-absent' };
  throw await statusError('removing the seat', answer);
}

export async function verify(req) {
  const found = await send('GET', seatUrl(req), headers(apiToken()));
  if (found.status === 200) return 'present';
  if (found.status === 404) return 'absent';
  throw await statusError('looking up the seat', found);
}

function seatUrl(req) {
  const base = (get('base') ?? '').trim().replace(/\/+$/, '');
  if (!/^https?:\/\//.test(base)) {
    throw misconfigured('config key `base` must be set to the API root (https://...)');
  }
  const sku = req.software.sku || req.software.product;
  const user = req.user.upn || req.user.email || req.user.id;
  // encodeURIComponent encodes "/" too: a user name can never change the path.
  return `${base}/seats/${encodeURIComponent(sku)}/users/${encodeURIComponent(user)}`;
}

function apiToken() {
  try {
    return secret('api-token');
  } catch (e) {
    // The host's message names the secret and where its value was expected, never a value.
    throw misconfigured(String(e.payload ?? e));
  }
}

function headers(token) {
  return { authorization: `Bearer ${token}`, accept: 'application/json' };
}

// Every HTTP status comes back as a Response; only a transport failure throws.
async function send(method, url, headers) {
  try {
    return await fetch(url, { method, headers });
  } catch (e) {
    // fetch does not say why: a host outside allowed_outbound_hosts, a private address the
    // host refuses, DNS or a refused connection all end here.
    throw transient(
      `${method} ${url}: no answer (${e}); if this persists, check that the URL's host is in allowed_outbound_hosts`,
    );
  }
}

// The error a non-success status means, as the Rust SDK maps it (plugins/README.md).
async function statusError(context, response) {
  let text = '';
  try {
    text = (await response.text()).trim().slice(0, MAX_VENDOR_TEXT);
  } catch {
    // An unreadable body (e.g. over the host's 1 MiB cap) still leaves the status to go by.
  }
  const status = response.status;
  const detail = `${context} (${response.url || 'vendor'}): HTTP ${status}${text ? `: ${text}` : ''}`;
  if (status === 401 || status === 403) {
    return misconfigured(`${detail} (check the api-token and its permissions)`);
  }
  if ([408, 425, 429].includes(status) || (status >= 500 && status <= 599 && status !== 501 && status !== 505)) {
    const retryAfter = (response.headers.get('retry-after') ?? '').trim();
    return transient(detail, /^\d+$/.test(retryAfter) ? Math.min(Number(retryAfter), 2 ** 32 - 1) : undefined);
  }
  return permanent(detail);
}
