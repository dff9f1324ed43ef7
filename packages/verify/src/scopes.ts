// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); so it is also safe inside a quoted
// WWW-Authenticate parameter.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** Validates and copies a list of required scopes given as an option. */
export function scopeList(value: readonly string[] | undefined, option: string): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value)) throw new TypeError(`${option} must be an array of scope strings`);
  for (const scope of value) {
    if (typeof scope !== 'string' || !SCOPE_TOKEN.test(scope)) {
      throw new TypeError(`${option}: ${JSON.stringify(scope)} is not a valid scope (RFC 6749 §3.3)`);
    }
  }
  return Object.freeze([...new Set(value)]);
}

/** Whether the space-separated `granted` contains `wanted` as a whole word; allocates nothing. */
export function hasScope(granted: string, wanted: string): boolean {
  const last = granted.length;
  let from = 0;
  for (;;) {
    const at = granted.indexOf(wanted, from);
    if (at < 0) return false;
    const end = at + wanted.length;
    if ((at === 0 || granted.charCodeAt(at - 1) === 32) && (end === last || granted.charCodeAt(end) === 32)) return true;
    from = at + 1;
  }
}

/** Whether `granted` (a `scope` claim, possibly absent) contains every scope in `required`. */
export function hasScopes(granted: string | undefined, required: readonly string[]): boolean {
  for (let i = 0; i < required.length; i++) {
    if (granted === undefined || !hasScope(granted, required[i]!)) return false;
  }
  return true;
}
