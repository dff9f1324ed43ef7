/**
 * The last step of every mapping, whatever its rules did: an email is released as verified only when its
 * domain is one of the participant's own, since only there is the participant's IdP the authority on it.
 * A foreign email is dropped together with email_verified, or, when the mapping opts in, kept with
 * email_verified forced to false.
 */
export type EmailPolicy = (claims: Record<string, unknown>) => void;

export function emailPolicy(domains: readonly string[], keepForeignUnverified: boolean): EmailPolicy {
  const own = new Set(domains.map((d) => asciiLower(d.trim())).filter((d) => d !== ''));
  return (claims) => {
    const email = claims.email;
    if (typeof email !== 'string') {
      delete claims.email;
      delete claims.email_verified;
      return;
    }
    if (isPlainAddress(email) && own.has(domainOf(email))) {
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
 * A plain dot-atom address: one "@", no quotes, spaces or control characters. Anything else, such as
 * `ceo@globex.example@acme.example` or `"ceo@globex.example"@acme.example`, is treated as foreign: a
 * relying party that reads up to the first "@" must never see another organisation's address verified.
 * (Internationalised local parts are refused too: conservative, and rare among partner IdPs.)
 */
export function isPlainAddress(email: string): boolean {
  if (email.length > 320) return false;
  const match = /^([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)$/.exec(email);
  return match !== null && match[1]!.length <= 64;
}

/**
 * The part after the last "@" ("" when there is none), lower-cased in ASCII only: compared exactly, never
 * as a suffix, and never with Unicode case folding, which turns the Kelvin sign (U+212A) into "k" and
 * would let `bob@o\u212A.example` pass for `ok.example`.
 */
export function domainOf(email: string): string {
  const at = email.lastIndexOf('@');
  return at === -1 ? '' : asciiLower(email.slice(at + 1));
}

function asciiLower(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32)) : text;
}
