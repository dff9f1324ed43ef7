import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMapping, MappingError, type MappingOutcome } from '../../src/mapping/index.ts';

const CTX = { participantId: 'acme', domains: ['acme.example'] };

/** What `from: path` yields for `upstream`, or undefined when the rule yields nothing. */
function read(path: string, upstream: Record<string, unknown>): unknown {
  const outcome: MappingOutcome = compileMapping({ passthrough: [], rules: [{ claim: 'out', from: path }] }, CTX).apply(upstream);
  assert.equal(outcome.ok, true);
  return (outcome as { claims: Record<string, unknown> }).claims.out;
}

function pathError(path: string): string {
  try {
    compileMapping({ rules: [{ claim: 'out', from: path }] }, CTX);
  } catch (error) {
    assert.ok(error instanceof MappingError);
    assert.equal(error.issues.length, 1);
    assert.deepEqual({ index: error.issues[0]!.index, field: error.issues[0]!.field }, { index: 0, field: 'from' });
    return error.issues[0]!.message;
  }
  assert.fail(`"${path}" was accepted`);
}

describe('mapping source paths', () => {
  const upstream = {
    a: { b: { c: 'deep' }, n: null, list: [{ name: 'x' }, null, { name: 'y' }, { other: 1 }] },
    matrix: [
      [1, 2],
      [3, 4],
    ],
    zero: 0,
    no: false,
    empty: '',
    none: [],
    'dotted.key': 'dk',
    '0': 'zero-key',
    prénom: 'Zoë',
    名前: '山田',
    emoji: '👩🏽‍💻',
  };

  it('reads nested values and falsy values that are present', () => {
    assert.equal(read('a.b.c', upstream), 'deep');
    assert.deepEqual(read('a.b', upstream), { c: 'deep' });
    assert.equal(read('zero', upstream), 0);
    assert.equal(read('no', upstream), false);
    assert.equal(read('empty', upstream), '');
    assert.deepEqual(read('none', upstream), []);
  });

  it('yields nothing for missing claims and through nulls at any depth', () => {
    assert.equal(read('absent', upstream), undefined);
    assert.equal(read('a.absent.c', upstream), undefined);
    assert.equal(read('a.n', upstream), undefined);
    assert.equal(read('a.n.x', upstream), undefined);
    assert.equal(read('a.b.c.d', upstream), undefined, 'a step into a string');
    assert.equal(read('a.list[1].name', upstream), undefined, 'a null element');
    assert.equal(read('a.list[9]', upstream), undefined, 'past the end');
    assert.equal(read('a.list.name', upstream), undefined, 'a name on an array');
  });

  it('indexes arrays with [n] or .n, and reads numeric keys of objects', () => {
    assert.equal(read('a.list[0].name', upstream), 'x');
    assert.equal(read('a.list.2.name', upstream), 'y');
    assert.equal(read('matrix[1][0]', upstream), 3);
    assert.equal(read('0', upstream), 'zero-key');
    assert.equal(read('[0]', upstream), 'zero-key');
  });

  it('collects every element with [*], skipping those without the value', () => {
    assert.deepEqual(read('a.list[*].name', upstream), ['x', 'y']);
    assert.deepEqual(read('matrix[*][*]', upstream), [1, 2, 3, 4]);
    assert.deepEqual(read('none[*].x', upstream), []);
    assert.equal(read('a.b[*]', upstream), undefined, '[*] on an object');
    assert.equal(read('absent[*]', upstream), undefined);
  });

  it('reads keys holding dots or non-ASCII characters', () => {
    assert.equal(read('["dotted.key"]', upstream), 'dk');
    assert.equal(read("['dotted.key']", upstream), 'dk');
    assert.equal(read('prénom', upstream), 'Zoë');
    assert.equal(read('名前', upstream), '山田');
    assert.equal(read('emoji', upstream), '👩🏽‍💻');
    assert.equal(read('["quote\\"d"]', { 'quote"d': 1 }), 1);
  });

  it('never reads inherited properties', () => {
    assert.equal(read('constructor', {}), undefined);
    assert.equal(read('a.constructor.name', { a: {} }), undefined);
    assert.equal(read('__proto__', JSON.parse('{"x":1}')), undefined);
    assert.equal(read('a.length', { a: ['x'] }), undefined);
    assert.equal(read('__proto__.y', JSON.parse('{"__proto__":{"y":2}}')), 2, 'an own __proto__ key from JSON is data');
  });

  it('refuses malformed paths at load, naming the position', () => {
    assert.match(pathError(''), /empty/);
    assert.match(pathError('a..b'), /empty segment at position 2/);
    assert.match(pathError('.a'), /empty segment at position 0/);
    assert.match(pathError('a.'), /cannot end/);
    assert.match(pathError('a[x]'), /not an index/);
    assert.match(pathError('a[-1]'), /not an index/);
    assert.match(pathError('a[0'), /unterminated/);
    assert.match(pathError('a["x]'), /unterminated quoted key/);
    assert.match(pathError('a]'), /unexpected "]"/);
    assert.match(pathError('a[0]b'), /expected "\." or "\["/);
    assert.match(pathError('x'.repeat(600)), /at most/);
  });
});
