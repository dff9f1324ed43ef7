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
  ['2001::', 32], // Teredo
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated by RFC 3879, still routed inside some networks)
  ['ff00::', 8], // multicast
] as const) {
  NOT_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail is read as two groups). */
function groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...Array<string>(Math.max(0, fill)).fill('0'), ...right].map((g) => parseInt(g, 16));
  return all.length === 8 && all.every((g) => g >= 0 && g <= 0xffff) ? all : undefined;
}

const ipv4Of = (high: number, low: number) => `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;

/**
 * The IPv4 address an IPv6 address carries, in the forms that reach IPv4 hosts: mapped (::ffff:a.b.c.d),
 * compatible (::a.b.c.d), SIIT (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
 */
function embeddedIpv4(address: string): string | undefined {
  const g = groups(address);
  if (!g) return undefined;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0) && (g[6] !== 0 || g[7]! > 1)) return ipv4Of(g[6]!, g[7]!);
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return ipv4Of(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return ipv4Of(g[6]!, g[7]!);
  if (g[0] === 0x2002) return ipv4Of(g[1]!, g[2]!);
  return undefined;
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

/** The error a refused lookup gives; undici rejects the call with it (`fetch`, as the cause of its TypeError). */
export class NotPublicAddress extends Error {
  readonly code = 'ENOTPUBLIC';
  readonly addresses: string[];
  constructor(hostname: string, addresses: string[]) {
    super(`${hostname} is at ${addresses.join(', ')}, not a public address`);
    this.addresses = addresses;
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** A name lookup with the shape of `dns.lookup`, called with `all: true` here. */
export type AddressLookup = (hostname: string, options: dns.LookupOptions & { all: true }, callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void) => void;

const systemLookup: AddressLookup = (hostname, options, callback) => dns.lookup(hostname, options, callback);

/** `lookup` (default dns.lookup), minus every address that is not public; none left is an error (no connection is made). */
export function publicOnly(lookup: AddressLookup = systemLookup) {
  return function publicLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const allowed = addresses.filter((a) => isPublicAddress(a.address));
      if (allowed.length === 0) return callback(new NotPublicAddress(hostname, addresses.map((a) => a.address)), []);
      if (options.all) return callback(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

/** dns.lookup, minus every address that is not public; none left is an error (no connection is made). */
export const publicOnlyLookup = publicOnly();

/**
 * An undici dispatcher (UpstreamHttp's calls) that only connects to public addresses, as `lookup` (default
 * dns.lookup) finds them. Domain proof (domain-proof/) passes its configured resolvers' lookup.
 */
export function publicOnlyDispatcher(lookup?: AddressLookup): Agent {
  return new Agent({ connect: { lookup: (lookup ? publicOnly(lookup) : publicOnlyLookup) as never } });
}

/** An undici dispatcher that connects wherever `lookup` says: for callers that allow their private network. */
export function lookupDispatcher(lookup: AddressLookup): Agent {
  const any = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) =>
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      if (options.all) return callback(null, addresses);
      if (addresses.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      callback(null, addresses[0]!.address, addresses[0]!.family);
    });
  return new Agent({ connect: { lookup: any as never } });
}
