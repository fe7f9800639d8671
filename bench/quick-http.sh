#!/usr/bin/env bash
# A first, quick measurement: HTTP keep-alive with a 100-byte body through HAProxy (1 thread) and
# Turbine (1 process), same nginx backend, same pinning (proxy on CPU 0; nginx and wrk on CPU 1).
# Needs Debian's haproxy, nginx and wrk, and `npm run build`. Each run is bounded (6 s) and every
# process started here is stopped on exit. The full harness (bench/run.ts) is issue 4's work.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
BODY=$(printf '%0100d' 0)
cat > "$work/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:18080; location / { return 200 "$BODY"; } } }
CONF
cat > "$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  http-reuse safe
frontend f
  bind 127.0.0.1:18081
  default_backend b
backend b
  server s1 127.0.0.1:18080
CONF
cat > "$work/marathon.mjs" <<CONF
import { FakeMarathon } from '$PWD/dist/src/demo/fake-marathon.js';
const m = new FakeMarathon(); await m.listen(18070);
m.putApp({ id: '/bench', labels: { HAPROXY_GROUP: 'external', HAPROXY_0_MODE: 'http' }, portDefinitions: [{ port: 18082 }] }, [{ host: '127.0.0.1', ports: [18080] }]);
CONF
echo "pinning: proxies on CPU 0; nginx and wrk on CPU 1"
taskset -c 1 nginx -c "$work/nginx.conf" -p "$work" >/dev/null 2>&1 & pids+=($!)
taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & pids+=($!)
node "$work/marathon.mjs" & pids+=($!)
sleep 0.5
taskset -c 0 node dist/src/cli.js --marathon http://127.0.0.1:18070 --group external --bind 127.0.0.1 \
  --http-port 18083 --appid-port 18084 --admin-port 18085 --log-level warn --no-active-health-checks & pids+=($!)
for _ in $(seq 50); do curl -fs 127.0.0.1:18082/ >/dev/null 2>&1 && break; sleep 0.1; done
printf '%-10s %-5s %12s %9s %9s\n' proxy conns rps p50 p99
for round in 1 2 3; do
  for c in 50 10; do
    for pair in haproxy:18081 turbine:18082; do
      out=$(taskset -c 1 wrk -t1 -c"$c" -d6s --latency "http://127.0.0.1:${pair#*:}/")
      printf '%-10s %-5s %12s %9s %9s\n' "${pair%%:*}" "$c" "$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
        "$(awk '$1=="50%"{print $2}' <<<"$out")" "$(awk '$1=="99%"{print $2}' <<<"$out")"
    done
  done
done
