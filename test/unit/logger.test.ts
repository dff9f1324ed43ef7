import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createLogger, logDestination } from '../../src/observability/index.ts';
import { LOG_BUFFER_BYTES, LOG_FLUSH_MS } from '../../src/observability/logger.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('log destination (batched writes)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'concord-logger-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The file's lines once `count` are there (or after two seconds). */
  async function linesOf(file: string, count: number): Promise<string[]> {
    const deadline = Date.now() + 2000;
    for (;;) {
      let lines: string[] = [];
      try {
        lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      } catch {
        // not created yet
      }
      if (lines.length >= count || Date.now() > deadline) return lines;
      await sleep(20);
    }
  }

  it('writes a lone line shortly after it is logged, though the buffer is far from full', async () => {
    const file = path.join(dir, 'lone.log');
    const log = createLogger({ level: 'info', destination: logDestination(file) });
    log.info({ n: 1 }, 'first');
    const lines = await linesOf(file, 1);
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]!).msg, 'first');
  });

  it('writes the lines that arrived while a batch was being written, without another line to wake it', async () => {
    const file = path.join(dir, 'tail.log');
    const log = createLogger({ level: 'info', destination: logDestination(file) });
    // More than one batch's worth, then a few more lines: the tail waits for no later line.
    const filler = 'x'.repeat(200);
    const count = Math.ceil((3 * LOG_BUFFER_BYTES) / filler.length) + 3;
    for (let i = 0; i < count; i++) log.info({ i, filler }, 'line');
    const lines = await linesOf(file, count);
    assert.equal(lines.length, count);
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { i: number }).i), Array.from({ length: count }, (_, i) => i));
  });

  it('writes nothing while no line waits: an idle instance is not woken to write an empty buffer', async () => {
    const file = path.join(dir, 'idle.log');
    const stream = logDestination(file) as ReturnType<typeof logDestination> & { on(event: 'write', listener: (bytes: number) => void): void };
    const log = createLogger({ level: 'info', destination: stream });
    log.info('one line');
    await linesOf(file, 1);
    let writes = 0;
    stream.on('write', () => writes++);
    await sleep(LOG_FLUSH_MS * 5);
    assert.equal(writes, 0, 'no write (of an empty buffer) while idle');
    log.info('another');
    assert.equal((await linesOf(file, 2)).length, 2);
    assert.equal(writes, 1);
  });
});
