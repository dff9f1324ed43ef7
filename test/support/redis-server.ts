/**
 * Throwaway Redis servers for tests: standalone `redis-server` processes and a Redis Cluster of
 * N masters, on loopback ports, each in its own temporary directory. Nothing is daemonized; the
 * processes are children of the test process and are killed (and their directories removed) by
 * `stop()`, and in any case when the test process exits or is interrupted.
 *
 * Fault tests: `terminate()` (SIGTERM) / `kill()` (SIGKILL) take a server down and keep its
 * directory; `start()` brings it back on the same port; `pause()`/`resume()` (SIGSTOP/SIGCONT)
 * make it hang without closing connections.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export interface RedisServerOptions {
  /** A fixed port; by default a free one is chosen (below 55535, with port+10000 free too). */
  port?: number;
  /** Keep data across terminate()/start() (append-only file, fsync always). Default false. */
  persistence?: boolean;
  /** Extra `redis-server` arguments, e.g. ['--requirepass', 'secret']. */
  args?: string[];
}

export interface RedisServer {
  /** `redis://127.0.0.1:{port}` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The server's working directory (logs, nodes.conf, AOF). Removed by stop(). */
  readonly dir: string;
  /** Whether the process is up (it may be paused). */
  readonly running: boolean;
  readonly pid: number | undefined;
  /** Sends one command on a fresh connection and returns the reply (errors reject). */
  command(...args: Array<string | number>): Promise<RespValue>;
  /** Starts the process again on the same port (and directory) if it is down; waits until it answers. */
  start(): Promise<void>;
  /** SIGTERM, waits for the exit; the directory is kept so start() can bring it back. */
  terminate(): Promise<void>;
  /** SIGKILL, waits for the exit; the directory is kept. */
  kill(): Promise<void>;
  /** terminate() then start(), same port. */
  restart(): Promise<void>;
  /** SIGSTOP: the server hangs, connections stay open. */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** Stops the process (SIGKILL if SIGTERM is not enough) and removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** The tail of the server's log, for assertion messages. */
  log(lines?: number): string;
}

export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:{p1},127.0.0.1:{p2},...` */
  readonly url: string;
  readonly nodes: RedisServer[];
  /** Resolves when every running node reports cluster_state:ok with all slots covered. */
  waitOk(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their directories. Idempotent. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Number of masters. Default 3, at least 3. */
  masters?: number;
  /** Replicas per master (redis-cli --cluster-replicas). Default 0. */
  replicas?: number;
  /** cluster-node-timeout in ms. Default 2000. */
  nodeTimeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Cleanup on exit: every live child is killed and every directory removed, whatever happens.

const live = new Set<ServerProcess>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupAllSync();
      // Our listener is gone (once); re-raise so the default action (or other listeners) runs.
      process.kill(process.pid, signal);
    });
  }
}

function cleanupAllSync(): void {
  for (const server of live) server.cleanupSync();
  live.clear();
}

// ---------------------------------------------------------------------------------------------
// Ports

const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host: HOST, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** A port in [20000, 55535) that is free on loopback, with port+10000 (the cluster bus) free too. */
export async function freeRedisPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 35000);
    if (handedOut.has(port)) continue;
    if ((await canBind(port)) && (await canBind(port + 10000))) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free port pair found for redis-server');
}

// ---------------------------------------------------------------------------------------------
// A minimal RESP client: one command per connection, for readiness checks and test setup.

export type RespValue = string | number | null | RespValue[];

class RespError extends Error {}

function encode(args: Array<string | number>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one reply at `offset`; undefined when the buffer does not hold all of it yet. */
function parse(buf: Buffer, offset: number): { value: RespValue | RespError; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buf[offset] ?? 0);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RespError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return undefined;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, at);
        if (!item) return undefined;
        items.push(item.value instanceof RespError ? item.value.message : item.value);
        at = item.end;
      }
      return { value: items, end: at };
    }
    default:
      throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
  }
}

/** Sends one command to 127.0.0.1:port and resolves with its reply; rejects on error replies. */
export function redisCommand(port: number, args: Array<string | number>, timeoutMs = 2000): Promise<RespValue> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const socket = net.connect({ port, host: HOST });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`redis ${HOST}:${port} did not answer ${args[0]} in ${timeoutMs} ms`)));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`connection to ${HOST}:${port} closed before a reply`)));
    socket.once('connect', () => socket.write(encode(args)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      let reply;
      try {
        reply = parse(buf, 0);
      } catch (err) {
        socket.destroy();
        return reject(err);
      }
      if (!reply) return;
      socket.destroy();
      if (reply.value instanceof RespError) reject(reply.value);
      else resolve(reply.value);
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// One redis-server process (restartable on its port and directory).

class ServerProcess implements RedisServer {
  readonly host = HOST;
  readonly port: number;
  readonly dir: string;
  readonly #args: string[];
  /** Arguments before the options: a Sentinel's config file and --sentinel. */
  readonly #leading: string[];
  /** Files written into the directory before each start (a Sentinel rewrites its config). */
  readonly #files: Record<string, string>;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #paused = false;
  #removed = false;

  constructor(port: number, dir: string, args: string[], leading: string[] = [], files: Record<string, string> = {}) {
    this.port = port;
    this.dir = dir;
    this.#args = args;
    this.#leading = leading;
    this.#files = files;
  }

  get url() {
    return `redis://${HOST}:${this.port}`;
  }

  get running() {
    return this.#child !== undefined;
  }

  get pid() {
    return this.#child?.pid;
  }

  command(...args: Array<string | number>): Promise<RespValue> {
    return redisCommand(this.port, args);
  }

  log(lines = 30): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'redis.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async start(): Promise<void> {
    if (this.#removed) throw new Error(`redis-server on port ${this.port} was stopped for good; start a new one`);
    if (this.#child) return;
    fs.mkdirSync(this.dir, { recursive: true });
    for (const [name, content] of Object.entries(this.#files)) fs.writeFileSync(path.join(this.dir, name), content);
    const child = spawn(
      'redis-server',
      [
        ...this.#leading,
        '--port', String(this.port),
        '--bind', HOST,
        '--dir', this.dir,
        '--logfile', path.join(this.dir, 'redis.log'),
        '--daemonize', 'no',
        ...this.#args,
      ],
      { stdio: 'ignore' },
    );
    // A forgotten server must not keep the test process alive; the exit hook kills it.
    child.unref();
    this.#child = child;
    this.#paused = false;
    live.add(this);
    let exitCode: string | undefined;
    this.#exited = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        exitCode = signal ?? String(code);
        if (this.#child === child) this.#child = undefined;
        resolve();
      };
      child.once('exit', done);
      child.once('error', (err) => {
        exitCode = err.message;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exitCode !== undefined) {
        throw new Error(`redis-server on port ${this.port} exited (${exitCode}) before it was ready:\n${this.log()}`);
      }
      try {
        if ((await redisCommand(this.port, ['PING'], 500)) === 'PONG') return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server on port ${this.port} did not answer within ${READY_TIMEOUT_MS} ms:\n${this.log()}`);
      }
      await sleep(20);
    }
  }

  async #signal(signal: NodeJS.Signals, timeoutMs = STOP_TIMEOUT_MS): Promise<boolean> {
    const child = this.#child;
    if (!child) return true;
    if (this.#paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    this.#paused = false;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      this.#exited!.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return exited;
  }

  async terminate(): Promise<void> {
    if (!(await this.#signal('SIGTERM'))) await this.kill();
    if (!this.#child) live.delete(this);
  }

  async kill(): Promise<void> {
    if (!(await this.#signal('SIGKILL'))) throw new Error(`redis-server pid ${this.pid} survived SIGKILL`);
    live.delete(this);
  }

  async restart(): Promise<void> {
    await this.terminate();
    await this.start();
  }

  pause(): void {
    if (!this.#child) throw new Error('redis-server is not running');
    this.#child.kill('SIGSTOP');
    this.#paused = true;
  }

  resume(): void {
    if (!this.#child) throw new Error('redis-server is not running');
    this.#child.kill('SIGCONT');
    this.#paused = false;
  }

  async stop(): Promise<void> {
    if (this.#removed) return;
    await this.terminate();
    this.#removed = true;
    live.delete(this);
    handedOut.delete(this.port);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** For the exit hook: synchronous, best effort. */
  cleanupSync(): void {
    try {
      if (this.#paused) this.#child?.kill('SIGCONT');
      this.#child?.kill('SIGKILL');
    } catch {
      // already gone
    }
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
}

async function launch(options: RedisServerOptions, extraArgs: string[], sentinelConfig?: string): Promise<ServerProcess> {
  installExitHooks();
  const args = [
    ...(options.persistence ? ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'] : ['--save', '', '--appendonly', 'no']),
    ...extraArgs,
    ...(options.args ?? []),
  ];
  // With a chosen port, someone may grab it between our check and redis-server's bind: retry.
  const attempts = options.port === undefined ? 5 : 1;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = options.port ?? (await freeRedisPort());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `concord-redis-${port}-`));
    const server = sentinelConfig === undefined
      ? new ServerProcess(port, dir, args.map((a) => a.replaceAll('{dir}', dir)))
      : new ServerProcess(port, dir, args, [path.join(dir, 'sentinel.conf'), '--sentinel'], { 'sentinel.conf': sentinelConfig });
    try {
      await server.start();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop().catch(() => {});
    }
  }
  throw lastError;
}

/** Starts a standalone redis-server on a loopback port and waits until it answers PING. */
export function startRedis(options: RedisServerOptions = {}): Promise<RedisServer> {
  return launch(options, []);
}

export interface RedisSentinelOptions {
  /** The master the Sentinel monitors (quorum 1: this Sentinel alone decides a failover). */
  master: RedisServer;
  /** The master's name in Sentinel. Default `concord`. */
  name?: string;
  /** down-after-milliseconds. Default 1000. */
  downAfterMs?: number;
}

export interface RedisSentinel {
  /** `redis-sentinel://127.0.0.1:{port}/{name}` */
  readonly url: string;
  readonly name: string;
  readonly server: RedisServer;
  /** `host:port` of the master the Sentinel names now. */
  masterAddress(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts one Redis Sentinel (`redis-server sentinel.conf --sentinel`) watching `master`. */
export async function startRedisSentinel(options: RedisSentinelOptions): Promise<RedisSentinel> {
  const name = options.name ?? 'concord';
  const config = [
    `sentinel monitor ${name} ${HOST} ${options.master.port} 1`,
    `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
    `sentinel failover-timeout ${name} 10000`,
    '',
  ].join('\n');
  const server = await launch({}, [], config);
  return {
    url: `redis-sentinel://${HOST}:${server.port}/${name}`,
    name,
    server,
    async masterAddress() {
      const reply = await server.command('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name);
      return Array.isArray(reply) ? reply.join(':') : String(reply);
    },
    stop: () => server.stop(),
  };
}

async function clusterOk(node: RedisServer, nodeCount: number): Promise<boolean> {
  try {
    const info = String(await node.command('CLUSTER', 'INFO'));
    return (
      info.includes('cluster_state:ok') &&
      info.includes('cluster_slots_ok:16384') &&
      new RegExp(`cluster_known_nodes:${nodeCount}\\b`).test(info)
    );
  } catch {
    return false;
  }
}

/**
 * Starts `masters` cluster-enabled redis-servers (and `replicas` per master), joins them with
 * `redis-cli --cluster create`, and waits until every node reports cluster_state:ok.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicas ?? 0;
  const nodeCount = masters * (1 + replicas);
  if (masters < 3) throw new Error('a Redis Cluster needs at least 3 masters');
  const nodeTimeout = options.nodeTimeoutMs ?? 2000;
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < nodeCount; i++) {
      nodes.push(
        await launch({}, [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', '{dir}/nodes.conf',
          '--cluster-node-timeout', String(nodeTimeout),
        ]),
      );
    }
    await new Promise<void>((resolve, reject) => {
      execFile(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
        { timeout: 30_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`redis-cli --cluster create failed: ${err.message}\n${stdout}\n${stderr}`)) : resolve()),
      );
    });
    const cluster: RedisCluster = {
      url: `redis-cluster://${nodes.map((n) => `${HOST}:${n.port}`).join(',')}`,
      nodes,
      async waitOk(timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const up = nodes.filter((n) => n.running);
          const states = await Promise.all(up.map((n) => clusterOk(n, nodeCount)));
          if (up.length > 0 && states.every(Boolean)) return;
          if (Date.now() > deadline) throw new Error(`Redis Cluster not ok after ${timeoutMs} ms`);
          await sleep(50);
        }
      },
      stop,
    };
    await cluster.waitOk();
    return cluster;
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
