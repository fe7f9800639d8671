// How many instances of a class this process still holds, through the inspector's
// Runtime.queryObjects (what DevTools' memory panel uses; it collects garbage first): a test can
// say that connections which ended left nothing behind.
import { Session } from 'node:inspector/promises';

const PROBE = '__turbineHeapProbe';

export async function liveInstances(type: abstract new (...args: never[]) => unknown): Promise<number> {
  const session = new Session();
  session.connect();
  const global = globalThis as Record<string, unknown>;
  global[PROBE] = type.prototype;
  try {
    const { result: prototype } = await session.post('Runtime.evaluate', { expression: `globalThis.${PROBE}` });
    const { objects } = await session.post('Runtime.queryObjects', { prototypeObjectId: prototype.objectId! });
    const { result } = await session.post('Runtime.callFunctionOn', {
      objectId: objects.objectId!, functionDeclaration: 'function () { return this.length; }', returnByValue: true,
    });
    return result.value as number;
  } finally {
    delete global[PROBE];
    session.disconnect();
  }
}
