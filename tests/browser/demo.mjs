// What the browser journeys share: the real `reclaim serve --demo` binary started on a free
// loopback port with a fresh database (the plugins test.sh built, when given), headless
// Chromium in a profile of its own, and both stopped again.
//
// Needs: RECLAIM_BIN (the `reclaim` binary; default $CARGO_TARGET_DIR/debug/reclaim) and
// Debian's chromium at /usr/bin/chromium (or $CHROMIUM).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), '.cache', 'reclaim-target');
export const bin = process.env.RECLAIM_BIN || path.join(targetDir, 'debug', 'reclaim');
export const shots = process.env.RECLAIM_SCREENSHOTS || path.join(repo, 'test-output', 'screenshots');
export const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until `child` answers /healthz at `url`, or fails with what it logged. */
export async function waitForHealth(child, url, ms, log) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    if (child.exitCode !== null) break;
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`reclaim serve did not come up (${last}):\n${log()}`);
}

/** Stops a child: SIGINT, then SIGKILL after 5 seconds. */
export async function stop(child) {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGINT');
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

/**
 * Starts the demo and a browser. Returns { base, context, close }; `close` stops both and
 * removes the temporary files.
 */
export async function startDemo(name) {
  assert.ok(fs.existsSync(bin), `the reclaim binary is missing: ${bin} (set RECLAIM_BIN)`);
  fs.mkdirSync(shots, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `reclaim-${name}-`));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // The plugins test.sh built (else the demo's default, plugins/dist), so the demo vendors and
  // the plugins that call them run as in the README's first command.
  const plugins = process.env.RECLAIM_PLUGINS_DIR ? ['--plugins', process.env.RECLAIM_PLUGINS_DIR] : [];
  let serverLog = '';
  const server = spawn(
    bin,
    ['serve', '--demo', '--db', path.join(tmp, 'demo.db'), '--addr', `127.0.0.1:${port}`, '--tick-secs', '3600', ...plugins],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } },
  );
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  let context;
  const close = async () => {
    if (context) await context.close();
    await stop(server);
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await waitForHealth(server, base, 30_000, () => serverLog);
    context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
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
      viewport: { width: 1280, height: 900 },
    });
    context.setDefaultTimeout(15_000);
  } catch (e) {
    await close();
    throw e;
  }
  return { base, context, close };
}
