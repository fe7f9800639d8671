// --state-file: the last good Marathon snapshot on disk, so a restarted Turbine can route during a
// Marathon outage. Written atomically (temp file, fsync, rename). The apps are saved in Marathon's
// own wire shape (encodeApp) and read back through decodeAppList, so a file on disk passes the same
// rules as an answer from Marathon; anything the decoder would skip makes the whole file untrusted.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { decodeAppList, encodeApp, type DecodeProblem, type MarathonApp } from '../marathon/decode.js';

const FORMAT = 'turbine-state/2';
/** Saved decoded apps, checked by rules of their own; no longer read (there is one set of rules now). */
const OLD_FORMAT = 'turbine-state/1';

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
    try {
      writeSync(fd, JSON.stringify({ format: FORMAT, savedAt: new Date().toISOString(), apps: apps.map(encodeApp) }));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    // A write that failed (a full disk, the path a directory) leaves no temp file behind, at every attempt.
    rmSync(temp, { force: true });
    throw err;
  }
  // The rename is durable only once the directory entry is on disk.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The apps saved in the file; throws StateFileError when it cannot be trusted. */
export function readStateFile(path: string): { apps: MarathonApp[]; savedAt: string } {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StateFileError('no state file yet', true);
    throw new StateFileError(`unreadable or not JSON: ${(err as Error).message}`);
  }
  if (isObject(data) && data.format === OLD_FORMAT) {
    throw new StateFileError(`${OLD_FORMAT} was written by an older Turbine and is not read; the next sync with Marathon replaces it`);
  }
  if (!isObject(data) || data.format !== FORMAT || typeof data.savedAt !== 'string' || !Array.isArray(data.apps)) {
    throw new StateFileError(`not a ${FORMAT} file`);
  }
  const problems: DecodeProblem[] = [];
  const apps = decodeAppList(data, problems);
  const [first] = problems;
  if (first) throw new StateFileError(`${first.what} ${first.id ?? '(no id)'}: ${first.reason} (${problems.length} problem(s))`);
  return { apps, savedAt: data.savedAt };
}
