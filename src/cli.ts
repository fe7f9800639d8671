#!/usr/bin/env node
// The turbine command: flags, env and config file -> Options; starts Turbine against Marathon, or
// the built-in demo only when asked (`turbine demo`); SIGTERM/SIGINT drain and exit 0; SIGHUP resyncs.
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { ConfigError, loadOptions, usage, type Options } from './config/options.js';
import { longHelp } from './config/marathon-lb-reference.js';
import { createMarathonClient, routingOptions, startTurbine, type Turbine } from './app.js';
import { installSignals } from './signals.js';
import { buildRoutingTable } from './routing/builder.js';

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

function configError(message: string): never {
  process.stderr.write(`turbine: ${message}\n`);
  process.exit(2);
}

/** Files and packages that flags name, checked before anything starts: a mistake exits 2 naming the flag, not later with a bare fs error. */
function checkResources(options: Options): void {
  for (const [flag, path] of [['--marathon-ca-cert', options.marathonCaCert], ['--marathon-auth-credential-file', options.marathonAuthCredentialFile]] as const) {
    if (path === null) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (err) {
      configError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  if (options.logFormat === 'pretty') {
    try {
      createRequire(import.meta.url).resolve('pino-pretty');
    } catch {
      configError('--log-format: pretty needs the pino-pretty package, which this install does not have (a development dependency); use json');
    }
  }
}

async function demo(options: Options, explicit: ReadonlySet<keyof Options>): Promise<void> {
  let runDemo;
  try {
    ({ runDemo } = await import('./demo/main.js'));
  } catch {
    // The production image leaves the demo out (Dockerfile); say so rather than a module error.
    configError('demo: not in this installation (the production image ships without it); run it from a clone: npm ci && npm run demo');
  }
  await runDemo(options, explicit);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const isDemo = argv[0] === 'demo';
  let loaded;
  try {
    loaded = loadOptions(isDemo ? argv.slice(1) : argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) configError(err.message);
    throw err;
  }
  if (loaded.help || loaded.longHelp) {
    process.stdout.write((loaded.longHelp ? longHelp() : usage()) + '\n');
    return;
  }
  const { options } = loaded;
  checkResources(options);
  if (isDemo) {
    await demo(options, loaded.explicit);
    return;
  }
  // Never fall back to the demo: a deployment that lost its Marathon URL must not serve fake apps.
  if (options.marathon.length === 0) configError('--marathon: required (a Marathon URL; or TURBINE_MARATHON, or "marathon" in --config); `turbine demo` runs the built-in demo');
  if (options.dry) {
    for (const { flag, reason } of loaded.ignoredFlags) process.stderr.write(`turbine: ${flag}: no effect in Turbine (${reason})\n`);
    await dry(options);
    return;
  }
  let turbine: Turbine | null = null;
  installSignals(() => turbine, options.shutdownGrace * 1000);
  turbine = await startTurbine(options);
  for (const { flag, reason } of loaded.ignoredFlags) turbine.logger.warn({ flag, reason }, 'marathon-lb flag has no effect in Turbine; ignored');
}

main().catch((err: Error) => {
  process.stderr.write(`turbine: ${err.message}\n`);
  process.exit(1);
});
