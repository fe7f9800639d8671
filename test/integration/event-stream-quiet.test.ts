// A quiet cluster sends nothing on /v2/events for minutes: the stream must stay open until the
// stall timeout, whatever the REST body timeout is.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { FakeMarathon } from '../../src/demo/fake-marathon.js';
import { MarathonClient } from '../../src/marathon/client.js';
import { openEventStream, type StreamEndReason } from '../../src/marathon/events.js';
import type { Logger } from '../../src/observability/logger.js';
import { startHarness } from '../support/harness.js';
import { freePort, until } from '../support/net.js';

interface Line { level: number; msg: string }

function collect(): { lines: Line[]; logger: Logger } {
  const lines: Line[] = [];
  const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });
  return { lines, logger: pino({ level: 'info' }, sink) };
}

describe('Marathon event stream', () => {
  it('stays open through a silence longer than the REST timeout, and still delivers the next event', async () => {
    const marathon = new FakeMarathon();
    await marathon.listen();
    // REST requests give up after 200 ms of a silent body; the stream must not.
    const client = new MarathonClient({ urls: [marathon.url], authorization: null, caCertFile: null, timeoutMs: 200 });
    const ended: { reason: StreamEndReason; detail: string }[] = [];
    const events: string[] = [];
    let opened = false;
    const stream = openEventStream({
      baseUrl: client.url, headers: client.headers(), dispatcher: client.dispatcher, stallTimeoutMs: 60_000,
      onOpen: () => { opened = true; },
      onEvent: (type) => events.push(type),
      onEnd: (reason, detail) => ended.push({ reason, detail }),
    });
    try {
      await until(() => opened, 'the stream open');
      await new Promise((r) => setTimeout(r, 1500)); // quiet: several REST timeouts long
      assert.deepEqual(ended, []);
      assert.equal(marathon.streamCount(), 1);
      marathon.emit('deployment_success', { id: 'd1', plan: {} });
      await until(() => events.includes('deployment_success'), 'the event after the silence');
      // The REST side keeps its timeout: the same client still fetches.
      assert.deepEqual((await client.fetchApps()).apps, []);
    } finally {
      stream.close();
      await client.close();
      await marathon.close();
    }
  });
});

describe('Marathon stream logs', () => {
  it('a dropped stream is one warning that says so, not an error "TypeError: terminated"', async () => {
    const { lines, logger } = collect();
    const h = await startHarness({}, new FakeMarathon(), logger);
    try {
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'connected');
      h.marathon.dropStreams();
      const line = await until(() => lines.find((l) => /event stream .*dropped/.test(l.msg)), 'the drop logged');
      assert.equal(line.level, 40, 'warn');
      assert.match(line.msg, /dropped: the connection was closed/);
      await until(() => h.turbine.sync.getStatus().state === 'connected', 'reconnected');
      assert.deepEqual(lines.filter((l) => l.level >= 50 || /TypeError/.test(l.msg)).map((l) => l.msg), []);
    } finally {
      await h.close();
    }
  });

  it('a cold start with Marathon unreachable does not claim to serve a last good table', async () => {
    const { lines, logger } = collect();
    const h = await startHarness({ marathon: [`http://127.0.0.1:${await freePort()}`] }, new FakeMarathon(), logger);
    try {
      const line = await until(() => lines.find((l) => /full sync failed/.test(l.msg)), 'the failed sync logged');
      assert.match(line.msg, /no routing table from Marathon yet/);
      assert.doesNotMatch(line.msg, /last good/);
    } finally {
      await h.close();
    }
  });
});
