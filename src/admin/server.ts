// The admin port: marathon-lb's endpoints with their meaning kept (/_haproxy_health_check,
// /_haproxy_getvhostmap, /_haproxy_getappmap, /_haproxy_getpids, /_mlb_signal/hup|usr1, and
// HAProxy's /haproxy?stats;csv that zdd.py reads), plus /metrics (Prometheus), /routes (the table as
// JSON), /stats (JSON for the page) and / (status page).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { ScrapingRegistry } from '../observability/metrics.js';
import { prettyJson, sliced } from './slices.js';
import { parseStatsQuery, type CsvOptions } from './haproxy-csv.js';
import { mapText } from './haproxy-maps.js';
import { STATUS_PAGE } from './status-page.js';

export interface AdminSources {
  /**
   * ready: the first routing table is live; draining: shutting down; problem: why traffic sent here
   * would be refused although ready (a service port that cannot be bound), or null.
   */
  health(): { ready: boolean; draining: boolean; problem: string | null; detail: Record<string, unknown> };
  /** Its lists (services) are written an item at a time (prettyJson). */
  routes(): Record<string, unknown>;
  stats(): unknown;
  haproxyCsv(options: CsvOptions): Iterable<string>;
  vhostMap(): [string, string][];
  appMap(): [string, string][];
  resync(): void;
  /** This process and its workers. */
  pids(): number[];
  registry: ScrapingRegistry;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/**
 * A large answer, written as it is made, a slice at a time: proxied traffic goes on between slices.
 * pipeline waits for the client to take each slice, and stops the making when it goes away.
 */
async function stream(res: ServerResponse, type: string, pieces: Iterable<string>): Promise<void> {
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
  await pipeline(sliced(pieces), res);
}

const json = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value, null, 2) + '\n');

/**
 * The path and query of a request target: a server accepts the absolute form too (RFC 9112 3.2.2;
 * a client that talks to it as to a proxy sends http://host:port/path).
 */
function originForm(target: string): string {
  if (!/^https?:\/\//i.test(target)) return target;
  try {
    const url = new URL(target);
    return url.pathname + url.search;
  } catch {
    return target;
  }
}

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly sources: AdminSources) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        // A failure in the middle of a streamed answer (/metrics) can only cut it.
        if (res.headersSent) res.destroy();
        else send(res, 500, 'text/plain', `internal error: ${err.message}\n`);
      });
    });
    this.server.keepAliveTimeout = 5000;
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : '';
        reject(new Error(`cannot listen on admin port ${host}:${port}: ${err.code ?? err.message}${hint}`));
      });
      this.server.listen({ host, port }, resolve);
    });
    return (this.server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = originForm(req.url ?? '/');
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const signal = path.startsWith('/_mlb_signal/');
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(req.method === 'POST' && signal)) {
      res.setHeader('allow', signal ? 'GET, HEAD, POST' : 'GET, HEAD'); // RFC 9110 15.5.6
      send(res, 405, 'text/plain', 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/_haproxy_health_check': {
        const h = this.sources.health();
        const status = h.draining ? 'draining' : !h.ready ? 'starting' : h.problem !== null ? 'degraded' : 'ok';
        json(res, status === 'ok' ? 200 : 503, { status, ...(h.problem !== null ? { reason: h.problem } : {}), ...h.detail });
        return;
      }
      case '/metrics':
        await stream(res, this.sources.registry.contentType, await this.sources.registry.text());
        return;
      case '/routes':
        await stream(res, 'application/json', prettyJson(this.sources.routes()));
        return;
      case '/stats':
        json(res, 200, this.sources.stats());
        return;
      case '/_haproxy_getvhostmap':
        send(res, 200, 'text/plain', mapText(this.sources.vhostMap()));
        return;
      case '/_haproxy_getappmap':
        send(res, 200, 'text/plain', mapText(this.sources.appMap()));
        return;
      case '/_haproxy_getconfig':
        // marathon-lb returns the HAProxy config it generated; Turbine generates none.
        send(res, 501, 'text/plain', 'Turbine routes in process and has no HAProxy config: GET /routes shows the routing table (JSON)\n');
        return;
      case '/_haproxy_getpids':
        send(res, 200, 'text/plain', this.sources.pids().map((p) => `${p}\n`).join(''));
        return;
      case '/_mlb_signal/hup':
      case '/_mlb_signal/usr1':
        // marathon-lb: HUP reloads from Marathon, USR1 regenerates the config; both mean "resync" here.
        this.sources.resync();
        send(res, 200, 'text/plain', `Sent ${path === '/_mlb_signal/hup' ? 'SIGHUP' : 'SIGUSR1'} signal: full resync from Marathon\n`);
        return;
      case '/haproxy': {
        // HAProxy's stats URI: the CSV with `;csv`, else its HTML page (ours is the status page).
        const query = parseStatsQuery(queryAt < 0 ? '' : url.slice(queryAt + 1));
        if (query === null) send(res, 404, 'text/plain', 'not found: HAProxy stats are at /haproxy?stats;csv\n');
        else if (query.csv) await stream(res, 'text/plain', this.sources.haproxyCsv(query));
        else send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE);
        return;
      }
      case '/':
      case '/status':
        send(res, 200, 'text/html; charset=utf-8', STATUS_PAGE);
        return;
      default:
        send(res, 404, 'text/plain', 'not found\n');
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
