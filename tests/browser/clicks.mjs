// A real browser against a running `eddy standalone`: headless Chromium opens the collector's
// demo page, clicks its buttons (custom events and a pushState navigation), leaves the page
// right after an event (the unload path), comes back (the party cookie), and the exact events
// are asserted through Eddy's SQL endpoint.
//
// Usage: node tests/browser/clicks.mjs --eddy target/debug/eddy --chromium /usr/bin/chromium
// (scripts/browser-e2e installs Chromium and playwright-core and runs this).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const require = createRequire(resolve(args.modules || process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

function startEddy(dataDir) {
  const proc = spawn(args.eddy, ['standalone', '--data-dir', dataDir, '--http-addr', '127.0.0.1:0',
    '--flight-addr', '', '--collector-addr', '127.0.0.1:0'], { env: { ...process.env, NO_COLOR: '1', RUST_LOG: 'info' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const found = {};
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('eddy did not log its addresses')), 60000);
    proc.stdout.on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const node = line.match(/eddy standalone listening on (http:\/\/127\.0\.0\.1:\d+)/);
        const collector = line.match(/collector listening on (http:\/\/127\.0\.0\.1:\d+)/);
        if (node) found.node = node[1];
        if (collector) found.collector = collector[1];
        if (found.node && found.collector) {
          clearTimeout(timer);
          resolve({ proc, ...found });
        }
      }
    });
    proc.on('exit', (code) => reject(new Error(`eddy exited with ${code}`)));
  });
}

async function sql(node, query, parameters = []) {
  const r = await fetch(`${node}/druid/v2/sql`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ query, parameters }) });
  const body = await r.json();
  if (!r.ok) throw new Error(`${query}: ${JSON.stringify(body)}`);
  return body;
}

async function eventsOf(node, party, want, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let rows = [];
    try {
      rows = await sql(node, 'SELECT eventType, location, referer, eventParameters, pageViewId, sessionId, firstInSession, newParty, isBot, botReason, ' +
        'screenPixelWidth, viewportPixelWidth, detectedCorruption, detectedDuplicate FROM clicks WHERE partyId = ? ORDER BY clientTimestamp, eventId',
        [{ type: 'VARCHAR', value: party }]);
    } catch (e) { /* the datasource appears with the first event */ }
    if (rows.length >= want || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'eddy-browser-'));
const userDir = mkdtempSync(join(tmpdir(), 'eddy-chromium-'));
const eddy = await startEddy(dataDir);
let browser;
try {
  browser = await chromium.launchPersistentContext(userDir, {
    executablePath: args.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = browser.pages()[0] || await browser.newPage();
  // What the tracker sent, for the failure message.
  const sent = [];
  page.on('request', (r) => {
    if (r.url().includes('/csc-event')) {
      const lines = r.method() === 'POST' ? (r.postData() || '').split('\n') : [r.url().split('?')[1]];
      sent.push(`${r.method()} ${lines.map((l) => new URLSearchParams(l).get('t')).join(',')}`);
    }
  });
  const started = Date.now();
  await page.goto(`${eddy.collector}/`);
  await page.waitForFunction(() => window.divolte && window.eddy && window.divolte === window.eddy);
  const first = await page.evaluate(() => ({ party: divolte.partyId, session: divolte.sessionId, pageView: divolte.pageViewId, isNew: divolte.isNewPartyId, isFirst: divolte.isFirstInSession }));
  assert.match(first.party, /^0:[0-9a-z]+:[A-Za-z0-9~_]{32}$/);
  assert.equal(first.isNew, true);
  assert.equal(first.isFirst, true);

  const pv = await eventsOf(eddy.node, first.party, 1);
  assert.equal(pv.length, 1, 'the page view arrived');
  const visibleAfter = Date.now() - started;

  await page.click('#signup');
  await page.click('#cart');
  await page.click('#pricing');
  await page.waitForFunction(() => location.pathname === '/demo/pricing');
  // whenCommitted calls back once everything signalled is acknowledged.
  const committed = await page.evaluate(() => new Promise((resolve) => {
    const t = Date.now();
    divolte.signal('checkout', { step: 1 });
    divolte.whenCommitted(() => resolve(Date.now() - t), 5000);
  }));
  assert.ok(committed < 5000, `whenCommitted waited for the timeout (${committed} ms)`);

  // An event signalled right before leaving the page still arrives.
  await page.evaluate(() => divolte.signal('outbound', { to: 'elsewhere' }));
  await page.goto('about:blank');

  // Coming back: the same party (its cookie), the same session, a new page view.
  await page.goto(`${eddy.collector}/`);
  await page.waitForFunction(() => window.divolte);
  const second = await page.evaluate(() => ({ party: divolte.partyId, session: divolte.sessionId, pageView: divolte.pageViewId, isNew: divolte.isNewPartyId, isFirst: divolte.isFirstInSession }));
  assert.equal(second.party, first.party);
  assert.equal(second.session, first.session);
  assert.notEqual(second.pageView, first.pageView);
  assert.equal(second.isNew, false);
  assert.equal(second.isFirst, false);

  const all = await eventsOf(eddy.node, first.party, 7);
  // Delivery is at least once: an event whose send the browser cut short while leaving is sent
  // again from the retry queue, and the collector flags the second copy.
  const rows = all.filter((r) => r.detectedDuplicate === 'false');
  const copies = all.filter((r) => r.detectedDuplicate === 'true');
  assert.ok(copies.every((c) => rows.some((r) => r.eventType === c.eventType && r.eventParameters === c.eventParameters)),
    `a flagged duplicate repeats a recorded event: ${JSON.stringify(copies)}`);
  const seen = rows.map((r) => [r.eventType, new URL(r.location).pathname, r.eventParameters]);
  assert.deepEqual(seen, [
    ['pageView', '/', null],
    ['signup', '/', '{"plan":"pro","seats":3}'],
    ['addToCart', '/', '{"sku":"TEA-42","price":12.5}'],
    ['pageView', '/demo/pricing', null],
    ['checkout', '/demo/pricing', '{"step":1}'],
    ['outbound', '/demo/pricing', '{"to":"elsewhere"}'],
    ['pageView', '/', null],
  ], `rows: ${JSON.stringify(all, null, 1)}\nrequests: ${sent.join('; ')}`);
  // The virtual page view has its own id and the previous page as referrer.
  assert.equal(rows[0].pageViewId, rows[1].pageViewId);
  assert.notEqual(rows[3].pageViewId, rows[0].pageViewId);
  assert.equal(rows[3].pageViewId, rows[4].pageViewId);
  assert.equal(rows[3].referer, `${eddy.collector}/`);
  assert.deepEqual(rows.map((r) => r.firstInSession), ['true', 'false', 'false', 'false', 'false', 'false', 'false']);
  assert.deepEqual(rows.map((r) => r.newParty), ['true', 'false', 'false', 'false', 'false', 'false', 'false']);
  assert.ok(rows.every((r) => r.sessionId === first.session && r.detectedCorruption === 'false'), 'checksums match');
  // Automated Chromium says so (navigator.webdriver, HeadlessChrome): flagged, still recorded.
  assert.ok(rows.every((r) => r.isBot === 'true' && ['webdriver', 'headless browser'].includes(r.botReason)));
  assert.ok(rows.every((r) => r.viewportPixelWidth > 0 && r.screenPixelWidth > 0));
  console.log(`browser test passed: ${rows.length} events (${copies.length} sent twice and flagged); the first page view answered SQL ${visibleAfter} ms after the page was opened; whenCommitted after ${committed} ms`);
} finally {
  if (browser) await browser.close();
  eddy.proc.kill('SIGTERM');
  rmSync(userDir, { recursive: true, force: true });
  await new Promise((r) => eddy.proc.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
}
