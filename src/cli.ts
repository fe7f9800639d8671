#!/usr/bin/env node
// The turbine command: flags, env and config file -> Options; starts Turbine (or the built-in demo
// when no Marathon is given); SIGTERM/SIGINT drain and exit 0; SIGHUP resyncs from Marathon.
import { ConfigError, loadOptions, usage, type Options } from './config/options.js';
import { longHelp } from './config/marathon-lb-reference.js';
import { createMarathonClient, routingOptions, startTurbine } from './app.js';
import { installSignals } from './signals.js';
import { buildRoutingTable } from './routing/table.js';

async function dry(options: Options): Promise<void> {
  const client = createMarathonClient(options);
  try {
    const { apps, problems } = await client.fetchApps();
    const table = buildRoutingTable(apps, routingOptions(options));
    process.stdout.write(JSON.stringify({ ...table, problems }, null, 2) + '\n');
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`turbine: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (loaded.help || loaded.longHelp) {
    process.stdout.write((loaded.longHelp ? longHelp() : usage()) + '\n');
    return;
  }
  const { options } = loaded;
  if (options.marathon.length === 0) {
    const { runDemo } = await import('./demo/main.js');
    await runDemo({ logLevel: options.logLevel, logFormat: options.logFormat, accessLog: options.accessLog });
    return;
  }
  if (options.dry) {
    for (const { flag, reason } of loaded.ignoredFlags) process.stderr.write(`turbine: ${flag}: no effect in Turbine (${reason})\n`);
    await dry(options);
    return;
  }
  const turbine = await startTurbine(options);
  for (const { flag, reason } of loaded.ignoredFlags) turbine.logger.warn({ flag, reason }, 'marathon-lb flag has no effect in Turbine; ignored');
  installSignals(turbine);
}

main().catch((err: Error) => {
  process.stderr.write(`turbine: ${err.message}\n`);
  process.exit(1);
});
