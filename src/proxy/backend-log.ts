// The one log line for a backend's change of state, with the app, task and services it serves.
import type { Logger } from '../observability/logger.js';
import type { RoutingTable } from '../routing/table.js';

export function logBackendChange(log: Logger, table: RoutingTable | null, address: string, up: boolean, reasons: readonly string[]): void {
  const where = (table?.services ?? []).flatMap((s) => s.backends.filter((b) => b.address === address).map((b) => ({ service: s.id, appId: b.appId, taskId: b.taskId })));
  log[up ? 'info' : 'warn']({ component: 'proxy', backend: address, up, reasons, appId: where[0]?.appId, taskId: where[0]?.taskId, services: where.map((w) => w.service) },
    up ? 'backend back in rotation' : 'backend out of rotation');
}
