/**
 * Token issuance per signing algorithm: the same Concord (memory store, client credentials) with
 * `keys.accessTokenAlgorithm` set to ES256, EdDSA, RS256 and PS256 (each offered beside RS256), one
 * child process each, measured in turn.
 *
 *   node bench/parts/algorithms.ts
 */
import { combine, type LoadResult } from '../lib/cannon.ts';
import { startChild, type BenchChild } from '../lib/children.ts';
import { fmtMs, ratio, runAlone, type Row, type Section } from '../lib/report.ts';
import { checkIssues, MACHINE, tokenRequest, UNLIMITED } from './tokens.ts';

const ALGORITHMS = ['ES256', 'EdDSA', 'RS256', 'PS256'] as const;

export async function algorithmsPart(options: { seconds?: number; rounds?: number; warmup?: number } = {}): Promise<Section> {
  const seconds = options.seconds ?? 2;
  const rounds = options.rounds ?? 4;
  const warmup = options.warmup ?? 2;
  const servers = new Map<string, BenchChild>();
  const figures: Record<string, number> = {};
  try {
    for (const alg of ALGORITHMS) {
      servers.set(alg, await startChild({ kind: 'concord', settings: { store: 'memory', keys: { algorithms: alg === 'RS256' ? ['RS256'] : ['RS256', alg], accessTokenAlgorithm: alg }, rateLimits: UNLIMITED }, clients: [MACHINE] }));
    }
    for (const [alg, child] of servers) {
      await checkIssues(child, alg);
      await tokenRequest(child, warmup);
    }
    const runs = new Map<string, LoadResult[]>(ALGORITHMS.map((a) => [a, []]));
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ALGORITHMS : [...ALGORITHMS].reverse();
      for (const alg of order) runs.get(alg)!.push(await tokenRequest(servers.get(alg)!, seconds));
    }
    const results = new Map([...runs].map(([alg, r]) => [alg, combine(r)]));
    const es256 = results.get('ES256')!;
    const rows: Row[] = ALGORITHMS.map((alg) => {
      const r = results.get(alg)!;
      figures[`${alg}_rps`] = r.rps;
      figures[`${alg}_cpu_ms`] = r.cpuMsPerRequest ?? NaN;
      return {
        name: `client_credentials, Concord, keys.accessTokenAlgorithm ${alg}`,
        rate: r.rps,
        unit: 'tokens/s',
        p50: r.p50,
        p99: r.p99,
        ratio: `${ratio(r.rps, es256.rps)} of ES256`,
        note: `${fmtMs(r.cpuMsPerRequest)} ms CPU/token${r.non2xx || r.errors ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : ''}`,
      };
    });
    return {
      title: 'Token issuance per signing algorithm',
      method:
        `As above (Concord only, memory store, log level info), one child process per \`keys.accessTokenAlgorithm\` (RSA keys are 2048-bit); ` +
        `${warmup} s warm-up each, then ${rounds} alternating rounds of ${seconds} s.`,
      rows,
      figures,
    };
  } finally {
    await Promise.all([...servers.values()].map((s) => s.stop()));
  }
}

if (import.meta.main) await runAlone(() => algorithmsPart());
