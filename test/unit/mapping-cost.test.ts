import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileMapping, type MappingRule } from '../../src/mapping/index.ts';

/** A typical mapping: 10 rules, 2 of them CEL (one `cel`, one `when`), plus a require. */
const RULES: MappingRule[] = [
  { require: "claims.tid == '9188040d-6c67-4c5b-b112-36a304b66dad'", name: 'tenant' },
  { claim: 'email', from: ['email', 'upn'] },
  { claim: 'email_verified', value: true },
  { claim: 'preferred_username', from: 'upn', regex: { pattern: '^([^@]+)@', extract: '$1' } },
  { claim: 'name', template: '{given_name} {family_name}' },
  { claim: 'groups', from: 'groups', lookup: { 'guid-1': 'admins', 'guid-2': 'engineering', 'guid-3': 'sales' } },
  { claim: 'roles', cel: "claims.roles.filter(r, r.startsWith('app-'))" },
  { claim: 'tenant', value: 'acme' },
  { claim: 'department', from: 'extension_department' },
  { claim: 'locale', value: 'en' },
];

const UPSTREAM = {
  tid: '9188040d-6c67-4c5b-b112-36a304b66dad',
  oid: '00000000-0000-0000-66f3-3332eca7ea81',
  upn: 'alice@acme.example',
  given_name: 'Alice',
  family_name: 'Martin',
  name: 'Alice Martin',
  groups: ['guid-1', 'guid-9', 'guid-2', 'guid-7', 'guid-8'],
  roles: ['app-crm', 'offline_access', 'app-wiki', 'uma_authorization'],
  extension_department: 'Engineering',
  amr: ['pwd', 'mfa'],
};

// What it costs is measured by `npm run bench` (mapping part, against an ES256 signature in the same
// run), never asserted here: a timing in a test fails on a busy machine, not on slow code.
describe('the typical mapping measured by the bench', () => {
  it('releases what its 10 rules (2 CEL) say', () => {
    const mapping = compileMapping({ rules: RULES }, { participantId: 'acme', domains: ['acme.example'] });
    const outcome = mapping.apply(UPSTREAM);
    assert.deepEqual(outcome, {
      ok: true,
      claims: {
        email: 'alice@acme.example',
        email_verified: true,
        preferred_username: 'alice',
        name: 'Alice Martin',
        given_name: 'Alice',
        family_name: 'Martin',
        groups: ['admins', 'engineering'],
        roles: ['app-crm', 'app-wiki'],
        tenant: 'acme',
        department: 'Engineering',
        locale: 'en',
      },
    });
    assert.deepEqual(mapping.apply(UPSTREAM), outcome, 'the same answer every time: nothing is kept between logins');
  });
});
