// bench/metrics-merge: what /metrics costs with 2 workers and 1,000 services (3 backends each), by
// the two ways of adding up the workers' traffic counters. Measured in this bench process, calling
// Turbine's modules directly (no sockets, no load):
// - hand-made merge (what Turbine does): each worker reports its StatsSnapshot (plain numbers) every
//   0.5 s; at scrape the primary sums them (mergeSnapshots, which the status page reads too) and
//   writes one set of samples in the text format itself (src/observability/metrics.ts).
// - AggregatorRegistry: at scrape each worker builds its metrics in getMetricsAsJSON's form and
//   sends them (IPC is JSON: stringified and parsed here); prom-client's aggregate() sums them.
// Both include the primary's own metrics (all empty here), which prom-client renders either way.
// `--smoke`: 100 services, 3 rounds.
import client from 'prom-client';
import { Metrics, type MetricSources } from '../src/observability/metrics.js';
import { ProxyStats, mergeSnapshots, type StatsSnapshot } from '../src/observability/stats.js';
import { median, table } from './lib.js';

const smoke = process.argv.includes('--smoke');
const SERVICES = smoke ? 100 : 1000;
const ROUNDS = smoke ? 3 : 11;

/** One worker's counters after some traffic: every backend answered 2xx, 4xx and 5xx; a few errors. */
function workerTraffic(seed: number): StatsSnapshot {
  const stats = new ProxyStats();
  for (let s = 0; s < SERVICES; s += 1) {
    const service = stats.service(`/app-${s}:0`);
    for (let b = 0; b < 3; b += 1) {
      for (const [i, status] of [200, 200, 404, 503].entries()) stats.request(service, `10.0.${s % 250}.${b}:${31000 + s}`, status, 0.0004 * 2 ** (i + seed));
    }
    stats.error(service, 'connect');
    stats.clientError(`:${10000 + s}`, 'bad-request');
  }
  return stats.snapshot({});
}

const sources = (traffic: () => StatsSnapshot): MetricSources =>
  ({ traffic, backends: () => [], ejection: () => [], listeners: () => [], workers: () => [], workerRestarts: () => 0 });

async function timed(run: () => Promise<unknown>): Promise<number> {
  await run(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i += 1) {
    const at = performance.now();
    await run();
    times.push(performance.now() - at);
  }
  return median(times);
}

const workers = [workerTraffic(0), workerTraffic(1)];
const retired = workerTraffic(2); // counters of a worker that died, kept so totals never go back

const handMade = new Metrics(sources(() => mergeSnapshots([retired, ...workers])), { defaultMetrics: false });
const handMadeText = () => handMade.registry.metrics();
const handMadeScrape = await timed(handMadeText);
const reportBytes = JSON.stringify(workers[0]).length;
const reportMs = await timed(async () => JSON.parse(JSON.stringify(workers[0])));

const perWorker = [retired, ...workers].map((w) => new Metrics(sources(() => w), { defaultMetrics: false }));
const workerJson = () => JSON.stringify(perWorker[1]!.registry.scrapedAsJSON());
const clusterBytes = workerJson().length;
const clusterWorkerMs = await timed(async () => JSON.parse(workerJson()));
const clusterText = () => {
  const sent = perWorker.map((m) => JSON.parse(JSON.stringify(m.registry.scrapedAsJSON())) as object[]);
  // With the primary's own metrics (all empty here), as /metrics would serve them: prom-client renders both.
  return client.Registry.merge([handMade.registry, client.AggregatorRegistry.aggregate(sent)]).metrics();
};
const clusterScrape = await timed(clusterText);

const same = (await handMadeText()) === (await clusterText());
process.stdout.write(`bench/metrics-merge: 2 workers (+1 retired), ${SERVICES} services x 3 backends, median of ${ROUNDS} (bench process)\n\n`);
process.stdout.write(table(['way', 'scrape, primary (ms)', 'worker: build + IPC (ms)', 'bytes per worker', 'when a worker sends'], [
  ['hand-made merge', handMadeScrape, reportMs, reportBytes, 'every 0.5 s (report)'],
  ['AggregatorRegistry', clusterScrape, clusterWorkerMs, clusterBytes, 'at each scrape'],
]) + '\n');
process.stdout.write(`\nsame /metrics text both ways: ${same ? 'yes' : 'NO'}\n`);
process.stdout.write('The report is sent every 0.5 s either way (the status page, down reasons and listeners ride on it);\n'
  + 'with AggregatorRegistry each worker also stops serving for its build at every scrape.\n');
