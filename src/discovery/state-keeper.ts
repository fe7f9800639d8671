// --state-file at run time: the store is saved after each sync (debounced after events) and on
// stop, and loaded back once when Marathon cannot be reached at start.
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AppStore } from './app-store.js';
import { StateFileError, readStateFile, writeStateFile } from './state-file.js';

/** Saves the store to the state file (now, or debounced) and loads it back when asked. */
export function stateFileKeeper(path: string, store: AppStore, metrics: Pick<Metrics, 'stateFileErrors'>, log: Logger) {
  let timer: NodeJS.Timeout | null = null;
  let failing = false;
  let loaded = false;
  const saveNow = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    try {
      writeStateFile(path, store.snapshot());
      if (failing) log.info({ path }, 'state file written again');
      failing = false;
    } catch (err) {
      metrics.stateFileErrors.inc({ op: 'write' });
      if (!failing) log.error({ path, err: (err as Error).message }, 'cannot write the state file');
      failing = true;
    }
  };
  return {
    saveNow,
    saveSoon() {
      if (timer) return;
      timer = setTimeout(saveNow, 2000);
      timer.unref();
    },
    /** Once per process: a file that failed to load will not get better by retrying. */
    load(): boolean {
      if (loaded) return false;
      loaded = true;
      try {
        const { apps, savedAt } = readStateFile(path);
        store.replaceAll(apps);
        log.warn({ path, savedAt, apps: apps.length }, 'Marathon unreachable: serving the snapshot from the state file');
        return true;
      } catch (err) {
        if (err instanceof StateFileError && err.missing) {
          log.info({ path }, 'no state file yet; waiting for Marathon');
          return false;
        }
        metrics.stateFileErrors.inc({ op: 'read' });
        log.error({ path, err: (err as Error).message }, 'state file ignored: it cannot be trusted');
        return false;
      }
    },
    stop() {
      if (timer) saveNow();
    },
  };
}
