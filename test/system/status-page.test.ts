// The status page in a real browser (Debian chromium driven by playwright-core): it shows Marathon's
// state and the services, follows a scale-up without a reload, and renders Marathon data as text.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { app, startHarness } from '../support/harness.js';
import { freePort, get, until } from '../support/net.js';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('status page', () => {
  it('shows services and backends, follows a scale-up, and never renders Marathon data as HTML', async () => {
    const h = await startHarness();
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
    try {
      const port = await freePort();
      const first = await h.httpBackend('first');
      h.marathon.putApp(app('/web', port, { HAPROXY_GROUP: 'external', HAPROXY_0_VHOST: 'web.example.com' }), [{ host: first.host, ports: [first.port] }]);
      h.marathon.putApp(app('/<img src=x onerror=alert(1)>', await freePort(), { HAPROXY_GROUP: 'external' }), [{ host: first.host, ports: [first.port] }]);
      await h.waitTable((t) => t.services.length === 2, 'two services');
      for (let i = 0; i < 5; i += 1) await get(`http://127.0.0.1:${port}/`);

      const page = await browser.newPage();
      const dialogs: string[] = [];
      page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
      await page.goto(`${h.admin}/`);
      await page.locator('#marathon-state', { hasText: 'connected' }).waitFor();
      const web = page.locator('[data-service="/web:0"]');
      await web.waitFor();
      assert.match(await web.locator('h3').innerText(), /:\d+ http roundrobin · web\.example\.com/);
      await web.locator(`[data-backend="${first.host}:${first.port}"]`).waitFor();

      const scaled = await h.httpBackend('scaled');
      h.marathon.startTask('/web', { host: scaled.host, ports: [scaled.port] });
      const row = web.locator(`[data-backend="${scaled.host}:${scaled.port}"]`);
      await row.waitFor({ timeout: 10_000 });
      assert.equal(await row.locator('.pill').innerText(), 'up');
      assert.equal((await web.locator('[data-up]').innerText()).trim(), '2 / 2');

      // Numbers sit right-aligned under right-aligned headings.
      for (const cell of [web.locator('th.num').first(), web.locator('td.num').first(), web.locator('[data-up]')]) {
        assert.equal(await cell.evaluate((e) => getComputedStyle(e).textAlign), 'right');
      }

      const hostile = page.locator('[data-service="/<img src=x onerror=alert(1)>:0"]');
      await hostile.waitFor();
      assert.equal(await hostile.locator('img').count(), 0, 'an app id is text, not markup');
      assert.deepEqual(dialogs, []);

      // Live charts: request rate and error rate per service, drawn from the page's own polls.
      for (let i = 0; i < 40; i += 1) {
        await get(`http://127.0.0.1:${port}/`);
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 700));
      }
      await until(async () => (await web.locator('[data-chart] polyline.requests').getAttribute('points'))!.split(' ').length >= 3, 'three points on the chart', 15_000);
      assert.equal(await web.locator('[data-chart] svg polyline.errors').count(), 1);

      // A backend draining is its own labelled row, besides "backends up".
      let release: (() => void) | null = null;
      const slow: Server = createServer((_req, res) => { release = () => res.end('finished'); });
      await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
      const slowPort = (slow.address() as AddressInfo).port;
      const servicePort = await freePort();
      h.marathon.putApp(app('/slow', servicePort, { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, { instances: 2 }),
        [{ host: '127.0.0.1', ports: [slowPort] }, { host: first.host, ports: [first.port] }]);
      await h.waitTable((t) => t.services.some((s) => s.appId === '/slow'), '/slow served');
      const inFlight = get(`http://127.0.0.1:${servicePort}/`, {}, 'GET');
      await until(async () => {
        if (release === null) await get(`http://127.0.0.1:${servicePort}/`);
        return release !== null;
      }, 'a request held at the slow backend');
      h.marathon.killTask(h.marathon.tasksOf('/slow').find((t) => t.ports[0] === slowPort)!.id);
      const slowCard = page.locator('[data-service="/slow:0"]');
      await slowCard.locator(`[data-draining="127.0.0.1:${slowPort}"]`).waitFor({ timeout: 10_000 });
      assert.equal(await slowCard.locator(`[data-draining="127.0.0.1:${slowPort}"] .pill`).innerText(), 'draining');
      assert.equal((await slowCard.locator('[data-up]').innerText()).trim(), '1 / 1 (+1 draining)');

      // Every card's columns line up with the others' (a fixed layout, not one sized by each card's text).
      const columnStarts = async (selector: string) => page.locator(`[data-service] ${selector}`).evaluateAll((cells) => cells.map((c) => Math.round(c.getBoundingClientRect().left)));
      for (const selector of ['table.summary th:nth-child(5)', 'table.summary th:nth-child(6)', 'table.backends th:nth-child(4)']) {
        const starts = await columnStarts(selector);
        assert.ok(starts.length >= 3 && starts.every((x) => x === starts[0]), `${selector} starts at ${starts.join(', ')}`);
      }

      mkdirSync('test-output', { recursive: true });
      await page.screenshot({ path: 'test-output/status-page.png', fullPage: true });
      process.stdout.write('# screenshot: test-output/status-page.png\n');
      release!();
      await inFlight;
      slow.close();
    } finally {
      await browser.close();
      await h.close();
    }
  });
});
