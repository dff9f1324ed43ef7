import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { Logger, Metrics } from '../observability/index.ts';
import { newReference, requestContext } from '../observability/index.ts';
import { CIRCUIT_STATES, CircuitBreaker, type CircuitState } from './breaker.ts';
import { UpstreamError } from './errors.ts';
import { observeUpstreamCalls, type UpstreamCall, type UpstreamCallObserver, type UpstreamCallResult } from './http.ts';
import type { Connector } from './types.ts';

export interface UpstreamHealthOptions {
  metrics: Metrics;
  log: Logger;
  /** Consecutive availability failures that open a participant's circuit. */
  threshold: number;
  /** How long an open circuit refuses logins before one trial. */
  cooldownMs: number;
  /** Spans for upstream calls and probes (tracing on). */
  tracer?: Tracer | undefined;
}

/**
 * What the last check of a participant's upstream found:
 *   unknown        not checked yet (start-up: checks run in the background);
 *   ok             metadata and keys fetched and acceptable;
 *   unreachable    it did not answer (refused, timeout, 5xx): its circuit opens;
 *   misconfigured  it answered, but it or its registration cannot work (UpstreamError kind
 *                  `misconfigured`: issuer mismatch, unsupported client authentication, ...); a
 *                  configuration must be fixed, and the circuit breaker is left alone.
 */
export type UpstreamState = 'unknown' | 'ok' | 'unreachable' | 'misconfigured';

export interface UpstreamStatus {
  participant: string;
  state: UpstreamState;
  /** undefined until the first probe finished; true unless the last one found the IdP unreachable. */
  up: boolean | undefined;
  lastSuccess: Date | undefined;
  /** When the last probe finished, whatever it found. */
  lastCheck: Date | undefined;
  circuit: CircuitState;
  /** Why it is not ok: the UpstreamError code and message (for admins: it may quote the upstream). */
  code?: string;
  reason?: string;
}

interface Tracked {
  breaker: CircuitBreaker;
  observer: UpstreamCallObserver;
  state: UpstreamState;
  lastSuccess: number | undefined;
  lastCheck: number | undefined;
  code: string | undefined;
  reason: string | undefined;
  /** The upstream configuration the breaker's history belongs to. */
  signature: string | undefined;
}

/**
 * Partner health, one participant at a time: a circuit breaker per participant (breaker.ts) that
 * the connectors it guards honour (while the circuit is open, beginLogin and completeLogin fail at
 * once with `upstream_unreachable`, which the login routes show as the "your organisation's sign-in
 * service is unavailable" page), the result of each probe (`connector.probe()`: discovery and JWKS)
 * as a state, `concord_upstream_up`, `concord_upstream_misconfigured` and a log line when it
 * changes, and every upstream call made through a guarded connector timed into
 * `concord_upstream_request_duration_seconds` / `concord_upstream_errors_total` and counted by the
 * breaker. Only transient failures (the IdP not answering) open a circuit: a misconfiguration is
 * reported as one and does not look like an outage. One participant's state never touches another's.
 *
 * Which participants exist, and when to probe them, is the caller's business
 * (participants/upstream-watch.ts): this class knows connectors and participant ids only.
 */
export class UpstreamHealth {
  readonly #opts: UpstreamHealthOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #guarded = new WeakMap<Connector, Connector>();
  readonly #guards = new WeakSet<Connector>();

  constructor(options: UpstreamHealthOptions) {
    this.#opts = options;
  }

  /**
   * The connector behind its participant's breaker: beginLogin, completeLogin and refresh are refused while
   * the circuit is open (the half-open trial probes first); probe() is always made and its result
   * sets the state, the gauges and the breaker; every call is observed. The same guarded object
   * for the same connector.
   */
  guard(connector: Connector): Connector {
    if (this.#guards.has(connector)) return connector;
    const existing = this.#guarded.get(connector);
    if (existing) return existing;
    const id = connector.participantId;
    const guarded = new Proxy(connector, {
      get: (target, prop) => {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        const method = value as (...args: unknown[]) => unknown;
        if (prop === 'probe') return () => this.#probe(target);
        // A refresh-time re-check is refused at once too: the session policy (onUpstreamDown) decides, without a wait.
        if (prop === 'beginLogin' || prop === 'completeLogin' || prop === 'refresh') {
          return (...args: unknown[]) => this.#admit(target, () => method.apply(target, args) as Promise<unknown>);
        }
        if (prop === 'callbackState') return method.bind(target);
        return (...args: unknown[]) => {
          const tracked = this.#track(id);
          // Sending a user who signs out to an IdP that is failing would strand them on a dead page
          // on the way back to the service: while the circuit is not closed, the logout route signs
          // them out of Concord only, and logs that the IdP's own session was left.
          if (prop === 'logoutUrl' && tracked.breaker.state !== 'closed') {
            return Promise.reject(new UpstreamError('upstream_unreachable', `circuit open: ${id}'s IdP is failing, its logout is skipped`, { participantId: id }));
          }
          return observeUpstreamCalls(tracked.observer, () => method.apply(target, args));
        };
      },
    });
    this.#guarded.set(connector, guarded);
    this.#guards.add(guarded);
    return guarded;
  }

  /**
   * Records the configuration the participant's upstream now has; when it changed, its history
   * (breaker, state) starts again. True when it changed (or was not known).
   */
  track(participantId: string, signature: string): boolean {
    const tracked = this.#track(participantId);
    if (tracked.signature === signature) return false;
    const changed = tracked.signature !== undefined;
    tracked.signature = signature;
    if (changed) {
      tracked.breaker.reset();
      tracked.state = 'unknown';
      tracked.code = undefined;
      tracked.reason = undefined;
      this.#opts.metrics.upstreamMisconfigured.set({ participant: participantId }, 0);
    }
    return true;
  }

  status(): UpstreamStatus[] {
    return [...this.#tracked.keys()].map((id) => this.statusOf(id)!);
  }

  /** The status of one participant, or undefined when it is not tracked (unknown, disabled). */
  statusOf(participantId: string): UpstreamStatus | undefined {
    const t = this.#tracked.get(participantId);
    if (!t) return undefined;
    return {
      participant: participantId,
      state: t.state,
      up: t.state === 'unknown' ? undefined : t.state !== 'unreachable',
      lastSuccess: t.lastSuccess === undefined ? undefined : new Date(t.lastSuccess),
      lastCheck: t.lastCheck === undefined ? undefined : new Date(t.lastCheck),
      circuit: t.breaker.state,
      ...(t.code ? { code: t.code } : {}),
      ...(t.reason ? { reason: t.reason } : {}),
    };
  }

  /** The breaker of a participant (created closed on first use). */
  breaker(participantId: string): CircuitBreaker {
    return this.#track(participantId).breaker;
  }

  /** Stops tracking a participant (removed, disabled) and drops its series. */
  forget(id: string): void {
    if (!this.#tracked.delete(id)) return;
    const { metrics } = this.#opts;
    metrics.upstreamUp.remove({ participant: id });
    metrics.upstreamMisconfigured.remove({ participant: id });
    metrics.upstreamLastSuccess.remove({ participant: id });
    for (const state of CIRCUIT_STATES) metrics.circuitState.remove({ participant: id, state });
  }

  // ---- internals -----------------------------------------------------------------------------

  async #admit<T>(connector: Connector, call: () => Promise<T>): Promise<T> {
    const id = connector.participantId;
    const tracked = this.#track(id);
    const admission = tracked.breaker.acquire();
    if (admission === 'reject') {
      this.#opts.metrics.circuitRejected.inc({ participant: id });
      const retry = Math.ceil(tracked.breaker.retryInMs() / 1000);
      throw new UpstreamError('upstream_unreachable', `circuit open: ${id}'s IdP failed its health probe or ${tracked.breaker.threshold} calls in a row${retry ? `; next trial in ${retry} s` : '; a trial is under way'}`, {
        participantId: id,
      });
    }
    // Half-open: this caller's probe is the trial; it closes the circuit (and lets the call through) or opens it again.
    if (admission === 'trial') await this.#probe(connector);
    return observeUpstreamCalls(tracked.observer, call);
  }

  /**
   * Discovery + JWKS now. Success: ok, last success, circuit closed. A transient failure:
   * unreachable, circuit open. A misconfiguration: misconfigured, and the circuit is left alone
   * (closed if the IdP answered: it is there, only wrongly set up).
   */
  async #probe(connector: Connector): ReturnType<Connector['probe']> {
    const id = connector.participantId;
    const tracked = this.#track(id);
    const { metrics, tracer } = this.#opts;
    const started = performance.now();
    // Outside a request (the schedule), the probe gets an id of its own for its log lines.
    const inRequest = requestContext.getStore() !== undefined;
    const run = () => observeUpstreamCalls(tracked.observer, () => connector.probe());
    const span = tracer?.startSpan('upstream probe', { kind: SpanKind.INTERNAL, attributes: { 'concord.participant': id } });
    try {
      const withSpan = span ? () => context.with(trace.setSpan(context.active(), span), run) : run;
      const result = await (inRequest ? withSpan() : this.#asProbe(withSpan));
      if (this.#tracked.get(id) !== tracked) return result; // forgotten meanwhile (removed, disabled): no series for it
      tracked.lastSuccess = Date.now();
      metrics.upstreamLastSuccess.set({ participant: id }, Math.floor(tracked.lastSuccess / 1000));
      this.#setState(id, tracked, 'ok');
      tracked.breaker.success();
      return result;
    } catch (err) {
      span?.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? 'error' });
      if (this.#tracked.get(id) !== tracked) throw err;
      const transient = !(err instanceof UpstreamError) || err.transient;
      this.#setState(id, tracked, transient ? 'unreachable' : 'misconfigured', err);
      if (transient) tracked.breaker.trip();
      else tracked.breaker.success();
      throw err;
    } finally {
      metrics.upstreamProbeDuration.observe({ participant: id }, (performance.now() - started) / 1000);
      span?.end();
    }
  }

  #asProbe<T>(fn: () => Promise<T>): Promise<T> {
    const requestId = `probe-${newReference()}`;
    return requestContext.run({ requestId, log: this.#opts.log.child({ requestId }) }, fn);
  }

  /** Records a probe's finding; the gauges follow it, and a change (or the first finding) is logged. */
  #setState(id: string, tracked: Tracked, state: Exclude<UpstreamState, 'unknown'>, err?: unknown): void {
    const previous = tracked.state;
    const e = err as { code?: unknown; message?: unknown } | undefined;
    tracked.state = state;
    tracked.lastCheck = Date.now();
    tracked.code = typeof e?.code === 'string' ? e.code : undefined;
    tracked.reason = typeof e?.message === 'string' ? e.message : undefined;
    const { metrics, log } = this.#opts;
    metrics.upstreamUp.set({ participant: id }, state === 'unreachable' ? 0 : 1);
    metrics.upstreamMisconfigured.set({ participant: id }, state === 'misconfigured' ? 1 : 0);
    if (previous === state) return;
    switch (state) {
      case 'ok':
        if (previous === 'unknown') log.info({ participant: id, upstreamState: state }, 'upstream IdP checked: ready for logins');
        else log.info({ participant: id, upstreamState: state, previous }, 'upstream IdP is up again');
        return;
      case 'unreachable':
        log.warn({ participant: id, upstreamState: state, code: e?.code, reason: e?.message }, 'upstream IdP health probe failed: its logins are refused until it answers again');
        return;
      case 'misconfigured':
        log.error({ participant: id, upstreamState: state, code: e?.code, reason: e?.message }, 'upstream IdP is misconfigured: its logins cannot work until its configuration (or Concord’s registration there) is fixed');
        return;
    }
  }

  #track(id: string): Tracked {
    let tracked = this.#tracked.get(id);
    if (tracked) return tracked;
    const { metrics, log } = this.#opts;
    const breaker = new CircuitBreaker({
      threshold: this.#opts.threshold,
      cooldownMs: this.#opts.cooldownMs,
      onChange: (state, previous) => {
        for (const s of CIRCUIT_STATES) metrics.circuitState.set({ participant: id, state: s }, s === state ? 1 : 0);
        log.info({ participant: id, circuit: state, previous }, 'upstream circuit breaker changed state');
      },
    });
    for (const s of CIRCUIT_STATES) metrics.circuitState.set({ participant: id, state: s }, s === 'closed' ? 1 : 0);
    tracked = { breaker, observer: this.#observer(id, breaker), state: 'unknown', lastSuccess: undefined, lastCheck: undefined, code: undefined, reason: undefined, signature: undefined };
    this.#tracked.set(id, tracked);
    return tracked;
  }

  #observer(id: string, breaker: CircuitBreaker): UpstreamCallObserver {
    const { metrics, tracer } = this.#opts;
    return {
      start: (call: UpstreamCall) => {
        const span = tracer?.startSpan(`upstream ${call.endpoint}`, {
          kind: SpanKind.CLIENT,
          attributes: { 'concord.participant': id, 'concord.upstream.endpoint': call.endpoint, 'http.request.method': call.method, 'url.full': call.url },
        });
        return (result: UpstreamCallResult) => {
          metrics.upstreamRequestDuration.observe({ participant: id, endpoint: call.endpoint }, result.durationMs / 1000);
          if (result.reason) metrics.upstreamErrors.inc({ participant: id, endpoint: call.endpoint, reason: result.reason });
          // The upstream not answering (or answering 5xx) is an availability failure; any other answer proves it is there.
          breaker.record(!(result.reason === 'timeout' || result.reason === 'network' || result.reason === 'http_5xx'));
          if (span) {
            if (result.status !== undefined) span.setAttribute('http.response.status_code', result.status);
            if (result.reason) span.setStatus({ code: SpanStatusCode.ERROR, message: result.reason });
            span.end();
          }
        };
      },
    };
  }
}
