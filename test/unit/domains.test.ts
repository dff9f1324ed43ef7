import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalDomain, emailDomain, parseEmailAddress } from '../../src/domains/index.ts';

/** The one normal form of a domain (issue 18 item 5): UTS-46, lower case, one trailing dot removed. */
describe('canonicalDomain', () => {
  it('gives every spelling of one domain the same ASCII form (the examples of the issue among them)', () => {
    const same: Array<[string, string]> = [
      ['acme.example', 'acme.example'],
      ['ACME.Example', 'acme.example'],
      ['acme.example.', 'acme.example'], // trailing dot (the DNS root)
      ['bücher.example', 'xn--bcher-kva.example'], // UTS-46: a Unicode label becomes its A-label
      ['BÜCHER.example', 'xn--bcher-kva.example'],
      ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
      ['acme\u3002example', 'acme.example'], // ideographic full stop
      ['acme\uFF0Eexample', 'acme.example'], // full-width full stop
      ['\uFF41\uFF43\uFF4D\uFF45.example', 'acme.example'], // full-width letters
      ['\u212Aiwi.example', 'kiwi.example'], // the Kelvin sign maps to k under UTS-46
      ['faß.example', 'xn--fa-hia.example'], // non-transitional processing: ß stays ß
      ['sub.acme.example', 'sub.acme.example'],
      ['a-b.co', 'a-b.co'],
      ['example.xn--p1ai', 'example.xn--p1ai'], // an IDN top-level domain
      ['пример.рф', 'xn--e1afmkfd.xn--p1ai'],
    ];
    for (const [input, expected] of same) assert.equal(canonicalDomain(input), expected, input);
  });

  it('keeps look-alikes apart: another script is another domain', () => {
    assert.notEqual(canonicalDomain('\u0430cme.example'), 'acme.example'); // Cyrillic а
    assert.equal(canonicalDomain('\u0430cme.example'), 'xn--cme-5cd.example');
  });

  it('refuses what is not a domain name', () => {
    for (const input of [
      '',
      '.',
      'acme.example..', // one trailing dot only
      'acme..example',
      '.acme.example',
      'localhost',
      'example',
      '127.0.0.1',
      '[::1]',
      'a_b.example',
      '-acme.example',
      'acme-.example',
      'acme.example/x', // a URL parser would read a path
      'acme.example?x',
      'acme.example#x',
      'acme%2eexample', // or an escape
      'user@acme.example',
      'acme.example:443',
      ' acme.example',
      'acme.example ',
      'acme .example',
      'acme.123',
      `${'a'.repeat(64)}.example`,
      `${'a.'.repeat(127)}example`,
    ]) {
      assert.equal(canonicalDomain(input), undefined, JSON.stringify(input));
    }
  });
});

describe('email addresses', () => {
  it('split at their one @, the domain canonical, the local part as given', () => {
    assert.deepEqual(parseEmailAddress('Alice.Smith@ACME.example.'), { local: 'Alice.Smith', domain: 'acme.example' });
    assert.deepEqual(parseEmailAddress('user@bücher.example'), { local: 'user', domain: 'xn--bcher-kva.example' });
    assert.equal(emailDomain('alice@acme\u3002example'), 'acme.example');
  });

  it('refuse two @ (whichever domain a reader picks), none, an empty or over-long local part, a bad domain', () => {
    for (const input of ['alice@@acme.example', 'ceo@globex.example@acme.example', '"a@b"@acme.example', 'acme.example', '@acme.example', 'alice@', `${'a'.repeat(65)}@acme.example`, 'alice@localhost', 'alice@acme.example/evil.example']) {
      assert.equal(parseEmailAddress(input), undefined, input);
      assert.equal(emailDomain(input), undefined, input);
    }
  });
});
