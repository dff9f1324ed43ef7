import { domainToASCII } from 'node:url';

/*
 * Domain names in one canonical form. Every place Concord compares a domain (a participant's
 * configured domains, home-realm discovery from the login form, `login_hint` or `idp_hint`, and the
 * email policy at release) goes through `canonicalDomain`, so two spellings of one domain can never
 * be told apart in one place and confused in another.
 */

/** Characters a URL host parser would read as something else (a path, a port, userinfo, an escape). */
const NOT_IN_A_NAME = /[\s\u0000-\u001f\u007f%/\\?#@:[\]<>^|"'`{}]/u;

/** An LDH label: letters, digits and inner hyphens, 1 to 63 characters (RFC 1035 2.3.1, RFC 5890 2.3.1). */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A top-level label: letters only, or an IDNA A-label (`xn--...`). */
const TOP_LABEL = /^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;

/**
 * The canonical ASCII form of a domain name, or undefined when `input` is not one.
 *
 *   - UTS #46 processing through Node's `url.domainToASCII` (the WHATWG URL host rules): Unicode
 *     labels become A-labels (`bücher.example` -> `xn--bcher-kva.example`), full-width letters and the
 *     ideographic full stop map to ASCII (`ａｃｍｅ。example` -> `acme.example`), ASCII is lower-cased;
 *   - one trailing dot (the DNS root) is removed: `acme.example.` -> `acme.example`;
 *   - the result must be at least two LDH labels with an alphabetic or A-label top label, at most 253
 *     characters (RFC 1035): IP addresses, `localhost`, empty labels and underscores are refused.
 *
 * Input a URL parser would read as more than a host (`/`, `?`, `#`, `%`, `@`, `:`, spaces, controls)
 * is refused before parsing, so `acme.example/x` or `acme%2eexample` never turn into a domain.
 */
export function canonicalDomain(input: string): string | undefined {
  if (typeof input !== 'string' || input.length === 0 || input.length > 1024 || NOT_IN_A_NAME.test(input)) return undefined;
  let ascii = domainToASCII(input);
  if (ascii.endsWith('.')) ascii = ascii.slice(0, -1);
  if (ascii.length === 0 || ascii.length > 253) return undefined;
  const labels = ascii.split('.');
  if (labels.length < 2 || !labels.every((label) => LABEL.test(label)) || !TOP_LABEL.test(labels.at(-1)!)) return undefined;
  return ascii;
}

/** An email address split at its `@`, with the domain in canonical form. */
export interface EmailAddress {
  /** The part before the `@`, exactly as given. */
  local: string;
  /** `canonicalDomain` of the part after the `@`. */
  domain: string;
}

/**
 * Splits an email address for domain comparison. Undefined when it has no `@`, more than one
 * (`alice@@acme.example`, `ceo@globex.example@acme.example`: which domain is meant depends on who
 * reads it), an empty or over-long local part (RFC 5321 4.5.3.1: 64 octets), or a domain
 * `canonicalDomain` refuses. The local part is not otherwise judged here; callers that release an
 * address check it themselves (mapping/policy.ts).
 */
export function parseEmailAddress(address: string): EmailAddress | undefined {
  if (typeof address !== 'string' || address.length > 320) return undefined;
  const at = address.indexOf('@');
  if (at <= 0 || at !== address.lastIndexOf('@')) return undefined;
  const local = address.slice(0, at);
  if (Buffer.byteLength(local) > 64) return undefined;
  const domain = canonicalDomain(address.slice(at + 1));
  return domain === undefined ? undefined : { local, domain };
}

/** The canonical domain of an email address, or undefined (see parseEmailAddress). */
export function emailDomain(address: string): string | undefined {
  return parseEmailAddress(address)?.domain;
}
