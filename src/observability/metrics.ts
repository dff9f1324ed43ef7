import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The period (ms) of the timer behind prom-client's `nodejs_eventloop_lag_*` gauges (Node's
 * perf_hooks.monitorEventLoopDelay, which records the time between two runs of a repeating timer).
 * prom-client's default, 10 ms, wakes an idle instance 100 times a second (5-8 ms of CPU a second
 * more than at 100 ms, measured on Node 24) and buries a stall among ~1,500 samples per 15 s scrape,
 * where the p99 never sees it. At 100 ms the timer wakes 10 times a second, and a stall of N ms
 * still shows as one sample of N to N+100 ms in `nodejs_eventloop_lag_max_seconds` (the timer cannot
 * run during it). The gauges read about 0.1 s on an idle instance: the period is part of each sample.
 * Blind spot (prom-client 15.1.3 with Node's histogram): every scrape resets the histogram, and the
 * reset forgets the timer's last run, so the one period spanning each scrape is not recorded; a stall
 * that starts in it is missed (period / scrape interval of random stalls: 0.7 % at 15 s).
 */
const EVENT_LOOP_MONITOR_PERIOD_MS = 100;

/**
 * Every metric Concord exports, on one registry per instance (no module-level singletons, so
 * tests can run several instances in one process). Label values are bounded: participant and
 * client ids come from the registry (anything else is `unknown`, never user input), outcomes,
 * endpoints, grant types and error codes from fixed lists (anything else is `other`); see labels.ts.
 *
 * deploy/grafana/concord-dashboard.json and deploy/prometheus/alerts.yaml name these metrics; a test
 * checks every name they use against a live /metrics.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITOR_PERIOD_MS });
  const registers = [registry];

  return {
    registry,

    // ---- configuration (admin/sync.ts) ---------------------------------------------------------
    configVersion: new Gauge({ name: 'concord_config_version', help: 'Version of the participants and clients this instance serves', registers }),
    configSyncLag: new Gauge({ name: 'concord_config_sync_lag_seconds', help: 'Seconds between a configuration change in the store and this instance applying it (last change)', registers }),

    // ---- domain proof (domain-proof/) ------------------------------------------------------------
    domainProofState: new Gauge({
      name: 'concord_domain_proof_state',
      help: 'Domains of each participant by proof state (pending, verified, suspended); every instance reports the store\'s numbers',
      labelNames: ['participant', 'state'] as const,
      registers,
    }),
    domainProofMissing: new Gauge({
      name: 'concord_domain_proof_missing',
      help: 'Verified domains of each participant whose proof has disappeared (flagged; suspended after domainProof.gracePeriod)',
      labelNames: ['participant'] as const,
      registers,
    }),
    domainProofChecks: new Counter({
      name: 'concord_domain_proof_checks_total',
      help: 'Domain proof checks run by this instance, by participant, method (dns, https) and outcome (found, absent, mismatch, error)',
      labelNames: ['participant', 'method', 'outcome'] as const,
      registers,
    }),

    // ---- brokered logins (interactions, through the LoginObserver) -----------------------------
    loginAttempts: new Counter({
      name: 'concord_login_total',
      help: 'Brokered login attempts by participant, client and outcome (success, unknown_domain, upstream_timeout, mapping_rejected, ...)',
      labelNames: ['participant', 'client', 'outcome'] as const,
      registers,
    }),
    loginDuration: new Histogram({
      name: 'concord_login_duration_seconds',
      help: 'Brokered login duration, from the redirect to the upstream until the callback finished (successful logins)',
      labelNames: ['participant'] as const,
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    }),
    loginUpstreamDuration: new Histogram({
      name: 'concord_login_upstream_duration_seconds',
      help: 'Time a brokered login callback spent waiting for the upstream (code exchange, JWKS, userinfo)',
      labelNames: ['participant'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),

    // ---- upstream calls and health (upstream/http.ts, upstream/health.ts) ----------------------
    upstreamRequestDuration: new Histogram({
      name: 'concord_upstream_request_duration_seconds',
      help: 'Duration of each call to a participant IdP by endpoint (discovery, jwks, token, userinfo, other), failed calls included',
      labelNames: ['participant', 'endpoint'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'concord_upstream_errors_total',
      help: 'Failed calls to a participant IdP by endpoint and reason (timeout, network, http_5xx, http_4xx, body_too_large)',
      labelNames: ['participant', 'endpoint', 'reason'] as const,
      registers,
    }),
    upstreamUp: new Gauge({
      name: 'concord_upstream_up',
      help: '0 when the last health probe of the participant IdP (discovery and JWKS) found it unreachable (refused, timeout, 5xx), else 1',
      labelNames: ['participant'] as const,
      registers,
    }),
    upstreamMisconfigured: new Gauge({
      name: 'concord_upstream_misconfigured',
      help: '1 when the last check of the participant IdP found a permanent misconfiguration (issuer mismatch, no acceptable algorithm, unsupported client authentication, ...): its logins cannot work until the configuration is fixed',
      labelNames: ['participant'] as const,
      registers,
    }),
    upstreamLastSuccess: new Gauge({
      name: 'concord_upstream_last_success_timestamp_seconds',
      help: 'Unix time of the last successful health probe of the participant IdP (0: never)',
      labelNames: ['participant'] as const,
      registers,
    }),
    upstreamProbeDuration: new Histogram({
      name: 'concord_upstream_probe_duration_seconds',
      help: 'Duration of the health probe (discovery and JWKS) of the participant IdP',
      labelNames: ['participant'] as const,
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    circuitState: new Gauge({
      name: 'concord_upstream_circuit_state',
      help: '1 for the state the circuit breaker of the participant IdP is in (closed, open, half_open), 0 for the others',
      labelNames: ['participant', 'state'] as const,
      registers,
    }),
    circuitRejected: new Counter({
      name: 'concord_upstream_circuit_rejected_total',
      help: 'Logins refused at once with the "sign-in service unavailable" page because the circuit of the participant IdP was open',
      labelNames: ['participant'] as const,
      registers,
    }),

    // ---- sessions (src/sessions) ------------------------------------------------------------------
    sessionsEnded: new Counter({
      name: 'concord_sessions_ended_total',
      help: 'Concord sessions ended, by participant and cause (rp_logout, upstream_logout, upstream_revoked, mapping_rejected, max_age, participant_disabled, participant_removed, participant_revoked, admin)',
      labelNames: ['participant', 'cause'] as const,
      registers,
    }),
    sessionRechecks: new Counter({
      name: 'concord_session_rechecks_total',
      help: 'Refreshes checked against the participant session policy, by outcome (fresh, confirmed, unchecked, down_allowed, gone, rejected, max_age, down_refused)',
      labelNames: ['participant', 'outcome'] as const,
      registers,
    }),
    backchannelLogouts: new Counter({
      name: 'concord_backchannel_logout_total',
      help: 'Logout tokens sent to services (OIDC Back-Channel Logout), by client and outcome: delivered, or failed (given up after retrying)',
      labelNames: ['client', 'outcome'] as const,
      registers,
    }),
    upstreamLogouts: new Counter({
      name: 'concord_upstream_logout_total',
      help: 'Back-channel logout requests from participant IdPs, by outcome: accepted, or why the logout token was refused (signature, issuer, audience, replayed, ...)',
      labelNames: ['participant', 'outcome'] as const,
      registers,
    }),

    // ---- tokens and OAuth errors (oidc-provider events) ------------------------------------------
    tokensIssued: new Counter({
      name: 'concord_tokens_issued_total',
      help: 'Successful token endpoint grants by client and grant type',
      labelNames: ['client', 'grant_type'] as const,
      registers,
    }),
    tokenErrors: new Counter({
      name: 'concord_token_errors_total',
      help: 'Token endpoint errors by client and OAuth error code',
      labelNames: ['client', 'error'] as const,
      registers,
    }),
    authorizationErrors: new Counter({
      name: 'concord_authorization_errors_total',
      help: 'Authorization endpoint errors by client and OAuth error code',
      labelNames: ['client', 'error'] as const,
      registers,
    }),

    // ---- rate limits ------------------------------------------------------------------------------
    rateLimited: new Counter({
      name: 'concord_rate_limited_total',
      help: 'Requests answered 429 by a rate limit (token: per client and source on /token; browser: per IP on the login routes; admin: per source on the admin API)',
      labelNames: ['limit'] as const,
      registers,
    }),
    credentialLockouts: new Counter({
      name: 'concord_credential_lockouts_total',
      help: 'Keys locked out after rateLimits.credentialFailures.max credential failures (credentials: a client and source on the client endpoints; admin_credentials: a source on the admin API)',
      labelNames: ['limit'] as const,
      registers,
    }),
    rateLimiterFailures: new Counter({
      name: 'concord_rate_limiter_failures_total',
      help: 'Requests let through unlimited because the rate limiter could not count (its store did not answer: fail open)',
      labelNames: ['limit'] as const,
      registers,
    }),

    // ---- HTTP (public listener) -------------------------------------------------------------------
    httpDuration: new Histogram({
      name: 'concord_http_request_duration_seconds',
      help: 'Public listener requests by route (oidc-provider route name or Concord route template), method and status class',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),

    // ---- signing keys (keys/manager.ts ages(), read at scrape time) ------------------------------
    keyAge: new Gauge({
      name: 'concord_signing_key_age_seconds',
      help: 'Seconds since the key signing tokens now with each offered algorithm (keys.algorithms) was created',
      labelNames: ['alg'] as const,
      registers,
    }),
    keys: new Gauge({
      name: 'concord_signing_keys',
      help: 'Published signing keys by algorithm and state (next: not yet signing; current: signs; retiring: verifies until its tokens have expired)',
      labelNames: ['alg', 'state'] as const,
      registers,
    }),
    keyRotationPeriod: new Gauge({
      name: 'concord_signing_key_rotation_period_seconds',
      help: 'Configured scheduled rotation period (keys.rotateEvery); 0 when keys rotate only on demand',
      registers,
    }),
    keyNextRotation: new Gauge({
      name: 'concord_signing_key_next_rotation_seconds',
      help: 'Seconds until the next scheduled key rotation; negative when it is overdue (absent when keys rotate only on demand)',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The key gauges read `ages()` at scrape time, so they are never stale. */
export function observeKeyAges(
  metrics: Metrics,
  source: {
    ages(): { currentKeyAgeSeconds: ReadonlyMap<string, number>; secondsToNextRotation: number | undefined };
    views(): ReadonlyArray<{ alg: string; state: string }>;
  },
  rotateEvery: number | undefined,
): void {
  metrics.keyRotationPeriod.set(rotateEvery ?? 0);
  // prom-client calls a metric's `collect` before each scrape; these metric objects are this instance's alone.
  const collectors = metrics as unknown as Record<'keyAge' | 'keyNextRotation' | 'keys', { collect?: () => void }>;
  collectors.keys.collect = () => {
    metrics.keys.reset();
    for (const { alg, state } of source.views()) metrics.keys.inc({ alg, state });
  };
  collectors.keyAge.collect = () => {
    // One series per offered algorithm; an algorithm dropped from keys.algorithms leaves the metric.
    metrics.keyAge.reset();
    for (const [alg, age] of source.ages().currentKeyAgeSeconds) metrics.keyAge.set({ alg }, age);
  };
  collectors.keyNextRotation.collect = () => {
    const next = source.ages().secondsToNextRotation;
    if (next === undefined) metrics.keyNextRotation.remove();
    else metrics.keyNextRotation.set(next);
  };
}
