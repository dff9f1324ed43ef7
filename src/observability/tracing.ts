import type { Tracer } from '@opentelemetry/api';
import type { Logger } from './logger.ts';

export interface Tracing {
  readonly tracer: Tracer;
  /** Flushes the spans not yet exported and stops the exporter. */
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry tracing, only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.
 * The SDK and the OTLP/HTTP exporter are optional dependencies, imported here on demand: without
 * the variable nothing is loaded and no span is ever made (callers hold `undefined`, not a no-op
 * tracer). The exporter reads the standard OTEL_* variables itself (endpoint, headers, timeout);
 * OTEL_SERVICE_NAME names the service (default `concord`). Nothing is propagated to partner IdPs:
 * their calls are spans of ours, but no traceparent header leaves Concord.
 */
export async function startTracing(options: { log: Logger; env?: NodeJS.ProcessEnv }): Promise<Tracing | undefined> {
  const env = options.env ?? process.env;
  if (!env.OTEL_EXPORTER_OTLP_ENDPOINT && !env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return undefined;
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return undefined;
  try {
    const [node, base, otlp, resources] = await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources').catch(() => undefined),
    ]);
    const resource = resources?.defaultResource().merge(resources.resourceFromAttributes({ 'service.name': env.OTEL_SERVICE_NAME || 'concord' }));
    const provider = new node.NodeTracerProvider({
      ...(resource ? { resource } : {}),
      spanProcessors: [new base.BatchSpanProcessor(new otlp.OTLPTraceExporter())],
    });
    // The AsyncLocalStorage context manager and the W3C propagator (for a traceparent sent by a
    // load balancer or the calling service). A second instance in one process keeps the first's.
    provider.register();
    options.log.info({ endpoint: originOf(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT) }, 'OpenTelemetry tracing on');
    return { tracer: provider.getTracer('concord'), shutdown: () => provider.shutdown() };
  } catch (err) {
    options.log.warn({ err }, 'OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK could not be loaded (optional dependencies not installed?): tracing is off');
    return undefined;
  }
}

function originOf(url: string | undefined): string {
  try {
    return new URL(url ?? '').origin;
  } catch {
    return '(invalid url)';
  }
}
