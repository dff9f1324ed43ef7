import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger, startTracing } from '../../src/observability/index.ts';
import { signedIn, startFederation, type Federation } from '../support/federation.ts';

/**
 * OpenTelemetry: with OTEL_EXPORTER_OTLP_ENDPOINT set, a server span per request and a client span
 * per upstream call (its child), exported over OTLP/HTTP to a collector (here a capturing server).
 * Without the variable, nothing is loaded. This file sets the variable for its own process only.
 */

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
}

describe('observability: OpenTelemetry tracing', () => {
  const bodies: Array<{ url: string; body: string }> = [];
  let collector: http.Server;
  let fed: Federation;

  before(async () => {
    collector = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        bodies.push({ url: req.url ?? '', body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    fed = await startFederation({ settings: { upstream: { healthInterval: 0 } } });
  });
  after(async () => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    await fed.close();
    await new Promise<void>((resolve) => collector.close(() => resolve()));
  });

  it('exports a server span per request and an upstream client span under it, with the trace id in the logs', async () => {
    await signedIn(fed, 'alice@acme.example');
    await fed.concord.close(); // flushes the batch
    const spans: OtlpSpan[] = [];
    for (const { url, body } of bodies) {
      assert.equal(url, '/v1/traces');
      const doc = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const rs of doc.resourceSpans) {
        assert.ok(rs.resource.attributes.some((a) => a.key === 'service.name' && a.value.stringValue === 'concord'));
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
    }
    const attr = (span: OtlpSpan, key: string) => span.attributes.find((a) => a.key === key)?.value;
    const callback = spans.find((s) => s.name === 'GET /interaction/:uid/callback');
    assert.ok(callback, `no callback span among ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(callback.kind, 2); // SERVER
    assert.equal(attr(callback, 'http.route')?.stringValue, '/interaction/:uid/callback');
    const token = spans.find((s) => s.name === 'upstream token');
    assert.ok(token, 'no upstream token span');
    assert.equal(token.kind, 3); // CLIENT
    assert.equal(token.traceId, callback.traceId);
    assert.equal(token.parentSpanId, callback.spanId);
    assert.equal(attr(token, 'concord.participant')?.stringValue, 'acme');
    assert.equal(String(attr(token, 'http.response.status_code')?.intValue), '200');
    assert.ok(!String(attr(token, 'url.full')?.stringValue).includes('?'), 'no query string in a span');
    assert.ok(spans.some((s) => s.name === 'POST token' && s.kind === 2));

    // The log lines of the callback request carry its trace id.
    const requestId = fed.concord.logs.find((l) => l.msg === 'brokered login succeeded')?.requestId;
    const traced = fed.concord.logs.filter((l) => l.requestId === requestId);
    assert.ok(traced.length > 0 && traced.every((l) => l.traceId === callback.traceId));
  });

  it('loads nothing and makes no tracer without the variable', async () => {
    const log = createLogger({ level: 'silent' });
    assert.equal(await startTracing({ log, env: {} }), undefined);
    assert.equal(await startTracing({ log, env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SDK_DISABLED: 'true' } }), undefined);
  });
});
