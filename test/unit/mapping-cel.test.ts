import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { compileMapping, MAPPING_LIMITS, RESERVED_CLAIMS, type MappingOutcome, type MappingRule } from '../../src/mapping/index.ts';

const CTX = { participantId: 'acme', domains: ['acme.example'] };

function claims(outcome: MappingOutcome): Record<string, unknown> {
  assert.equal(outcome.ok, true, JSON.stringify(outcome));
  return (outcome as { claims: Record<string, unknown> }).claims;
}

/** The limit outcome (code) of a login whose mapping stopped at a limit. */
function limitHit(outcome: MappingOutcome): string {
  assert.equal(outcome.ok, false, JSON.stringify(outcome));
  return (outcome as { code: string }).code;
}

/** The outcome code of `cel: expr` on `upstream` when it stops at a limit. */
const celLimit = (expr: string, upstream: Record<string, unknown>) => limitHit(compileMapping({ passthrough: [], rules: [{ claim: 'out', cel: expr }] }, CTX).apply(upstream));

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

  it('stops the login (cel_cost_exceeded) when an expression builds a list longer than the limit', () => {
    const g = Array.from({ length: MAPPING_LIMITS.celList / 2 + 1 }, (_, i) => i);
    assert.equal(celLimit('claims.g + claims.g', { g }), 'cel_cost_exceeded');
    assert.equal(celLimit('claims.g.map(x, x) + claims.g.filter(x, true)', { g }), 'cel_cost_exceeded');
    assert.equal((evalCel('claims.g + claims.g', { g: g.slice(1) }) as unknown[]).length, MAPPING_LIMITS.celList);
  });
});

describe('mapping CEL runtime bounds', () => {
  const big = 'x'.repeat(MAPPING_LIMITS.celString - 10);

  it('stops the login (cel_cost_exceeded) when an expression builds strings, lists or bytes beyond the limits', () => {
    assert.equal(celLimit('claims.s + claims.s', { s: big }), 'cel_cost_exceeded');
    assert.equal(evalCel('size(claims.s + "y")', { s: 'x' }), 2);
    assert.equal(celLimit("claims.s.replace('x', 'xx')", { s: big }), 'cel_cost_exceeded');
    assert.equal(celLimit("claims.s.split('')", { s: 'x'.repeat(MAPPING_LIMITS.celList + 1) }), 'cel_cost_exceeded');
    assert.deepEqual(evalCel("claims.s.split(',')", { s: 'a,b' }), ['a', 'b']);
    assert.equal(celLimit("claims.g.join('-')", { g: Array.from({ length: 200 }, () => 'y'.repeat(100)) }), 'cel_cost_exceeded');
    assert.equal(celLimit("bytes(claims.s) + bytes(claims.s)", { s: big }), 'cel_cost_exceeded');
  });

  it('a limit hit in a `when` or a `require` is the limit, never a quiet false or a policy refusal', () => {
    const over = { s: big };
    for (const rules of [
      [{ claim: 'x', value: 1, when: 'size(claims.s + claims.s) > 0' }],
      [{ require: 'size(claims.s + claims.s) > 0', name: 'concat' }],
    ] as MappingRule[][]) {
      const outcome = compileMapping({ rules }, CTX).apply(over);
      assert.equal(limitHit(outcome), 'cel_cost_exceeded');
      assert.equal((outcome as { ruleIndex: number }).ruleIndex, 0);
    }
  });

  it('stops the login at the cost meter and at the time budget, with the named outcome', () => {
    const m = compileMapping({ rules: [{ require: "claims.groups.exists(g, g.endsWith('-admins'))", name: 'admins' }] }, CTX);
    const groups = Array.from({ length: 1000 }, (_, i) => `g${i}`);
    assert.equal(limitHit(m.apply({ groups }, { celCost: 50 })), 'cel_cost_exceeded');
    assert.equal(limitHit(m.apply({ groups }, { timeMs: -1 })), 'mapping_timeout');
    assert.equal(limitHit(m.apply({ groups })), 'mapping_rejected', 'with the default budget the rule itself decides');
    const regex = compileMapping({ passthrough: [], rules: [{ claim: 'g', from: 'groups', regex: { pattern: '^g(1+)$', extract: '$1' } }] }, CTX);
    assert.equal(limitHit(regex.apply({ groups }, { timeMs: -1 })), 'mapping_timeout');
  });

  it('refuses claims past the claim bounds before any rule runs, naming the bound', () => {
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
    const over: Array<[Record<string, unknown>, string]> = [
      [{ groups: Array.from({ length: MAPPING_LIMITS.claimList + 1 }, (_, i) => `g${i}`) }, 'claim_list_too_long'],
      [{ groups: ['g0'], extra: 'b'.repeat(MAPPING_LIMITS.claimString + 1) }, 'claims_too_large'],
      [{ groups: ['g0'], extra: JSON.parse(`${'{"a":'.repeat(20)}1${'}'.repeat(20)}`) }, 'claims_too_deep'],
      [{ groups: ['g0'], extra: JSON.parse(`${'['.repeat(3000)}1${']'.repeat(3000)}`) }, 'claims_too_deep'],
      [{ groups: ['g0'], extra: Object.fromEntries(Array.from({ length: MAPPING_LIMITS.claimList + 1 }, (_, i) => [`c${i}`, i])) }, 'claim_list_too_long'],
      [{ groups: ['g0'], extra: Array.from({ length: 100 }, () => 'x'.repeat(MAPPING_LIMITS.claimString)) }, 'claims_too_large'],
    ];
    for (const [upstream, code] of over) {
      const outcome = m.apply(upstream);
      assert.equal(limitHit(outcome), code, JSON.stringify(upstream).slice(0, 60));
      assert.equal((outcome as { ruleIndex: number | null }).ruleIndex, null);
      assert.doesNotMatch((outcome as { error: string }).error, /bbbb|xxxx/, 'the log line names the claim, never its value');
    }
    assert.deepEqual(claims(m.apply({ groups: ['g0'] })), { copied: 'g0', cel: 'g0', when: 1 });
    // Within the bounds, claims no expression reads are not given to CEL...
    assert.deepEqual(claims(m.apply({ groups: ['g0'], unrelated: Array.from({ length: 100 }, () => Array.from({ length: 120 }, () => 0)) })), { copied: 'g0', cel: 'g0', when: 1 });
    // ...and an expression that uses `claims` as a whole sees them all.
    const whole = compileMapping({ passthrough: [], rules: [{ claim: 'n', cel: 'size(claims)' }] }, CTX);
    assert.deepEqual(claims(whole.apply({ a: 1, b: 2 })), { n: 2 });
  });

  it('passes 1,000 groups of 128 characters through lookups, regexes, CEL and require rules', () => {
    const groups = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(4, '0')}-${'g'.repeat(123)}`);
    const m = compileMapping(
      {
        passthrough: ['groups'],
        rules: [
          { require: "claims.groups.exists(g, g.startsWith('0999-'))", name: 'member' },
          { require: "claims.groups.all(g, g.matches('^[0-9]{4}-g+$'))", name: 'well-formed' },
          { claim: 'short', from: 'groups', regex: { pattern: '^(\\d{4})-', extract: '$1' } },
          { claim: 'count', cel: 'size(claims.groups)' },
          { claim: 'mapped', from: 'groups', lookup: { [groups[7]!]: 'seven' } },
        ],
      },
      CTX,
    );
    const out = claims(m.apply({ groups }));
    assert.equal((out.groups as string[]).length, 1000);
    assert.equal((out.short as string[])[999], '0999');
    assert.equal(out.count, 1000);
    assert.deepEqual(out.mapped, ['seven']);
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
