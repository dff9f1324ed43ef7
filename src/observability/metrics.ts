import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric Concord exports, on one registry per instance (no module-level singletons, so
 * tests can run several instances in one process). Label values are bounded: participant and
 * client ids come from the registry, outcomes and codes from fixed lists.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    configVersion: new Gauge({ name: 'concord_config_version', help: 'Version of the participants and clients this instance serves', registers: [registry] }),
    configSyncLag: new Gauge({ name: 'concord_config_sync_lag_seconds', help: 'Seconds between a configuration change in the store and this instance applying it (last change)', registers: [registry] }),
    loginAttempts: new Counter({ name: 'concord_login_total', help: 'Brokered login attempts by outcome', labelNames: ['participant', 'client', 'outcome'] as const, registers: [registry] }),
    loginDuration: new Histogram({
      name: 'concord_login_duration_seconds',
      help: 'Brokered login duration, from the redirect to the upstream until the callback finished',
      labelNames: ['participant'] as const,
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    loginUpstreamDuration: new Histogram({
      name: 'concord_login_upstream_duration_seconds',
      help: 'Time a brokered login callback spent waiting for the upstream (code exchange, JWKS, userinfo)',
      labelNames: ['participant'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
