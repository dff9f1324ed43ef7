import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { compileMapping, MappingSchema } from '../../src/mapping/index.ts';

interface Dialect {
  name: string;
  mapping: unknown;
  upstream: Record<string, unknown>;
  rejects?: { change: Record<string, unknown>; requirement: string }[];
}

const fixture = parseYaml(readFileSync(new URL('../fixtures/mapping/dialects.yaml', import.meta.url), 'utf8')) as {
  expected: Record<string, unknown>;
  dialects: Dialect[];
};

describe('mapping real IdP dialects to the same claims', () => {
  it('covers the dialects the issue names', () => {
    const names = fixture.dialects.map((d) => d.name).join(' | ');
    for (const idp of ['Entra', 'Okta', 'Google', 'Keycloak']) assert.match(names, new RegExp(idp));
  });

  for (const dialect of fixture.dialects) {
    // Parsed by the schema first, as the configuration loader does with a participant file.
    const mapping = compileMapping(MappingSchema.parse(dialect.mapping), { participantId: 'acme', domains: ['acme.example'] });

    it(`${dialect.name}: releases the expected claims`, () => {
      assert.deepEqual(mapping.apply(dialect.upstream), { ok: true, claims: fixture.expected });
    });

    for (const reject of dialect.rejects ?? []) {
      it(`${dialect.name}: refuses ${JSON.stringify(reject.change)} by ${reject.requirement}`, () => {
        const upstream = { ...dialect.upstream, ...reject.change };
        const outcome = mapping.apply(upstream);
        assert.equal(outcome.ok, false);
        assert.equal(!outcome.ok && outcome.requirement, reject.requirement);
      });
    }
  }

  it('does not verify the same person under a foreign email domain', () => {
    const entra = fixture.dialects[0]!;
    const mapping = compileMapping(MappingSchema.parse(entra.mapping), { participantId: 'acme', domains: ['acme.example'] });
    const outcome = mapping.apply({ ...entra.upstream, upn: 'alice@contractor.example' });
    assert.equal(outcome.ok, true);
    const claims = (outcome as { claims: Record<string, unknown> }).claims;
    assert.equal(claims.email, undefined);
    assert.equal(claims.email_verified, undefined);
  });
});
