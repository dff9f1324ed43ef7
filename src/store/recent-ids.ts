/**
 * A bounded map of the ids most recently noted, oldest forgotten first (a Map keeps insertion
 * order; a note moves its key to the end). For hints that are checked where they are used, so a
 * stale or forgotten entry costs a read, never a wrong answer.
 */
export class RecentIds {
  readonly #max: number;
  readonly #ids = new Map<string, string>();

  /** `max`: how many entries are kept (at least 1). */
  constructor(max: number) {
    this.#max = Math.max(1, Math.floor(max));
  }

  get(key: string): string | undefined {
    return this.#ids.get(key);
  }

  note(key: string, id: string): void {
    const ids = this.#ids;
    ids.delete(key);
    ids.set(key, id);
    if (ids.size > this.#max) ids.delete(ids.keys().next().value!);
  }

  forget(key: string): void {
    this.#ids.delete(key);
  }

  get size(): number {
    return this.#ids.size;
  }
}
