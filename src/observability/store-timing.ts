import type { Store } from '../store/index.ts';
import type { Logger } from './logger.ts';
import { currentLogger } from './request-context.ts';

/**
 * At debug level, a Store whose every call logs its operation and duration with the request id
 * of the request that made it (`store call`, `{ op, target, ms }`). Keys are never logged, only
 * what names their family (the collection, or a key's prefix up to the first `:`), since a key
 * can hold a state value or a token id. Below debug level the store is returned untouched: no
 * wrapper, no cost.
 */
export function timedStore<S extends Store>(store: S, root: Logger): S {
  if (!root.isLevelEnabled('debug')) return store;
  const wrapped = new Map<PropertyKey, unknown>();
  const kind = store.kind;

  const time = <T>(op: string, target: string | undefined, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const done = (failed: unknown) => {
      const line: Record<string, unknown> = { store: kind, op, ms: Math.round((performance.now() - started) * 100) / 100 };
      if (target) line.target = target;
      if (failed) line.failed = (failed as { code?: unknown }).code ?? (failed as Error).name ?? 'error';
      currentLogger(root).debug(line, 'store call');
    };
    return run().then(
      (value) => {
        done(undefined);
        return value;
      },
      (err: unknown) => {
        done(err ?? 'error');
        throw err;
      },
    );
  };

  const timedAdapter = (name: string, adapter: object) =>
    new Proxy(adapter, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => time(`adapter.${String(prop)}`, name, () => Promise.resolve((value as (...a: unknown[]) => unknown).apply(target, args)));
      },
    });

  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const method = value as (...a: unknown[]) => unknown;
        fn =
          prop === 'adapter'
            ? (name: string) => timedAdapter(name, method.call(target, name) as object)
            : (...args: unknown[]) => {
                const result = method.apply(target, args);
                if (!(result instanceof Promise)) return result;
                return time(String(prop), familyOf(String(prop), args[0]), () => result);
              };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
}

/**
 * A record's collection (`participants`), or a key's prefix (`upstream-login:abc` -> `upstream-login`);
 * nothing for a key without a prefix, which could be a secret value itself.
 */
function familyOf(op: string, first: unknown): string | undefined {
  if (typeof first !== 'string') return undefined;
  const colon = first.indexOf(':');
  const family = op.endsWith('Record') || op.endsWith('Records') ? first : colon === -1 ? '' : first.slice(0, colon);
  return /^[\w.-]{1,40}$/.test(family) ? family : undefined;
}
