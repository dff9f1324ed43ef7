import { canonicalDomain, parseEmailAddress } from '../domains/index.ts';

/**
 * The last step of every mapping, whatever its rules did: an email address is released only when its
 * domain is one of the participant's own, since only there is the participant's IdP the authority on
 * it. Domains are compared in canonical form (domains/index.ts: UTS #46, lower case, no trailing dot),
 * and a released address carries its domain in that form, so every relying party reads the domain
 * Concord checked, however the upstream spelled it (`Bob@Bücher.Example.` is released as
 * `Bob@xn--bcher-kva.example`).
 *
 *   - `email`: a foreign address is dropped together with email_verified, or, when the mapping opts in
 *     (`keepForeignEmailUnverified`), kept with email_verified forced to false.
 *   - every other released claim that holds an email address (`preferred_username`, `upn`, a list of
 *     addresses, ...): a foreign address is dropped (from a list, that element), always, since no
 *     `_verified` flag could tell a relying party it was not checked.
 */
export type EmailPolicy = (claims: Record<string, unknown>) => void;

export function emailPolicy(domains: readonly string[], keepForeignUnverified: boolean): EmailPolicy {
  const own = new Set(domains.map((d) => canonicalDomain(d.trim())).filter((d): d is string => d !== undefined));
  const ownAddress = (value: string) => {
    const address = plainAddress(value);
    return address && own.has(address.domain) ? `${address.local}@${address.domain}` : undefined;
  };
  return (claims) => {
    for (const name of Object.keys(claims)) {
      if (name === 'email' || name === 'email_verified') continue;
      const value = claims[name];
      if (typeof value === 'string') {
        if (!looksLikeAddress(value)) continue;
        const kept = ownAddress(value);
        if (kept === undefined) delete claims[name];
        else claims[name] = kept;
      } else if (Array.isArray(value) && value.some((v) => typeof v === 'string' && looksLikeAddress(v))) {
        claims[name] = value.flatMap((v) => (typeof v === 'string' && looksLikeAddress(v) ? (ownAddress(v) ?? []) : [v]));
      }
    }

    const email = claims.email;
    if (typeof email !== 'string') {
      delete claims.email;
      delete claims.email_verified;
      return;
    }
    const kept = ownAddress(email);
    if (kept !== undefined) {
      claims.email = kept;
      // Upstreams differ in spelling ("true" from some); anything but an explicit true is not verified.
      if ('email_verified' in claims) claims.email_verified = claims.email_verified === true || claims.email_verified === 'true';
      return;
    }
    if (keepForeignUnverified) {
      claims.email_verified = false;
    } else {
      delete claims.email;
      delete claims.email_verified;
    }
  };
}

/**
 * Whether a claim value is, as a whole, written like an email address (no spaces; something, `@`,
 * something with a dot): such a value in any released claim is held to the domain policy. A value
 * with several `@` counts, and is then never released as the participant's own. Text that merely
 * mentions an address (`Bob (bob@example.com)`) is not an address.
 */
function looksLikeAddress(value: string): boolean {
  return /^[^\s@]+@\S*[^\s.]\.\S+$/u.test(value);
}

/**
 * A plain dot-atom address: one "@", no quotes, spaces or control characters in the local part, and a
 * domain `canonicalDomain` accepts. Anything else, such as `ceo@globex.example@acme.example` or
 * `"ceo@globex.example"@acme.example`, is treated as foreign: a relying party that reads up to the first
 * "@" must never see another organisation's address released. (Internationalised local parts are
 * refused: conservative, and rare among partner IdPs.)
 */
function plainAddress(email: string): { local: string; domain: string } | undefined {
  const address = parseEmailAddress(email);
  if (!address) return undefined;
  return /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(address.local) ? address : undefined;
}

