export { createLogger, logDestination, safeUrl, type Logger } from './logger.ts';
export { requestLogging, requestContext, currentLogger, newReference, type RequestContext, type RequestLoggingOptions } from './request-context.ts';
export { createMetrics, observeKeyAges, type Metrics } from './metrics.ts';
export { loginMetrics, providerMetrics, type CountedLogin } from './instrument.ts';
export { timedStore } from './store-timing.ts';
export { startTracing, type Tracing } from './tracing.ts';
export { UNKNOWN, OTHER, participantLabel, clientLabel } from './labels.ts';
