import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConcordError } from '../../src/errors.ts';
import { compileMapping, MappingError, MappingSchema, RESERVED_CLAIMS, type MappingIssue } from '../../src/mapping/index.ts';

const CTX = { participantId: 'acme', domains: ['acme.example'] };

function issuesOf(config: unknown): MappingIssue[] {
  try {
    compileMapping(config as never, CTX);
  } catch (error) {
    assert.ok(error instanceof MappingError, String(error));
    return error.issues;
  }
  assert.fail('the mapping was accepted');
}

/** The single issue of a one-rule mapping. */
function issueOf(rule: unknown): MappingIssue {
  const issues = issuesOf({ rules: [rule] });
  assert.equal(issues.length, 1, JSON.stringify(issues));
  return issues[0]!;
}

function accepted(rule: unknown): void {
  assert.doesNotThrow(() => compileMapping({ rules: [rule] } as never, CTX));
}

describe('mapping validation: reserved claims', () => {
  it('refuses every reserved claim as a rule target, whatever the source', () => {
    for (const claim of ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'auth_time', 'nonce', 'azp', 'sid', 'at_hash', 'c_hash', 'idp']) {
      assert.ok(RESERVED_CLAIMS.includes(claim), claim);
      for (const rule of [{ claim, from: 'x' }, { claim, value: 'x' }, { claim, cel: "'x'" }, { claim, template: 'x' }]) {
        const issue = issueOf(rule);
        assert.deepEqual({ ...issue, message: undefined }, { participant: 'acme', index: 0, field: 'claim', message: undefined });
        assert.match(issue.message, /set by Concord/);
      }
    }
  });

  it('refuses reserved claims in other spellings, as passthrough entries, and unusable names', () => {
    assert.match(issueOf({ claim: 'SUB', value: 'x' }).message, /set by Concord/);
    assert.match(issueOf({ claim: '__proto__', value: 'x' }).message, /cannot be used/);
    assert.match(issueOf({ claim: '', value: 'x' }).message, /empty/);
    assert.match(issueOf({ claim: 'a\nb', value: 'x' }).message, /control/);
    assert.deepEqual(issuesOf({ passthrough: ['email', 'sub', 'nonce'], rules: [] }).map((i) => [i.index, i.field]), [
      [null, 'passthrough.1'],
      [null, 'passthrough.2'],
    ]);
  });
});

describe('mapping validation: shape', () => {
  it('names the participant, the rule index and the field', () => {
    const issues = issuesOf({
      rules: [
        { claim: 'ok', value: 1 },
        { claim: 'a', from: 'x', value: 1 },
        { claim: 'b' },
        { claim: 'c', cel: "'x'", lookup: { a: 'b' } },
        { claim: 'd', from: 'x', unmatched: 'drop' },
        { claim: 'e', from: 'x', lookup: { a: 'b' }, regex: { pattern: 'x' } },
        { require: 'true', claim: 'f' },
        { claim: 'g', form: 'x' },
        { claim: 'h', value: null },
        { claim: 'i', from: 'x', message: 'm' },
        { claim: 'j', from: 'x', regex: { pattern: 'x', extract: '$&', replace: '' } },
      ],
    });
    const where = issues.map((i) => `${i.participant} ${i.index} ${i.field}`);
    assert.deepEqual(where, [
      'acme 1 value',
      'acme 2 ',
      'acme 3 lookup',
      'acme 4 unmatched',
      'acme 5 regex',
      'acme 6 claim',
      'acme 7 ',
      'acme 7 ',
      'acme 8 value',
      'acme 9 message',
      'acme 10 regex.replace',
    ]);
    assert.match(issues[0]!.message, /only one of from, value, template, cel/);
    assert.match(issues[6]!.message, /form/);
    assert.match(issues[7]!.message, /needs one of from, value, template or cel/);
  });

  it('is one MappingError with a stable code, status 422 and every issue in its message', () => {
    let error: unknown;
    try {
      compileMapping({ rules: [{ claim: 'sub', value: 1 }, { claim: 'x', cel: 'nope(' }] }, { participantId: 'globex', domains: [] });
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof MappingError && error instanceof ConcordError);
    assert.equal(error.code, 'invalid_mapping');
    assert.equal(error.status, 422);
    assert.equal(error.expose, true);
    assert.equal(error.issues.length, 2);
    assert.ok(error.issues.every((i) => i.participant === 'globex'));
    assert.match(error.message, /globex, rules\[0\]\.claim/);
    assert.match(error.message, /globex, rules\[1\]\.cel: syntax error/);
  });

  it('reports compile errors of good rules along with shape errors of bad ones', () => {
    const issues = issuesOf({ rules: [{ claim: 'a', cel: 'unknown_fn()' }, { claim: 1 }] });
    assert.deepEqual(issues.map((i) => [i.index, i.field]), [
      [0, 'cel'],
      [1, 'claim'],
    ]);
  });

  it('works inside another zod schema and on YAML, with the shorthand list', () => {
    const Participant = z.object({ id: z.string(), mapping: MappingSchema.optional() });
    const yaml = parseYaml(`
id: acme
mapping:
  - claim: tenant
    value: acme
  - require: "claims.tid == 'x'"
    message: Use your work account
`);
    const parsed = Participant.parse(yaml);
    assert.equal(parsed.mapping?.rules.length, 2);
    const bad = Participant.safeParse({ id: 'acme', mapping: [{ claim: 'sub', value: 1 }] });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error?.issues[0]?.path, ['mapping', 'rules', 0, 'claim']);
    assert.ok(z.toJSONSchema(Participant, { io: 'input', unrepresentable: 'any' }));
  });
});

describe('mapping validation: CEL at load', () => {
  it('refuses syntax errors', () => {
    const issue = issueOf({ claim: 'x', cel: "claims.a ==" });
    assert.equal(issue.field, 'cel');
    assert.match(issue.message, /syntax error/);
    assert.match(issueOf({ claim: 'x', cel: '' }).message, /empty/);
    assert.match(issueOf({ require: ')' }).message, /syntax error/);
  });

  it('refuses unknown functions, qualified or not, in every expression field', () => {
    assert.match(issueOf({ claim: 'x', cel: 'lookupUser(claims.sub)' }).message, /unknown function "lookupUser"/);
    assert.match(issueOf({ claim: 'x', cel: "claims.email.sha256()" }).message, /unknown function "sha256"/);
    assert.match(issueOf({ claim: 'x', cel: 'cel.bind(a, 1, a)' }).message, /unknown function "cel\.bind"/);
    const when = issueOf({ claim: 'x', value: 1, when: 'env()' });
    assert.equal(when.field, 'when');
    assert.equal(issueOf({ require: 'now() > 0' }).field, 'require');
  });

  it('refuses anything beyond the claims: other variables, message construction', () => {
    assert.match(issueOf({ claim: 'x', cel: 'request.ip' }).message, /unknown variable "request"/);
    assert.match(issueOf({ claim: 'x', cel: 'process' }).message, /unknown variable "process"/);
    assert.match(issueOf({ claim: 'x', cel: "google.protobuf.Timestamp{seconds: 1}" }).message, /not allowed|unknown variable/);
    assert.match(issueOf({ claim: 'x', cel: 'claims.g.map(v, w)' }).message, /unknown variable "w"/);
    accepted({ claim: 'x', cel: 'claims.g.map(v, v + claims.suffix)' });
    accepted({ claim: 'x', cel: 'type(claims.g) == list' });
    accepted({ claim: 'x', cel: "strings.quote(claims.name)" });
  });

  it('refuses expressions too large, too deep or too heavy', () => {
    assert.match(issueOf({ claim: 'x', cel: `'${'a'.repeat(3000)}'` }).message, /at most 2048 characters/);
    assert.match(issueOf({ claim: 'x', cel: `${'('.repeat(40)}1${')'.repeat(40)}` }).message, /too deeply nested/);
    assert.match(issueOf({ claim: 'x', cel: `[${'1,'.repeat(450)}1]` }).message, /too large: more than 400 nodes/);
    assert.match(issueOf({ claim: 'x', cel: Array.from({ length: 100 }, () => 'claims.a').join('+') }).message, /too deeply nested: more than 48 levels/);
    assert.match(issueOf({ claim: 'x', cel: 'claims.g.map(a, claims.g.map(b, a + b))' }).message, /too heavy/);
    assert.match(issueOf({ require: 'claims.g.all(a, claims.g.exists(b, a == b))' }).message, /too heavy/);
    // The same shape over a short literal list is cheap enough.
    accepted({ claim: 'x', cel: "claims.g.filter(a, ['x', 'y', 'z'].exists(b, a == b))" });
    accepted({ claim: 'x', cel: "claims.g.map(r, r.lowerAscii())" });
  });

  it('refuses a mapping whose expressions are together too heavy', () => {
    const rule = { claim: 'x', cel: "claims.g.map(x, ['a', 'b', 'c', 'd', 'e'].exists(y, y == x))" };
    accepted(rule);
    const issues = issuesOf({ rules: Array.from({ length: 10 }, () => rule) });
    assert.deepEqual(issues.map((i) => [i.index, i.field]), [[null, 'rules']]);
    assert.match(issues[0]!.message, /together are too heavy/);
  });

  it('requires matches() patterns to be valid string literals', () => {
    accepted({ require: "claims.email.matches('^[^@]+@acme\\\\.example$')" });
    assert.match(issueOf({ require: 'claims.email.matches(claims.pattern)' }).message, /string literal/);
    assert.match(issueOf({ require: "claims.email.matches('(')" }).message, /invalid matches\(\) pattern/);
  });
});

describe('mapping validation: regexes', () => {
  const patternIssue = (pattern: string) => {
    const issue = issueOf({ claim: 'x', from: 'y', regex: { pattern } });
    assert.equal(issue.field, 'regex.pattern');
    return issue.message;
  };

  it('accepts nested quantifiers and repeated alternations: RE2 matches them in linear time', () => {
    for (const p of ['(a+)+', '(a*)*b', '(?:a+)*', '(\\w+\\s?)*$', '(a?){25}', '((ab)*c)+', '(?<x>a+)+', '(a|aa)+', '(?:x|y)*z', '((a|b)c)+', '(a+){000000000000000000000001,}$']) {
      accepted({ claim: 'x', from: 'y', regex: { pattern: p } });
    }
  });

  it('refuses what RE2 cannot do (backreferences, lookaround), huge programs and long patterns', () => {
    assert.match(patternIssue('(a)\\1'), /not a valid RE2 regular expression: invalid escape/);
    assert.match(patternIssue('(?<n>a)\\k<n>'), /not a valid RE2 regular expression/);
    assert.match(patternIssue('a(?=b)'), /not a valid RE2 regular expression/);
    assert.match(patternIssue('(?<!a)b'), /not a valid RE2 regular expression/);
    assert.match(patternIssue('a{2000}'), /invalid repeat count/);
    assert.match(patternIssue('(?:a?){800}a{800}'), /too large once compiled: \d+ instructions \(at most 1500\)/);
    assert.match(patternIssue('a'.repeat(300)), /at most 256/);
    assert.match(patternIssue('(unclosed'), /not a valid RE2 regular expression: missing closing \)/);
  });

  it('accepts ordinary patterns, with quantifiers inside classes, escapes and optional groups', () => {
    for (const pattern of ['^CN=([^,]+)', '[(a+)+]*', '\\(a+\\)+', '^(?:foo|bar)?-\\d{2,4}$', '(ab)+', '\\p{L}+', '(a+)?', '(?<user>[^@]+)@(?<domain>.+)']) {
      accepted({ claim: 'x', from: 'y', regex: { pattern } });
    }
  });

  it('refuses references to groups the pattern does not have', () => {
    assert.match(issueOf({ claim: 'x', from: 'y', regex: { pattern: '(a)', extract: '$2' } }).message, /has 1/);
    assert.match(issueOf({ claim: 'x', from: 'y', regex: { pattern: '(a)', replace: '$<nope>' } }).message, /names no group/);
    assert.match(issueOf({ claim: 'x', from: 'y', regex: { pattern: 'a', extract: '$0' } }).message, /\$&/);
  });
});
