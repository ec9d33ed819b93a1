// Signing in as an organisation does, in headless Chromium: the real `reclaim serve` binary
// WITHOUT --demo, configured for a real OpenID Provider (oidc-provider under Node,
// tests/oidc/provider.mjs, on its own loopback port). A person signs in through the
// provider's login page, lands in the workspace as themselves, signs out, and the old cookie
// no longer opens anything.
//
// Needs: RECLAIM_BIN (or $CARGO_TARGET_DIR/debug/reclaim), RECLAIM_OIDC_PROVIDER (the
// provider script, installed by test.sh), Debian's chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'reclaim-target');
const bin = process.env.RECLAIM_BIN || path.join(targetDir, 'debug', 'reclaim');
const providerScript = process.env.RECLAIM_OIDC_PROVIDER || path.join(repo, 'tests', 'oidc', 'provider.mjs');
const shots = process.env.RECLAIM_SCREENSHOTS || path.join(repo, 'test-output', 'screenshots');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const CLIENT_ID = 'reclaim-workspace';
const CLIENT_SECRET = 'client-secret-of-the-browser-journey';

let tmp;
let server;
let provider;
let log = '';
let browser;
let base;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startProvider(redirect) {
  const account = {
    sub: '00u-ada',
    password: 'ada-pass-1',
    preferred_username: 'ada',
    email: 'ada@example.com',
    name: 'Ada Approver',
  };
  provider = spawn(
    'node',
    [
      providerScript,
      '--port', '0',
      '--client-id', CLIENT_ID,
      '--client-secret', CLIENT_SECRET,
      '--redirect-uri', redirect,
      '--account', JSON.stringify(account),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  provider.stderr.on('data', (d) => (log += d));
  const lines = readline.createInterface({ input: provider.stdout });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ISSUER line from the provider:\n${log}`)), 30_000);
    lines.on('line', (l) => {
      if (l.startsWith('ISSUER ')) {
        clearTimeout(t);
        resolve(l.slice('ISSUER '.length).trim());
      }
    });
  });
}

async function waitForHealth(url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (server.exitCode !== null) break;
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`reclaim serve did not come up:\n${log}`);
}

async function stop(child) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      r();
    }, 5000);
    child.once('exit', () => {
      clearTimeout(t);
      r();
    });
  });
}

before(async () => {
  assert.ok(fs.existsSync(bin), `the reclaim binary is missing: ${bin} (set RECLAIM_BIN)`);
  fs.mkdirSync(shots, { recursive: true });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reclaim-sign-in-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const issuer = await startProvider(`${base}/ui/oidc/callback`);
  const db = path.join(tmp, 'reclaim.db');
  fs.writeFileSync(
    path.join(tmp, 'seed.json'),
    JSON.stringify({
      users: [
        { id: 'ada', display_name: 'Ada Approver', email: 'ada@example.com', sam_admin: true },
      ],
    }),
  );
  execFileSync(bin, ['seed', path.join(tmp, 'seed.json'), '--db', db]);
  server = spawn(
    bin,
    [
      'serve', '--db', db, '--addr', `127.0.0.1:${port}`, '--tick-secs', '3600',
      '--mail', 'outbox',
      '--oidc-issuer', issuer, '--oidc-client-id', CLIENT_ID, '--oidc-name', 'Example ID',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: 'warn', RECLAIM_OIDC_CLIENT_SECRET: CLIENT_SECRET },
    },
  );
  server.stdout.on('data', (d) => (log += d));
  server.stderr.on('data', (d) => (log += d));
  await waitForHealth(base, 30_000);
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  await stop(server);
  await stop(provider);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('a person signs in with the identity provider, signs out, and the old cookie opens nothing', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  // Not signed in: the workspace sends the browser to sign in, which offers only the provider
  // and pasting a token.
  await page.goto(`${base}/ui/savings`);
  await page.waitForURL(/\/ui\/sign-in/);
  assert.equal(await page.locator('#user').count(), 0, 'no person picker without --demo');
  await page.screenshot({ path: path.join(shots, '20-sign-in-production.png'), fullPage: true });
  await page.getByRole('link', { name: 'Sign in with Example ID' }).click();

  // The provider's own login page.
  await page.locator('#username').waitFor();
  assert.ok(page.url().startsWith('http://127.0.0.1:'), page.url());
  assert.ok(!page.url().startsWith(base), 'we are at the provider');
  await page.fill('#username', 'ada');
  await page.fill('#password', 'wrong-password');
  await page.locator('#sign-in').click();
  await page.locator('#username').waitFor();
  await page.fill('#password', 'ada-pass-1');
  await page.screenshot({ path: path.join(shots, '21-provider-login.png'), fullPage: true });
  await page.locator('#sign-in').click();

  // Back in the workspace, as Ada, where she was going.
  await page.waitForURL(`${base}/ui/savings`);
  assert.equal(await page.locator('#who').innerText(), 'Ada Approver');
  await page.screenshot({ path: path.join(shots, '22-signed-in-with-provider.png'), fullPage: true });
  const session = (await context.cookies(base)).find((c) => c.name === 'reclaim_session');
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');

  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/ui\/sign-in/);

  // The old cookie, put back by hand into a fresh browser, no longer opens anything.
  const other = await browser.newContext();
  await other.addCookies([{ ...session }]);
  const again = await other.newPage();
  await again.goto(`${base}/ui`);
  await again.waitForURL(/\/ui\/sign-in/);
  assert.equal(await again.locator('#who').count(), 0);
  await other.close();
  await context.close();
});
