// Blue/green deployments (HAPROXY_DEPLOYMENT_GROUP), as marathon-lb's get_apps merges them for
// zdd.py: the colours of a group become one app whose id is the group (so X-Marathon-App-Id: /group
// finds it) with the OLDER colour's labels and ports, and the old colour's tasks (lowest task ids
// first) are drained as the new colour's tasks become healthy.
import type { MarathonApp } from '../marathon/decode.js';

export interface MergedApp {
  app: MarathonApp;
  /** Task ids kept as backends but given no new traffic. */
  draining: ReadonlySet<string>;
}

export function deploymentGroupOf(app: MarathonApp): string | null {
  const group = app.labels.HAPROXY_DEPLOYMENT_GROUP?.trim();
  if (!group) return null;
  return group.startsWith('/') ? group : `/${group}`;
}

const startedAt = (app: MarathonApp): number => {
  const ms = Date.parse(app.labels.HAPROXY_DEPLOYMENT_STARTED_AT ?? '');
  return Number.isNaN(ms) ? -Infinity : ms;
};

/** Folds the apps of one deployment group (in app-id order) into one, as marathon-lb does pair by pair. */
export function mergeDeploymentGroup(group: string, apps: readonly MarathonApp[]): MergedApp {
  let merged: MarathonApp = { ...apps[0]!, id: group };
  const draining = new Set<string>();
  for (const cur of apps.slice(1)) {
    const prev = merged;
    let [old, next] = startedAt(prev) < startedAt(cur) ? [prev, cur] : [cur, prev];
    let target = 1;
    if (next.labels.HAPROXY_DEPLOYMENT_NEW_INSTANCES !== undefined) {
      // zdd.py scales the new colour up while it scales the old one down: the later scaling is the new one.
      if ((old.lastScalingAt ?? -Infinity) > (next.lastScalingAt ?? -Infinity)) [old, next] = [next, old];
      const parsed = Number.parseInt(next.labels.HAPROXY_DEPLOYMENT_TARGET_INSTANCES ?? '', 10);
      target = Number.isNaN(parsed) ? 1 : parsed;
    }
    const healthyNew = cur.healthChecks.length > 0 ? next.tasks.filter((t) => t.healthAlive === true).length : next.instances;
    const maxDrainable = Math.max(0, healthyNew + old.instances - target);
    const oldTasks = [...old.tasks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const task of oldTasks.slice(0, Math.min(oldTasks.length, healthyNew, maxDrainable))) draining.add(task.id);
    merged = { ...old, id: group, tasks: [...oldTasks, ...next.tasks] };
  }
  return { app: merged, draining };
}
