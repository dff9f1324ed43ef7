/**
 * Claim mapping cost: one compiled mapping of ten typical rules (two of them CEL) applied to an
 * Entra-like set of upstream claims, against one ES256 JWT signature with jose (the cheapest thing
 * every login does anyway). Alternating batches in this process.
 *
 *   node bench/parts/mapping.ts
 */
import { generateKeyPair, SignJWT } from 'jose';
import { compileMapping, type MappingConfig } from '../../src/mapping/index.ts';
import { alternate } from '../lib/batches.ts';
import { runAlone, type Section } from '../lib/report.ts';

/** Ten rules as a participant would write them: paths with fallbacks, regex, lookups, template, constants, and two CEL. */
export const TYPICAL_MAPPING: MappingConfig = {
  passthrough: ['name', 'given_name', 'family_name'],
  rules: [
    { require: "claims.tid == 'acme-tenant-7d3c'", name: 'acme-tenant', message: 'Sign in with your Acme work account.' },
    { claim: 'email', from: ['email', 'upn'] },
    { claim: 'email_verified', value: true },
    { claim: 'preferred_username', from: 'upn', regex: { pattern: '^([^@]+)@', extract: '$1' } },
    { claim: 'groups', from: 'groups', lookup: { 'g-0001': 'engineering', 'g-0002': 'all-staff', 'g-0003': 'finance', 'g-0004': 'admins' } },
    { claim: 'roles', cel: "claims.roles.filter(r, r.startsWith('Concord.')).map(r, r.substring(8).lowerAscii())" },
    { claim: 'department', from: 'extension_department', lookup: { ENG: 'Engineering', FIN: 'Finance' }, unmatched: 'keep' },
    { claim: 'tenant', value: 'acme' },
    { claim: 'display', template: '{given_name} {family_name} (Acme)' },
    { claim: 'employee_id', from: ['employeeId', 'oid'] },
  ],
};

export const TYPICAL_CLAIMS: Record<string, unknown> = {
  sub: 'AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ',
  iss: 'https://login.microsoftonline.com/acme-tenant-7d3c/v2.0',
  aud: 'concord',
  tid: 'acme-tenant-7d3c',
  oid: '5f0c1a52-8d1e-4b7a-9f0e-acme00000001',
  upn: 'alice@acme.example',
  email: 'alice@acme.example',
  name: 'Alice Anders',
  given_name: 'Alice',
  family_name: 'Anders',
  groups: ['g-0001', 'g-0002', 'g-0009', 'g-0010', 'g-0011'],
  roles: ['Concord.User', 'Concord.Admin', 'Other.Thing'],
  extension_department: 'ENG',
  employeeId: 'E-10442',
  amr: ['pwd', 'mfa'],
};

export async function mappingPart(options: { seconds?: number } = {}): Promise<Section> {
  const seconds = options.seconds ?? 6;
  const mapping = compileMapping(TYPICAL_MAPPING, { participantId: 'acme', domains: ['acme.example'] });
  const outcome = mapping.apply(TYPICAL_CLAIMS);
  if (!outcome.ok) throw new Error(`the benchmark mapping refuses its own claims: ${outcome.requirement}`);
  const expected = { roles: ['user', 'admin'], groups: ['engineering', 'all-staff'], preferred_username: 'alice', display: 'Alice Anders (Acme)' };
  for (const [claim, value] of Object.entries(expected)) {
    if (JSON.stringify(outcome.claims[claim]) !== JSON.stringify(value)) throw new Error(`mapping gave ${claim}=${JSON.stringify(outcome.claims[claim])}, expected ${JSON.stringify(value)}`);
  }

  const { privateKey } = await generateKeyPair('ES256');
  const payload = { sub: 'acme:5f0c1a52', client_id: 'rp', scope: 'openid email profile', ...outcome.claims };
  const sign = () => new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' }).setIssuedAt().setExpirationTime('5m').sign(privateKey);

  const [map, signature] = await alternate(
    [
      { name: 'mapping', op: () => mapping.apply(TYPICAL_CLAIMS) },
      { name: 'sign', op: sign },
    ],
    { batch: 500, seconds, warmupBatches: 6 },
  );
  return {
    title: 'Claim mapping vs one JWT signature',
    method:
      `\`compileMapping\` once, then \`apply()\` on Entra-like upstream claims (15 claims): ${TYPICAL_MAPPING.rules.length} rules (a CEL \`require\`, a CEL \`cel\` claim, ` +
      `paths with fallbacks, a regex extract, two lookups, a template, constants) plus passthrough and the email-domain policy; against one ES256 \`SignJWT\` with jose of the mapped claims. ` +
      `Batches of 500, alternating, for ${seconds} s; latency per operation.`,
    rows: [
      { name: `mapping apply(), ${TYPICAL_MAPPING.rules.length} rules incl. 2 CEL`, rate: map!.rate, unit: 'ops/s', p50: map!.p50, p99: map!.p99, ratio: `${(map!.rate / signature!.rate).toFixed(2)}x signing`, note: `${map!.ops.toLocaleString('en-US')} ops` },
      { name: 'one ES256 JWT signature (jose)', rate: signature!.rate, unit: 'ops/s', p50: signature!.p50, p99: signature!.p99, ratio: '1.00', note: `${signature!.ops.toLocaleString('en-US')} ops` },
    ],
    figures: { mapping_rate: map!.rate, sign_rate: signature!.rate },
  };
}

if (import.meta.main) await runAlone(() => mappingPart());
