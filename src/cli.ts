#!/usr/bin/env node
// The turbine command: flags, env and config file -> Options; starts Turbine (or the built-in demo
// when no Marathon is given); SIGTERM/SIGINT drain and exit 0; SIGHUP resyncs from Marathon.
import { ConfigError, loadOptions, usage, type Options } from './config/options.js';
import { startTurbine, type Turbine } from './app.js';
import { MarathonClient, basicAuthorization } from './marathon/client.js';
import { createTableBuilder } from './routing/table.js';

async function dry(options: Options): Promise<void> {
  const client = new MarathonClient({ urls: options.marathon, authorization: basicAuthorization(options.authCredentials), caCertFile: options.marathonCaCert, timeoutMs: 30_000 });
  try {
    const { apps, problems } = await client.fetchApps();
    const table = createTableBuilder({ groups: options.group, strictMode: options.strictMode, healthCheck: options.healthCheck })(apps, 1);
    process.stdout.write(JSON.stringify({ ...table, problems }, null, 2) + '\n');
  } finally {
    await client.close();
  }
}

export function installSignals(turbine: Turbine): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    turbine.logger.info({ signal }, 'shutting down: draining in-flight work');
    turbine.stop().then(() => process.exit(0), (err: Error) => {
      turbine.logger.error({ err: err.message }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    turbine.logger.info('SIGHUP: full resync from Marathon');
    void turbine.sync.requestResync();
  });
}

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadOptions(process.argv.slice(2).filter((a) => a !== '--demo'), process.env);
  } catch (err) {
    if (err instanceof ConfigError && /--group: at least one/.test(err.message) && !process.argv.some((a) => a.startsWith('--marathon') || a === '-m') && !process.env.TURBINE_MARATHON) {
      // No Marathon and no group: the built-in demo.
      const { runDemo } = await import('./demo/main.js');
      await runDemo();
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`turbine: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (loaded.help) {
    process.stdout.write(usage() + '\n');
    return;
  }
  const { options } = loaded;
  if (options.marathon.length === 0) {
    const { runDemo } = await import('./demo/main.js');
    await runDemo(options);
    return;
  }
  if (options.dry) {
    await dry(options);
    return;
  }
  const turbine = await startTurbine(options);
  for (const flag of loaded.ignoredFlags) turbine.logger.warn({ flag }, 'marathon-lb flag has no effect in Turbine; ignored');
  installSignals(turbine);
}

main().catch((err: Error) => {
  process.stderr.write(`turbine: ${err.message}\n`);
  process.exit(1);
});
