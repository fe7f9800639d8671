// marathon-lb compatibility reference: every HAPROXY_* label and every marathon-lb flag with what
// Turbine does with it. One source for `turbine --longhelp` (marathon-lb's --longhelp) and for the
// README's compatibility table, which a unit test checks against this data.
// Label names follow marathon-lb's config.py (`labels` and the per-app template overrides).
import { DEFAULTS, FOREIGN_FLAGS, SPECS, envName } from './options.js';

export type Status = 'applied' | 'no effect' | 'different';

export interface LabelReference {
  /** As marathon-lb spells it, `{n}` standing for the port index. */
  label: string;
  status: Status;
  /** What Turbine does; for "no effect" and "different", why. */
  note: string;
}

const TEMPLATE_NOTE = 'HAProxy template text: there is no HAProxy config to template; reported once per app in /routes, the status page, turbine_routing_label_warnings and the log';

/** marathon-lb's per-port template overrides (config.py: labels with func=set_label). */
export const TEMPLATE_LABELS = [
  'BACKEND_HEAD', 'BACKEND_HSTS_OPTIONS', 'BACKEND_HTTP_HEALTHCHECK_OPTIONS', 'BACKEND_HTTP_OPTIONS',
  'BACKEND_REDIRECT_HTTP_TO_HTTPS', 'BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH', 'BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS',
  'BACKEND_SERVER_OPTIONS', 'BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS', 'BACKEND_STICKY_OPTIONS',
  'BACKEND_TCP_HEALTHCHECK_OPTIONS', 'FRONTEND_BACKEND_GLUE', 'FRONTEND_HEAD', 'HTTPS_FRONTEND_ACL',
  'HTTPS_FRONTEND_ACL_ONLY_WITH_PATH', 'HTTPS_FRONTEND_ACL_WITH_AUTH', 'HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH',
  'HTTPS_FRONTEND_ACL_WITH_PATH', 'HTTP_BACKEND_NETWORK_ALLOWED_ACL', 'HTTP_BACKEND_PROXYPASS_GLUE',
  'HTTP_BACKEND_REVPROXY_GLUE', 'HTTP_FRONTEND_ACL', 'HTTP_FRONTEND_ACL_ONLY', 'HTTP_FRONTEND_ACL_ONLY_WITH_PATH',
  'HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH', 'HTTP_FRONTEND_ACL_WITH_AUTH', 'HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH',
  'HTTP_FRONTEND_ACL_WITH_PATH', 'HTTP_FRONTEND_APPID_ACL', 'HTTP_FRONTEND_ROUTING_ONLY',
  'HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH', 'HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH',
  'HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH', 'MAP_HTTPS_FRONTEND_ACL', 'MAP_HTTP_FRONTEND_ACL',
  'MAP_HTTP_FRONTEND_ACL_ONLY', 'MAP_HTTP_FRONTEND_APPID_ACL', 'TCP_BACKEND_NETWORK_ALLOWED_ACL', 'USERLIST_HEAD',
] as const;

export const LABELS: readonly LabelReference[] = [
  { label: 'HAPROXY_GROUP', status: 'applied', note: "comma-separated list; the app is served by a Turbine whose --group is one of them ('*' serves every app)" },
  { label: 'HAPROXY_{n}_GROUP', status: 'applied', note: "replaces HAPROXY_GROUP for that port (comma-separated list)" },
  { label: 'HAPROXY_{n}_ENABLED', status: 'applied', note: 'false disables the port; with --strict-mode only true enables it. Yes/no labels (ENABLED, STICKY, REDIRECT_TO_HTTPS, USE_HSTS) read as marathon-lb\'s string_to_bool: true, t, yes, y (any case) are true, any other value false (one other than false, f, no, n, 0 is also reported)' },
  { label: 'HAPROXY_{n}_PORT', status: 'applied', note: "replaces Marathon's service port" },
  { label: 'HAPROXY_{n}_MODE', status: 'applied', note: 'http or tcp; an explicit value wins; else http with a VHOST or a Marathon HTTP health check, tcp otherwise' },
  { label: 'HAPROXY_{n}_VHOST', status: 'applied', note: 'comma-separated host names, served on --http-port (and --https-port with --ssl-certs, where the TLS handshake\'s SNI picks the host as marathon-lb\'s ssl_fc_sni does: a request whose Host names another host, or that came without SNI, gets 421; an HTTP/1.0 request without Host is served by the SNI name); *.example.com wildcards' },
  { label: 'HAPROXY_{n}_PATH', status: 'applied', note: 'space-separated path prefixes, -i for case-insensitive' },
  { label: 'HAPROXY_{n}_BACKEND_WEIGHT', status: 'applied', note: 'orders rules that share a virtual host: higher weight first (a PATH gives weight 1), then the longest prefix' },
  { label: 'HAPROXY_{n}_BALANCE', status: 'applied', note: 'roundrobin, leastconn, source' },
  { label: 'HAPROXY_{n}_BIND_ADDR', status: 'applied', note: 'address the service port listens on' },
  { label: 'HAPROXY_{n}_BIND_OPTIONS', status: 'different', note: "on a TLS service port Turbine applies ssl, crt PATH (more certificates, picked by SNI), ciphers, ciphersuites, ssl-min-ver, ssl-max-ver, no-sslv3, no-tlsv10..no-tlsv13, force-tlsv10..force-tlsv13, alpn (tcp mode; an http-mode port offers http/1.1 only), strict-sni and prefer-client-ciphers; 'verify optional' or 'verify required' (client certificates, which Turbine does not check), a malformed value, or ssl without a certificate close the port's TLS (fail closed); every other keyword is reported as not applied, per app; not applied on --https-port, where marathon-lb's --group-https-by-vhost puts them on the virtual host's frontend" },
  { label: 'HAPROXY_{n}_SSL_CERT', status: 'applied', note: "a PEM file (certificate and key): the service port terminates TLS with it (http mode: HTTP over TLS, X-Forwarded-Proto https; tcp mode: the decrypted bytes go to the backend); on --https-port, SNI for the app's virtual hosts picks it (as marathon-lb with --group-https-by-vhost), and that listener opens for it even without --ssl-certs; reloaded when the file changes (a failed reload keeps the last good certificate); a file that cannot be read or parsed closes the port and refuses its virtual hosts on --https-port (fails closed), reported in /routes, the log and turbine_tls_certificate_errors_total" },
  { label: 'HAPROXY_{n}_STICKY', status: 'applied', note: "as marathon-lb's `cookie mesosphere_server_id insert indirect nocache`: the first response sets the cookie (with Cache-Control: private when the backend set none), a client that sends it stays on that backend while it is live, and the backend never sees it; the value is a hash of the backend address" },
  { label: 'HAPROXY_{n}_REDIRECT_TO_HTTPS', status: 'applied', note: 'requests for the virtual hosts on --http-port get a 301 to https (same host and path; --https-port when it is not 443); the service port itself still serves. On an app whose VHOST has no PATH it covers the whole host, paths that other apps claim on it with PATH included, as marathon-lb\'s rule is by host' },
  { label: 'HAPROXY_{n}_USE_HSTS', status: 'applied', note: 'Strict-Transport-Security: max-age=15768000 on responses' },
  { label: 'HAPROXY_{n}_AUTH', status: 'applied', note: "realm:user:hash; SHA-512, SHA-256 and MD5 crypt hashes, or a plain password; 401 with WWW-Authenticate; a malformed value or an unknown hash format closes the port (fails closed), and so does a traditional DES crypt hash (13 characters of `./0-9A-Za-z`, which HAProxy's crypt(3) would check): read as a plain password, the hash text itself would log in. Applied on every HTTP listener of the port (its service port and port 9091 too), where marathon-lb challenges only on the :80/:443 virtual-host rules. On an app whose VHOST has no PATH it guards the whole host on --http-port and --https-port, paths that other apps claim on it with PATH included, as marathon-lb's rule is by host" },
  { label: 'HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH', status: 'applied', note: 'Host set to the first virtual host; the prefix (and one / after it) stripped from the request path, as its reqirep does' },
  { label: 'HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH', status: 'different', note: "a Location header that is a path, or a URL on a virtual host, becomes this path; marathon-lb's template quotes its condition into the replacement, so HAProxy writes '<path> if hdr_location': Turbine writes the path" },
  { label: 'HAPROXY_{n}_HTTP_BACKEND_REDIR', status: 'applied', note: 'a request for / on a virtual host gets a 301 to this path' },
  { label: 'HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL', status: 'applied', note: 'space-separated IPs and CIDRs (IPv4 and IPv6); others get 403 (http) or a closed connection (tcp); an unparsable entry closes the port (fails closed)' },
  { label: 'HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX', status: 'applied', note: "the task port Turbine's active check uses" },
  { label: 'HAPROXY_DEPLOYMENT_GROUP', status: 'applied', note: "blue/green apps of one group share the service port under the group's id; old tasks drain by marathon-lb's rules (no new requests, in-flight ones finish); zdd.py reads /haproxy?stats;csv on the admin port (draining tasks MAINT, scur what is in flight)" },
  { label: 'HAPROXY_DEPLOYMENT_ALT_PORT', status: 'no effect', note: "zdd.py's temporary port for the new colour; marathon-lb's own code does not read it either: the group is served on its HAPROXY_{n}_PORT" },
  { label: 'HAPROXY_DEPLOYMENT_COLOUR', status: 'no effect', note: "zdd.py's own bookkeeping; marathon-lb does not read it either" },
  { label: 'HAPROXY_DEPLOYMENT_STARTED_AT', status: 'applied', note: 'with the two labels below, decides which old tasks drain (marathon-lb rules)' },
  { label: 'HAPROXY_DEPLOYMENT_TARGET_INSTANCES', status: 'applied', note: 'see HAPROXY_DEPLOYMENT_STARTED_AT' },
  { label: 'HAPROXY_DEPLOYMENT_NEW_INSTANCES', status: 'applied', note: 'see HAPROXY_DEPLOYMENT_STARTED_AT' },
  ...TEMPLATE_LABELS.map((name): LabelReference => ({ label: `HAPROXY_{n}_${name}`, status: 'no effect', note: TEMPLATE_NOTE })),
  { label: 'HAPROXY_HEAD and other global templates', status: 'no effect', note: 'set as environment variables or templates/ files in marathon-lb; there is no HAProxy config; Turbine has flags for what HEAD sets (timeouts, maxconn)' },
];

export interface FlagReference {
  flag: string;
  status: Status;
  note: string;
}

/** marathon-lb flags whose Turbine meaning differs from marathon-lb's on purpose, and why. */
const DIFFERENT: Readonly<Record<string, string>> = {
  '--marathon': 'no default (marathon-lb: http://master.mesos:8080): without it Turbine exits 2 naming --marathon (only `turbine demo` runs the built-in demo)',
  '--log-format': "json or pretty choose Turbine's structured format; marathon-lb's Python format string is accepted and has no effect",
  '--health-check': "on by default in Turbine (marathon-lb: off); --no-health-check restores marathon-lb's",
  '--dry': 'prints the routing table as JSON instead of an HAProxy config',
  '--ssl-certs': "no default (marathon-lb: /etc/ssl/cert.pem): without certificates the HTTPS listener opens only for apps with HAPROXY_{n}_SSL_CERT on a virtual host, and refuses other names; the files are reloaded when they change",
  '--group-https-by-vhost': "accepted, and its per-vhost certificates are always on: SNI on --https-port picks the HAPROXY_{n}_SSL_CERT of the app serving that virtual host, else --ssl-certs (marathon-lb without the flag offers only --ssl-certs there, so an app's certificate would go unused); HAPROXY_{n}_BIND_OPTIONS stay on the service port",
  '--max-backoff': 'default 30 s (marathon-lb: 300 s), so a Marathon that comes back is followed sooner',
};

/** Flags marathon-lb's argparse accepts (marathon_lb.py get_arg_parser, common.py). */
const MARATHON_LB_FLAGS = new Set([
  '--marathon', '--group', '--strict-mode', '--health-check', '--dont-bind-http-https', '--group-https-by-vhost',
  '--ssl-certs', '--dry', '--min-serv-port-ip-per-task', '--max-serv-port-ip-per-task', '--max-backoff',
  '--haproxy-map', '--marathon-auth-credential-file', '--auth-credentials', '--dcos-auth-credentials',
  '--marathon-ca-cert', '--log-level', '--log-format',
]);

export function flagReference(): FlagReference[] {
  const own = SPECS.filter((s) => MARATHON_LB_FLAGS.has(s.flag)).map((s): FlagReference => {
    const names = [s.flag, ...(s.aliases ?? [])].join(', ');
    const different = DIFFERENT[s.flag];
    if (different) return { flag: names, status: 'different', note: different };
    return { flag: names, status: 'applied', note: s.help };
  });
  const foreign = FOREIGN_FLAGS.map((f): FlagReference => ({ flag: [f.flag, ...(f.aliases ?? [])].join(', '), status: 'no effect', note: f.reason }));
  return [
    ...own,
    ...foreign,
    { flag: 'sse (first word)', status: 'applied', note: "the image's mode word: Turbine always follows the event stream" },
    { flag: 'poll (first word)', status: 'no effect', note: 'Turbine always follows the event stream; logged as not applicable' },
    { flag: '--longhelp', status: 'applied', note: 'prints this reference' },
  ];
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The README's compatibility table (checked by test/unit/reference.test.ts). */
export function compatibilityMarkdown(): string {
  const labels = LABELS.map((l) => `| \`${cell(l.label)}\` | ${l.status} | ${cell(l.note)} |`);
  const flags = flagReference().map((f) => `| \`${cell(f.flag)}\` | ${f.status} | ${cell(f.note)} |`);
  return ['| label | status | what Turbine does |', '|---|---|---|', ...labels, '',
    '| marathon-lb flag | status | what Turbine does |', '|---|---|---|', ...flags].join('\n');
}

/** The README's flag table: every Turbine flag with its environment variable, config key and default. */
export function flagTableMarkdown(): string {
  const rows = SPECS.map((s) => {
    const names = [s.flag, ...(s.aliases ?? [])].map((n) => `\`${n}${s.kind === 'bool' ? '' : ' ' + s.kind.toUpperCase()}\``).join(', ');
    const env = [envName(s), ...(s.envAliases ?? [])].map((e) => `\`${e}\``).join(', ');
    return `| ${names} | ${env} | \`${s.key}\` | \`${JSON.stringify(DEFAULTS[s.key])}\` | ${cell(s.help)} |`;
  });
  return ['| flag | environment | config key | default | meaning |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** `turbine --longhelp`: the labels, then every flag of Turbine with its environment variable. */
export function longHelp(): string {
  const entry = (name: string, status: Status, note: string) => `  ${name}  [${status}]\n      ${note}`;
  const labels = LABELS.map((l) => entry(l.label, l.status, l.note));
  const compat = flagReference().map((f) => entry(f.flag, f.status, f.note));
  const flags = SPECS.map((s) => {
    const names = [s.flag, ...(s.aliases ?? [])].join(', ') + (s.kind === 'bool' ? '' : ' ' + s.kind.toUpperCase());
    return `  ${names}\n      ${s.help}\n      env ${[envName(s), ...(s.envAliases ?? [])].join(' or ')}, config key "${s.key}", default ${JSON.stringify(DEFAULTS[s.key])}`;
  });
  return [
    'Turbine: a load balancer for Marathon that replaces marathon-lb.',
    'It follows Marathon\'s event stream and serves the apps whose HAPROXY_GROUP matches --group, from their HAPROXY_* labels.',
    '',
    'Labels (status: applied, no effect, or different from marathon-lb on purpose):',
    ...labels,
    '',
    'marathon-lb flags:',
    ...compat,
    '',
    'Turbine flags (precedence: flag > environment > --config file > default; --no-FLAG turns a boolean off):',
    ...flags,
    '  --config FILE\n      JSON file with any of the config keys above [env TURBINE_CONFIG]',
  ].join('\n');
}
