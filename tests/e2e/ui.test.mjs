// The dashboard (/ui) in headless Chromium (Debian's chromium, driven by playwright-core): a broker, a
// trigger to an agent under load, and a trigger whose subscriber fails into a dead-letter sink; the page
// must show each of them, the agent's live chart, and the dead letter with its error extensions. A
// screenshot is taken and checked. A second server with bearer tokens shows the token form first.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { BUILD, agentManifest, agentRef, brokerManifest, freePort, startSluice, waitFor } from './support.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

async function launch() {
  // --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}

async function listen(handler) {
  const port = await freePort();
  const server = http.createServer(handler);
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${port}` };
}

async function publish(url, id, type) {
  const res = await fetch(`${url}/brokers/default`, {
    method: 'POST',
    headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-type': type, 'ce-source': '/ui-test', 'content-type': 'application/json' },
    body: '{"n": 1}',
  });
  assert.equal(res.status, 202);
}

describe('dashboard', { timeout: 120000 }, () => {
  let sluice;
  let failing;
  let sink;
  let browser;
  const deadLetters = [];

  before(async () => {
    failing = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(500, { 'content-type': 'text/plain' }).end('model overloaded'));
    });
    sink = await listen((req, res) => {
      req.resume();
      req.on('end', () => { deadLetters.push(req.headers); res.writeHead(202).end(); });
    });
    sluice = await startSluice(
      agentManifest('worker', 'slow_agent', { protocol: 'http', env: [['LATENCY_MS', '50']] }) + brokerManifest([
        { name: 'work', type: 'com.example.work', subscriber: agentRef('worker') },
        {
          name: 'fragile',
          type: 'com.example.fragile',
          subscriber: `{uri: ${failing.url}/hook}`,
          delivery: `    retry: 1
    backoffPolicy: linear
    backoffDelay: PT0.05S
    deadLetterSink:
      uri: ${sink.url}/dlq`,
        },
      ]));
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await sluice?.stop();
    failing?.server.close();
    sink?.server.close();
  });

  test('shows brokers, triggers, agents with a live chart, and dead letters', async () => {
    for (let i = 0; i < 3; ++i) await publish(sluice.url, `work-${i}`, 'com.example.work');
    await publish(sluice.url, 'fragile-1', 'com.example.fragile');
    await waitFor(() => deadLetters.length === 1, { timeoutMs: 20000, what: 'the dead letter at the sink' });
    // Load on the agent while the dashboard samples it: requests that hold a replica for a while.
    const load = Promise.all(Array.from({ length: 4 }, () => fetch(`${sluice.url}/agents/worker/infer?latency_ms=3000`)));

    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${sluice.url}/ui/`);
    await page.waitForSelector('#connection.live', { timeout: 15000 });

    const broker = page.locator('#brokers tr[data-name="default"]');
    await broker.waitFor();
    assert.match(await broker.innerText(), /True/);
    assert.match(await broker.locator('.trigger-backlog[data-trigger="work"]').innerText(), /^work: \d+$/);

    const work = page.locator('#triggers tr[data-name="work"]');
    await waitFor(async () => (await work.locator('td').nth(4).innerText()) === '3', { timeoutMs: 15000, what: 'work: 3 delivered' });
    assert.match(await work.locator('td').nth(2).innerText(), /Agent\/worker/);
    assert.match(await work.locator('td').nth(10).innerText(), /ms|s/, 'latency p50 / p99');
    const fragile = page.locator('#triggers tr[data-name="fragile"]');
    assert.equal(await fragile.locator('td').nth(6).innerText(), '1', 'dead-lettered');

    const agent = page.locator('.agent[data-name="worker"]');
    await agent.waitFor();
    const revision = agent.locator('tr[data-name="worker-00001"]');
    assert.equal(await revision.locator('.traffic').innerText(), '100%');
    assert.match(await revision.locator('.replicas').innerText(), /^1 \/ 0 \/ 0 \/ 0$/);
    assert.match(await revision.locator('.replica').first().innerText(), /#\d+ Ready 127\.0\.0\.1:\d+/);
    // The chart fills as samples arrive (every 2 s), and the observed concurrency rises with the load.
    await waitFor(async () => {
      const points = await agent.locator('svg.chart polyline.concurrency').getAttribute('points');
      const legend = await agent.locator('.legend .concurrency').innerText();
      const observed = Number(legend.replace('observed concurrency ', ''));
      return points && points.trim().split(' ').length >= 3 && observed >= 0.1;
    }, { timeoutMs: 30000, intervalMs: 250, what: 'a chart whose observed concurrency rises' });
    for (const series of ['desired', 'ready']) assert.ok(await agent.locator(`svg.chart polyline.${series}`).count(), series);

    const letter = page.locator('#dead-letters tr[data-id="fragile-1"]');
    await letter.waitFor();
    const text = await letter.innerText();
    assert.match(text, /default \/ fragile/);
    assert.match(text, /dead-lettered to .*\/dlq/);
    assert.match(text, /500/);
    assert.match(text, /model overloaded/);
    assert.match(text, new RegExp(`${failing.url.replace(/[.]/g, '\\.')}/hook`));

    const dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-'));
    const shot = path.join(existsSync(BUILD) ? BUILD : dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    assert.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
    const width = png.readUInt32BE(16); const height = png.readUInt32BE(20);
    assert.equal(width, 1400);
    assert.ok(height >= 600, `screenshot height ${height}`);
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(errors, [], 'no script errors on the page');
    await load;
  });
});

describe('dashboard with authentication', { timeout: 60000 }, () => {
  let sluice;
  let browser;
  let dir;
  const token = 'dashboard-viewer-token-0001';

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sluice-ui-auth-'));
    const tokens = path.join(dir, 'tokens');
    writeFileSync(tokens, `${token} viewer\n`, { mode: 0o600 });
    sluice = await startSluice(`apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: guarded
`, ['--auth-tokens', tokens]);
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await sluice?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('asks for a token, then shows the data', async () => {
    const res = await fetch(`${sluice.url}/apis/v1/overview`);
    assert.equal(res.status, 401);
    const page = await browser.newPage();
    await page.goto(`${sluice.url}/ui/`);
    await page.waitForSelector('#login:not([hidden])', { timeout: 15000 });
    assert.equal(await page.locator('#connection').innerText(), 'token needed');
    assert.equal(await page.locator('#brokers tr[data-name="guarded"]').count(), 0);
    await page.fill('#token', token);
    await page.click('#login button');
    await page.waitForSelector('#brokers tr[data-name="guarded"]', { timeout: 15000 });
    assert.ok(await page.locator('#login').isHidden());
  });
});
