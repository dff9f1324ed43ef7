import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileMapping, MAPPING_LIMITS, RESERVED_CLAIMS, type MappingOutcome, type MappingRule } from '../../src/mapping/index.ts';

const CTX = { participantId: 'acme', domains: ['acme.example'] };

function claims(outcome: MappingOutcome): Record<string, unknown> {
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  return (outcome as { claims: Record<string, unknown> }).claims;
}

/** What `cel: expr` yields for `upstream`; undefined when it yields nothing. */
function evalCel(expr: string, upstream: Record<string, unknown>): unknown {
  return claims(compileMapping({ passthrough: [], rules: [{ claim: 'out', cel: expr }] }, CTX).apply(upstream)).out;
}

describe('mapping CEL values', () => {
  it('sees JSON numbers as doubles that compare with integer literals', () => {
    assert.equal(evalCel('claims.age >= 18', { age: 21 }), true);
    assert.equal(evalCel('claims.age + 1.5', { age: 1 }), 2.5);
    assert.equal(evalCel('size(claims.g) * 2', { g: [1, 2] }), 4);
    assert.equal(evalCel('uint(7)', {}), 7);
  });

  it('yields nothing for results that are not JSON', () => {
    assert.equal(evalCel("b'bytes'", {}), undefined);
    assert.equal(evalCel("timestamp('2024-01-01T00:00:00Z')", {}), undefined);
    assert.equal(evalCel('{1: 2}', {}), undefined);
    assert.equal(evalCel('0.0 / 0.0', {}), undefined);
    assert.equal(evalCel('int', {}), undefined);
    assert.equal(evalCel('9223372036854775807', {}), undefined);
  });

  it('keeps odd keys as data, both ways', () => {
    assert.equal(evalCel("claims.constructor + claims['$typeName']", { constructor: 'c', $typeName: 'google.protobuf.Value' }), 'cgoogle.protobuf.Value');
    const out = evalCel("{'__proto__': {'polluted': true}}", {}) as Record<string, unknown>;
    assert.ok(Object.hasOwn(out, '__proto__'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
  });

  it('has a linear replace() that follows the strings extension', () => {
    assert.equal(evalCel("'a-b-c'.replace('-', '+')", {}), 'a+b+c');
    assert.equal(evalCel("'a-b-c'.replace('-', '+', 1)", {}), 'a+b-c');
    assert.equal(evalCel("'a-b-c'.replace('-', '', -1)", {}), 'abc');
    assert.equal(evalCel("'aaa'.replace('a', 'aa')", {}), 'aaaaaa');
  });
});

describe('mapping CEL list building', () => {
  const list = (n: number) => Array.from({ length: n }, (_, i) => `g${i}`);

  it('builds map() and filter() results in order, for short and long lists', () => {
    for (const n of [0, 1, 8, 9, 20, MAPPING_LIMITS.celList]) {
      const g = list(n);
      assert.deepEqual(evalCel("claims.g.map(x, x + '!')", { g }), g.map((x) => `${x}!`), `map of ${n}`);
      assert.deepEqual(evalCel("claims.g.filter(x, x.endsWith('1'))", { g }), g.filter((x) => x.endsWith('1')), `filter of ${n}`);
    }
  });

  it('never lets one result change another', () => {
    const g = list(20);
    const m = compileMapping(
      {
        passthrough: [],
        rules: [
          { claim: 'nested', cel: "claims.g.map(x, ['a', 'b'].map(y, x + y))" },
          { claim: 'twice', cel: "[claims.g.map(x, x), claims.g.map(x, x + '?')]" },
          { claim: 'extended', cel: "claims.g.map(x, x) + ['tail']" },
          { claim: 'chained', cel: "claims.g.filter(x, x != 'g0').map(x, x + '.').filter(x, x != 'g1.')" },
        ],
      },
      CTX,
    );
    const first = claims(m.apply({ g, h: ['a', 'b'] }));
    const snapshot = structuredClone(first);
    const second = claims(m.apply({ g, h: ['a', 'b'] }));
    assert.deepEqual(first, snapshot, 'a second apply changed the first result');
    assert.deepEqual(second, first);
    assert.deepEqual((first.nested as string[][])[3], ['g3a', 'g3b']);
    assert.deepEqual(first.twice, [g, g.map((x) => `${x}?`)]);
    assert.deepEqual(first.extended, [...g, 'tail']);
    assert.deepEqual(first.chained, g.slice(2).map((x) => `${x}.`));
  });

  it('refuses to build a list longer than the limit', () => {
    const literal = `[${Array.from({ length: MAPPING_LIMITS.celList + 1 }, () => '1').join(',')}]`;
    assert.equal(evalCel(`${literal}.map(x, x)`, {}), undefined);
  });
});

describe('mapping CEL runtime bounds', () => {
  const big = 'x'.repeat(MAPPING_LIMITS.celString - 10);

  it('refuses to build strings, lists or bytes beyond the limits', () => {
    assert.equal(evalCel('claims.s + claims.s', { s: big }), undefined);
    assert.equal(evalCel('size(claims.s + "y")', { s: 'x' }), 2);
    assert.equal(evalCel("claims.s.replace('x', 'xx')", { s: big }), undefined);
    assert.equal(evalCel("claims.s.split('')", { s: 'x'.repeat(MAPPING_LIMITS.celList + 1) }), undefined);
    assert.deepEqual(evalCel("claims.s.split(',')", { s: 'a,b' }), ['a', 'b']);
    assert.equal(evalCel('claims.g + claims.g', { g: Array.from({ length: 200 }, (_, i) => i) }), undefined);
    assert.equal(evalCel("claims.g.join('-')", { g: Array.from({ length: 200 }, () => 'y'.repeat(100)) }), undefined);
    assert.equal(evalCel("bytes(claims.s) + bytes(claims.s)", { s: big }), undefined);
  });

  it('gives expressions nothing when the claims they read exceed the limits; other rules still run', () => {
    const m = compileMapping(
      {
        passthrough: [],
        rules: [
          { claim: 'copied', from: 'groups[0]' },
          { claim: 'cel', cel: 'claims.groups[0]' },
          { claim: 'when', value: 1, when: 'has(claims.extra) || true' },
        ],
      },
      CTX,
    );
    const over = [
      { groups: Array.from({ length: MAPPING_LIMITS.celList + 1 }, (_, i) => `g${i}`) },
      { groups: ['g0'], extra: 'b'.repeat(MAPPING_LIMITS.celString + 1) },
      { groups: ['g0'], extra: JSON.parse(`${'{"a":'.repeat(20)}1${'}'.repeat(20)}`) },
      { groups: ['g0'], extra: Object.fromEntries(Array.from({ length: MAPPING_LIMITS.celList + 1 }, (_, i) => [`c${i}`, i])) },
      { groups: ['g0'], extra: Array.from({ length: 100 }, () => Array.from({ length: 120 }, () => 0)) },
    ];
    for (const upstream of over) assert.deepEqual(claims(m.apply(upstream)), { copied: 'g0' }, JSON.stringify(upstream).slice(0, 60));
    assert.deepEqual(claims(m.apply({ groups: ['g0'] })), { copied: 'g0', cel: 'g0', when: 1 });
    // Claims no expression reads are not given to CEL, so their size does not matter...
    assert.deepEqual(claims(m.apply({ groups: ['g0'], unrelated: 'b'.repeat(MAPPING_LIMITS.celString + 1) })), { copied: 'g0', cel: 'g0', when: 1 });
    // ...unless an expression uses `claims` as a whole.
    const whole = compileMapping({ passthrough: [], rules: [{ claim: 'n', cel: 'size(claims)' }] }, CTX);
    assert.deepEqual(claims(whole.apply({ a: 1, b: 2 })), { n: 2 });
    assert.deepEqual(claims(whole.apply({ a: 1, unrelated: 'b'.repeat(MAPPING_LIMITS.celString + 1) })), {});
  });

  it('refuses the login when a requirement cannot be evaluated on oversized claims', () => {
    const outcome = compileMapping({ rules: [{ require: "claims.blob != ''", name: 'blob' }] }, CTX).apply({ blob: 'b'.repeat(MAPPING_LIMITS.celString + 1) });
    assert.equal(outcome.ok, false);
    assert.match((!outcome.ok && outcome.error) || '', /too large/);
  });

  it('evaluates the worst input the load-time estimate allows, in full', () => {
    const m = compileMapping({ passthrough: [], rules: [{ claim: 'x', cel: "claims.g.map(r, r.lowerAscii() + '-' + r)" }] }, CTX);
    const groups = Array.from({ length: MAPPING_LIMITS.celList }, (_, i) => `GROUP-${i}`);
    // Its cost is measured by `npm run bench`, not asserted here.
    const out = claims(m.apply({ groups, g: groups }));
    assert.equal((out.x as unknown[]).length, MAPPING_LIMITS.celList);
  });
});

describe('mapping apply on arbitrary claims', () => {
  const mixed: MappingRule[] = [
    { claim: 'email', from: ['email', 'upn', 'a.b[0]'] },
    { claim: 'email_verified', value: true },
    { claim: 'groups', from: 'groups', lookup: { a: 'A' }, unmatched: 'keep' },
    { claim: 'name', template: '{given_name} {a.b}' },
    { claim: 'dept', from: 'dn', regex: { pattern: '^CN=([^,]+)', extract: '$1' } },
    { claim: 'roles', cel: "has(claims.roles) ? claims.roles.filter(r, string(r).startsWith('a')) : []" },
    { claim: 'flag', value: 1, when: "claims.exists(k, k == 'x')" },
    { require: "!has(claims.blocked) || claims.blocked != true", name: 'not-blocked' },
  ];
  const m = compileMapping({ rules: mixed }, CTX);
  const json = fc.jsonValue({ maxDepth: 4 });
  const upstream = fc.record(
    {
      email: fc.oneof(fc.emailAddress(), fc.constantFrom('bob@acme.example', 'BOB@ACME.EXAMPLE', 'x@acme.example.evil'), json),
      email_verified: fc.oneof(fc.boolean(), json),
      upn: fc.oneof(fc.emailAddress(), json),
      groups: fc.oneof(fc.array(fc.constantFrom('a', 'b', 'c')), json),
      given_name: fc.oneof(fc.string(), json),
      dn: fc.oneof(fc.string(), fc.constant('CN=Ops,OU=x'), json),
      roles: json,
      blocked: fc.oneof(fc.boolean(), json),
      a: json,
      sub: json,
    },
    { requiredKeys: [] },
  );

  it('never throws, never releases a reserved claim, and never verifies a foreign email', () => {
    fc.assert(
      fc.property(fc.tuple(upstream, fc.dictionary(fc.string(), json, { maxKeys: 5 })), ([known, extra]) => {
        const outcome = m.apply({ ...extra, ...known });
        if (!outcome.ok) {
          assert.equal(outcome.requirement, 'not-blocked');
          return;
        }
        for (const claim of RESERVED_CLAIMS) assert.equal(Object.hasOwn(outcome.claims, claim), false, claim);
        if (outcome.claims.email_verified === true) {
          assert.match(String(outcome.claims.email), /@acme\.example$/i);
        }
        if ('email_verified' in outcome.claims) assert.equal(typeof outcome.claims.email, 'string');
      }),
      { numRuns: 500 },
    );
  });
});
