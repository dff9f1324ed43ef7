import type { UpstreamHealth } from '../upstream/index.ts';
import type { ConnectorPool } from './connectors.ts';
import type { ActiveParticipant, Registry, RegistryEvent } from './registry.ts';

export interface UpstreamWatchOptions {
  registry: Registry;
  /** Hands out connectors guarded by `health` (ConnectorPool with `wrap: health.guard`). */
  pool: ConnectorPool;
  health: UpstreamHealth;
  /** Probe every enabled participant this often (milliseconds), the first round at start-up; 0: no probes at all. */
  intervalMs: number;
}

/**
 * Which participants' IdPs are checked, and when: every enabled participant at start-up (those
 * from the configuration files included), each one again when its upstream configuration changes,
 * and all of them every `intervalMs` (`upstream.healthInterval`; 0 turns every probe off). Checks
 * run in the background and in parallel: start-up never waits for them, and one participant's slow
 * or broken IdP never delays another's. What a check found is the UpstreamHealth's to keep (state,
 * gauges, log line).
 */
export class UpstreamWatch {
  readonly #opts: UpstreamWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #unsubscribe: (() => void) | undefined;
  #running: Promise<void> | undefined;

  constructor(options: UpstreamWatchOptions) {
    this.#opts = options;
  }

  /** Checks every enabled participant now (not awaited), then on schedule, and follows the registry's changes. */
  start(): void {
    const { registry } = this.#opts;
    this.#stopped = false;
    const onChange = (event: RegistryEvent) => {
      if (event.kind === 'participant') this.#changed(event.id);
    };
    registry.on('change', onChange);
    this.#unsubscribe = () => registry.off('change', onChange);
    if (this.#opts.intervalMs <= 0) return;
    const tick = () => {
      this.#running = this.checkAll().finally(() => {
        this.#running = undefined;
        if (this.#stopped) return;
        this.#timer = setTimeout(tick, this.#opts.intervalMs);
        this.#timer.unref();
      });
    };
    tick();
  }

  /** Stops the schedule; a check under way finishes on its own (within the upstream timeout). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** Resolves when the check round under way (if any) is over. For tests and shutdown. */
  async settled(): Promise<void> {
    await this.#running;
  }

  /** One check round over every enabled participant, in parallel; forgets participants gone or disabled. */
  async checkAll(): Promise<void> {
    const { registry, health } = this.#opts;
    const active = registry.participants().filter((p) => p.config.enabled);
    const ids = new Set(active.map((p) => p.config.id));
    for (const status of health.status()) if (!ids.has(status.participant)) health.forget(status.participant);
    await Promise.all(active.map((participant) => this.#check(participant, true)));
  }

  /** A participant was set or removed: forget it, or check it at once when its upstream changed. */
  #changed(id: string): void {
    const participant = this.#opts.registry.participant(id);
    if (!participant || !participant.config.enabled) {
      this.#opts.health.forget(id);
      return;
    }
    if (!this.#stopped && this.#opts.intervalMs > 0) void this.#check(participant, false);
    else this.#opts.health.track(participant.config.id, JSON.stringify(participant.config.upstream));
  }

  /** Probes one participant (the result is recorded by the health); `always`: even when its configuration is unchanged. */
  async #check(participant: ActiveParticipant, always: boolean): Promise<void> {
    const changed = this.#opts.health.track(participant.config.id, JSON.stringify(participant.config.upstream));
    if (!changed && !always) return;
    await this.#opts.pool
      .get(participant)
      .probe()
      .catch(() => {}); // recorded by the health
  }
}
