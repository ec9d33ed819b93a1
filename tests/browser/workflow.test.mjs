// Show Workflow's layout in headless Chromium, against the real `reclaim serve --demo` binary
// on a free loopback port with a fresh database.
//
// The diagram is measured as the browser draws it: every arrow is sampled along its length and
// no sample may lie inside a box other than the arrow's own two ends; no words lie on a box or
// on other words; exactly one box, the candidate's stage, is marked current, and the moves it
// took are highlighted. Screenshots at desktop (1280) and phone (390) width go to
// test-output/screenshots/ (or $RECLAIM_SCREENSHOTS).
//
// Needs: RECLAIM_BIN (the `reclaim` binary; default $CARGO_TARGET_DIR/debug/reclaim), Debian's
// chromium at /usr/bin/chromium (or $CHROMIUM), and the built plugins in $RECLAIM_PLUGINS_DIR
// (else the demo's default, plugins/dist): the demo's usage connectors find its candidates
// and it closes two at the vendor.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { shots, startDemo } from './demo.mjs';

let context;
let base;
let close;

before(async () => {
  ({ base, context, close } = await startDemo('workflow'));
  const page = await context.newPage();
  await page.goto(`${base}/ui/sign-in`);
  await page.selectOption('#user', 'sam');
  await page.getByRole('button', { name: 'Sign in as this person' }).click();
  await page.waitForURL(`${base}/ui`);
  await page.close();
});

after(async () => {
  if (close) await close();
});

/** The number of the first candidate the list shows for `query`. */
async function firstCandidate(page, query) {
  await page.goto(`${base}/ui/candidates?${query}`);
  const rows = page.locator('tr[data-number]');
  assert.ok(
    (await rows.count()) > 0,
    `no demo candidate with ${query} (the demo finds its candidates and closes two at the vendor only with the built plugins: RECLAIM_PLUGINS_DIR)`,
  );
  return rows.first().getAttribute('data-number');
}

/** Opens Show Workflow on `number`'s page; returns the stage the page states. */
async function openWorkflow(page, number) {
  await page.goto(`${base}/ui/candidates/${number}`);
  const stage = await page.locator('#state').getAttribute('data-state');
  await page.locator('#show-workflow').click();
  await page.locator('#workflow svg.workflow').waitFor({ state: 'visible' });
  return stage;
}

/**
 * The diagram as drawn: boxes, arrows sampled every 2 units along their length (in the SVG's
 * own units), the words' boxes, and how large the words appear on screen.
 */
function measure(page) {
  return page.evaluate(() => {
    const svg = document.querySelector('#workflow svg.workflow');
    const nodes = [...svg.querySelectorAll('g.wf-node')].map((g) => {
      const r = g.querySelector('rect');
      return {
        id: g.dataset.state,
        cls: g.getAttribute('class'),
        x: r.x.baseVal.value,
        y: r.y.baseVal.value,
        w: r.width.baseVal.value,
        h: r.height.baseVal.value,
      };
    });
    const edges = [...svg.querySelectorAll('path.wf-edge')].map((p) => {
      const len = p.getTotalLength();
      const samples = [];
      for (let s = 0; s <= len; s += 2) {
        const q = p.getPointAtLength(s);
        samples.push([q.x, q.y]);
      }
      const end = p.getPointAtLength(len);
      samples.push([end.x, end.y]);
      return { from: p.dataset.from, to: p.dataset.to, taken: p.classList.contains('taken'), len, samples };
    });
    const labels = [...svg.querySelectorAll('text.wf-label')].map((t) => {
      const b = t.getBBox();
      return { text: [...t.querySelectorAll('tspan')].map((s) => s.textContent).join(' '), x: b.x, y: b.y, w: b.width, h: b.height, taken: t.classList.contains('taken') };
    });
    const scale = svg.getScreenCTM().a;
    const label = svg.querySelector('text.wf-label');
    const fontPx = label ? parseFloat(getComputedStyle(label).fontSize) * scale : 0;
    const scroller = svg.closest('.wf-scroll');
    return {
      nodes,
      edges,
      labels,
      fontPx,
      scrolls: scroller.scrollWidth > scroller.clientWidth + 1,
      pageScrolls: document.documentElement.scrollWidth > window.innerWidth + 1,
    };
  });
}

const inside = (p, n) => p[0] > n.x + 0.5 && p[0] < n.x + n.w - 0.5 && p[1] > n.y + 0.5 && p[1] < n.y + n.h - 0.5;
const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** What every drawing must be: readable, whatever the candidate's stage. */
function assertReadable(d) {
  assert.equal(d.nodes.length, 8, 'every state has a box');
  assert.ok(d.edges.length >= 15, `the moves are drawn (${d.edges.length})`);
  for (const e of d.edges) {
    assert.ok(e.len > 10, `${e.from}→${e.to} is drawn`);
    for (const n of d.nodes) {
      if (n.id === e.from || n.id === e.to) continue;
      const hit = e.samples.find((p) => inside(p, n));
      assert.equal(hit, undefined, `${e.from}→${e.to} passes through ${n.id} at ${hit}`);
    }
  }
  assert.ok(d.labels.length >= 10, `the moves are labelled (${d.labels.length})`);
  d.labels.forEach((l, i) => {
    assert.ok(l.text.trim().length > 0);
    for (const n of d.nodes) assert.ok(!overlap(l, n), `"${l.text}" lies on ${n.id}`);
    for (const o of d.labels.slice(i + 1)) assert.ok(!overlap(l, o), `"${l.text}" lies on "${o.text}"`);
  });
}

/** Exactly one box is current, the candidate's stage; the moves taken end at it. */
function assertHighlighted(d, stage, taken) {
  const current = d.nodes.filter((n) => /\bcurrent\b/.test(n.cls));
  assert.deepEqual(current.map((n) => n.id), [stage]);
  const drawn = d.edges.filter((e) => e.taken).map((e) => `${e.from}>${e.to}`).sort();
  assert.deepEqual(drawn, [...taken].sort());
  for (const t of taken) {
    for (const id of t.split('>')) {
      assert.match(d.nodes.find((n) => n.id === id).cls, /\bvisited\b/, id);
    }
  }
  assert.ok(d.labels.some((l) => l.taken), 'the words of a move taken are highlighted');
}

test('a candidate closed at the vendor: the path and its stage stand out, no line crosses a box', async () => {
  const page = await context.newPage();
  const number = await firstCandidate(page, 'state=closed-complete&publisher=Microsoft');
  const stage = await openWorkflow(page, number);
  assert.equal(stage, 'closed-complete');
  // Its history reads as evidence: words for each step, never the raw event names.
  const history = await page.locator('#history tbody').innerText();
  assert.match(history, /The plugin removed it/);
  assert.match(history, /The vendor confirms it is gone/);
  assert.doesNotMatch(history, /revocation-removed|verified-absent|Awaiting Revocation → Awaiting Revocation/);
  const d = await measure(page);
  assertReadable(d);
  assertHighlighted(d, 'closed-complete', ['ready>awaiting-revocation', 'awaiting-revocation>closed-complete']);
  // At desktop width the diagram keeps its size: its words as large as the page's small text.
  assert.ok(d.fontPx >= 11.5, `words drawn at ${d.fontPx}px`);
  assert.equal(d.scrolls, false, 'no sideways scrolling at desktop width');
  await page.locator('#workflow').screenshot({ path: path.join(shots, 'workflow-desktop-closed-complete.png') });

  // The same graph as text, for screen readers and whoever opens it.
  const outline = page.locator('#workflow-outline');
  assert.equal(await outline.isVisible(), false, 'folded until asked for');
  await page.locator('#show-workflow-as-text').click();
  await outline.waitFor({ state: 'visible' });
  assert.equal(await outline.locator(':scope > li').count(), 8);
  const current = outline.locator(':scope > li.current');
  assert.equal(await current.count(), 1);
  assert.equal(await current.getAttribute('data-state'), 'closed-complete');
  assert.match(await current.innerText(), /Closed Complete \(current stage\)/);
  const ready = await outline.locator(':scope > li[data-state="ready"]').innerText();
  assert.match(ready, /on Reclaim: no notification → Awaiting Revocation \(taken\)/);
  assert.match(ready, /on Reclaim: notify user → Awaiting User\n/);
  assert.match(
    await outline.locator(':scope > li[data-state="awaiting-user"]').innerText(),
    /on Reminder → stays in Awaiting User/,
  );
  await page.locator('#workflow').screenshot({ path: path.join(shots, 'workflow-desktop-as-text.png') });
  await page.close();
});

test('a candidate waiting for its user, on a phone: the card scrolls, the page does not', async () => {
  const page = await context.newPage();
  const number = await firstCandidate(page, 'state=ready&publisher=Adobe');
  await page.goto(`${base}/ui/candidates/${number}`);
  await page.locator('#do-reclaim').click();
  await page.waitForURL(/done=/);
  const stage = await openWorkflow(page, number);
  assert.equal(stage, 'awaiting-user');
  let d = await measure(page);
  assertReadable(d);
  assertHighlighted(d, 'awaiting-user', ['ready>awaiting-user']);
  await page.locator('#workflow').screenshot({ path: path.join(shots, 'workflow-desktop-awaiting-user.png') });

  await page.setViewportSize({ width: 390, height: 844 });
  d = await measure(page);
  assertReadable(d);
  assertHighlighted(d, 'awaiting-user', ['ready>awaiting-user']);
  assert.ok(d.fontPx >= 9, `words still legible on a phone (${d.fontPx}px)`);
  assert.equal(d.scrolls, true, 'the diagram scrolls inside its card');
  assert.equal(d.pageScrolls, false, 'the page itself does not scroll sideways');
  await page.locator('#workflow').screenshot({ path: path.join(shots, 'workflow-phone-awaiting-user.png') });
  await page.locator('.wf-scroll').evaluate((el) => el.scrollTo(el.scrollWidth, 0));
  await page.locator('#workflow').screenshot({ path: path.join(shots, 'workflow-phone-scrolled.png') });
  await page.close();
});
