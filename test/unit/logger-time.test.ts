import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createLogger, isoTime } from '../../src/observability/logger.ts';

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
