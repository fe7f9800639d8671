// The routing table, kept up to date from the apps that changed: one task event rebuilds one app
// (or one deployment group) and touches only the listeners its services claim, so it costs the
// same at 10 and at 10,000 apps. The output is the new table and its change set.
import { isIP } from 'node:net';
import type { HostAddresses } from '../discovery/host-resolver.js';
import type { MarathonApp } from '../marathon/decode.js';
import { ServiceOrder, type ServiceChange, type TableChange } from './changes.js';
import { deploymentGroupOf, mergeDeploymentGroup } from './deployment-groups.js';
import type { LabelWarning } from './labels.js';
import { servicesOfApp, type AppResult, type RoutingOptions, type RoutingTable, type Service } from './table.js';

/** Where the builder reads apps: the AppStore, or a list wrapped by buildRoutingTable. */
export interface AppSource {
  get(appId: string): MarathonApp | undefined;
  readonly size: number;
}

/** What one app, or the colours of one deployment group, produced. */
interface Unit {
  inputs: readonly MarathonApp[];
  hosts: HostAddresses | undefined;
  result: AppResult;
  /** Agent host names its tasks run on: a changed answer for one of them rebuilds this unit. */
  hostNames: readonly string[];
}

/** Unit keys of deployment groups; app ids start with '/', so they never collide. */
const GROUP = 'group:';
const NONE: ReadonlySet<string> = new Set();

const serviceOrder = (a: Service, b: Service): number => (a.appId < b.appId ? -1 : a.appId > b.appId ? 1 : a.portIndex - b.portIndex);
const listenerOf = (s: Service): string => `${s.bindAddr ?? '*'}:${s.servicePort}`;
const sameList = <T>(a: readonly T[], b: readonly T[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const warningsText = (w: readonly LabelWarning[] | undefined): string => JSON.stringify(w ?? []);

export class TableBuilder {
  private readonly units = new Map<string, Unit>();
  /** Each app's unit key: its own id, or its deployment group's. */
  private readonly unitOf = new Map<string, string>();
  private readonly colours = new Map<string, Set<string>>();
  private readonly unitsByHost = new Map<string, Set<string>>();
  /** The services that want each listener, in app-id then port-index order: the first one serves it (marathon-lb's order). */
  private readonly claims = new Map<string, Service[]>();
  private readonly served = new Map<string, Service>();
  /** The service each listener serves. */
  private readonly servedAt = new Map<string, Service>();
  /** Why each listener's other claimants are not served. */
  private readonly conflicts = new Map<string, LabelWarning[]>();
  private readonly order = new ServiceOrder();
  private hosts: HostAddresses | undefined = undefined;
  private table: RoutingTable = { generation: 0, appCount: 0, services: [], warnings: [] };

  constructor(private readonly options: RoutingOptions) {}

  /**
   * Rebuilds the apps named in `changedAppIds` (added, changed or removed in `apps`) and the units
   * whose agent hosts resolve differently in `hosts`. The table is the same object when nothing
   * changed.
   */
  update(apps: AppSource, changedAppIds: Iterable<string>, generation: number, hosts?: HostAddresses): TableChange {
    const dirty = this.dirtyUnits(apps, changedAppIds, hosts);
    const touched = new Set<string>();
    let warningsChanged = false;
    for (const key of dirty) {
      const prev = this.units.get(key);
      const inputs = this.inputsOf(key, apps);
      if (prev && prev.hosts === this.hosts && sameList(prev.inputs, inputs)) continue;
      const next = inputs.length === 0 ? null : this.buildUnit(key, inputs);
      for (const s of prev?.result.services ?? []) this.unclaim(s, touched);
      for (const s of next?.result.services ?? []) this.claim(s, touched);
      if (warningsText(prev?.result.warnings) !== warningsText(next?.result.warnings)) warningsChanged = true;
      this.indexHosts(key, prev?.hostNames ?? [], next?.hostNames ?? []);
      if (next) this.units.set(key, next);
      else this.units.delete(key);
    }
    const changes = this.settleListeners(touched);
    if (changes.conflictsChanged) warningsChanged = true;
    const idsChanged = changes.services.some(([before, after]) => !before || !after);
    if (changes.services.length === 0 && !warningsChanged && apps.size === this.table.appCount && this.table.generation > 0) {
      return { table: this.table, services: [], idsChanged: false, warningsChanged: false };
    }
    this.table = {
      generation,
      appCount: apps.size,
      services: idsChanged ? this.order.reorder([...this.served.values()].sort(serviceOrder)) : this.order.replace(changes.services.map(([, after]) => after!)),
      warnings: warningsChanged ? this.allWarnings() : this.table.warnings,
    };
    return { table: this.table, services: changes.services, idsChanged, warningsChanged };
  }

  private dirtyUnits(apps: AppSource, changedAppIds: Iterable<string>, hosts: HostAddresses | undefined): Set<string> {
    const dirty = new Set<string>();
    for (const id of changedAppIds) {
      const was = this.unitOf.get(id);
      if (was !== undefined) {
        dirty.add(was);
        this.colours.get(was)?.delete(id);
      }
      const app = apps.get(id);
      if (!app) {
        this.unitOf.delete(id);
        continue;
      }
      const group = deploymentGroupOf(app);
      const key = group === null ? id : GROUP + group;
      this.unitOf.set(id, key);
      dirty.add(key);
      if (group === null) continue;
      let colours = this.colours.get(key);
      if (!colours) this.colours.set(key, (colours = new Set()));
      colours.add(id);
    }
    if (hosts !== this.hosts) {
      const changedHosts = this.hosts === undefined || hosts === undefined ? null : differingKeys(this.hosts, hosts);
      if (changedHosts === null) for (const key of this.units.keys()) dirty.add(key);
      else for (const host of changedHosts) for (const key of this.unitsByHost.get(host) ?? []) dirty.add(key);
      this.hosts = hosts;
    }
    return dirty;
  }

  private inputsOf(key: string, apps: AppSource): MarathonApp[] {
    const ids = key.startsWith(GROUP) ? [...(this.colours.get(key) ?? [])].sort() : this.unitOf.get(key) === key ? [key] : [];
    if (ids.length === 0) this.colours.delete(key);
    return ids.map((id) => apps.get(id)).filter((a): a is MarathonApp => a !== undefined);
  }

  private buildUnit(key: string, inputs: readonly MarathonApp[]): Unit {
    const { app, draining } = key.startsWith(GROUP) ? mergeDeploymentGroup(key.slice(GROUP.length), inputs) : { app: inputs[0]!, draining: NONE };
    const hostNames = this.hosts === undefined ? [] : [...new Set(inputs.flatMap((a) => a.tasks.map((t) => t.host)).filter((h) => h !== '' && isIP(h) === 0))];
    return { inputs, hosts: this.hosts, result: servicesOfApp(app, this.options, this.hosts, draining), hostNames };
  }

  private indexHosts(key: string, before: readonly string[], after: readonly string[]): void {
    for (const host of before) {
      const units = this.unitsByHost.get(host);
      units?.delete(key);
      if (units?.size === 0) this.unitsByHost.delete(host);
    }
    for (const host of after) {
      let units = this.unitsByHost.get(host);
      if (!units) this.unitsByHost.set(host, (units = new Set()));
      units.add(key);
    }
  }

  private claim(service: Service, touched: Set<string>): void {
    const key = listenerOf(service);
    touched.add(key);
    const list = this.claims.get(key) ?? [];
    let i = list.length;
    while (i > 0 && serviceOrder(list[i - 1]!, service) > 0) i -= 1;
    list.splice(i, 0, service);
    this.claims.set(key, list);
  }

  private unclaim(service: Service, touched: Set<string>): void {
    const key = listenerOf(service);
    touched.add(key);
    const rest = (this.claims.get(key) ?? []).filter((s) => s !== service);
    if (rest.length > 0) this.claims.set(key, rest);
    else this.claims.delete(key);
  }

  /** Who serves each touched listener now, as service changes; and whether the losers' warnings changed. */
  private settleListeners(touched: ReadonlySet<string>): { services: ServiceChange[]; conflictsChanged: boolean } {
    const winners = new Map<string, Service>();
    const candidates = new Set<string>();
    let conflictsChanged = false;
    for (const key of touched) {
      const [winner, ...losers] = this.claims.get(key) ?? [];
      // Whoever served it before either serves again (maybe replaced) or left.
      const previous = this.servedAt.get(key);
      if (previous) candidates.add(previous.id);
      if (winner) {
        winners.set(winner.id, winner);
        candidates.add(winner.id);
        this.servedAt.set(key, winner);
      } else this.servedAt.delete(key);
      const warnings = losers.map((s): LabelWarning => ({ appId: s.appId, label: `HAPROXY_${s.portIndex}_PORT`, reason: `service port ${s.servicePort} is already served by ${winner!.appId}: port skipped` }));
      if (warningsText(warnings) !== warningsText(this.conflicts.get(key))) conflictsChanged = true;
      if (warnings.length > 0) this.conflicts.set(key, warnings);
      else this.conflicts.delete(key);
    }
    const services: ServiceChange[] = [];
    for (const id of candidates) {
      const before = this.served.get(id);
      const after = winners.get(id);
      if (before === after) continue;
      services.push([before, after]);
      if (after) this.served.set(id, after);
      else this.served.delete(id);
    }
    return { services, conflictsChanged };
  }

  private allWarnings(): LabelWarning[] {
    const warnings: LabelWarning[] = [];
    for (const unit of this.units.values()) warnings.push(...unit.result.warnings);
    for (const list of this.conflicts.values()) warnings.push(...list);
    return warnings;
  }
}

/** Hosts whose answer differs between two maps (added, removed or changed). */
function differingKeys(a: HostAddresses, b: HostAddresses): string[] {
  const keys: string[] = [];
  for (const [host, answer] of b) if (!a.has(host) || a.get(host) !== answer) keys.push(host);
  for (const host of a.keys()) if (!b.has(host)) keys.push(host);
  return keys;
}

/** The table of a list of apps, built at once (the CLI's --dry, tests). */
export function buildRoutingTable(apps: readonly MarathonApp[], options: RoutingOptions, generation = 1, hosts?: HostAddresses): RoutingTable {
  const byId = new Map(apps.map((a) => [a.id, a]));
  return new TableBuilder(options).update({ get: (id) => byId.get(id), size: apps.length }, byId.keys(), generation, hosts).table;
}
