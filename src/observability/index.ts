export { createLogger, safeUrl, type Logger } from './logger.ts';
export { requestLogging, requestContext, currentLogger, newReference, type RequestContext } from './request-context.ts';
export { createMetrics, type Metrics } from './metrics.ts';
