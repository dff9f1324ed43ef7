import { UpstreamError, UpstreamHttp, type AddressLookup } from '../upstream/index.ts';
import type { MethodResult } from './records.ts';

/** A challenge is 43 characters; a page that answers with more is not answering with it. */
const MAX_BODY_BYTES = 4096;
/** Redirects followed, each one through the same guard (www., a move to https, a proxy). */
const MAX_REDIRECTS = 3;

export interface WellKnownOptions {
  timeoutMs: number;
  /** Call loopback, private and link-local addresses too (tests on loopback). */
  allowPrivateNetwork: boolean;
  /** http:// instead of https:// (tests on loopback); implies allowPrivateNetwork. */
  allowInsecureHttp: boolean;
  /** Default 443 (80 with allowInsecureHttp). */
  port?: number | undefined;
  /** The configured resolvers' lookup; dns.lookup when absent. */
  lookup?: AddressLookup | undefined;
  logger?: { debug(obj: object, msg?: string): void };
}

/**
 * The HTTPS proof: `GET https://{domain}/.well-known/concord-challenge/{challenge}` answers 200
 * with the challenge as its body (surrounding white space ignored). The body must hold it, not
 * just the status: many sites answer 200 to any path. Every request (redirects included) goes
 * through UpstreamHttp, the one guard of Concord's outgoing calls: public addresses only unless
 * allowed, bounded time and body.
 */
export class WellKnownCheck {
  readonly #options: WellKnownOptions;
  readonly #scheme: 'https:' | 'http:';
  readonly #http: UpstreamHttp;

  constructor(options: WellKnownOptions) {
    this.#options = options;
    this.#scheme = options.allowInsecureHttp ? 'http:' : 'https:';
    // One client (one connection pool) for every check; its debug lines say `participant: domain-proof`.
    this.#http = new UpstreamHttp({
      participantId: 'domain-proof',
      timeoutMs: options.timeoutMs,
      allowPrivateNetwork: options.allowPrivateNetwork || options.allowInsecureHttp,
      maxBodyBytes: MAX_BODY_BYTES,
      ...(options.lookup ? { lookup: options.lookup } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }

  /** Where the proof is looked for (what the admin API tells the domain's owner to publish). */
  url(domain: string, challenge: string): string {
    const port = this.#options.port === undefined ? '' : `:${this.#options.port}`;
    return `${this.#scheme}//${domain}${port}/.well-known/concord-challenge/${challenge}`;
  }

  async check(domain: string, challenge: string): Promise<MethodResult> {
    const http = this.#http;
    let url = this.url(domain, challenge);
    try {
      for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
        const response = await http.request(url, { method: 'GET', headers: { accept: 'text/plain' } }, 'other');
        const location = response.headers.get('location');
        if (response.status >= 300 && response.status < 400 && location) {
          const next = new URL(location, url);
          if (next.protocol !== this.#scheme) return { outcome: 'error', detail: `${url} redirects to ${next.protocol}// (only ${this.#scheme}// is followed)` };
          url = next.href;
          continue;
        }
        if (response.status === 200) {
          const body = (await response.text()).trim();
          return body === challenge
            ? { outcome: 'found', detail: `${url} answers with the challenge` }
            : { outcome: 'mismatch', detail: `${url} answers 200, but not with this domain's challenge` };
        }
        if (response.status >= 500) return { outcome: 'error', detail: `${url} answers HTTP ${response.status}` };
        return { outcome: 'absent', detail: `${url} answers HTTP ${response.status}` };
      }
      return { outcome: 'error', detail: `more than ${MAX_REDIRECTS} redirects from ${this.url(domain, challenge)}` };
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      return { outcome: 'error', detail: describe(error, this.url(domain, challenge)) };
    }
  }
}

/** UpstreamError's words are for upstream IdPs; these name the domain proof setting. */
function describe(error: UpstreamError, url: string): string {
  const origin = new URL(url).origin;
  if (/not a public address/.test(error.message)) return `${origin} is not at a public address (domainProof.allowPrivateNetwork is off)`;
  if (error.code === 'upstream_timeout') return `no answer from ${origin} in time`;
  if (/larger than/.test(error.message)) return `${origin} answers with more than ${MAX_BODY_BYTES} bytes`;
  return error.message.replace(/^other: /, '');
}
