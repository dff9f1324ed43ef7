import { promises as dns, type LookupAddress } from 'node:dns';
import type { AddressLookup } from '../upstream/index.ts';
import { txtName, type MethodResult } from './records.ts';

/** Answers that say "nothing there" rather than "could not ask": NXDOMAIN and NODATA (c-ares codes). */
const NOTHING_THERE = new Set(['ENOTFOUND', 'ENODATA']);

export interface DnsOptions {
  /** `ip`, `ip:port` or `[ipv6]:port`, as node:dns setServers takes them; empty: the system's. */
  resolvers: readonly string[];
  /** Each query gives up after this long (milliseconds). */
  timeoutMs: number;
}

/**
 * DNS for domain proof: the TXT check, and (with configured resolvers) the address lookup of the
 * HTTPS check, so both ask the same servers. Every query is bounded by `timeoutMs`, retried once.
 */
export class ProofDns {
  readonly #options: DnsOptions;

  constructor(options: DnsOptions) {
    this.#options = options;
  }

  /** A resolver per query: cancel() of one cannot abort another's. */
  #resolver(): dns.Resolver {
    const resolver = new dns.Resolver({ timeout: this.#options.timeoutMs, tries: 2 });
    if (this.#options.resolvers.length > 0) resolver.setServers([...this.#options.resolvers]);
    return resolver;
  }

  /** Runs one query with a deadline of its own: c-ares' timeout grows between tries. */
  async #query<T>(run: (resolver: dns.Resolver) => Promise<T>): Promise<T> {
    const resolver = this.#resolver();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        resolver.cancel();
        reject(Object.assign(new Error('no answer in time'), { code: 'ETIMEOUT' }));
      }, this.#options.timeoutMs * 2);
    });
    try {
      return await Promise.race([run(resolver), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Whether a TXT record at `_concord-challenge.{domain}` holds `challenge`. Each record's strings
   * are joined first (a TXT record is a list of strings of at most 255 octets each: RFC 1035 3.3.14,
   * RFC 7208 3.3), and several records may be there: any one that equals the challenge proves it.
   */
  async checkTxt(domain: string, challenge: string): Promise<MethodResult> {
    const name = txtName(domain);
    let records: string[][];
    try {
      records = await this.#query((resolver) => resolver.resolveTxt(name));
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'error';
      if (NOTHING_THERE.has(code)) return { outcome: 'absent', detail: `no TXT record at ${name} (${code === 'ENOTFOUND' ? 'no such name' : 'no TXT data'})` };
      return { outcome: 'error', detail: `the TXT query for ${name} failed (${code})` };
    }
    const values = records.map((strings) => strings.join('').trim());
    if (values.includes(challenge)) return { outcome: 'found', detail: `a TXT record at ${name} holds the challenge` };
    if (values.length === 0) return { outcome: 'absent', detail: `no TXT record at ${name}` };
    return { outcome: 'mismatch', detail: `${values.length} TXT record(s) at ${name}, none holds this domain's challenge` };
  }

  /**
   * The configured resolvers' A and AAAA answers for a name, in dns.lookup's shape (for the HTTPS
   * check's connection, behind the public-address guard); undefined with the system's resolver, so
   * the caller keeps dns.lookup (and /etc/hosts).
   */
  lookup(): AddressLookup | undefined {
    if (this.#options.resolvers.length === 0) return undefined;
    return (hostname, options, callback) => {
      const family = options.family === 4 || options.family === 6 ? options.family : 0;
      const ask = async (version: 4 | 6): Promise<LookupAddress[]> => {
        if (family !== 0 && family !== version) return [];
        try {
          const addresses = await this.#query((resolver) => (version === 4 ? resolver.resolve4(hostname) : resolver.resolve6(hostname)));
          return addresses.map((address) => ({ address, family: version }));
        } catch (error) {
          if (NOTHING_THERE.has((error as { code?: string }).code ?? '')) return [];
          throw error;
        }
      };
      Promise.all([ask(4), ask(6)]).then(
        ([v4, v6]) => {
          const all = [...v4, ...v6];
          if (all.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
          callback(null, all);
        },
        (error: NodeJS.ErrnoException) => callback(error, []),
      );
    };
  }
}
