// The turbine command as a separate process, on free ports, as a user runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './net.js';

export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export interface TurbineProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<admin port> */
  admin: string;
  /** Everything written to stderr so far (for assertion messages). */
  stderr(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/**
 * Starts `turbine` bound to 127.0.0.1 with free admin, HTTP and app-id ports, plus `args`.
 * `group`: in a process group of its own (its workers too), so a test can signal the group.
 */
export async function startTurbineProcess(args: string[], spawnOptions: { env?: NodeJS.ProcessEnv; group?: boolean } = {}): Promise<TurbineProcess> {
  const [admin, http, appid] = await Promise.all([freePort(), freePort(), freePort()]);
  const child = spawn(process.execPath, [CLI, '--bind', '127.0.0.1', '--admin-port', String(admin), '--http-port', String(http),
    '--appid-port', String(appid), '--log-level', 'warn', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: spawnOptions.env ?? process.env, detached: spawnOptions.group === true });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c; });
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? 'unknown')));
  return { child, admin: `http://127.0.0.1:${admin}`, stderr: () => stderr, exited };
}
