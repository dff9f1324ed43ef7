import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as oidc from 'openid-client';
import { stringify } from 'yaml';
import { Browser } from '../support/http-client.ts';
import { freePort } from '../support/ports.ts';
import { eventually } from './observability-support.ts';

/**
 * Graceful life of the real process: `node src/main.ts`, SIGTERM while a slow login is in flight.
 * /readyz turns 503 first (the load balancer drains the instance), the listeners stop accepting
 * after the drain delay, the request in flight still gets its answer, then the process exits 0.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DRAIN_MS = 800;
const UPSTREAM_TIMEOUT_MS = 2500;

/** One GET on a fresh connection (no pooled keep-alive socket that would outlive the listener). */
function getFresh(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

describe('graceful shutdown of the real process', () => {
  let dir: string;
  let child: ChildProcess;
  let hole: net.Server;
  const holeSockets = new Set<net.Socket>();
  const lines: Array<Record<string, unknown>> = [];
  let issuer: string;
  let exited: Promise<number | null>;

  before(async () => {
    // An IdP that accepts and never answers: the login waits for the upstream timeout.
    hole = net.createServer((socket) => {
      holeSockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    const holeUrl = `http://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;

    const [port, adminPort] = [await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${port}`;
    dir = await mkdtemp(path.join(tmpdir(), 'concord-shutdown-'));
    await mkdir(path.join(dir, 'participants'));
    await mkdir(path.join(dir, 'clients'));
    await writeFile(
      path.join(dir, 'concord.yaml'),
      stringify({ logLevel: 'info', shutdown: { drainDelayMs: DRAIN_MS }, upstream: { timeoutMs: UPSTREAM_TIMEOUT_MS, healthInterval: 0 } }),
    );
    await writeFile(
      path.join(dir, 'participants', 'slow.yaml'),
      stringify({ id: 'slow', displayName: 'Slow', domains: ['slow.example'], upstream: { type: 'oidc', issuer: holeUrl, clientId: 'concord', clientSecret: 'slow-secret-0123456789', allowInsecureHttp: true } }),
    );
    await writeFile(
      path.join(dir, 'clients', 'rp.yaml'),
      stringify({ client_id: 'rp', client_secret: 'rp-secret-0123456789abcdef', redirect_uris: ['http://127.0.0.1:9999/cb'], skip_consent: true }),
    );

    child = spawn(process.execPath, ['src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, CONCORD_CONFIG_DIR: dir, CONCORD_PORT: String(port), CONCORD_HOST: '127.0.0.1', CONCORD_ADMIN_PORT: String(adminPort), CONCORD_ISSUER: issuer, CONCORD_STORE: 'memory' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    await eventually(async () => lines.some((l) => l.msg === 'concord started') || (child.exitCode !== null && Promise.reject(new Error(`concord exited: ${stderr}`))), 15_000, 'concord started');
  });

  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const s of holeSockets) s.destroy();
    await new Promise<void>((resolve) => hole.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('turns /readyz off, drains, stops accepting, finishes the request in flight, then exits 0', async () => {
    assert.equal((await getFresh(`${issuer}/readyz`)).status, 200);

    // A login whose upstream hangs: in flight at Concord until the upstream timeout.
    const verifier = oidc.randomPKCECodeVerifier();
    const auth = new URL(`${issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: 'rp',
      response_type: 'code',
      redirect_uri: 'http://127.0.0.1:9999/cb',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      login_hint: 'someone@slow.example',
    }).toString();
    const started = Date.now();
    const inFlight = new Browser({ timeoutMs: 15_000 }).get(auth).then((page) => ({ page, at: Date.now() }));
    await eventually(async () => holeSockets.size > 0, 5000, 'the login to reach the upstream');

    const signalled = Date.now();
    child.kill('SIGTERM');

    // Readiness goes first, while the listener still answers.
    const ready = await eventually(async () => {
      const r = await getFresh(`${issuer}/readyz`);
      return r.status === 503 && r;
    }, 500, '/readyz 503');
    assert.equal(JSON.parse(ready.body).status, 'shutting_down');
    assert.ok(Date.now() - signalled < DRAIN_MS, 'readiness turned off before the drain delay ran out');
    const health = await getFresh(`${issuer}/healthz`);
    assert.equal(health.status, 200, 'still serving during the drain');

    // After the drain delay the listener stops accepting new connections.
    await eventually(
      () => getFresh(`${issuer}/healthz`).then(
        () => false,
        (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED',
      ),
      DRAIN_MS + 2000,
      'the listener to close',
    );
    const closedAt = Date.now();
    assert.ok(closedAt - signalled >= DRAIN_MS - 50, `the listener closed ${closedAt - signalled} ms after SIGTERM, before the drain delay`);

    // The request in flight still gets its answer: the "unavailable" page after the upstream timeout.
    const { page, at } = await inFlight;
    assert.equal(page.status, 503);
    assert.match(page.body, /sign-in service is unavailable/);
    assert.ok(at >= closedAt, 'the answer came after the listener had closed');
    assert.ok(at - started >= UPSTREAM_TIMEOUT_MS - 100);

    assert.equal(await exited, 0);
    const messages = lines.map((l) => l.msg);
    const order = ['shutting down: readiness off, finishing requests in flight', 'readiness off; draining before the listeners close', 'listeners closed, requests finished, store closed', 'stopped'];
    for (const msg of order) assert.ok(messages.includes(msg), `no "${msg}" line`);
    assert.deepEqual(
      order.map((m) => messages.indexOf(m)),
      order.map((m) => messages.indexOf(m)).sort((a, b) => a - b),
      JSON.stringify(lines.slice(-8)),
    );
    // The in-flight request finished (and was logged) before the listeners were reported closed.
    const served = lines.findIndex((l) => l.msg === 'request' && String(l.url).startsWith('/interaction/') && l.status === 503);
    assert.ok(served !== -1 && served < messages.indexOf('listeners closed, requests finished, store closed'));
  });
});
