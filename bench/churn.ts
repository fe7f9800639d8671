// bench/churn: steady load (wrk, 50 connections) through Turbine while 100 scale-ups and kills
// happen in Marathon; counts the requests that failed. Run twice: with a grace period between
// TASK_KILLED and the backend stopping (as Mesos gives a task), and with none (the backend dies
// with its event, so requests already on it can fail). `--smoke`: 10 events.
import { FakeMarathon } from '../src/demo/fake-marathon.js';
import { startHttpBackend } from '../src/demo/backends.js';
import { have, startTurbineProcess, stop, table, waitForPort, wrk, writeResult } from './lib.js';

const smoke = process.argv.includes('--smoke');
const workersArg = process.argv.indexOf('--workers');
const WORKERS = workersArg > 0 ? Number(process.argv[workersArg + 1]) : 1;
const EVENTS = smoke ? 10 : 100;
const PORT = 18_480;
const ADMIN = 18_481;

async function churn(graceMs: number): Promise<{ requests: number; errors: number; scaled: number; killed: number }> {
  const marathon = new FakeMarathon({
    stopDelayMs: graceMs,
    launcher: async () => {
      const b = await startHttpBackend('churn');
      return { host: b.host, ports: [b.port], stop: b.stop };
    },
  });
  await marathon.listen();
  marathon.putApp({ id: '/churn', labels: { HAPROXY_GROUP: 'bench', HAPROXY_0_MODE: 'http' }, portDefinitions: [{ port: PORT }] }, [], { silent: true });
  await marathon.scale('/churn', 3);
  const turbine = startTurbineProcess(WORKERS > 1 ? '0-1' : '0', marathon.url, ADMIN, WORKERS);
  await waitForPort(PORT, 20_000);
  const seconds = Math.ceil(EVENTS * 0.1) + 2;
  const load = wrk('1', `http://127.0.0.1:${PORT}/`, seconds, 50);
  let scaled = 0;
  let killed = 0;
  await new Promise((r) => setTimeout(r, 500));
  for (let n = 0; n < EVENTS; n += 1) {
    const tasks = marathon.tasksOf('/churn');
    if (tasks.length <= 2 || (n % 2 === 0 && tasks.length < 6)) {
      await marathon.scale('/churn', tasks.length + 1);
      scaled += 1;
    } else {
      marathon.killTask(tasks[Math.floor(Math.random() * tasks.length)]!.id);
      killed += 1;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const result = await load;
  await stop(turbine);
  await marathon.close();
  return { requests: Math.round(result.rps * seconds), errors: result.errors, scaled, killed };
}

async function main(): Promise<void> {
  if (!have('wrk')) {
    process.stderr.write('bench/churn: needs wrk (apt-get install -y wrk)\n');
    process.exit(2);
  }
  const rows: (string | number)[][] = [];
  const results: Record<string, unknown> = {};
  for (const grace of [300, 0]) {
    const r = await churn(grace);
    results[`grace${grace}`] = r;
    rows.push([`${grace} ms`, String(r.scaled), String(r.killed), String(r.requests), String(r.errors)]);
  }
  process.stdout.write(`\nchurn (--workers ${WORKERS}): wrk (50 connections) through Turbine while ${EVENTS} scale-ups and kills happen, 100 ms apart\n\n`);
  process.stdout.write(table(['grace before a killed task stops', 'scale-ups', 'kills', 'requests (about)', 'failed requests'], rows) + '\n');
  if (!smoke) {
    writeResult(WORKERS === 1 ? 'churn' : `churn-${WORKERS}-workers`, { workers: WORKERS, events: EVENTS, results });
  }
  process.exit(0);
}

main().catch((err: Error) => {
  process.stderr.write(`bench/churn: ${err.stack}\n`);
  process.exit(1);
});
