// The proxies bench/run.ts compares, each configured as a user would put it in front of a
// keep-alive backend: upstream connections kept and reused, X-Forwarded-For added, WebSocket
// tunnelled, TLS 1.3 with the bench's self-signed certificate. Each listens on its own ports.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, startTurbineProcess, workdir } from './lib.js';

export type Protocol = 'http' | 'tcp' | 'https' | 'ws';
export type ProxyName = 'haproxy' | 'nginx' | 'caddy' | 'turbine';
export const PROXY_NAMES: readonly ProxyName[] = ['haproxy', 'nginx', 'caddy', 'turbine'];
export const LABELS: Record<ProxyName, string> = { haproxy: 'HAProxy', nginx: 'nginx', caddy: 'Caddy', turbine: 'Turbine' };

/** Where the proxies forward to: nginx serving the bodies, the WebSocket echo server. */
export interface Upstreams { web: number; ws: number }
/** The bench's certificate: `pem` holds certificate and key (HAProxy, Turbine), the others take them apart. */
export interface Certificate { pem: string; cert: string; key: string }

export interface RunningProxy {
  name: ProxyName;
  child: ChildProcess;
  /** The port serving `protocol`, or null when this proxy cannot (Caddy has no TCP mode in Debian's build). */
  port(protocol: Protocol): number | null;
}

export const PORTS = {
  haproxy: { http: 18181, tcp: 18182, https: 18191, ws: 18192 },
  nginx: { http: 18200, tcp: 18201, https: 18202, ws: 18203 },
  caddy: { http: 18210, tcp: null, https: 18212, ws: 18213 },
  turbine: { http: 18183, tcp: 18184, admin: 18185, https: 18193, ws: 18194 },
} as const;

/** Debian's nginx-light has no stream module; libnginx-mod-stream adds it (then nginx gets a TCP column). */
const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

function haproxyConfig(threads: number, up: Upstreams, cert: Certificate): string {
  const p = PORTS.haproxy;
  return `global
  nbthread ${threads}
  maxconn 8000
defaults
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  timeout tunnel 3600s
frontend http_in
  mode http
  bind 127.0.0.1:${p.http}
  bind 127.0.0.1:${p.https} ssl crt ${cert.pem} ssl-min-ver TLSv1.3 alpn http/1.1
  option forwardfor
  default_backend http_nginx
backend http_nginx
  mode http
  http-reuse safe
  server s1 127.0.0.1:${up.web}
frontend ws_in
  mode http
  bind 127.0.0.1:${p.ws}
  option forwardfor
  default_backend ws_echo
backend ws_echo
  mode http
  server s1 127.0.0.1:${up.ws}
frontend tcp_in
  mode tcp
  bind 127.0.0.1:${p.tcp}
  default_backend tcp_nginx
backend tcp_nginx
  mode tcp
  server s1 127.0.0.1:${up.web}
`;
}

function nginxConfig(workers: number, up: Upstreams, cert: Certificate, dir: string): string {
  const p = PORTS.nginx;
  const stream = existsSync(NGINX_STREAM_MODULE);
  const proxied = `proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`;
  return `${stream ? `load_module ${NGINX_STREAM_MODULE};\n` : ''}worker_processes ${workers}; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 8192; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  upstream web { server 127.0.0.1:${up.web}; keepalive 64; }
  upstream ws { server 127.0.0.1:${up.ws}; }
  server { listen 127.0.0.1:${p.http};
    location / { ${proxied} } }
  server { listen 127.0.0.1:${p.https} ssl; ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key}; ssl_protocols TLSv1.3;
    location / { ${proxied} } }
  server { listen 127.0.0.1:${p.ws};
    location / { proxy_pass http://ws; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade"; proxy_read_timeout 3600s; } }
}
${stream ? `stream { server { listen 127.0.0.1:${p.tcp}; proxy_pass 127.0.0.1:${up.web}; } }\n` : ''}`;
}

function caddyConfig(up: Upstreams, cert: Certificate): string {
  const p = PORTS.caddy;
  const keepAlive = `transport http {
			keepalive 60s
			keepalive_idle_conns 64
			keepalive_idle_conns_per_host 64
		}`;
  return `{
	admin off
	auto_https off
	servers {
		protocols h1
	}
}
http://:${p.http} {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:${up.web} {
		${keepAlive}
	}
}
https://:${p.https} {
	bind 127.0.0.1
	tls ${cert.cert} ${cert.key} {
		protocols tls1.3
	}
	reverse_proxy 127.0.0.1:${up.web} {
		${keepAlive}
	}
}
http://:${p.ws} {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:${up.ws}
}
`;
}

/**
 * Starts one proxy pinned to `cpus` with `workers` threads or processes (HAProxy nbthread, nginx
 * worker_processes, Caddy GOMAXPROCS, Turbine --workers). Turbine learns its routes from Marathon.
 */
export function startProxy(name: ProxyName, cpus: string, workers: number, up: Upstreams, cert: Certificate, marathonUrl: string): RunningProxy {
  const dir = join(workdir, `${name}-${workers}`);
  mkdirSync(dir, { recursive: true });
  let child: ChildProcess;
  switch (name) {
    case 'haproxy':
      writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(workers, up, cert));
      child = start(cpus, 'haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db']);
      break;
    case 'nginx':
      writeFileSync(join(dir, 'nginx.conf'), nginxConfig(workers, up, cert, dir));
      child = start(cpus, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir]);
      break;
    case 'caddy':
      writeFileSync(join(dir, 'Caddyfile'), caddyConfig(up, cert));
      // Caddy keeps state under XDG directories: the bench's own, not the user's.
      child = start(cpus, 'caddy', ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'],
        { ...process.env, GOMAXPROCS: String(workers), XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, HOME: dir });
      break;
    case 'turbine':
      child = startTurbineProcess(cpus, marathonUrl, PORTS.turbine.admin, workers, ['--https-port', String(PORTS.turbine.https), '--ssl-certs', cert.pem]);
      break;
  }
  const ports: Record<Protocol, number | null> = PORTS[name];
  if (name === 'nginx' && !existsSync(NGINX_STREAM_MODULE)) return { name, child, port: (p) => (p === 'tcp' ? null : ports[p]) };
  return { name, child, port: (p) => ports[p] };
}
