// People's journeys through Reclaim in headless Chromium, against the real
// `reclaim serve --demo` binary on a free loopback port with a fresh database.
//
// A sam admin reclaims two candidates in bulk; a user opens the email link from the outbox,
// sees the confirmation page, confirms, and the stage moves; an approver rejects a keep
// request from the queue; Show Workflow highlights the stage the candidate is in.
// Screenshots go to test-output/screenshots/ (or $RECLAIM_SCREENSHOTS).
//
// Needs: RECLAIM_BIN (the `reclaim` binary; default $CARGO_TARGET_DIR/debug/reclaim) and
// Debian's chromium at /usr/bin/chromium (or $CHROMIUM).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { shots, startDemo } from './demo.mjs';

let context;
let base;
let close;

async function shot(page, name, options = {}) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true, ...options });
}

async function signIn(page, user) {
  await page.goto(`${base}/ui/sign-in`);
  await page.selectOption('#user', user);
  await page.getByRole('button', { name: 'Sign in as this person' }).click();
  await page.waitForURL(`${base}/ui`);
  await assert.doesNotReject(page.locator('#who').waitFor());
}

/** Signs in as `user` unless the browser already is (journeys may run alone). */
async function signedInAs(page, user) {
  await page.goto(`${base}/ui`);
  const who = page.locator('#who');
  if ((await who.count()) && new RegExp(user, 'i').test(await who.innerText())) return;
  if (await who.count()) await signOut(page);
  await signIn(page, user);
}

async function signOut(page) {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/ui\/sign-in/);
}

/** The stage shown on a candidate's page. */
async function stageOf(page, number) {
  await page.goto(`${base}/ui/candidates/${number}`);
  return page.locator('#state').getAttribute('data-state');
}

/** The outbox entry of the ask-user email about `number`, once the worker has sent it. */
async function askMail(page, number) {
  for (let i = 0; i < 50; i++) {
    await page.goto(`${base}/outbox`);
    const items = page.locator('ol.messages > li');
    const n = await items.count();
    for (let k = 0; k < n; k++) {
      const item = items.nth(k);
      if (!(await item.locator('h2').innerText()).startsWith('Do you still need')) continue;
      await item.locator('h2 a').click();
      const text = await page.locator('pre').innerText();
      if (text.includes(number) || text.includes(`Record:   ${number}`)) return;
      await page.goto(`${base}/outbox`);
    }
    await page.waitForTimeout(200);
  }
  throw new Error(`no email about ${number} in the outbox`);
}

before(async () => {
  ({ base, context, close } = await startDemo('browser'));
});

after(async () => {
  if (close) await close();
});

// Shared by the journeys, in order.
const reclaimed = [];

test('a sam admin signs in and reclaims two candidates in bulk', async () => {
  const page = await context.newPage();
  await signIn(page, 'sam');
  await shot(page, '01-home-sam');
  await page.goto(`${base}/ui/candidates`);
  await page.selectOption('#f-state', 'ready');
  await page.fill('#f-software', 'Adobe');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/state=ready/);
  const boxes = page.locator('input[type=checkbox][name=id]');
  assert.ok((await boxes.count()) >= 2, 'at least two Ready Adobe candidates');
  for (const i of [0, 1]) {
    const row = boxes.nth(i).locator('xpath=ancestor::tr');
    reclaimed.push(await row.getAttribute('data-number'));
    await boxes.nth(i).check();
  }
  await shot(page, '02-candidates-selected');
  await page.locator('#reclaim-selected').click();
  // First a preview: what each would do; nothing has changed yet.
  await page.locator('#preview').waitFor();
  assert.equal(await page.locator('#n-ask').innerText(), '2');
  await shot(page, '02b-bulk-preview');
  await page.locator('#confirm').click();
  await page.locator('#bulk-result').waitFor();
  assert.match(await page.locator('#bulk-result').innerText(), /2 candidate\(s\) reclaimed/);
  // The page arrived with its progress: only the latest line shows, and the running note goes.
  const progress = page.locator('.bulk-progress');
  assert.ok((await progress.count()) >= 2, 'a line before the work and one after');
  const shown = [];
  for (const line of await progress.all()) if (await line.isVisible()) shown.push((await line.innerText()).trim());
  assert.deepEqual(shown, ['Reclaimed 2 of 2']);
  assert.equal(await page.locator('#bulk-running').isVisible(), false);
  for (const n of reclaimed) {
    await assert.doesNotReject(page.locator('#reclaimed').getByRole('link', { name: n }).waitFor());
  }
  await shot(page, '03-bulk-reclaimed');
  for (const n of reclaimed) assert.equal(await stageOf(page, n), 'awaiting-user', n);
  await page.close();
});

test('a bulk preview skips and shows an excluded VIP, and Cancel changes nothing', async () => {
  const page = await context.newPage();
  // The device inventory found Tableau Desktop unused on three laptops, the VIP's among them.
  await page.goto(`${base}/ui/candidates?state=ready&publisher=Tableau`);
  const before = await page.locator('tr[data-number]').count();
  assert.ok(before > 0, 'Ready Tableau candidates in the demo');
  await page.locator('#reclaim-all').click();
  await page.locator('#preview').waitFor();
  const excluded = page.locator('#preview-items tr[data-outcome="excluded"]');
  assert.ok((await excluded.count()) >= 1, 'the demo has a VIP with an unused Tableau Desktop');
  assert.match(await excluded.first().innerText(), /VIP users are excluded/);
  assert.equal(await page.locator('#n-excluded').innerText(), String(await excluded.count()));
  await shot(page, '02c-bulk-preview-excluded');
  await page.locator('#cancel').click();
  await page.waitForURL(/\/ui\/candidates$/);
  await page.goto(`${base}/ui/candidates?state=ready&publisher=Tableau`);
  assert.equal(await page.locator('tr[data-number]').count(), before, 'nothing was reclaimed');
  await page.close();
});

test('a user opens the email link from the outbox, confirms, and the stage moves', async () => {
  assert.equal(reclaimed.length, 2);
  const page = await context.newPage();
  // The first one: "No, remove it".
  await askMail(page, reclaimed[0]);
  await shot(page, '04-outbox-message');
  await page.locator('ul.links li', { hasText: 'No, remove it' }).locator('a').click();
  await page.waitForURL(/\/respond\//);
  assert.match(await page.locator('h1').innerText(), /Do you still need it\?/);
  assert.match(await page.locator('main').innerText(), /Your choice: No, remove it/);
  await shot(page, '05-confirmation-page');
  // Loading the page changed nothing.
  const check = await context.newPage();
  assert.equal(await stageOf(check, reclaimed[0]), 'awaiting-user');
  await page.fill('#comment', 'I switched to the free reader');
  await page.getByRole('button', { name: 'Confirm: No, remove it' }).click();
  await page.locator('h1', { hasText: 'Thank you' }).waitFor();
  assert.match(await page.locator('main').innerText(), /it is being removed/);
  await shot(page, '06-answer-recorded');
  assert.equal(await stageOf(check, reclaimed[0]), 'awaiting-revocation');
  // The history names the browser that answered.
  assert.match(await check.locator('#history').innerText(), /The user answered: remove it/);
  assert.match(await check.locator('#history').innerText(), /HeadlessChrome|Chrome/);
  // Opening the same link again: already answered, nothing changes.
  await page.goBack();
  await page.reload();
  assert.match(await page.locator('h1').innerText(), /Already answered/);

  // The second one: "Yes, keep it", so that it waits for an approver.
  await askMail(page, reclaimed[1]);
  await page.locator('ul.links li', { hasText: 'Yes, keep it' }).locator('a').click();
  await page.getByRole('button', { name: 'Confirm: Yes, keep it' }).click();
  await page.locator('h1', { hasText: 'Thank you' }).waitFor();
  assert.equal(await stageOf(check, reclaimed[1]), 'awaiting-approval');
  await check.close();
  await page.close();
});

test('an approver rejects the keep request from the queue', async () => {
  const page = await context.newPage();
  await page.goto(`${base}/ui`);
  await signOut(page);
  await signIn(page, 'alice');
  await page.goto(`${base}/ui/approvals`);
  const item = page.locator(`section.queue-item[data-number="${reclaimed[1]}"]`);
  await item.waitFor();
  await shot(page, '07-approver-queue');
  await item.getByLabel('Comment for the user (optional)').fill('Please use the free reader');
  await item.getByRole('button', { name: 'Reject: remove it' }).click();
  await page.locator('#done').waitFor();
  assert.match(await page.locator('#done').innerText(), /Rejected/);
  assert.equal(await page.locator(`section.queue-item[data-number="${reclaimed[1]}"]`).count(), 0);
  await shot(page, '08-rejected');
  assert.equal(await stageOf(page, reclaimed[1]), 'awaiting-revocation');
  await page.close();
});

test('Show Workflow highlights the current stage and the path taken', async () => {
  const page = await context.newPage();
  await page.goto(`${base}/ui/candidates/${reclaimed[1]}`);
  const svg = page.locator('#workflow svg.workflow');
  assert.equal(await svg.isVisible(), false, 'folded until asked for');
  await page.locator('#show-workflow').click();
  await svg.waitFor({ state: 'visible' });
  const current = page.locator('#workflow g.wf-node.current');
  assert.equal(await current.count(), 1);
  assert.equal(await current.getAttribute('data-state'), 'awaiting-revocation');
  assert.equal(await current.getAttribute('aria-current'), 'step');
  assert.equal(await current.locator('text').textContent(), 'Awaiting Revocation');
  // The highlight is drawn: the current box is filled, unlike boxes never reached.
  const fill = (sel) => page.locator(sel).evaluate((el) => getComputedStyle(el).fill);
  const currentFill = await fill('#workflow g.wf-node.current rect');
  const otherFill = await fill('#workflow g.wf-node[data-state="closed-canceled"] rect');
  assert.notEqual(currentFill, otherFill);
  for (const s of ['ready', 'awaiting-user', 'awaiting-approval']) {
    assert.match(
      await page.locator(`#workflow g.wf-node[data-state="${s}"]`).getAttribute('class'),
      /visited/,
      s,
    );
  }
  assert.equal(await page.locator('#workflow path.wf-edge.taken').count(), 3);
  assert.match(
    await page.locator('#workflow-text').innerText(),
    /Path taken: Ready → Awaiting User → Awaiting Approval → Awaiting Revocation/,
  );
  await page.locator('#workflow').screenshot({ path: path.join(shots, '09-show-workflow.png') });
  await page.close();
});

test('a sam admin adds a rule, fixes what the form refused, and edits it', async () => {
  const page = await context.newPage();
  await page.goto(`${base}/ui`);
  if (await page.locator('#who').count()) await signOut(page);
  await signIn(page, 'sam');
  await page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: 'Rules' }).click();
  await page.waitForURL(`${base}/ui/rules`);
  await page.locator('#new-rule').click();
  await page.getByLabel('Id', { exact: true }).fill('visio-unused');
  await page.getByLabel('Name', { exact: true }).fill('Visio unused for 60 days');
  await page.getByLabel('Software').fill('Microsoft / Visio');
  await page.getByLabel('Reclaimable when').selectOption('last-used-before');
  await page.getByLabel('N days (last used)').fill('60');
  await page.getByLabel('Days before removal without an answer').fill('10');
  await page.getByLabel('Reminders on days').fill('3, 12');
  await page.getByLabel('Assignment group (approves keep requests)').selectOption('desktop-approvers');
  await page.getByRole('button', { name: 'Save rule' }).click();
  // A reminder after the removal day is refused, shown at its field, and the typing is kept.
  await page.locator('#problems').waitFor();
  assert.match(await page.locator('#reminder_days-error').innerText(), /day 12/);
  assert.equal(await page.getByLabel('Reminders on days').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Software').inputValue(), 'Microsoft / Visio');
  await shot(page, '12-rule-refused');
  await page.locator('#problems a[href="#f-reminder_days"]').click();
  await page.getByLabel('Reminders on days').fill('3, 7');
  await page.getByRole('button', { name: 'Save rule' }).click();
  await page.waitForURL(/\/ui\/rules\?saved=visio-unused/);
  const row = page.locator('tr[data-rule="visio-unused"]');
  assert.match(await row.innerText(), /Last used more than 60 days ago/);
  await shot(page, '13-rules');
  // Edit: make it report only.
  await row.getByRole('link', { name: 'Visio unused for 60 days' }).click();
  await page.getByLabel(/^Create candidates/).uncheck();
  await page.getByRole('button', { name: 'Save rule' }).click();
  await page.waitForURL(/saved=visio-unused/);
  assert.match(await page.locator('tr[data-rule="visio-unused"]').innerText(), /Report only/);
  await page.close();
});

test('the demo seat that came back is an alert; the sam admin reads its verification and accepts it', async () => {
  const page = await context.newPage();
  await page.goto(`${base}/ui`);
  if (await page.locator('#who').count()) await signOut(page);
  await signIn(page, 'sam');
  await page.goto(`${base}/ui/alerts`);
  const alert = page.locator('#alerts tr.reappeared');
  assert.equal(await alert.count(), 1, 'one reappeared seat in the demo');
  assert.match(await alert.innerText(), /Reappeared: a re-check on/);
  await shot(page, '14-alerts-reappeared');
  await alert.getByRole('link').click();
  const card = page.locator('#verification');
  assert.equal(await card.getAttribute('data-reappeared'), 'yes');
  assert.match(await card.innerText(), /verified absent at the vendor/);
  assert.match(await page.locator('#history').innerText(), /Re-check: it is back at the vendor/);
  await shot(page, '15-candidate-reappeared');
  await page.fill('#comment', 'given back for the Q1 audit project');
  await page.locator('#do-accept-reappeared').click();
  await page.waitForURL(/done=accept-reappeared/);
  assert.match(await page.locator('#resolution').innerText(), /accepted: given back for the Q1 audit project/);
  await page.goto(`${base}/ui/alerts`);
  assert.equal(await page.locator('#alerts tr.reappeared').count(), 0, 'decided: no longer an alert');
  await page.goto(`${base}/ui/savings`);
  assert.match(await page.locator('#verified').innerText(), /^USD [1-9][\d,]*\.\d\d$/, 'the other demo seat is verified');
  // The chart's labels are the page's size, whatever the number of months.
  const labelPx = await page.evaluate(() => {
    const t = document.querySelector('svg.chart text');
    return t ? t.getBoundingClientRect().height : 0;
  });
  assert.ok(labelPx > 0 && labelPx < 24, `chart labels ${labelPx}px high`);
  await shot(page, '16-savings');
  await page.close();
});

/** Reloads until `locator` shows up (the worker runs in the background). */
async function reloadUntil(page, locator, what) {
  for (let i = 0; i < 100; i++) {
    if (await locator.count()) return;
    await page.waitForTimeout(200);
    await page.reload();
  }
  throw new Error(`never saw ${what}`);
}

test('a sam admin runs a usage connector from the Connectors page and opens a candidate it created', async () => {
  const page = await context.newPage();
  await signedInAs(page, 'sam');
  await page.getByRole('link', { name: 'Connectors' }).click();
  await page.waitForURL(`${base}/ui/connectors`);
  const m365 = page.locator('#connector-m365-usage');
  // Its first run found the demo's candidates before the server answered.
  await reloadUntil(page, m365.locator('tr[data-run="1"].run-finished'), 'the first run finish');
  const created = Number(await m365.locator('tr[data-run="1"] td.created').innerText());
  assert.ok(created > 0, `the first run created ${created}`);
  await m365.getByRole('button', { name: 'Run now' }).click();
  await page.waitForURL(/\/ui\/connectors\?started=m365-usage/);
  assert.match(await page.locator('#done').innerText(), /m365-usage runs now/);
  await reloadUntil(page, m365.locator('tr[data-run="2"].run-finished'), 'Run now finish');
  const run = await m365.locator('tr[data-run="2"]').innerText();
  assert.match(run, /\bsam\b/, 'started by the sam admin');
  assert.match(run, /a candidate is already open/, 'the second run finds its candidates open');
  await shot(page, '17-connectors');
  // The newest candidates are the connectors' own.
  await page.goto(`${base}/ui/candidates?sort=-number`);
  const newest = await page.locator('tr[data-number]').first().getAttribute('data-number');
  await page.locator(`tr[data-number="${newest}"] a`).click();
  await page.waitForURL((url) => url.pathname.startsWith('/ui/candidates/') && url.pathname !== '/ui/candidates/');
  assert.match(await page.locator('main').innerText(), /Microsoft 365 licenses unused|Desktop software unused/);
  await shot(page, '18-candidate-from-a-connector');
  await page.close();
});

/** The numbers in a column of the list, in the order shown. */
async function column(page, label) {
  return page.locator(`tbody td[data-label="${label}"]`).allInnerTexts();
}

function amount(text) {
  const m = text.replace(/,/g, '').match(/-?\d+(\.\d+)?/);
  return m ? Number(m[0]) : NaN;
}

test('the list counts, sorts by a heading, finds part of a word and keeps ticks across pages', async () => {
  const page = await context.newPage();
  await signedInAs(page, 'sam');
  await page.goto(`${base}/ui/candidates`);
  assert.match(await page.locator('#list-count').innerText(), /^\d[\d,]* candidates match; showing 1–\d+\.$/);
  // Savings, largest first; the same heading again turns it round.
  await page.locator('#sort-savings').click();
  await page.locator('th[aria-sort="descending"] #sort-savings').waitFor();
  const down = (await column(page, 'Savings')).map(amount);
  assert.ok(down.length > 2);
  assert.deepEqual(down, [...down].sort((a, b) => b - a), `largest first: ${down}`);
  await shot(page, '12-candidates-by-savings');
  await page.locator('#sort-savings').click();
  await page.locator('th[aria-sort="ascending"] #sort-savings').waitFor();
  const up = (await column(page, 'Savings')).map(amount);
  assert.deepEqual(up, [...up].sort((a, b) => a - b), `smallest first: ${up}`);
  // Part of a word, in any case.
  await page.fill('#f-software', 'acro');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/software=acro/);
  const software = await column(page, 'Software');
  assert.ok(software.length > 0, 'the demo has Acrobat seats');
  assert.ok(software.every((s) => /acrobat/i.test(s)), software.join(' | '));
  assert.match(await page.locator('#list-count').innerText(), /match/);
  await shot(page, '13-candidates-search-acro');
  // Tick one on the first page, go on, tick one there, come back: both stay ticked.
  await page.goto(`${base}/ui/candidates?state=ready&limit=2&sort=number`);
  const first = page.locator('tbody input[name=id]').first();
  const firstId = await first.getAttribute('id');
  await first.check();
  await page.locator('#next-page').click();
  await page.locator('#prev-page').waitFor();
  assert.match(await page.locator('#selection').innerText(), /1 selected/);
  await page.locator('tbody input[name=id]').first().check();
  await page.locator('#prev-page').click();
  await page.locator(`#${firstId}`).waitFor();
  assert.ok(await page.locator(`#${firstId}`).isChecked(), 'the first page keeps its tick');
  assert.match(await page.locator('#selection').innerText(), /2 selected \(1 on other pages\)/);
  await shot(page, '14-candidates-selection-kept');
  await page.locator('#reclaim-selected').click();
  await page.locator('#preview').waitFor();
  assert.match(await page.locator('h1').innerText(), /Reclaim 2 candidate\(s\)\?/);
  await page.locator('#cancel').click();
  await page.close();
});

test('every page, at desktop and at phone width, fits the screen', async () => {
  const page = await context.newPage();
  await signedInAs(page, 'sam');
  await page.goto(`${base}/ui/candidates?sort=-deadline`);
  const number = await page.locator('tr[data-number]').first().getAttribute('data-number');
  await page.goto(`${base}/outbox`);
  const message = await page.locator('ol.messages > li h2 a').first().getAttribute('href');
  const pages = [
    ['home', '/ui'],
    ['candidates', '/ui/candidates'],
    ['candidate', `/ui/candidates/${number}`],
    ['approvals', '/ui/approvals'],
    ['tasks', '/ui/tasks'],
    ['savings', '/ui/savings'],
    ['alerts', '/ui/alerts'],
    ['rules', '/ui/rules'],
    ['rule-new', '/ui/rules/new'],
    ['connectors', '/ui/connectors'],
    ['outbox', '/outbox'],
    ['outbox-message', message],
  ];
  for (const [width, label] of [[1280, 'desktop'], [390, 'phone']]) {
    await page.setViewportSize({ width, height: 900 });
    for (const [name, url] of pages) {
      const r = await page.goto(`${base}${url}`);
      assert.equal(r.status(), 200, `${url}: ${r.status()}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${name} at ${label} width scrolls sideways by ${overflow}px`);
      await shot(page, `page-${name}-${label}`);
    }
  }
  await page.close();
});

test('the address printed first opens the workspace', async () => {
  const page = await context.newPage();
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/ui(\/sign-in)?(\?.*)?$/, page.url());
  await page.close();
});

test('the workspace is usable on a phone', async () => {
  const page = await context.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}/ui/candidates`);
  // Nothing wider than the screen but the table, which scrolls in its own box.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px`);
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.className);
  assert.equal(focused, 'skip', 'the first Tab reaches "Skip to content"');
  await shot(page, '10-phone-candidates');
  await page.goto(`${base}/ui/savings`);
  await page.locator('#potential').waitFor();
  await shot(page, '11-phone-savings');
  await page.close();
});
