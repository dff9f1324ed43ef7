import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { createLogger, logDestination } from '../../src/observability/index.ts';
import { isoTime, LOG_BUFFER_BYTES, LOG_FLUSH_MS } from '../../src/observability/logger.ts';

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
    // The file can show the line before the write's callback (its 'write' event) has run.
    for (let waited = 0; writes === 0 && waited < 2_000; waited += 10) await sleep(10);
    assert.equal(writes, 1);
  });
});

/** The `time` of every log line is pino's isoTime, to the character, however it is made. */
describe('log line time', () => {
  const pinos = (t: number) => `,"time":"${new Date(t).toISOString()}"`;

  it('is what pino.stdTimeFunctions.isoTime writes, across milliseconds, seconds, days and years', () => {
    const starts = [Date.UTC(2026, 10, 30, 9, 8, 12), Date.UTC(2026, 11, 31, 23, 59, 59), Date.UTC(2028, 1, 28, 23, 59, 58), 1_000];
    for (const start of starts) {
      // In order (the cached second is reused, then replaced) and back again.
      for (let t = start; t < start + 2_500; t += 7) assert.equal(isoTime(t), pinos(t));
      for (const t of [start + 999, start, start + 1000, start + 9, start + 10, start + 99, start + 100]) assert.equal(isoTime(t), pinos(t));
    }
    const now = Date.now();
    const line = isoTime();
    assert.match(line, /^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
    assert.ok(Math.abs(Date.parse(line.slice(9, -1)) - now) < 1000);
    assert.equal(typeof pino.stdTimeFunctions.isoTime(), 'string');
  });

  it('is the time of the lines the logger writes', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } as never });
    const before = Date.now();
    log.info({ requestId: 'r1' }, 'request');
    const written = JSON.parse(lines[0]!) as { time: string; level: string; service: string; requestId: string; msg: string };
    assert.deepEqual(Object.keys(written), ['level', 'time', 'service', 'requestId', 'msg']);
    assert.equal(new Date(written.time).toISOString(), written.time);
    assert.ok(Date.parse(written.time) >= before - 1 && Date.parse(written.time) <= Date.now() + 1);
  });
});

/** Lines as deployed (logDestination: asynchronous, batched as bytes): each arrives whole, in order, UTF-8, also when the process ends. */
describe('log destination', () => {
  it('writes every line whole and in order, batched, and what is buffered when the process exits', async () => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { execFileSync } = await import('node:child_process');
    const dir = mkdtempSync(path.join(tmpdir(), 'concord-log-'));
    const file = path.join(dir, 'out.log');
    const logger = new URL('../../src/observability/logger.ts', import.meta.url).href;
    // A child process: 3000 lines (several batches), a few with multi-byte characters, then exits without flushing itself.
    const script = `
      const { createLogger, logDestination } = await import(${JSON.stringify(logger)});
      const destination = logDestination(${JSON.stringify(file)});
      const log = createLogger({ level: 'info', destination });
      for (let i = 0; i < 3000; i++) log.info({ i, name: i % 7 === 0 ? 'Zoë – 東京 🚀' : 'plain' }, 'line');
      // The batches written, then one line left in the buffer at exit. (A write still under way at
      // process.exit is sonic-boom's to finish: its exit flush writes only what waits, so it could land
      // after the flushed rest on a loaded machine. Concord's own shutdown lets the writes end first.)
      destination.flush(() => { log.info({ i: 3000, name: 'last' }, 'line'); process.exit(0); });
    `;
    execFileSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { i: number; name: string; msg: string });
    assert.equal(lines.length, 3001);
    lines.forEach((line, i) => {
      assert.equal(line.i, i);
      assert.equal(line.name, i === 3000 ? 'last' : i % 7 === 0 ? 'Zoë – 東京 🚀' : 'plain');
      assert.equal(line.msg, 'line');
    });
  });
});
