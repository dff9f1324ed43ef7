import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMapping, STANDARD_CLAIMS, type MappingConfig, type MappingOutcome, type MappingRule } from '../../src/mapping/index.ts';

const CTX = { participantId: 'acme', domains: ['acme.example'] };

/** A mapping without passthrough, so each test sees only what its rules produce. */
function rules(list: MappingRule[], extra: Partial<MappingConfig> = {}) {
  return compileMapping({ passthrough: [], ...extra, rules: list }, CTX);
}

function claims(outcome: MappingOutcome): Record<string, unknown> {
  assert.equal(outcome.ok, true, `expected success, got ${JSON.stringify(outcome)}`);
  return (outcome as { claims: Record<string, unknown> }).claims;
}

describe('mapping rule kinds', () => {
  it('copies from a dotted path, an index and a quoted key', () => {
    const m = rules([
      { claim: 'roles', from: 'realm_access.roles' },
      { claim: 'first_role', from: 'realm_access.roles[0]' },
      { claim: 'second_role', from: 'realm_access.roles.1' },
      { claim: 'ns', from: '["https://acme.example/claims"].tier' },
    ]);
    assert.deepEqual(claims(m.apply({ realm_access: { roles: ['a', 'b'] }, 'https://acme.example/claims': { tier: 'gold' } })), {
      roles: ['a', 'b'],
      first_role: 'a',
      second_role: 'b',
      ns: 'gold',
    });
  });

  it('takes the first present source of a list of paths', () => {
    const m = rules([{ claim: 'username', from: ['preferred_username', 'upn', 'email'] }]);
    assert.deepEqual(claims(m.apply({ upn: 'bob@acme.example', email: 'x@acme.example' })), { username: 'bob@acme.example' });
    assert.deepEqual(claims(m.apply({ preferred_username: null, email: 'x@acme.example' })), { username: 'x@acme.example' });
    assert.deepEqual(claims(m.apply({})), {});
  });

  it('sets constants of any JSON type, not shared with the caller', () => {
    const m = rules([
      { claim: 'tenant', value: 'acme' },
      { claim: 'level', value: 3 },
      { claim: 'staff', value: true },
      { claim: 'tags', value: ['a', { b: 1 }] },
    ]);
    const out = claims(m.apply({}));
    assert.deepEqual(out, { tenant: 'acme', level: 3, staff: true, tags: ['a', { b: 1 }] });
    assert.throws(() => (out.tags as unknown[]).push('c'), TypeError);
  });

  it('fills templates, with literal braces, and yields nothing when a placeholder is missing', () => {
    const m = rules([
      { claim: 'name', template: '{given_name} {family_name}' },
      { claim: 'label', template: '{{{ org.code }}}-{level}' },
    ]);
    assert.deepEqual(claims(m.apply({ given_name: 'Zoë', family_name: '王', org: { code: 'X' }, level: 2 })), { name: 'Zoë 王', label: '{X}-2' });
    assert.deepEqual(claims(m.apply({ given_name: 'Bob' })), {});
    assert.deepEqual(claims(m.apply({ given_name: 'Bob', family_name: ['not', 'scalar'] })), {});
  });

  it('looks up single values and each array element; unmatched dropped by default or kept', () => {
    const lookup = { 'guid-1': 'admins', 'guid-2': ['staff', 'admins'], '42': 'answer' };
    const drop = rules([{ claim: 'groups', from: 'groups', lookup }]);
    const keep = rules([{ claim: 'groups', from: 'groups', lookup, unmatched: 'keep' }]);
    const upstream = { groups: ['guid-1', 'guid-x', 'guid-2', 42] };
    assert.deepEqual(claims(drop.apply(upstream)), { groups: ['admins', 'staff', 'answer'] });
    assert.deepEqual(claims(keep.apply(upstream)), { groups: ['admins', 'guid-x', 'staff', 'answer'] });
    assert.deepEqual(claims(drop.apply({ groups: ['nope'] })), { groups: [] });
    assert.deepEqual(claims(drop.apply({ groups: 'guid-1' })), { groups: 'admins' });
    assert.deepEqual(claims(keep.apply({ groups: 'nope' })), { groups: 'nope' });
  });

  it('removes the claim when a dropped single value would otherwise pass through unmapped', () => {
    const m = compileMapping({ passthrough: ['groups'], rules: [{ claim: 'groups', from: 'groups', lookup: { a: 'A' } }] }, CTX);
    assert.deepEqual(claims(m.apply({ groups: 'S-1-5-21-secret-sid' })), {});
    assert.deepEqual(claims(m.apply({ groups: 'a' })), { groups: 'A' });
  });

  it('does not treat lookup keys as object properties', () => {
    const m = rules([{ claim: 'g', from: 'g', lookup: { x: 'X' } }]);
    assert.deepEqual(claims(m.apply({ g: ['constructor', 'toString', '__proto__', 'x'] })), { g: ['X'] });
  });

  it('matches, extracts and replaces with regexes', () => {
    const m = rules([
      { claim: 'dept', from: 'dn', regex: { pattern: '^CN=([^,]+)', extract: '$1' } },
      { claim: 'ou', from: 'dn', regex: { pattern: 'OU=(?<ou>[^,]+)', extract: 'ou:$<ou>' } },
      { claim: 'email', from: 'upn', regex: { pattern: '@acme\\.onmicrosoft\\.com$', replace: '@acme.example', ignoreCase: true } },
      { claim: 'is_contractor', from: 'dn', regex: { pattern: 'OU=Contractors' } },
      { claim: 'apps', from: 'roles', regex: { pattern: '^app-(.+)$', extract: '$1' } },
    ]);
    assert.deepEqual(
      claims(m.apply({ dn: 'CN=Sales,OU=Contractors,DC=acme', upn: 'bob@ACME.onmicrosoft.com', roles: ['app-crm', 'offline_access', 'app-wiki', 7] })),
      { dept: 'Sales', ou: 'ou:Contractors', email: 'bob@acme.example', is_contractor: 'CN=Sales,OU=Contractors,DC=acme', apps: ['crm', 'wiki'] },
    );
    // No match: extract and match yield nothing; replace yields the value unchanged.
    assert.deepEqual(claims(m.apply({ dn: 'uid=bob', upn: 'bob@acme.example' })), { email: 'bob@acme.example' });
  });

  it('evaluates CEL over the upstream claims and converts results to JSON', () => {
    const m = rules([
      { claim: 'roles', cel: "claims.realm_access.roles.filter(r, r.startsWith('app-'))" },
      { claim: 'count', cel: 'size(claims.realm_access.roles)' },
      { claim: 'upper', cel: 'claims.name.upperAscii()' },
      { claim: 'obj', cel: "{'tier': claims.tier, 'n': 1}" },
      { claim: 'nothing', cel: 'null' },
      { claim: 'missing', cel: 'claims.absent' },
    ]);
    assert.deepEqual(claims(m.apply({ realm_access: { roles: ['app-a', 'uma', 'app-b'] }, name: 'bob', tier: 'gold' })), {
      roles: ['app-a', 'app-b'],
      count: 3,
      upper: 'BOB',
      obj: { tier: 'gold', n: 1 },
    });
  });

  it('applies a rule only when its `when` is true; an erroring `when` counts as false', () => {
    const m = rules([
      { claim: 'role', value: 'admin', when: "'admins' in claims.groups" },
      { claim: 'google', value: true, when: "claims.hd == 'acme.example'" },
    ]);
    assert.deepEqual(claims(m.apply({ groups: ['admins'], hd: 'acme.example' })), { role: 'admin', google: true });
    assert.deepEqual(claims(m.apply({ groups: ['users'] })), {});
  });

  it('lets later rules overwrite earlier ones, and leaves a claim as is when a rule yields nothing', () => {
    const m = rules([
      { claim: 'dept', value: 'unknown' },
      { claim: 'dept', from: 'department' },
    ]);
    assert.deepEqual(claims(m.apply({ department: 'Sales' })), { dept: 'Sales' });
    assert.deepEqual(claims(m.apply({})), { dept: 'unknown' });
  });

  it('reads every source from the upstream claims, not from earlier rules', () => {
    const m = rules([
      { claim: 'nickname', value: 'set-by-rule' },
      { claim: 'copy', from: 'nickname' },
      { claim: 'cel', cel: 'claims.nickname' },
    ]);
    assert.deepEqual(claims(m.apply({ nickname: 'upstream' })), { nickname: 'set-by-rule', copy: 'upstream', cel: 'upstream' });
  });
});

describe('mapping passthrough', () => {
  it('copies the standard claims by default and nothing else', () => {
    const m = compileMapping(undefined, CTX);
    const upstream = Object.fromEntries(STANDARD_CLAIMS.map((c) => [c, `v-${c}`]));
    const out = claims(m.apply({ ...upstream, email: 'bob@acme.example', email_verified: true, sub: 'x', tid: 'y', secret: 'z' }));
    assert.deepEqual(Object.keys(out).sort(), [...STANDARD_CLAIMS].sort());
    assert.equal(out.email_verified, true);
  });

  it('copies every Standard Claim of OpenID Connect Core 5.1 an upstream sends, values as they are', () => {
    // OIDC Core 1.0 section 5.1, but sub (Concord's own); the conformance plans' scope modules expect them.
    const upstream = {
      name: 'Bob Brown', given_name: 'Bob', family_name: 'Brown', middle_name: 'B', nickname: 'bobby', preferred_username: 'bob',
      profile: 'https://acme.example/bob', picture: 'https://acme.example/bob.png', website: 'https://bob.example',
      email: 'bob@acme.example', email_verified: true, gender: 'male', birthdate: '1990-04-01', zoneinfo: 'Europe/Paris', locale: 'en-GB',
      phone_number: '+44 20 7946 0000', phone_number_verified: false,
      address: { formatted: '1 High St, London', street_address: '1 High St', locality: 'London', postal_code: 'N1', country: 'GB' },
      updated_at: 1_700_000_000,
    };
    assert.deepEqual(claims(compileMapping(undefined, CTX).apply({ sub: 'upstream-sub', ...upstream })), upstream);
  });

  it('copies only the listed claims, skips null ones, and can be turned off', () => {
    assert.deepEqual(claims(compileMapping({ passthrough: ['name', 'locale'], rules: [] }, CTX).apply({ name: 'Bob', locale: null, groups: ['g'] })), { name: 'Bob' });
    assert.deepEqual(claims(compileMapping({ passthrough: [], rules: [] }, CTX).apply({ name: 'Bob' })), {});
  });

  it('accepts a bare list of rules as the mapping', () => {
    const m = compileMapping([{ claim: 'tenant', value: 'acme' }] as unknown as MappingConfig, CTX);
    assert.deepEqual(claims(m.apply({ name: 'Bob' })), { name: 'Bob', tenant: 'acme' });
  });
});

describe('mapping require rules', () => {
  const m = rules([
    { claim: 'tenant', value: 'acme' },
    { require: "claims.tid == '7f1e'", name: 'tenant', message: 'Sign in with your Acme work account.' },
    { require: "claims.amr.exists(a, a == 'mfa')" },
    { require: "claims.acr == 'gold'", when: "'admins' in claims.groups" },
  ]);

  it('passes when every requirement holds', () => {
    assert.deepEqual(claims(m.apply({ tid: '7f1e', amr: ['pwd', 'mfa'], groups: [] })), { tenant: 'acme' });
  });

  it('refuses with the rule index, its name and the participant message', () => {
    assert.deepEqual(m.apply({ tid: 'other', amr: ['mfa'] }), {
      ok: false,
      code: 'mapping_rejected',
      ruleIndex: 1,
      requirement: 'tenant',
      message: 'Sign in with your Acme work account.',
    });
  });

  it('names the expression when the rule has no name, and refuses when the expression fails', () => {
    assert.deepEqual(m.apply({ tid: '7f1e', amr: ['pwd'] }), { ok: false, code: 'mapping_rejected', ruleIndex: 2, requirement: "claims.amr.exists(a, a == 'mfa')" });
    const missing = m.apply({ tid: '7f1e' });
    assert.equal(missing.ok, false);
    assert.equal(!missing.ok && missing.ruleIndex, 2);
    assert.match((!missing.ok && missing.error) || '', /amr/);
  });

  it('checks a requirement only when its `when` holds', () => {
    assert.equal(m.apply({ tid: '7f1e', amr: ['mfa'], groups: ['users'], acr: 'bronze' }).ok, true);
    const outcome = m.apply({ tid: '7f1e', amr: ['mfa'], groups: ['admins'], acr: 'bronze' });
    assert.equal(!outcome.ok && outcome.ruleIndex, 3);
  });

  it('never lets a non-boolean count as true', () => {
    for (const expr of ["'yes'", '1', '[true]', 'claims']) {
      const outcome = rules([{ require: expr }]).apply({ a: 1 });
      assert.equal(outcome.ok, false, expr);
    }
  });
});

describe('mapping apply', () => {
  it('is pure: the upstream claims are not changed and equal inputs give equal outputs', () => {
    const m = compileMapping({ rules: [{ claim: 'groups', from: 'groups', lookup: { a: 'A' } }, { claim: 'x', cel: 'claims.groups' }] }, CTX);
    const upstream = { email: 'bob@elsewhere.example', email_verified: true, groups: ['a', 'b'] };
    const before = structuredClone(upstream);
    const first = m.apply(upstream);
    assert.deepEqual(upstream, before);
    assert.deepEqual(m.apply(upstream), first);
  });

  it('treats something other than an object as no claims at all', () => {
    const m = compileMapping({ rules: [{ claim: 'tenant', value: 'acme' }] }, CTX);
    for (const bad of [null, [], 'x', 3]) assert.deepEqual(claims(m.apply(bad as never)), { tenant: 'acme' });
  });
});
