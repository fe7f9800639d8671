// --state-file: the last good Marathon snapshot on disk, so a restarted Turbine can route during a
// Marathon outage. Written atomically (temp file, fsync, rename); read back through a validator,
// because a file on disk is input like any other: a corrupt one is reported and ignored.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { TASK_STATES, type MarathonApp, type MarathonTask } from '../marathon/decode.js';

const FORMAT = 'turbine-state/1';

export class StateFileError extends Error {
  override readonly name = 'StateFileError';
  constructor(message: string, readonly missing = false) {
    super(message);
  }
}

export function writeStateFile(path: string, apps: readonly MarathonApp[]): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify({ format: FORMAT, savedAt: new Date().toISOString(), apps }));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  // The rename is durable only once the directory entry is on disk.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPortOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 65535);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function checkTask(t: unknown, where: string): MarathonTask {
  if (!isObject(t) || typeof t.id !== 'string' || typeof t.appId !== 'string' || typeof t.host !== 'string'
    || !Array.isArray(t.ports) || !t.ports.every((p) => typeof p === 'number') || !isStringArray(t.ipAddresses)
    || !(t.state === null || (TASK_STATES as readonly unknown[]).includes(t.state))
    || !(t.healthAlive === null || typeof t.healthAlive === 'boolean') || typeof t.stateAt !== 'number') {
    throw new StateFileError(`${where}: not a task`);
  }
  return t as unknown as MarathonTask;
}

function checkApp(a: unknown, i: number): MarathonApp {
  const where = `apps[${i}]`;
  if (!isObject(a) || typeof a.id !== 'string' || !a.id.startsWith('/')) throw new StateFileError(`${where}: no app id`);
  if (!isObject(a.labels) || !Object.values(a.labels).every((v) => typeof v === 'string')) throw new StateFileError(`${where}: labels`);
  if (!Array.isArray(a.ports) || !a.ports.every((p) => isObject(p) && isPortOrNull(p.servicePort) && isPortOrNull(p.containerPort))) throw new StateFileError(`${where}: ports`);
  if (typeof a.ipPerTask !== 'boolean' || !Array.isArray(a.healthChecks) || !Array.isArray(a.tasks)) throw new StateFileError(`${where}: shape`);
  if (!a.healthChecks.every((h) => isObject(h) && typeof h.protocol === 'string' && typeof h.intervalSeconds === 'number')) throw new StateFileError(`${where}: healthChecks`);
  a.tasks.forEach((t, j) => checkTask(t, `${where}.tasks[${j}]`));
  return a as unknown as MarathonApp;
}

/** The apps saved in the file; throws StateFileError when it cannot be trusted. */
export function readStateFile(path: string): { apps: MarathonApp[]; savedAt: string } {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StateFileError('no state file yet', true);
    throw new StateFileError(`unreadable or not JSON: ${(err as Error).message}`);
  }
  if (!isObject(data) || data.format !== FORMAT || typeof data.savedAt !== 'string' || !Array.isArray(data.apps)) {
    throw new StateFileError(`not a ${FORMAT} file`);
  }
  return { apps: data.apps.map(checkApp), savedAt: data.savedAt };
}
