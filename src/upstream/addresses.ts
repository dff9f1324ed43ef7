import dns from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent } from 'undici';

/*
 * Where Concord may call a participant's IdP. The endpoints come from the IdP's own discovery
 * document, so a partner could point its JWKS or token endpoint at Concord's own network (the
 * admin listener, a cloud metadata service, a database): by default, only public addresses are
 * called. A partner whose IdP really sits on a private network is registered with
 * `allowPrivateNetwork: true` (and `allowInsecureHttp`, for loopback development, implies it).
 *
 * The check sits in the connection itself (`publicOnlyDispatcher`: an undici Agent whose lookup
 * drops every address that is not public), so the address checked is the address connected to: a
 * partner that controls its DNS cannot answer one thing to a check and another to the connection.
 * IP literals are never looked up; `nonPublicAddresses` checks those before the call.
 */

const NOT_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

/** IPv4 written inside IPv6 (::ffff:10.0.0.1, ::ffff:a00:1, 64:ff9b::a00:1): the IPv4 address it means. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (!hex) return undefined;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** Whether an IP address is on the public internet (not loopback, private, link-local, reserved...). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !NOT_PUBLIC.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined) return isPublicAddress(v4);
    return !NOT_PUBLIC.check(address, 'ipv6');
  }
  return false;
}

/** The IP literal host of `url` when it is not public (names are checked as they are connected to). */
export function nonPublicLiteral(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) && !isPublicAddress(host) ? host : undefined;
}

/** The error a refused lookup gives; `fetch` reports it as the cause of its TypeError. */
export class NotPublicAddress extends Error {
  readonly code = 'ENOTPUBLIC';
  readonly addresses: string[];
  constructor(hostname: string, addresses: string[]) {
    super(`${hostname} is at ${addresses.join(', ')}, not a public address`);
    this.addresses = addresses;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** dns.lookup, minus every address that is not public; none left is an error (no connection is made). */
export function publicOnlyLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const allowed = addresses.filter((a) => isPublicAddress(a.address));
    if (allowed.length === 0) return callback(new NotPublicAddress(hostname, addresses.map((a) => a.address)), []);
    if (options.all) return callback(null, allowed);
    callback(null, allowed[0]!.address, allowed[0]!.family);
  });
}

/** An undici dispatcher for `fetch` that only connects to public addresses. */
export function publicOnlyDispatcher(): Agent {
  return new Agent({ connect: { lookup: publicOnlyLookup as never } });
}
