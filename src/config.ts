/**
 * Configuration: one table of options drives flag parsing, environment twins, `--help` and
 * the README's configuration table. The result is validated once at the boundary and frozen;
 * nothing else in the program reads argv or the environment.
 */
import { parseArgs as parseFlags } from 'node:util'
import { availableParallelism } from 'node:os'
import { parseHashSpec, type HashSpec } from './ring/hashes.js'
import { DEFAULT_SLOTS, MAX_WEIGHT } from './ring/ring.js'
import { DEFAULT_START_TIMEOUT_MS } from './replicas/provider.js'
import { parseKeySource, type KeySource } from './route/keys.js'
import { validateHostname } from './membership/names.js'
import type { TcpKey } from './front/tcp.js'
import { EDGE_DEFAULTS, type EdgeConfig } from './front/edge-limits.js'
import { DEFAULT_IMAGE, DEFAULT_NETWORK, DEFAULT_OWNER } from './replicas/docker/defaults.js'
import { POOL_DEFAULTS, STALL_FACTOR } from './upstream/defaults.js'
import { MAX_REPLICAS_DEFAULT } from './membership/capacity.js'
import { BODY_TIMEOUT_MS } from './admin/body.js'
import { ADMIN_ALLOW_DEFAULT, ADMIN_HOST_DEFAULT, ADMIN_PORT_DEFAULT, MIN_TOKEN_LENGTH, allowList, tokenDigest, type AdminConfig } from './admin/options.js'

export type Probe = 'linear' | 'quadratic'
export type ProviderKind = 'process' | 'docker' | 'swarm'

export interface HealthConfig {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly rise: number
  readonly fall: number
}

export interface Config {
  readonly host: string
  readonly port: number
  readonly replicas: number
  /** Names of the initial replicas; defaults to `Server 1`..`Server N`. */
  readonly names: readonly string[]
  readonly slots: number
  readonly vnodes: number
  readonly hash: HashSpec
  readonly probe: Probe
  /** Weights of the first replicas by name (`--weights`, in `names` order); others weigh 1. */
  readonly weights: ReadonlyMap<string, number>
  /** Bounded loads (`--balance-factor`, >= 1); undefined: off. */
  readonly balanceFactor: number | undefined
  readonly key: KeySource
  readonly provider: ProviderKind
  readonly image: string
  readonly network: string
  readonly owner: string
  readonly dockerKeep: boolean
  /** Swarm provider: follow the writer's services instead of changing membership (`--swarm-follow`). */
  readonly swarmFollow: boolean
  /** Swarm provider: reach tasks at their overlay address, a host-mode published port, or decide (`auto`). */
  readonly swarmReach: 'auto' | 'overlay' | 'host'
  readonly health: HealthConfig
  readonly startTimeoutMs: number
  readonly drainTimeoutMs: number
  readonly upstreamTimeoutMs: number
  readonly maxBodyBytes: number
  /** Most replicas at once: /add beyond it is refused before anything starts. */
  readonly maxReplicas: number
  /** The admin plane: its listener, who may change membership, body timeout (src/admin/). */
  readonly admin: AdminConfig
  readonly quiet: boolean
  /** Plain GET/HEAD requests take the fast front (src/front/) rather than node:http. */
  readonly fastFront: boolean
  /** Most GET/HEAD requests in flight on one replica connection (1: no pipelining). */
  readonly upstreamPipeline: number
  /** ms a pipelined request waits behind others before it is resent alone (0: never). */
  readonly pipelineStallMs: number
  /** Port of the L4 (TCP mode) listener; undefined: no TCP listener. */
  readonly tcpPort: number | undefined
  readonly tcpKey: TcpKey
  readonly tcpConnectTimeoutMs: number
  /** Idle timeout of TCP-mode connections and upgraded (WebSocket) tunnels; 0: none. */
  readonly idleTimeoutMs: number
  /** Most client connections open at once: HTTP, TCP-mode and upgraded tunnels together. */
  readonly maxConnections: number
  /** Count requests per replica for /metrics, /stats and the dashboard (src/observe/). */
  readonly metrics: boolean
  /** One line per request: off, json or combined; to `accessLogFile` (undefined: stdout). */
  readonly accessLog: 'off' | 'json' | 'combined'
  readonly accessLogFile: string | undefined
  /** The edge's limits and timeouts on client connections (src/front/edge-*.ts). */
  readonly edge: EdgeConfig
  /** Data-plane worker processes (`--workers`; `auto`: available cores). 1: one process, no primary (src/cluster/). */
  readonly workers: number
  /**
   * With --workers N > 1, who accepts client connections: `rr`, the primary, handing each to a
   * worker in turn (node:cluster's round-robin: one IPC message per connection); `shared`, every
   * worker from the one listening socket (cluster.SCHED_NONE, nginx's default without reuseport).
   */
  readonly workerAccept: 'rr' | 'shared'
  /** The raw flag values this config was built from, but the admin token's: cluster workers build the same config from them. */
  readonly source: Readonly<Record<string, string>>
}

/** Thrown for a bad flag or environment value; main prints it and exits with status 2. */
export class ConfigError extends Error {
  override name = 'ConfigError'
  /** The option whose value is wrong, when it is one option's (messages name it as `--flag`). */
  constructor(
    message: string,
    readonly flag?: string,
  ) {
    super(message)
  }
}

export interface Option {
  /** Long flag without dashes; also the key in the raw value map. */
  readonly flag: string
  readonly env: string
  readonly help: string
  /** Shown as the default in --help and the README (undefined: derived, see help). */
  readonly default?: string
  /** A flag that takes no value (`--quiet`); `--quiet=false` still works. */
  readonly boolean?: boolean
  /** How a default computed from other values is shown (`round(log2 M)`). */
  readonly derivedDefault?: string
}

export const OPTIONS: readonly Option[] = [
  { flag: 'port', env: 'LB_PORT', default: '5000', help: 'HTTP port of the balancer (0: any free port)' },
  { flag: 'host', env: 'LB_HOST', default: '0.0.0.0', help: 'address to listen on' },
  { flag: 'replicas', env: 'LB_REPLICAS', default: '3', help: 'number of replicas to keep running (N)' },
  { flag: 'names', env: 'LB_NAMES', help: 'comma-separated names of the first replicas (default `Server 1`..`Server N`)' },
  { flag: 'slots', env: 'LB_SLOTS', default: String(DEFAULT_SLOTS), help: 'ring size M, 1..65536' },
  { flag: 'vnodes', env: 'LB_VNODES', derivedDefault: 'round(log2 M)', help: 'virtual servers per replica K (9 for 512 slots)' },
  { flag: 'hash', env: 'LB_HASH', default: 'default', help: 'hash preset: `default` (balanced table), `ring`, `assignment`, `quadratic`, `linear` or `custom:h=A,B,C;phi=A,B,C,D,E`' },
  { flag: 'probe', env: 'LB_PROBE', default: 'linear', help: 'collision probing: `linear` or `quadratic` (the vnode presets; not `default`)' },
  { flag: 'weights', env: 'LB_WEIGHTS', help: `comma-separated weights (1..${MAX_WEIGHT}) of the first replicas, in \`--names\` order; weight 2 gets twice the slots (default 1 each)` },
  { flag: 'balance-factor', env: 'LB_BALANCE_FACTOR', default: 'off', help: 'bounded loads: a replica holding ceil(FACTOR x its fair part) of the requests in flight takes no more; the next one clockwise does (>= 1, e.g. 1.25, or `off`)' },
  { flag: 'key', env: 'LB_KEY', default: 'random', help: 'request key: `random`, `header:NAME`, `query:NAME`, `cookie:NAME`, `ip` or `path`' },
  { flag: 'provider', env: 'LB_PROVIDER', default: 'process', help: 'replica provider: `process` (local child processes), `docker` (containers) or `swarm` (Swarm services, see [Running on a cluster](#running-on-a-cluster))' },
  { flag: 'image', env: 'LB_IMAGE', default: DEFAULT_IMAGE, help: 'replica image (docker and swarm providers)' },
  { flag: 'network', env: 'LB_NETWORK', default: DEFAULT_NETWORK, help: 'Docker network for replicas, or `host` for host networking (swarm: an overlay network, created attachable if missing)' },
  { flag: 'owner', env: 'LB_OWNER', default: DEFAULT_OWNER, help: 'label value marking the containers (swarm: services) this balancer owns' },
  { flag: 'docker-keep', env: 'LB_DOCKER_KEEP', default: 'false', boolean: true, help: 'leave replica containers (swarm: services) running on shutdown' },
  { flag: 'swarm-follow', env: 'LB_SWARM_FOLLOW', default: 'false', boolean: true, help: "swarm: follow the writer balancer's replicas (same `--owner`) instead of changing membership; `/add` and `/rm` answer 409 naming the writer. Needs `--hash default`" },
  { flag: 'swarm-reach', env: 'LB_SWARM_REACH', default: 'auto', help: 'swarm: reach each task at its overlay address (`overlay`), at its host-mode published port (`host`), or `auto`: overlay when the balancer is attached to the overlay network' },
  { flag: 'health-interval', env: 'LB_HEALTH_INTERVAL', default: '1000', help: 'ms between heartbeat probes of a replica' },
  { flag: 'health-timeout', env: 'LB_HEALTH_TIMEOUT', default: '500', help: 'ms a heartbeat may take before it counts as failed' },
  { flag: 'health-rise', env: 'LB_HEALTH_RISE', default: '2', help: 'consecutive good probes that make a replica healthy again' },
  { flag: 'health-fall', env: 'LB_HEALTH_FALL', default: '3', help: 'consecutive failed probes that make a replica dead' },
  { flag: 'start-timeout', env: 'LB_START_TIMEOUT', default: String(DEFAULT_START_TIMEOUT_MS), help: 'ms a new replica has to answer its heartbeat' },
  { flag: 'drain-timeout', env: 'LB_DRAIN_TIMEOUT', default: '10000', help: 'ms in-flight requests may take to finish on a leaving replica' },
  { flag: 'upstream-timeout', env: 'LB_UPSTREAM_TIMEOUT', default: '30000', help: 'ms of silence from a replica before the request fails (504 if nothing was answered yet)' },
  { flag: 'upstream-pipeline', env: 'LB_UPSTREAM_PIPELINE', default: '8', help: 'under load, up to this many GET/HEAD requests share one replica connection (HTTP/1.1 pipelining: fewer system calls; see Performance and `--pipeline-stall`); 1: off' },
  { flag: 'pipeline-stall', env: 'LB_PIPELINE_STALL', default: String(POOL_DEFAULTS.stallMs), help: `ms a pipelined request stuck behind a slow answer waits before it is sent again on a connection of its own (also at least ${STALL_FACTOR}x the replica's typical answer time, and only once the replica answered a later request); that replica then gets no pipelining for ${POOL_DEFAULTS.cooldownMs / 1000} s. 0: wait up to \`--upstream-timeout\`` },
  { flag: 'fast-front', env: 'LB_FAST_FRONT', default: 'true', boolean: true, help: 'read and answer plain GET/HEAD proxy requests on the raw socket, everything else through node:http (`--fast-front=false`: all through node:http; see Performance)' },
  { flag: 'max-body', env: 'LB_MAX_BODY', default: '65536', help: 'largest admin request body in bytes (then 413)' },
  { flag: 'admin-port', env: 'LB_ADMIN_PORT', default: String(ADMIN_PORT_DEFAULT), help: 'port of the admin listener (/rep, /add, /rm, /healthz), 0: any free port, off: none' },
  { flag: 'admin-host', env: 'LB_ADMIN_HOST', default: ADMIN_HOST_DEFAULT, help: 'address of the admin listener (keep it on loopback unless it must be reached from elsewhere)' },
  { flag: 'admin-on-main', env: 'LB_ADMIN_ON_MAIN', default: 'true', boolean: true, help: 'also serve /add and /rm on --port (--admin-on-main=false: only on the admin listener; the main port then proxies them like any path)' },
  { flag: 'admin-allow', env: 'LB_ADMIN_ALLOW', default: ADMIN_ALLOW_DEFAULT, help: 'who may change membership (/add, /rm) on either listener: comma-separated address ranges (10.0.0.0/8, fd00::/8, 192.0.2.7) and the names loopback (127.0.0.0/8, ::1) and private (10/8, 172.16/12, 192.168/16, fc00::/7), or any; IPv4 ranges match IPv4-mapped peers too' },
  { flag: 'admin-token', env: 'LB_ADMIN_TOKEN', help: `when set, /add and /rm also need Authorization: Bearer TOKEN (at least ${MIN_TOKEN_LENGTH} characters; prefer the env twin or --admin-token-file: other users can read flags in ps)` },
  { flag: 'admin-token-file', env: 'LB_ADMIN_TOKEN_FILE', help: 'read the admin token from this file (one line; e.g. a Docker or Kubernetes secret)' },
  { flag: 'admin-body-timeout', env: 'LB_ADMIN_BODY_TIMEOUT', default: String(BODY_TIMEOUT_MS), help: 'ms an admin request body may take to arrive once its headers are in (then 408)' },
  { flag: 'max-replicas', env: 'LB_MAX_REPLICAS', default: String(MAX_REPLICAS_DEFAULT), help: 'most replicas at once: a /add that would pass it is refused (400) before anything starts' },
  { flag: 'tcp-port', env: 'LB_TCP_PORT', help: 'also proxy raw TCP (L4 mode) on this port, 0: any free port (default: no TCP listener)' },
  { flag: 'tcp-key', env: 'LB_TCP_KEY', default: 'ip', help: 'TCP connection key: `ip` (client address) or `ip-port` (client address and port)' },
  { flag: 'tcp-connect-timeout', env: 'LB_TCP_CONNECT_TIMEOUT', default: '5000', help: 'ms a replica may take to accept a TCP connection (then the next one is tried)' },
  { flag: 'idle-timeout', env: 'LB_IDLE_TIMEOUT', default: '3600000', help: 'ms a TCP connection or WebSocket tunnel may carry no byte before it is closed (0: never)' },
  { flag: 'max-connections', env: 'LB_MAX_CONNECTIONS', default: '10000', help: 'most client connections open at once (HTTP, TCP mode and WebSocket tunnels together); a new HTTP connection over it gets 503 and is closed, a TCP one is closed' },
  { flag: 'max-pipelined', env: 'LB_MAX_PIPELINED', default: String(EDGE_DEFAULTS.maxPipelined), help: 'most requests of one client connection in flight at once (read and not yet answered); 1: one at a time, as nginx and HAProxy; the connection is not read further until answers drain' },
  { flag: 'header-timeout', env: 'LB_HEADER_TIMEOUT', default: String(EDGE_DEFAULTS.headerTimeoutMs), help: 'ms a client has to send a whole request head (then 408 and close)' },
  { flag: 'client-timeout', env: 'LB_CLIENT_TIMEOUT', default: String(EDGE_DEFAULTS.clientTimeoutMs), help: 'ms a client may stay silent in the middle of a request body (then 408, or an abort once answered, and close)' },
  { flag: 'keep-alive-timeout', env: 'LB_KEEP_ALIVE_TIMEOUT', default: String(EDGE_DEFAULTS.keepAliveTimeoutMs), help: 'ms an idle keep-alive client connection stays open' },
  { flag: 'max-header-size', env: 'LB_MAX_HEADER_SIZE', default: String(EDGE_DEFAULTS.maxHeaderSize), help: 'largest request head in bytes (431; a request line longer than this: 414)' },
  { flag: 'max-headers', env: 'LB_MAX_HEADERS', default: String(EDGE_DEFAULTS.maxHeaders), help: 'most header lines in a request (431)' },
  { flag: 'max-request-body', env: 'LB_MAX_REQUEST_BODY', default: 'off', help: 'largest proxied request body in bytes: 413 before forwarding when Content-Length says more, the request aborted when a chunked body passes it (off: unlimited)' },
  { flag: 'workers', env: 'LB_WORKERS', default: '1', help: 'data-plane processes: N (1..256) or `auto` (one per available core). Above 1, a primary keeps membership, health checks, the admin listener and metrics, and N workers serve the proxied ports (see [Scaling up](#scaling-up))' },
  { flag: 'worker-accept', env: 'LB_WORKER_ACCEPT', default: 'rr', help: 'with --workers N > 1, who accepts client connections: `rr`, the primary, handing them to the workers in turn (even spread; one IPC message per connection), or `shared`, each worker from the one listening socket (no IPC; the kernel picks the worker, unevenly)' },
  { flag: 'quiet', env: 'LB_QUIET', default: 'false', boolean: true, help: 'log only errors (and the admin audit lines)' },
  { flag: 'metrics', env: 'LB_METRICS', default: 'true', boolean: true, help: 'count requests per replica for /metrics, /stats and /dashboard on the admin listener (--metrics=false: no counting)' },
  { flag: 'access-log', env: 'LB_ACCESS_LOG', default: 'off', help: 'one line per request: off, json or combined (buffered, flushed every second and at exit)' },
  { flag: 'access-log-file', env: 'LB_ACCESS_LOG_FILE', help: 'append the access log to this file (default: stdout)' },
]

const byFlag = new Map(OPTIONS.map((o) => [o.flag, o]))

/** Raw string values by flag name, from argv then env (argv wins). `help` set when asked. */
export interface RawArgs {
  values: Record<string, string>
  /** Flags whose value came from the environment (no flag given): errors name the variable. */
  fromEnv: Set<string>
  help: boolean
}

/** node:util's option table for the flags: string values, booleans that may take `=true|false`. */
const PARSE_OPTIONS = Object.fromEntries([
  ['help', { type: 'boolean', short: 'h' }],
  ...OPTIONS.map((o) => [o.flag, { type: o.boolean ? 'boolean' : 'string' }]),
]) as Record<string, { type: 'string' | 'boolean'; short?: string }>

/**
 * Flags by node:util's parseArgs (non-strict, so every token comes back and the messages stay
 * ours): `--flag value`, `--flag=value`, booleans bare or `--flag=false`, `--help` / `-h`.
 * The environment twins fill in first; argv wins.
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): RawArgs {
  const values: Record<string, string> = {}
  const fromEnv = new Set<string>()
  for (const o of OPTIONS) {
    const v = env[o.env]
    if (v !== undefined && v !== '') {
      values[o.flag] = v
      fromEnv.add(o.flag)
    }
  }
  let help = false
  const { tokens } = parseFlags({ args: [...argv], options: PARSE_OPTIONS, strict: false, allowPositionals: true, tokens: true })
  for (const token of tokens) {
    const raw = argv[token.index]!
    // Anything not a long flag (`5000`, `-x`, `-hx`) but the one short flag `-h`.
    if (token.kind === 'positional' || (!raw.startsWith('--') && raw !== '-h')) {
      throw new ConfigError(`unexpected argument ${JSON.stringify(raw)} (flags look like --port 5000; see --help)`)
    }
    if (token.kind === 'option-terminator') throw new ConfigError('unknown flag -- (see --help)')
    if (raw === '--help' || raw === '-h') {
      help = true
      continue
    }
    const option = token.name === 'help' ? undefined : byFlag.get(token.name)
    if (!option) throw new ConfigError(`unknown flag --${token.name} (see --help)`)
    fromEnv.delete(option.flag)
    if (token.value !== undefined) values[option.flag] = token.value
    else if (option.boolean) values[option.flag] = 'true'
    else throw new ConfigError(`--${option.flag} needs a value`)
  }
  return { values, fromEnv, help }
}

function integer(flag: string, text: string, min: number, max: number): number {
  const n = /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`--${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`, flag)
  }
  return n
}

/** `--workers`: 1..256, or `auto`: one per core this process may use (os.availableParallelism, capped at 256). */
function workerCount(text: string): number {
  if (text.trim().toLowerCase() === 'auto') return Math.min(256, availableParallelism())
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN
  if (!Number.isSafeInteger(n) || n < 1 || n > 256) throw new ConfigError(`--workers must be an integer from 1 to 256 or auto, got ${JSON.stringify(text)}`, 'workers')
  return n
}

function boolean(flag: string, text: string): boolean {
  const t = text.trim().toLowerCase()
  if (['true', '1', 'yes', 'on'].includes(t)) return true
  if (['false', '0', 'no', 'off'].includes(t)) return false
  throw new ConfigError(`--${flag} must be true or false, got ${JSON.stringify(text)}`, flag)
}

function oneOf<T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(text)) return text as T
  throw new ConfigError(`--${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`, flag)
}

function nonEmpty(flag: string, text: string): string {
  const value = text.trim()
  if (value === '') throw new ConfigError(`--${flag} must not be empty`, flag)
  return value
}

/** parse(), its errors as ConfigError with their own message. */
function asConfigError<T>(parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw new ConfigError((err as Error).message)
  }
}

function wrap<T>(flag: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError(`--${flag}: ${(err as Error).message}`, flag)
  }
}

/**
 * Validate raw values into a frozen Config. Throws ConfigError with a message for the user;
 * a bad value that came from the environment (`fromEnv`) is named by its variable
 * (`LB_PORT must be ...`), since that is what the user has to change.
 */
export function buildConfig(values: Readonly<Record<string, string>>, fromEnv: ReadonlySet<string> = new Set()): Config {
  try {
    return validate(values)
  } catch (err) {
    if (err instanceof ConfigError && err.flag !== undefined && fromEnv.has(err.flag)) {
      throw new ConfigError(err.message.replace(`--${err.flag}`, byFlag.get(err.flag)!.env), err.flag)
    }
    throw err
  }
}

function validate(values: Readonly<Record<string, string>>): Config {
  const get = (flag: string): string => values[flag] ?? byFlag.get(flag)!.default ?? ''
  const replicas = integer('replicas', get('replicas'), 0, 1000)
  const slots = integer('slots', get('slots'), 1, 65536)
  const vnodes = values.vnodes === undefined ? Math.max(1, Math.round(Math.log2(slots))) : integer('vnodes', get('vnodes'), 1, slots)

  let names: string[]
  if (values.names === undefined) {
    names = Array.from({ length: replicas }, (_, i) => `Server ${i + 1}`)
  } else {
    names = get('names').split(',').map((s) => s.trim()).filter((s) => s !== '')
    if (names.length > replicas) throw new ConfigError(`--names lists ${names.length} names but --replicas is ${replicas}`, 'names')
    for (const name of names) wrap('names', () => validateHostname(name))
    if (new Set(names).size !== names.length) throw new ConfigError('--names has a duplicate name', 'names')
  }

  const weights = new Map<string, number>()
  if (values.weights !== undefined) {
    const list = get('weights').split(',').map((s) => s.trim())
    if (list.length > names.length) throw new ConfigError(`--weights lists ${list.length} weights but there are ${names.length} named replicas (see --names)`, 'weights')
    list.forEach((w, k) => weights.set(names[k]!, integer('weights', w, 1, MAX_WEIGHT)))
  }
  const factorText = get('balance-factor').trim().toLowerCase()
  let balanceFactor: number | undefined
  if (factorText !== 'off') {
    balanceFactor = /^\d+(\.\d+)?$/.test(factorText) ? Number(factorText) : NaN
    if (!(balanceFactor >= 1 && balanceFactor <= 100)) {
      throw new ConfigError(`--balance-factor must be a number from 1 to 100 (e.g. 1.25) or off, got ${JSON.stringify(get('balance-factor'))}`, 'balance-factor')
    }
  }

  const health: HealthConfig = Object.freeze({
    intervalMs: integer('health-interval', get('health-interval'), 10, 3_600_000),
    timeoutMs: integer('health-timeout', get('health-timeout'), 1, 3_600_000),
    rise: integer('health-rise', get('health-rise'), 1, 100),
    fall: integer('health-fall', get('health-fall'), 1, 100),
  })

  const network = get('network').trim()
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(network)) throw new ConfigError(`--network must be a Docker network name or host, got ${JSON.stringify(network)}`, 'network')
  const owner = get('owner').trim()
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(owner)) throw new ConfigError(`--owner must be 1-63 letters, digits, '_', '.' or '-', got ${JSON.stringify(owner)}`, 'owner')
  const image = get('image').trim()
  if (image === '' || /\s/.test(image)) throw new ConfigError(`--image must be an image name, got ${JSON.stringify(image)}`, 'image')
  const host = nonEmpty('host', get('host'))

  const config: Config = {
    host,
    port: integer('port', get('port'), 0, 65535),
    replicas,
    names: Object.freeze(names),
    slots,
    vnodes,
    hash: wrap('hash', () => parseHashSpec(get('hash'))),
    probe: oneOf('probe', get('probe'), ['linear', 'quadratic'] as const),
    weights,
    balanceFactor,
    key: wrap('key', () => parseKeySource(get('key'))),
    provider: oneOf('provider', get('provider'), ['process', 'docker', 'swarm'] as const),
    image,
    network,
    owner,
    dockerKeep: boolean('docker-keep', get('docker-keep')),
    swarmFollow: boolean('swarm-follow', get('swarm-follow')),
    swarmReach: oneOf('swarm-reach', get('swarm-reach'), ['auto', 'overlay', 'host'] as const),
    health,
    startTimeoutMs: integer('start-timeout', get('start-timeout'), 100, 600_000),
    drainTimeoutMs: integer('drain-timeout', get('drain-timeout'), 0, 600_000),
    upstreamTimeoutMs: integer('upstream-timeout', get('upstream-timeout'), 1, 3_600_000),
    maxBodyBytes: integer('max-body', get('max-body'), 16, 64 * 1024 * 1024),
    maxReplicas: integer('max-replicas', get('max-replicas'), 1, 65536),
    admin: {
      port: get('admin-port').trim().toLowerCase() === 'off' ? undefined : integer('admin-port', get('admin-port'), 0, 65535),
      host: nonEmpty('admin-host', get('admin-host')),
      onMain: boolean('admin-on-main', get('admin-on-main')),
      allow: wrap('admin-allow', () => allowList(get('admin-allow'))),
      // Its messages name the flag (or the file) themselves and never show the value.
      tokenDigest: asConfigError(() => tokenDigest(values['admin-token'], values['admin-token-file'])),
      bodyTimeoutMs: integer('admin-body-timeout', get('admin-body-timeout'), 1, 3_600_000),
    },
    quiet: boolean('quiet', get('quiet')),
    fastFront: boolean('fast-front', get('fast-front')),
    upstreamPipeline: integer('upstream-pipeline', get('upstream-pipeline'), 1, 64),
    pipelineStallMs: integer('pipeline-stall', get('pipeline-stall'), 0, 600_000),
    tcpPort: values['tcp-port'] === undefined ? undefined : integer('tcp-port', get('tcp-port'), 0, 65535),
    tcpKey: oneOf('tcp-key', get('tcp-key'), ['ip', 'ip-port'] as const),
    tcpConnectTimeoutMs: integer('tcp-connect-timeout', get('tcp-connect-timeout'), 1, 600_000),
    idleTimeoutMs: integer('idle-timeout', get('idle-timeout'), 0, 2_147_483_647),
    maxConnections: integer('max-connections', get('max-connections'), 1, 1_000_000),
    metrics: boolean('metrics', get('metrics')),
    accessLog: oneOf('access-log', get('access-log'), ['off', 'json', 'combined'] as const),
    accessLogFile: values['access-log-file'] === undefined || get('access-log-file').trim() === '' ? undefined : get('access-log-file').trim(),
    workers: workerCount(get('workers')),
    workerAccept: oneOf('worker-accept', get('worker-accept'), ['rr', 'shared'] as const),
    // Never the admin token (nor its file): workers get its digest over their IPC channel.
    source: Object.freeze(Object.fromEntries(Object.entries(values).filter(([flag]) => flag !== 'admin-token' && flag !== 'admin-token-file'))),
    edge: Object.freeze({
      maxPipelined: integer('max-pipelined', get('max-pipelined'), 1, 1024),
      headerTimeoutMs: integer('header-timeout', get('header-timeout'), 100, 3_600_000),
      clientTimeoutMs: integer('client-timeout', get('client-timeout'), 100, 3_600_000),
      keepAliveTimeoutMs: integer('keep-alive-timeout', get('keep-alive-timeout'), 100, 3_600_000),
      maxHeaderSize: integer('max-header-size', get('max-header-size'), 1024, 1024 * 1024),
      maxHeaders: integer('max-headers', get('max-headers'), 1, 10_000),
      maxRequestBody: get('max-request-body').trim().toLowerCase() === 'off' ? undefined : integer('max-request-body', get('max-request-body'), 0, Number.MAX_SAFE_INTEGER),
    }),
  }
  if (config.replicas > config.maxReplicas) {
    throw new ConfigError(`--replicas ${config.replicas} is more than --max-replicas ${config.maxReplicas}`)
  }
  const adminPort = config.admin.port
  if (adminPort !== undefined && adminPort !== 0 && (adminPort === config.port || adminPort === config.tcpPort)) {
    throw new ConfigError(`--admin-port must differ from --port and --tcp-port (all use ${adminPort}); use off for no admin listener`)
  }
  if (config.swarmFollow && config.provider !== 'swarm') throw new ConfigError('--swarm-follow needs --provider swarm')
  // A follower must build the writer's table from the same members in another order.
  if (config.swarmFollow && config.hash.name !== 'default') {
    throw new ConfigError(`--swarm-follow needs --hash default: with ${config.hash.name} the routing table depends on the order replicas joined, so a follower would route differently from the writer`)
  }
  if (config.tcpPort !== undefined && config.tcpPort !== 0 && config.tcpPort === config.port) {
    throw new ConfigError(`--tcp-port must differ from --port (both are ${config.port})`)
  }
  // Each unit of weight takes K slots (virtual servers, or the balanced table's reservation).
  const units = config.replicas + [...weights.values()].reduce((sum, w) => sum + w - 1, 0)
  if (config.vnodes * units > config.slots) {
    throw new ConfigError(
      units === config.replicas
        ? `the ring has ${config.slots} slots, too few for ${config.replicas} replicas x ${config.vnodes} virtual servers`
        : `the ring has ${config.slots} slots, too few for ${config.replicas} replicas of total weight ${units} x ${config.vnodes} virtual servers`,
    )
  }
  return deepFreeze(config)
}

/**
 * Freeze the config all the way down, so no part of the program can change it after it was
 * validated: nested objects and arrays are frozen, and a Map's writers throw (Object.freeze
 * alone does not stop Map.set).
 */
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value
  if (value instanceof Map) {
    const refuse = (): never => {
      throw new TypeError('the configuration is frozen')
    }
    Object.defineProperties(value, { set: { value: refuse }, delete: { value: refuse }, clear: { value: refuse } })
    for (const v of value.values()) deepFreeze(v)
  }
  for (const v of Object.values(value)) deepFreeze(v)
  return Object.freeze(value)
}

/** The default as --help and the README's table show it ('' when there is none). */
export function defaultText(o: Option): string {
  return o.default ?? o.derivedDefault ?? ''
}

/** Help text without its Markdown code marks (the README shows them, a terminal need not). */
export function plain(text: string): string {
  return text.replaceAll('`', '')
}

/** `--help` text, generated from the option table. */
export function helpText(): string {
  const lines = [
    'Usage: ring-balancer [flags]     (npm start -- [flags])',
    '',
    'A consistent-hash HTTP load balancer that runs and heals its own replicas.',
    'Every flag has an environment twin; flags win over the environment.',
    '',
  ]
  for (const o of OPTIONS) {
    const left = `  --${o.flag}${o.boolean ? '' : ' VALUE'}`
    const shown = defaultText(o)
    const def = shown !== '' ? ` (default ${shown})` : ''
    lines.push(`${left.padEnd(28)} ${plain(o.help)}${def}  [${o.env}]`)
  }
  lines.push('  --help                       this text')
  return lines.join('\n')
}

/** Config from argv and env in one call, for main and tests. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = {}): Config {
  const args = parseArgs(argv, env)
  return buildConfig(args.values, args.fromEnv)
}
