import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What one HTTP request has read or written of oidc-provider's records in Redis: stored key -> the
 * stored string, or null when known absent. oidc-provider loads the same record several times in
 * one request (an Interaction up to five times across its own and Concord's middleware), each a
 * GET of the whole payload; within a request the second and later reads are answered from here.
 *
 * Only within the request: an entry is written by that request's own reads and writes (upsert
 * replaces it, consume and revoke drop it, destroy marks it absent), and the scope closes when the
 * request's middleware chain returns, so work the request started that outlives it (background
 * deliveries) reads Redis again. Another request's write in between is not seen, exactly as when
 * it lands just after this request's one read.
 *
 * The same scope holds the request's deferred writes (deferWrite): sent without their caller
 * waiting, awaited by the request's next write that is not deferred, and when the scope closes,
 * before the request is answered (app.ts runs the scope inside its error boundary).
 */
export interface RequestReads {
  entries: Map<string, string | null>;
  open: boolean;
  /** Writes sent without waiting for their answer (see deferWrite): awaited by the request's next write, or when it ends. */
  deferred: Set<Promise<unknown>>;
}

const scope = new AsyncLocalStorage<RequestReads>();

/** Runs `fn` (a request's downstream middleware) with its own read scope, closed when it settles. */
export async function withRequestReads<T>(fn: () => Promise<T>): Promise<T> {
  const reads: RequestReads = { entries: new Map(), open: true, deferred: new Set() };
  try {
    const result = await scope.run(reads, fn);
    // A deferred write no later write awaited: the request fails with it, before it is answered.
    if (reads.deferred.size > 0) await Promise.all(reads.deferred);
    return result;
  } finally {
    reads.open = false;
    reads.entries.clear();
    reads.deferred.clear();
  }
}

/**
 * Within a request, sends a write without making its caller wait for the answer: the request's
 * next write (takeDeferredWrites) waits for it, and so does the end of the request, so nothing is
 * answered before it is known done and a failure still fails the request. Outside a request, the
 * caller waits, as for any write. Answers whether the write was deferred.
 */
export function deferWrite(write: Promise<unknown>): boolean {
  const reads = scope.getStore();
  if (!reads?.open) return false;
  write.catch(() => {}); // seen by whoever awaits the deferred writes
  reads.deferred.add(write);
  return true;
}

/** Waits for the request's deferred writes (a failure rejects): before the request is answered, where its errors are rendered. */
export async function settleDeferredWrites(): Promise<void> {
  await Promise.all(takeDeferredWrites());
}

/** The request's deferred writes, to be awaited with the write about to be made (and forgotten then). */
export function takeDeferredWrites(): Array<Promise<unknown>> {
  const reads = scope.getStore();
  if (!reads?.open || reads.deferred.size === 0) return [];
  const writes = [...reads.deferred];
  reads.deferred.clear();
  return writes;
}

/** The current request's read scope, when there is one and it is still open. */
export function requestReads(): Map<string, string | null> | undefined {
  const reads = scope.getStore();
  return reads?.open ? reads.entries : undefined;
}

/**
 * An opaque object that stands for the current request while its scope is open (a WeakMap key for
 * what a caller remembers within one request only), or undefined outside a request.
 */
export function requestScope(): object | undefined {
  return requestReads();
}

/** A value each request has of its own (requestScope), made at its first use there and gone with the request. */
export interface RequestLocal<T> {
  /** The current request's value, made now if it has none yet; undefined outside a request. */
  get(): T | undefined;
  /** The current request's value if it has one (nothing is made); undefined otherwise. */
  peek(): T | undefined;
  /** Forgets the current request's value: its next get() makes a new one. */
  clear(): void;
}

/** A RequestLocal whose values `make` creates (a Map or Set of what one request has seen or started). */
export function requestLocal<T>(make: () => T): RequestLocal<T> {
  const values = new WeakMap<object, T>();
  return {
    get() {
      const scope = requestScope();
      if (scope === undefined) return undefined;
      let value = values.get(scope);
      if (value === undefined) values.set(scope, (value = make()));
      return value;
    },
    peek() {
      const scope = requestScope();
      return scope === undefined ? undefined : values.get(scope);
    },
    clear() {
      const scope = requestScope();
      if (scope !== undefined) values.delete(scope);
    },
  };
}

/**
 * oidc-provider Sessions whose id this request knows, by uid (requestLocal): a Session it saved or
 * read, or the one oidc-provider holds while it issues a token of it (noteSessionId). A token of
 * that session saved in the request carries the id, so its use reads the Session by id (RedisStore).
 */
const sessionIds = requestLocal(() => new Map<string, string>());

/** Within a request: the oidc-provider Session `uid` has the id `id` (its `jti`, the key it is stored under). */
export function noteSessionId(uid: string, id: string): void {
  sessionIds.get()?.set(uid, id);
}

/** The id of the Session `uid`, if this request knows it (noteSessionId). */
export function sessionIdOf(uid: string): string | undefined {
  return sessionIds.peek()?.get(uid);
}

/** oidc-provider records a request destroyed (requestLocal): `{model}\n{id}` -> whether its destroy found the record there. */
const destroyedInRequest = requestLocal(() => new Map<string, Promise<boolean>>());

/** Within a request: its destroy of `model` `id` found the record there (`deleted`: true) or not. */
export function noteDestroyed(model: string, id: string, deleted: Promise<boolean>): void {
  deleted.catch(() => {}); // seen by whoever asks (destroyedHere), and by the write's own caller
  destroyedInRequest.get()?.set(`${model}\n${id}`, deleted);
}

/**
 * Whether this request's destroy of `model` `id` found the record there: of requests destroying
 * the same record, exactly one is answered true (a DEL answers whether it deleted). Undefined when
 * the request did not destroy it (or outside a request).
 */
export function destroyedHere(model: string, id: string): Promise<boolean> | undefined {
  return destroyedInRequest.peek()?.get(`${model}\n${id}`);
}
