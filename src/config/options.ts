// Options: one table of specs drives flags, environment variables, config-file keys, defaults and
// validation, so the three sources cannot drift apart. Precedence: flag > env > file > default.
import { readFileSync } from 'node:fs';

export interface Options {
  marathon: string[];
  group: string[];
  bind: string;
  httpPort: number;
  httpsPort: number;
  adminPort: number;
  appidPort: number;
  healthCheck: boolean;
  strictMode: boolean;
  marathonAuthCredentialFile: string | null;
  authCredentials: string | null;
  marathonCaCert: string | null;
  dcosAuthCredentials: string | null;
  sslCerts: string[];
  dontBindHttpHttps: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'json' | 'pretty';
  accessLog: boolean;
  dry: boolean;
  workers: number;
  stateFile: string | null;
  eventStallTimeout: number;
  resyncInterval: number;
  timeoutConnect: number;
  timeoutClient: number;
  timeoutServer: number;
  timeoutTunnel: number;
  timeoutHttpRequest: number;
  timeoutHttpKeepAlive: number;
  drainTimeout: number;
  metricsRetention: number;
  maxconn: number;
  maxconnPerService: number;
  activeHealthChecks: boolean;
  ejectAfterFailures: number;
  ejectSeconds: number;
  maxBackoff: number;
  haproxyMap: boolean;
  groupHttpsByVhost: boolean;
  minServPortIpPerTask: number;
  maxServPortIpPerTask: number;
  shutdownGrace: number;
  maxEjectionPercent: number;
  panicThreshold: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Kind = 'string' | 'list' | 'port' | 'int' | 'seconds' | 'bool';
export const MAX_WORKERS = 64;
/** The longest timer Node keeps, in whole seconds (2^31-1 ms). */
const MAX_SECONDS = 2_147_483;

interface Spec<K extends keyof Options = keyof Options> {
  key: K;
  flag: string;
  aliases?: string[];
  kind: Kind;
  /** Allowed values for an enumerated string option (matched without regard to case). */
  choices?: readonly string[];
  /** Other spellings of a choice (marathon-lb's Python log levels), lower case -> choice. */
  choiceAliases?: Readonly<Record<string, string>>;
  /** A flag value outside `choices` is marathon-lb's meaning of the flag: accepted, reported, unused. */
  foreignValue?: string;
  /** Takes every following word that is not a flag, as marathon-lb's argparse nargs='+' does. */
  many?: boolean;
  /** Environment variables read after TURBINE_*, e.g. the one marathon-lb reads. */
  envAliases?: string[];
  help: string;
}

function spec<K extends keyof Options>(s: Spec<K>): Spec<K> {
  return s;
}

export const DEFAULTS: Options = {
  marathon: [],
  group: [],
  bind: '0.0.0.0',
  httpPort: 80,
  httpsPort: 443,
  adminPort: 9090,
  appidPort: 9091,
  healthCheck: true,
  strictMode: false,
  marathonAuthCredentialFile: null,
  authCredentials: null,
  marathonCaCert: null,
  dcosAuthCredentials: null,
  sslCerts: [],
  dontBindHttpHttps: false,
  logLevel: 'info',
  logFormat: 'json',
  accessLog: false,
  dry: false,
  workers: 0,
  stateFile: null,
  eventStallTimeout: 300,
  resyncInterval: 300,
  timeoutConnect: 3,
  timeoutClient: 30,
  timeoutServer: 30,
  timeoutTunnel: 3600,
  timeoutHttpRequest: 15,
  timeoutHttpKeepAlive: 1,
  drainTimeout: 30,
  metricsRetention: 120,
  maxconn: 50000,
  maxconnPerService: 0,
  activeHealthChecks: true,
  ejectAfterFailures: 3,
  ejectSeconds: 10,
  maxBackoff: 30,
  haproxyMap: false,
  groupHttpsByVhost: false,
  minServPortIpPerTask: 10050,
  maxServPortIpPerTask: 10100,
  shutdownGrace: 5,
  maxEjectionPercent: 50,
  panicThreshold: 50,
};

export const SPECS: readonly Spec[] = [
  spec({ key: 'marathon', flag: '--marathon', aliases: ['-m'], kind: 'list', many: true, help: 'Marathon URL; several after one flag, repeated or comma-separated (failover in order); http://user:password@host:8080 logs in as --auth-credentials would' }),
  spec({ key: 'group', flag: '--group', kind: 'list', help: "HAPROXY_GROUP to serve; repeat for several; '*' serves every app" }),
  spec({ key: 'bind', flag: '--bind', kind: 'string', help: 'address every listener binds to, unless a port sets HAPROXY_{n}_BIND_ADDR' }),
  spec({ key: 'httpPort', flag: '--http-port', kind: 'port', help: 'virtual-host HTTP listener' }),
  spec({ key: 'httpsPort', flag: '--https-port', kind: 'port', help: 'virtual-host HTTPS listener (opened with --ssl-certs, or once an app with a VHOST has HAPROXY_{n}_SSL_CERT)' }),
  spec({ key: 'adminPort', flag: '--admin-port', kind: 'port', help: 'admin listener: /_haproxy_health_check, /metrics, /routes, status page' }),
  spec({ key: 'appidPort', flag: '--appid-port', kind: 'port', help: 'routes by the X-Marathon-App-Id header (marathon-lb port 9091)' }),
  spec({ key: 'healthCheck', flag: '--health-check', aliases: ['-H'], kind: 'bool', help: "only route to tasks whose Marathon health checks pass" }),
  spec({ key: 'strictMode', flag: '--strict-mode', kind: 'bool', help: 'serve a port only when HAPROXY_{n}_ENABLED=true' }),
  spec({ key: 'marathonAuthCredentialFile', flag: '--marathon-auth-credential-file', kind: 'string', help: 'file holding user:password for Marathon' }),
  spec({ key: 'authCredentials', flag: '--auth-credentials', kind: 'string', help: 'user:password for Marathon (prefer the file)' }),
  spec({ key: 'marathonCaCert', flag: '--marathon-ca-cert', kind: 'string', help: 'CA certificate (PEM) to verify Marathon over HTTPS' }),
  spec({ key: 'dcosAuthCredentials', flag: '--dcos-auth-credentials', kind: 'string', envAliases: ['DCOS_SERVICE_ACCOUNT_CREDENTIAL'], help: 'DC/OS service account: its JSON (uid, private_key, login_endpoint) or a file holding it; used when no user:password is given' }),
  spec({ key: 'sslCerts', flag: '--ssl-certs', kind: 'list', help: 'PEM files (certificate and key) for the HTTPS listener, reloaded when they change; comma-separated' }),
  spec({ key: 'dontBindHttpHttps', flag: '--dont-bind-http-https', kind: 'bool', help: 'do not open the HTTP and HTTPS virtual-host listeners' }),
  spec({ key: 'logLevel', flag: '--log-level', kind: 'string', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    choiceAliases: { critical: 'fatal', warning: 'warn', notset: 'trace' }, help: "log level; marathon-lb's CRITICAL, WARNING, NOTSET and any case are accepted" }),
  spec({ key: 'logFormat', flag: '--log-format', kind: 'string', choices: ['json', 'pretty'],
    foreignValue: "any other value is marathon-lb's Python logging format string; Turbine's log lines are structured (json or pretty)",
    help: 'json lines, or pretty (needs pino-pretty); a marathon-lb format string is accepted and has no effect' }),
  spec({ key: 'accessLog', flag: '--access-log', kind: 'bool', help: 'one log line per request or TCP connection' }),
  spec({ key: 'dry', flag: '--dry', aliases: ['-d'], kind: 'bool', help: 'fetch once, print the routing table as JSON, exit' }),
  spec({ key: 'workers', flag: '--workers', kind: 'int', help: 'proxy worker processes; 0: one per CPU the container may use (its cgroup CPU quota when lower); 1: no worker processes' }),
  spec({ key: 'stateFile', flag: '--state-file', kind: 'string', help: 'keep the last good Marathon snapshot here; serve it at start while Marathon is unreachable' }),
  spec({ key: 'resyncInterval', flag: '--resync-interval', kind: 'seconds', help: 'full /v2/apps fetch at least this often, events or not (marathon-lb: 300)' }),
  spec({ key: 'eventStallTimeout', flag: '--event-stall-timeout', kind: 'seconds', help: 'reconnect the event stream after this long without a byte' }),
  spec({ key: 'timeoutConnect', flag: '--timeout-connect', kind: 'seconds', help: 'connecting to a backend' }),
  spec({ key: 'timeoutClient', flag: '--timeout-client', kind: 'seconds', help: 'client inactivity' }),
  spec({ key: 'timeoutServer', flag: '--timeout-server', kind: 'seconds', help: 'backend inactivity' }),
  spec({ key: 'timeoutTunnel', flag: '--timeout-tunnel', kind: 'seconds', help: 'TCP and WebSocket inactivity' }),
  spec({ key: 'timeoutHttpRequest', flag: '--timeout-http-request', kind: 'seconds', help: 'receiving a complete request head' }),
  spec({ key: 'timeoutHttpKeepAlive', flag: '--timeout-http-keep-alive', kind: 'seconds', help: 'idle client keep-alive connection' }),
  spec({ key: 'drainTimeout', flag: '--drain-timeout', kind: 'seconds', help: 'on shutdown or removal, how long in-flight work may finish' }),
  spec({ key: 'metricsRetention', flag: '--metrics-retention', kind: 'seconds', help: "how long the series of a backend that left stay in /metrics, so a scrape sees its last counts (errors of a deploy included)" }),
  spec({ key: 'maxconn', flag: '--maxconn', kind: 'int', help: 'client connections open at once, all listeners (split evenly across the workers: one at its share refuses while another may have room)' }),
  spec({ key: 'maxconnPerService', flag: '--maxconn-per-service', kind: 'int', help: 'requests or connections in flight per service (0: no limit; split evenly across the workers, as --maxconn)' }),
  spec({ key: 'activeHealthChecks', flag: '--active-health-checks', kind: 'bool', help: "run the apps' Marathon health checks from Turbine too" }),
  spec({ key: 'ejectAfterFailures', flag: '--eject-after-failures', kind: 'int', help: 'consecutive connect errors, resets or timeouts before a backend is ejected' }),
  spec({ key: 'ejectSeconds', flag: '--eject-seconds', kind: 'seconds', help: 'how long an ejected backend stays out before it is tried again' }),
  spec({ key: 'maxBackoff', flag: '--max-backoff', kind: 'seconds', help: 'longest wait between reconnects to Marathon (marathon-lb: 300)' }),
  spec({ key: 'haproxyMap', flag: '--haproxy-map', kind: 'bool', help: "marathon-lb's map routing: plain virtual hosts are matched after the rules with a path, auth or redirect, as marathon-lb's map lookup comes last" }),
  spec({ key: 'groupHttpsByVhost', flag: '--group-https-by-vhost', kind: 'bool', help: "accepted: per-vhost certificates (HAPROXY_{n}_SSL_CERT) on the HTTPS listener, chosen by SNI, are always on" }),
  spec({ key: 'minServPortIpPerTask', flag: '--min-serv-port-ip-per-task', kind: 'port', help: 'lowest service port given to an IP-per-task app port without one (0 with max 0: none)' }),
  spec({ key: 'maxServPortIpPerTask', flag: '--max-serv-port-ip-per-task', kind: 'port', help: 'highest service port given to an IP-per-task app port without one' }),
  spec({ key: 'shutdownGrace', flag: '--shutdown-grace', kind: 'seconds', help: 'on SIGTERM, health answers 503 and traffic is still served this long before the drain (0: drain at once)' }),
  spec({ key: 'maxEjectionPercent', flag: '--max-ejection-percent', kind: 'int', help: "at most this share (%) of a service's backends is ejected for failures at once" }),
  spec({ key: 'panicThreshold', flag: '--panic-threshold', kind: 'int', help: "below this share (%) of a service's backends up, route to all of them (0: never)" }),
];

/** A marathon-lb flag with no meaning in Turbine: accepted so an existing command line starts. */
export interface ForeignFlag {
  flag: string;
  aliases?: string[];
  /** Takes a value (one word), as in marathon-lb. */
  value: boolean;
  reason: string;
}

const NO_HAPROXY = 'Turbine runs no HAProxy';

/** Every flag of marathon-lb's argparse (marathon_lb.py get_arg_parser, common.py) without a Turbine meaning. */
export const FOREIGN_FLAGS: readonly ForeignFlag[] = [
  { flag: '--sse', aliases: ['-s'], value: false, reason: 'Turbine always follows the event stream (SSE)' },
  { flag: '--haproxy-config', value: true, reason: `${NO_HAPROXY}: there is no config file` },
  { flag: '--command', aliases: ['-c'], value: true, reason: `${NO_HAPROXY}: a new routing table is swapped in, nothing reloads` },
  { flag: '--reload-interval', value: true, reason: `${NO_HAPROXY}: nothing reloads` },
  { flag: '--max-reload-retries', value: true, reason: `${NO_HAPROXY}: nothing reloads` },
  { flag: '--skip-validation', value: false, reason: `${NO_HAPROXY}: labels are validated one by one, a bad one is skipped with a warning` },
  { flag: '--skip-config-cleanup', value: false, reason: `${NO_HAPROXY}: one bad app never affects another, so there is nothing to clean up` },
  { flag: '--archive-versions', value: true, reason: `${NO_HAPROXY}: no config versions to archive (/routes shows the live table)` },
  { flag: '--syslog-socket', value: true, reason: 'Turbine logs to stdout (pino JSON); the container runtime collects it' },
  { flag: '--lru-cache-capacity', value: true, reason: "sizes marathon-lb's health-result and IP caches; Turbine's own need no size" },
  { flag: '--listening', aliases: ['-l'], value: true, reason: "marathon-lb's old HTTP callback mode; Turbine always follows the event stream" },
  { flag: '--callback-url', aliases: ['-u'], value: true, reason: "marathon-lb's old HTTP callback mode; Turbine always follows the event stream" },
];

/** marathon-lb's image takes a first word `sse` or `poll` (its run script); Turbine always follows events. */
const MODE_WORDS = new Map<string, string | null>([
  ['sse', null],
  ['poll', "Turbine always follows Marathon's event stream; polling is not applicable"],
]);


/**
 * A long flag as marathon-lb's argparse reads it: an unambiguous beginning of a flag stands for
 * it (`--health` for `--health-check`); an ambiguous one is refused, naming the candidates.
 */
function unabbreviated(name: string, longFlags: readonly string[]): string {
  if (!name.startsWith('--') || name.startsWith('--no-') || longFlags.includes(name)) return name;
  const candidates = longFlags.filter((f) => f.startsWith(name));
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length > 1) throw new ConfigError(`${name}: ambiguous flag, could be ${candidates.join(', ')}`);
  return name;
}
export function envName(s: Spec): string {
  return 'TURBINE_' + s.flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

function convert(s: Spec, raw: unknown, source: string): unknown {
  const where = `${s.flag} (${source})`;
  switch (s.kind) {
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|1|yes|on)$/i.test(raw)) return true;
      if (typeof raw === 'string' && /^(false|0|no|off)$/i.test(raw)) return false;
      throw new ConfigError(`${where}: expected true or false, got ${JSON.stringify(raw)}`);
    case 'list': {
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
      if (!items || items.some((x) => typeof x !== 'string')) throw new ConfigError(`${where}: expected a list of strings`);
      return (items as string[]).map((x) => x.trim()).filter((x) => x !== '');
    }
    case 'port':
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      const max = s.kind === 'port' ? 65535 : 1_000_000_000;
      if (!Number.isInteger(n) || n < 0 || n > max) {
        throw new ConfigError(`${where}: expected ${s.kind === 'port' ? 'a port number 0-65535' : 'a whole number'}, got ${JSON.stringify(raw)}`);
      }
      return n;
    }
    case 'seconds': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      const min = s.key === 'shutdownGrace' ? 0 : Number.MIN_VALUE;
      // Node (as HAProxy) keeps no timer longer than 2^31-1 ms: a longer one fires after 1 ms, on every connection.
      if (!Number.isFinite(n) || n < min || n > MAX_SECONDS) {
        throw new ConfigError(`${where}: expected a number of seconds ${min === 0 ? '>= 0' : '> 0'} and at most ${MAX_SECONDS} (24.8 days, the longest timer Node keeps), got ${JSON.stringify(raw)}`);
      }
      return n;
    }
    case 'string': {
      if (typeof raw !== 'string' || raw === '') throw new ConfigError(`${where}: expected a non-empty string`);
      if (!s.choices) return raw;
      const choice = choiceOf(s, raw);
      if (choice === null) throw new ConfigError(`${where}: expected one of ${s.choices.join(', ')}, got ${JSON.stringify(raw)}`);
      return choice;
    }
  }
}

function choiceOf(s: Spec, raw: string): string | null {
  const lower = raw.toLowerCase();
  if (s.choices?.includes(lower)) return lower;
  return s.choiceAliases?.[lower] ?? null;
}

/** A marathon-lb flag or word that was accepted and has no effect, with the reason. */
export interface IgnoredFlag {
  flag: string;
  reason: string;
}

interface ParsedArgs {
  values: Map<keyof Options, unknown>;
  configFile: string | null;
  help: boolean;
  longHelp: boolean;
  ignored: IgnoredFlag[];
}

function parseArgv(argv: readonly string[]): ParsedArgs {
  const byFlag = new Map<string, Spec>();
  for (const s of SPECS) {
    byFlag.set(s.flag, s);
    for (const a of s.aliases ?? []) byFlag.set(a, s);
  }
  const foreign = new Map<string, ForeignFlag>();
  for (const f of FOREIGN_FLAGS) for (const name of [f.flag, ...(f.aliases ?? [])]) foreign.set(name, f);
  const longFlags = ['--help', '--longhelp', '--config', ...byFlag.keys(), ...foreign.keys()].filter((f) => f.startsWith('--'));
  const values = new Map<keyof Options, unknown>();
  let configFile: string | null = null;
  let help = false;
  let longHelp = false;
  const ignored: IgnoredFlag[] = [];
  const ignore = (flag: string, reason: string) => {
    if (!ignored.some((x) => x.flag === flag)) ignored.push({ flag, reason });
  };
  // A negative number is a (wrong) value, not the next flag: "--admin-port -1" is an invalid port.
  const isFlag = (word: string | undefined) => word !== undefined && word.startsWith('-') && word.length > 1 && !/^-\d/.test(word);
  let i = 0;
  const first = argv[0];
  if (first !== undefined && MODE_WORDS.has(first)) {
    const reason = MODE_WORDS.get(first);
    if (reason) ignore(first, reason);
    i = 1;
  }
  for (; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (!isFlag(arg)) throw new ConfigError(`${arg}: unexpected argument (flags start with -; see --help)`);
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const name = unabbreviated(eq > 0 ? arg.slice(0, eq) : arg, longFlags);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || isFlag(next)) throw new ConfigError(`${name}: needs a value`);
      i += 1;
      return next;
    };
    if (name === '--help' || name === '-h') { help = true; continue; }
    if (name === '--longhelp') { longHelp = true; continue; }
    if (name === '--config') { configFile = takeValue(); continue; }
    const f = foreign.get(name);
    if (f) {
      if (f.value) takeValue();
      ignore(f.flag, f.reason);
      continue;
    }
    const negated = name.startsWith('--no-') ? byFlag.get('--' + name.slice(5)) : undefined;
    if (negated?.kind === 'bool') { values.set(negated.key, false); continue; }
    const s = byFlag.get(name);
    if (!s) throw new ConfigError(`${name}: unknown flag (see --help)`);
    if (s.kind === 'bool') {
      values.set(s.key, inline === undefined ? true : convert(s, inline, 'flag'));
    } else if (s.kind === 'list') {
      const words = [takeValue()];
      while (s.many && inline === undefined && argv[i + 1] !== undefined && !isFlag(argv[i + 1])) words.push(argv[(i += 1)]!);
      const prev = (values.get(s.key) as string[] | undefined) ?? [];
      values.set(s.key, [...prev, ...words.flatMap((w) => convert(s, w, 'flag') as string[])]);
    } else {
      const raw = takeValue();
      if (s.foreignValue && s.choices && choiceOf(s, raw) === null) ignore(`${s.flag} ${raw}`, s.foreignValue);
      else values.set(s.key, convert(s, raw, 'flag'));
    }
  }
  return { values, configFile, help, longHelp, ignored };
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--config: cannot read ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--config: ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError(`--config: ${path} must hold a JSON object`);
  const known = new Set(SPECS.map((s) => s.key as string));
  for (const key of Object.keys(data)) {
    if (!known.has(key) && !key.startsWith('//')) throw new ConfigError(`--config: unknown key "${key}" in ${path}`);
  }
  return data as Record<string, unknown>;
}

export interface LoadedOptions {
  options: Options;
  help: boolean;
  /** --longhelp: print the label and flag reference. */
  longHelp: boolean;
  /** marathon-lb flags (and the `poll` word) accepted for compatibility that do nothing here, each once. */
  ignoredFlags: IgnoredFlag[];
  /** The options a flag, the environment or the config file set (the others are DEFAULTS). */
  explicit: ReadonlySet<keyof Options>;
}

export function loadOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): LoadedOptions {
  const args = parseArgv(argv);
  const configFile = args.configFile ?? env.TURBINE_CONFIG ?? null;
  const file = configFile ? readConfigFile(configFile) : {};
  const options: Record<string, unknown> = { ...DEFAULTS };
  const explicit = new Set<keyof Options>();
  for (const s of SPECS) {
    const envKey = [envName(s), ...(s.envAliases ?? [])].find((k) => env[k] !== undefined && env[k] !== '');
    if (args.values.has(s.key)) options[s.key] = args.values.get(s.key);
    else if (envKey !== undefined) options[s.key] = convert(s, env[envKey], `env ${envKey}`);
    else if (s.key in file && file[s.key] !== null) options[s.key] = convert(s, file[s.key], `config key "${s.key}"`);
    else continue;
    explicit.add(s.key);
  }
  const result = options as unknown as Options;
  if (!args.help && !args.longHelp) {
    validate(result);
    credentialsFromUrls(result);
  }
  return { options: result, help: args.help, longHelp: args.longHelp, ignoredFlags: args.ignored, explicit };
}

function validate(o: Options): void {
  for (const url of o.marathon) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`--marathon: not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`--marathon: must be http or https: ${url}`);
  }
  // Whether a Marathon URL is required at all is the command's decision (cli.ts: `turbine demo` needs none).
  if (o.marathon.length > 0 && o.group.length === 0) throw new ConfigError("--group: at least one group is required (use '*' for every app)");
  if (o.dry && o.marathon.length === 0) throw new ConfigError('--dry: needs --marathon');
  if (o.workers > MAX_WORKERS) throw new ConfigError(`--workers: at most ${MAX_WORKERS}`);
  // 0 means "no limit" for --maxconn-per-service, but would refuse every connection here.
  if (o.maxconn === 0) throw new ConfigError('--maxconn: at least 1 (it has no unlimited setting; the default is 50000)');
  // Each worker admits an equal share of these limits (cluster/workers.ts): one with no share would refuse everything.
  for (const [flag, limit] of [['--maxconn', o.maxconn], ['--maxconn-per-service', o.maxconnPerService]] as const) {
    if (o.workers > 1 && limit > 0 && limit < o.workers) {
      throw new ConfigError(`${flag}: ${limit} is below --workers ${o.workers} (each worker admits an equal share of it, and a worker with no share would refuse everything)`);
    }
  }
  if (o.maxEjectionPercent > 100) throw new ConfigError('--max-ejection-percent: at most 100');
  if (o.panicThreshold > 100) throw new ConfigError('--panic-threshold: at most 100');
  if (o.authCredentials !== null && !o.authCredentials.includes(':')) throw new ConfigError('--auth-credentials: expected user:password');
  // marathon-lb: both zero disables the assignment; one zero alone is a mistake.
  if ((o.minServPortIpPerTask === 0) !== (o.maxServPortIpPerTask === 0)) {
    throw new ConfigError('--min-serv-port-ip-per-task: give both it and --max-serv-port-ip-per-task, or set both to 0 to disable');
  }
  if (o.minServPortIpPerTask > o.maxServPortIpPerTask) {
    throw new ConfigError(`--min-serv-port-ip-per-task: ${o.minServPortIpPerTask} is above --max-serv-port-ip-per-task ${o.maxServPortIpPerTask}`);
  }
}

/**
 * marathon-lb (Python's requests) logs in with the user info of a Marathon URL
 * (http://user:password@marathon:8080) when no credentials are given: here it becomes
 * --auth-credentials, and the URLs, which logs and the admin endpoints show, lose it. Given
 * credentials win, as in requests; URLs naming different users cannot be served by one login.
 */
function credentialsFromUrls(o: Options): void {
  const found = new Set<string>();
  o.marathon = o.marathon.map((url) => {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    found.add(`${unquote(parsed.username)}:${unquote(parsed.password)}`);
    // The URL as written, less its user info; a spelling the URL parser reads the user info from but
    // this does not match (http:/user:password@host) is written again by the parser, without it.
    const kept = url.replace(/^(https?:\/\/)[^/?#]*@/i, '$1');
    if (kept !== url) return kept;
    parsed.username = '';
    parsed.password = '';
    return parsed.href;
  });
  if (o.authCredentials !== null || o.marathonAuthCredentialFile !== null) return;
  if (found.size > 1) throw new ConfigError('--marathon: the URLs carry different credentials; give one user:password with --auth-credentials');
  const [credentials] = found;
  if (credentials !== undefined) o.authCredentials = credentials;
}

/** Percent-escapes decoded as Python's unquote does: a % that is no escape stays as written, and bytes that are no UTF-8 become U+FFFD. */
function unquote(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    if (text[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      const char = String.fromCodePoint(text.codePointAt(i)!);
      bytes.push(...Buffer.from(char, 'utf8'));
      i += char.length - 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export function usage(): string {
  const lines = SPECS.map((s) => {
    const flag = `${s.flag}${s.kind === 'bool' ? '' : ' ' + s.kind.toUpperCase()}`;
    return `  ${flag.padEnd(40)} ${s.help} [env ${envName(s)}, default ${JSON.stringify(DEFAULTS[s.key])}]`;
  });
  const foreign = FOREIGN_FLAGS.map((f) => [f.flag, ...(f.aliases ?? [])].join(', ') + (f.value ? ' VALUE' : ''));
  return ['Usage: turbine [sse] --marathon URL... --group NAME [options]',
    '       turbine demo [options]   (a fake Marathon with sample apps, real backends; ports 8080, 9090, 9091 unless given)', '', ...lines,
    `  ${'--config FILE'.padEnd(40)} JSON file with any of the keys above [env TURBINE_CONFIG]`,
    `  ${'--longhelp'.padEnd(40)} every HAPROXY_* label and marathon-lb flag with what Turbine does with it`,
    '', `Accepted from marathon-lb, no effect here (see --longhelp): ${foreign.join('; ')}`].join('\n');
}
