import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { errorText } from '../../src/pages/index.ts';
import { MemoryStore, StoreFullError } from '../../src/store/index.ts';
import { CONFIDENTIAL_CLIENT, startConcord, type TestConcord } from '../support/concord.ts';

/*
 * Issue 19 item 3: the embedded store never grows without bound. Expired entries are swept on a
 * timer (not only when read again); past its cap a new interaction is refused with a clear 503, never
 * a crashed process; after expiry the store and the heap are back where they started.
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Polls `check` every 50 ms until it holds (at most `attempts` times). Not a timing assertion: a bound on waiting. */
async function eventually(check: () => boolean, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts && !check(); i++) await sleep(50);
  assert.ok(check(), 'the condition never held');
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('memory store: sweeping and caps', () => {
  it('sweeps expired entries on its timer, without a read', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 50 });
    try {
      for (let i = 0; i < 100; i++) await store.setTemp(`t${i}`, { i }, 0.2);
      for (let i = 0; i < 10; i++) await store.addToSet('s', `m${i}`, 0.2);
      await store.setTemp('kept', 'x', 600);
      assert.equal(store.usage().entries, 111);
      await eventually(() => store.usage().entries === 1);
      assert.equal(await store.getTemp('kept'), 'x');
    } finally {
      await store.close();
    }
  });

  it('refuses a new entry past the entry cap and the byte cap, keeps updating and deleting existing ones', async () => {
    const store = new MemoryStore({ maxEntries: 10, sweepIntervalMs: 0 });
    try {
      for (let i = 0; i < 10; i++) await store.setTemp(`k${i}`, i, 600);
      await assert.rejects(store.setTemp('k10', 10, 600), (err) => err instanceof StoreFullError && (err as StoreFullError).statusCode === 503);
      await assert.rejects(store.addToSet('set', 'm'), StoreFullError);
      await assert.rejects(store.adapter('Interaction').upsert('i1', { uid: 'u' } as never, 60), StoreFullError);
      await store.setTemp('k3', 'replaced', 600);
      assert.equal(await store.getTemp('k3'), 'replaced');
      await store.deleteTemp('k0');
      await store.setTemp('k10', 10, 600);
    } finally {
      await store.close();
    }
    const bytes = new MemoryStore({ maxBytes: 10_000, sweepIntervalMs: 0 });
    try {
      await bytes.setTemp('a', 'x'.repeat(6000), 600);
      await assert.rejects(bytes.setTemp('b', 'x'.repeat(6000), 600), StoreFullError);
      await bytes.setTemp('b', 'x'.repeat(1000), 600);
      assert.ok(bytes.usage().bytes <= 10_000);
    } finally {
      await bytes.close();
    }
  });

  it('filled to its byte cap, gives the memory back once the entries expire', async () => {
    const maxBytes = 64 * 1024 * 1024;
    const store = new MemoryStore({ maxBytes, sweepIntervalMs: 50 });
    try {
      const baseline = heapAfterGc();
      const value = { blob: 'v'.repeat(64 * 1024) };
      let written = 0;
      for (;;) {
        try {
          await store.setTemp(`fill:${written}`, value, 1);
          written++;
        } catch (error) {
          assert.ok(error instanceof StoreFullError, String(error));
          break;
        }
      }
      assert.ok(written > 900, `only ${written} values of 64 KiB fit in 64 MiB`);
      const full = heapAfterGc();
      assert.ok(full - baseline > maxBytes / 2, `the values are on the heap (${full - baseline} bytes)`);
      await eventually(() => store.usage().entries === 0);
      const drained = heapAfterGc();
      assert.ok(drained - baseline < maxBytes / 8, `heap back near its baseline: ${drained - baseline} bytes above it`);
    } finally {
      await store.close();
    }
  });
});

describe('memory store: full, as a running Concord answers it', () => {
  let concord: TestConcord;

  before(async () => {
    concord = await startConcord({
      clients: [CONFIDENTIAL_CLIENT],
      settings: { memoryStore: { maxEntries: 150, sweepInterval: 1 }, tokens: { interactionTtl: 2 }, rateLimits: { enabled: false } },
    });
  });
  after(() => concord.close());

  const authorize = (state: string) => {
    const url = new URL(`${concord.issuer}/auth`);
    url.search = new URLSearchParams({
      client_id: CONFIDENTIAL_CLIENT.client_id,
      redirect_uri: CONFIDENTIAL_CLIENT.redirect_uris[0]!,
      response_type: 'code',
      scope: 'openid',
      state,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    return fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
  };

  it('refuses new interactions with 503 past the cap, stays up, and takes them again once they expired', async () => {
    const store = concord.concord.store as unknown as MemoryStore;
    const baseline = store.usage().entries;
    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 400 && !refused; i++) {
      const res = await authorize(`s${i}`);
      statuses.push(res.status);
      if (res.status >= 500) refused = res;
      else await res.arrayBuffer();
    }
    assert.ok(refused, `never refused: ${statuses.slice(-5)}`);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get('retry-after'), '5');
    const page = await refused.text();
    assert.ok(page.includes(errorText('at_capacity').message), 'the page says Concord is at capacity, not that its store is down');
    const reference = /Reference: <code>([^<]+)<\/code>/.exec(page)?.[1];
    assert.ok(reference && concord.logs.some((l) => l.reference === reference && l.page === 'at_capacity'), 'the reference is in the log');
    assert.ok(statuses.slice(0, -1).every((s) => s === 303), 'every interaction before the cap was started');
    // Alive: health answers while full.
    assert.equal((await fetch(`${concord.issuer}/healthz`)).status, 200);
    // The interactions expire (2 s) and the sweeper drops them: usage is back to where it was.
    await eventually(() => store.usage().entries <= baseline, 400);
    const again = await authorize('after');
    assert.equal(again.status, 303, 'a new interaction starts again');
  });
});
