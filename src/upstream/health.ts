import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { Logger, Metrics } from '../observability/index.ts';
import { newReference, requestContext } from '../observability/index.ts';
import type { ActiveParticipant, Registry, RegistryEvent } from '../participants/index.ts';
import { CIRCUIT_STATES, CircuitBreaker, type CircuitState } from './breaker.ts';
import { UpstreamError } from './errors.ts';
import { observeUpstreamCalls, type UpstreamCall, type UpstreamCallObserver, type UpstreamCallResult } from './http.ts';
import type { Connector } from './types.ts';

export interface UpstreamHealthOptions {
  metrics: Metrics;
  log: Logger;
  /** Probe every participant's IdP this often; 0: no scheduled probes (the breaker still works). */
  intervalMs: number;
  /** Consecutive availability failures that open a participant's circuit. */
  threshold: number;
  /** How long an open circuit refuses logins before one trial. */
  cooldownMs: number;
  /** Spans for upstream calls and probes (tracing on). */
  tracer?: Tracer | undefined;
}

export interface UpstreamStatus {
  participant: string;
  /** undefined until the first probe finished. */
  up: boolean | undefined;
  lastSuccess: Date | undefined;
  circuit: CircuitState;
}

interface Tracked {
  breaker: CircuitBreaker;
  observer: UpstreamCallObserver;
  up: boolean | undefined;
  lastSuccess: number | undefined;
  /** The upstream configuration the breaker's history belongs to. */
  signature: string | undefined;
}

/** Where the pool of connectors comes from; `get` is wrapped by `guardPool`. */
interface ConnectorSource {
  get(participant: ActiveParticipant): Connector;
}

/**
 * Partner health: probes each enabled participant's IdP (discovery and JWKS: `connector.probe()`)
 * on a schedule, keeps `concord_upstream_up` and the time of the last success, and gives each
 * participant a circuit breaker (breaker.ts) that the connectors it guards honour: while the
 * circuit is open, beginLogin and completeLogin fail at once with `upstream_unreachable`, which
 * the login routes show as the "your organisation's sign-in service is unavailable" page. Every
 * upstream call made through a guarded connector is timed into
 * `concord_upstream_request_duration_seconds` / `concord_upstream_errors_total` and counted by
 * the breaker. One participant's state never touches another's.
 */
export class UpstreamHealth {
  readonly #opts: UpstreamHealthOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #guarded = new WeakMap<Connector, Connector>();
  readonly #guards = new WeakSet<Connector>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<void> | undefined;

  constructor(options: UpstreamHealthOptions) {
    this.#opts = options;
  }

  /** Makes `pool.get` hand out guarded connectors (the same guarded object for the same connector). */
  guardPool<P extends ConnectorSource>(pool: P): P {
    const get = pool.get.bind(pool);
    pool.get = (participant: ActiveParticipant) => this.guard(get(participant));
    return pool;
  }

  /**
   * The connector behind its participant's breaker: beginLogin and completeLogin are refused while
   * the circuit is open (the half-open trial probes first); probe() is always made and its result
   * sets the health gauge and the breaker; every call is observed.
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
        if (prop === 'beginLogin' || prop === 'completeLogin') {
          return (...args: unknown[]) => this.#admit(target, () => method.apply(target, args) as Promise<unknown>);
        }
        return (...args: unknown[]) => {
          const tracked = this.#track(id);
          // Sending a user who signs out to an IdP that is failing would strand them on a dead page
          // on the way back to the service: while the circuit is not closed, the logout route signs
          // them out of Concord only, and logs that the IdP's own session was left.
          if (prop === 'endSessionUrl' && tracked.breaker.state !== 'closed') {
            return Promise.reject(new UpstreamError('upstream_unreachable', `circuit open: ${id}'s IdP is failing, its end_session is skipped`, { participantId: id }));
          }
          return observeUpstreamCalls(tracked.observer, () => method.apply(target, args));
        };
      },
    });
    this.#guarded.set(connector, guarded);
    this.#guards.add(guarded);
    return guarded;
  }

  /** Starts probing the registry's enabled participants (now, then every interval) and following its changes. */
  start(registry: Registry, pool: ConnectorSource): void {
    this.#stopped = false;
    const onChange = (event: RegistryEvent) => {
      if (event.kind === 'participant') this.#changed(registry, pool, event.id);
    };
    registry.on('change', onChange);
    this.#unsubscribe = () => registry.off('change', onChange);
    if (this.#opts.intervalMs <= 0) return;
    const tick = () => {
      this.#running = this.probeAll(registry, pool).finally(() => {
        this.#running = undefined;
        if (this.#stopped) return;
        this.#timer = setTimeout(tick, this.#opts.intervalMs);
        this.#timer.unref();
      });
    };
    tick();
  }

  /** Stops the schedule; a probe under way finishes on its own (within the upstream timeout). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves when the probe round under way (if any) is over. For tests and shutdown. */
  async settled(): Promise<void> {
    await this.#running;
  }

  /** One probe round over every enabled participant, in parallel; forgets participants gone or disabled. */
  async probeAll(registry: Registry, pool: ConnectorSource): Promise<void> {
    const active = registry.participants().filter((p) => p.config.enabled);
    const ids = new Set(active.map((p) => p.config.id));
    for (const id of this.#tracked.keys()) if (!ids.has(id)) this.#forget(id);
    await Promise.all(
      active.map(async (participant) => {
        this.#sync(participant);
        await this.guard(pool.get(participant))
          .probe()
          .catch(() => {}); // recorded by #probe
      }),
    );
  }

  status(): UpstreamStatus[] {
    return [...this.#tracked].map(([participant, t]) => ({
      participant,
      up: t.up,
      lastSuccess: t.lastSuccess === undefined ? undefined : new Date(t.lastSuccess),
      circuit: t.breaker.state,
    }));
  }

  /** The breaker of a participant (created closed on first use). */
  breaker(participantId: string): CircuitBreaker {
    return this.#track(participantId).breaker;
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

  /** Discovery + JWKS now. Success: up, last success, circuit closed. Failure: down, circuit open. */
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
      this.#setUp(id, tracked, true);
      tracked.breaker.success();
      return result;
    } catch (err) {
      span?.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? 'error' });
      if (this.#tracked.get(id) !== tracked) throw err;
      this.#setUp(id, tracked, false, err);
      tracked.breaker.trip();
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

  #setUp(id: string, tracked: Tracked, up: boolean, err?: unknown): void {
    const previous = tracked.up;
    tracked.up = up;
    this.#opts.metrics.upstreamUp.set({ participant: id }, up ? 1 : 0);
    if (previous === up) return;
    if (up) {
      if (previous === false) this.#opts.log.info({ participant: id }, 'upstream IdP is up again');
    } else {
      const e = err as { code?: unknown; message?: unknown } | undefined;
      this.#opts.log.warn({ participant: id, code: e?.code, reason: e?.message }, 'upstream IdP health probe failed: its logins are refused until it answers again');
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
    tracked = { breaker, observer: this.#observer(id, breaker), up: undefined, lastSuccess: undefined, signature: undefined };
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

  /** A participant was set or removed: forget it, or start a clean history when its upstream changed. */
  #changed(registry: Registry, pool: ConnectorSource, id: string): void {
    const participant = registry.participant(id);
    if (!participant || !participant.config.enabled) {
      this.#forget(id);
      return;
    }
    if (!this.#sync(participant) || this.#stopped || this.#opts.intervalMs <= 0) return;
    void this.guard(pool.get(participant))
      .probe()
      .catch(() => {});
  }

  /** Records the participant's upstream configuration; true (and a reset breaker) when it changed. */
  #sync(participant: ActiveParticipant): boolean {
    const tracked = this.#track(participant.config.id);
    const signature = JSON.stringify(participant.config.upstream);
    if (tracked.signature === signature) return false;
    const changed = tracked.signature !== undefined;
    tracked.signature = signature;
    if (changed) tracked.breaker.reset();
    return true;
  }

  #forget(id: string): void {
    if (!this.#tracked.delete(id)) return;
    const { metrics } = this.#opts;
    metrics.upstreamUp.remove({ participant: id });
    metrics.upstreamLastSuccess.remove({ participant: id });
    for (const state of CIRCUIT_STATES) metrics.circuitState.remove({ participant: id, state });
  }
}
