import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConcordSettingsSchema, ParticipantSchema } from '../../src/config/index.ts';
import { afterCheck, newRecord, underMode, verifiedDomains, type DomainRecord, type Timing } from '../../src/domain-proof/index.ts';
import { domainView, type CheckResult } from '../../src/domain-proof/records.ts';
import { Registry } from '../../src/participants/index.ts';

/** The state machine of a domain's proof (pure: records in, records out), and what routes. */

const MIN = 60_000;
const DAY = 86_400_000;
const timing: Timing = { gracePeriodMs: 7 * DAY, checkIntervalMs: 5 * MIN, recheckIntervalMs: DAY };
const T0 = Date.parse('2030-01-01T00:00:00Z');

const found = (at: number, method: 'dns' | 'https' = 'dns'): CheckResult => ({
  at,
  found: true,
  method,
  dns: method === 'dns' ? { outcome: 'found', detail: 'a TXT record holds the challenge' } : { outcome: 'absent', detail: 'no TXT record' },
  https: method === 'https' ? { outcome: 'found', detail: 'answers with the challenge' } : { outcome: 'skipped', detail: 'not needed' },
});
const missing = (at: number): CheckResult => ({ at, found: false, dns: { outcome: 'absent', detail: 'no TXT record' }, https: { outcome: 'absent', detail: 'HTTP 404' } });

describe('domain proof: states', () => {
  it('a runtime claim is pending, with a fresh 43-character challenge, due for a check at once', () => {
    const a = newRecord('acme.example', 'acme', 'runtime', true, T0);
    const b = newRecord('acme.example', 'acme', 'runtime', true, T0);
    assert.equal(a.state, 'pending');
    assert.match(a.challenge, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.challenge, b.challenge, 'challenges are random');
    assert.equal(a.nextCheckAt, T0);
    assert.equal(a.verifiedAt, undefined);
  });

  it('without proof required, a claim is verified by the operator and never checked; an upgraded one by the upgrade', () => {
    const file = newRecord('acme.example', 'acme', 'file', false, T0);
    assert.equal(file.state, 'verified');
    assert.equal(file.verifiedBy, 'operator');
    assert.equal(file.nextCheckAt, undefined);
    const upgraded = newRecord('old.example', 'old', 'upgrade', false, T0);
    assert.deepEqual([upgraded.state, upgraded.verifiedBy, upgraded.nextCheckAt], ['verified', 'upgrade', undefined]);
    const held = newRecord('old.example', 'old', 'upgrade', true, T0);
    assert.deepEqual([held.state, held.verifiedBy, held.nextCheckAt], ['verified', 'upgrade', T0], 'still routing, but checked when proof is required');
  });

  it('pending: stays pending while nothing is found (checked again after checkInterval), verified once found', () => {
    const pending = newRecord('acme.example', 'acme', 'runtime', true, T0);
    const notYet = afterCheck(pending, missing(T0), true, T0, timing);
    assert.deepEqual(notYet.events, []);
    assert.equal(notYet.record.state, 'pending');
    assert.equal(notYet.record.nextCheckAt, T0 + 5 * MIN);
    assert.equal(notYet.record.lastCheck?.dns.outcome, 'absent');

    const proven = afterCheck(notYet.record, found(T0 + 5 * MIN), true, T0 + 5 * MIN, timing);
    assert.deepEqual(proven.events, ['verified']);
    assert.equal(proven.record.state, 'verified');
    assert.equal(proven.record.verifiedBy, 'dns');
    assert.equal(proven.record.verifiedAt, T0 + 5 * MIN);
    assert.equal(proven.record.nextCheckAt, T0 + 5 * MIN + DAY, 're-checked daily');
  });

  it('verified: a proof gone is flagged at once, still verified; suspended once the grace period has passed; verified again when it is back', () => {
    const verified = afterCheck(newRecord('acme.example', 'acme', 'runtime', true, T0), found(T0, 'https'), true, T0, timing).record;
    assert.equal(verified.verifiedBy, 'https');

    const t1 = T0 + DAY;
    const flagged = afterCheck(verified, missing(t1), true, t1, timing);
    assert.deepEqual(flagged.events, ['proof_missing']);
    assert.equal(flagged.record.state, 'verified', 'still routing during the grace period');
    assert.equal(flagged.record.proofMissingSince, t1);
    assert.equal(flagged.record.nextCheckAt, t1 + 5 * MIN);

    // Still missing a day before the end: still verified, the flag keeps its first time, no new event.
    const t2 = t1 + 6 * DAY;
    const still = afterCheck(flagged.record, missing(t2), true, t2, timing);
    assert.deepEqual(still.events, []);
    assert.equal(still.record.state, 'verified');
    assert.equal(still.record.proofMissingSince, t1);

    // Checked shortly before the end: the next check is due exactly when the grace period ends.
    const t3 = t1 + 7 * DAY - MIN;
    const almost = afterCheck(still.record, missing(t3), true, t3, timing);
    assert.equal(almost.record.nextCheckAt, t1 + 7 * DAY);

    const t4 = t1 + 7 * DAY;
    const suspended = afterCheck(almost.record, missing(t4), true, t4, timing);
    assert.deepEqual(suspended.events, ['suspended']);
    assert.equal(suspended.record.state, 'suspended');
    assert.equal(suspended.record.suspendedAt, t4);
    assert.equal(suspended.record.proofMissingSince, undefined);

    const t5 = t4 + DAY;
    const stillSuspended = afterCheck(suspended.record, missing(t5), true, t5, timing);
    assert.deepEqual([stillSuspended.events, stillSuspended.record.state], [[], 'suspended']);

    const back = afterCheck(stillSuspended.record, found(t5 + MIN), true, t5 + MIN, timing);
    assert.deepEqual(back.events, ['verified']);
    assert.equal(back.record.state, 'verified');
    assert.equal(back.record.suspendedAt, undefined);
  });

  it('a flag is cleared when the proof is found again within the grace period', () => {
    const verified = afterCheck(newRecord('acme.example', 'acme', 'runtime', true, T0), found(T0), true, T0, timing).record;
    const flagged = afterCheck(verified, missing(T0 + DAY), true, T0 + DAY, timing).record;
    const restored = afterCheck(flagged, found(T0 + 2 * DAY), true, T0 + 2 * DAY, timing);
    assert.deepEqual(restored.events, ['proof_restored']);
    assert.equal(restored.record.proofMissingSince, undefined);
    assert.equal(restored.record.state, 'verified');
    assert.equal(restored.record.verifiedAt, T0, 'verified since the first proof');
  });

  it('with a zero grace period, a proof gone flags and suspends in one check', () => {
    const verified = afterCheck(newRecord('acme.example', 'acme', 'runtime', true, T0), found(T0), true, T0, timing).record;
    const gone = afterCheck(verified, missing(T0 + DAY), true, T0 + DAY, { ...timing, gracePeriodMs: 0 });
    assert.deepEqual(gone.events, ['proof_missing', 'suspended']);
    assert.equal(gone.record.state, 'suspended');
  });

  it('without proof required, a check only informs: no state change, no next check', () => {
    const file = newRecord('acme.example', 'acme', 'file', false, T0);
    const checked = afterCheck(file, missing(T0 + DAY), false, T0 + DAY, timing);
    assert.deepEqual(checked.events, []);
    assert.equal(checked.record.state, 'verified');
    assert.equal(checked.record.proofMissingSince, undefined);
    assert.equal(checked.record.nextCheckAt, undefined);
    assert.equal(checked.record.lastCheck?.found, false);
  });

  it('a change of mode: proof no longer required verifies a pending or suspended domain; newly required schedules a check of one verified without proof', () => {
    const pending = newRecord('acme.example', 'acme', 'runtime', true, T0);
    const off = underMode(pending, false, T0 + MIN);
    assert.deepEqual(off?.events, ['verified']);
    assert.deepEqual([off?.record.state, off?.record.verifiedBy, off?.record.nextCheckAt], ['verified', 'operator', undefined]);
    assert.equal(underMode(off!.record, false, T0 + 2 * MIN), undefined, 'nothing more to do');

    const required = underMode(off!.record, true, T0 + 3 * MIN);
    assert.deepEqual(required?.events, []);
    assert.equal(required?.record.state, 'verified', 'keeps routing: the grace period starts when a check misses the proof');
    assert.equal(required?.record.nextCheckAt, T0 + 3 * MIN);
    assert.equal(underMode(pending, true, T0), undefined, 'a pending domain under required proof is as it should be');
  });
});

describe('domain proof: what routes', () => {
  const participant = (domains: string[]) =>
    ParticipantSchema.parse({
      id: 'acme',
      displayName: 'Acme',
      domains,
      upstream: { type: 'oidc', issuer: 'https://login.acme.example', clientId: 'c', clientSecret: 's' },
    });
  const verifiedRecord = (domain: string, owner = 'acme'): DomainRecord => ({ ...newRecord(domain, owner, 'runtime', false, T0) });

  it('verifiedDomains: only the participant\'s own records in state verified (flagged ones included)', () => {
    const records = new Map<string, DomainRecord>([
      ['acme.example', verifiedRecord('acme.example')],
      ['acme.test', newRecord('acme.test', 'acme', 'runtime', true, T0)],
      ['acme.dev', verifiedRecord('acme.dev', 'someone-else')],
      ['acme.org', { ...verifiedRecord('acme.org'), proofMissingSince: T0 }],
      ['acme.net', { ...verifiedRecord('acme.net'), state: 'suspended' }],
    ]);
    assert.deepEqual(verifiedDomains({ id: 'acme', domains: ['acme.example', 'acme.test', 'acme.dev', 'acme.org', 'acme.net', 'acme.io'] }, records), ['acme.example', 'acme.org']);
  });

  it('the registry routes verified domains only, tells a claimed unproven domain from an unknown one, and keeps it claimed', () => {
    const registry = new Registry();
    registry.setParticipant(participant(['acme.example', 'acme.test']), ['acme.example']);
    assert.equal(registry.participantForDomain('ACME.example')?.config.id, 'acme');
    assert.equal(registry.participantForDomain('acme.test'), undefined);
    assert.deepEqual({ id: registry.domainClaim('acme.test')?.participant.config.id, verified: registry.domainClaim('acme.test')?.verified }, { id: 'acme', verified: false });
    assert.equal(registry.domainClaim('unknown.example'), undefined);
    assert.deepEqual(registry.participant('acme')?.verifiedDomains, ['acme.example']);
    // Claimed, so no other participant may take it, proven or not.
    const rival = ParticipantSchema.parse({ id: 'rival', displayName: 'Rival', domains: ['acme.test'], upstream: { type: 'oidc', issuer: 'https://rival.example', clientId: 'c' } });
    assert.throws(() => registry.setParticipant(rival, ['acme.test']), { code: 'domain_conflict' });
    // Without a list: every domain (configuration applied without domain proof).
    registry.setParticipant(participant(['acme.example', 'acme.test']));
    assert.equal(registry.participantForDomain('acme.test')?.config.id, 'acme');
  });

  it('the email policy counts only verified domains as the participant\'s own', () => {
    const registry = new Registry();
    const active = registry.setParticipant(participant(['acme.example', 'acme.test']), ['acme.example']);
    const proven = active.mapping.apply({ sub: 'u', email: 'u@acme.example', email_verified: true });
    const unproven = active.mapping.apply({ sub: 'u', email: 'u@acme.test', email_verified: true });
    assert.ok(proven.ok && unproven.ok);
    assert.deepEqual([proven.claims.email, proven.claims.email_verified], ['u@acme.example', true]);
    assert.equal(unproven.claims.email, undefined, 'an unproven domain\'s email is never released as the participant\'s own');
    assert.equal(unproven.claims.email_verified, undefined);
  });
});

describe('domain proof: view and settings', () => {
  it('the view tells what to publish, when a flagged domain is suspended, and the last check, as ISO times', () => {
    const record: DomainRecord = { ...newRecord('acme.example', 'acme', 'runtime', true, T0), state: 'verified', verifiedAt: T0, verifiedBy: 'dns', proofMissingSince: T0 + DAY, lastCheck: missing(T0 + DAY), nextCheckAt: T0 + DAY + 5 * MIN };
    const view = domainView(record, { required: true, gracePeriodMs: 7 * DAY, wellKnownUrl: `https://acme.example/.well-known/concord-challenge/${record.challenge}` });
    assert.deepEqual(view.proof, {
      dns: { name: '_concord-challenge.acme.example', type: 'TXT', value: record.challenge },
      https: { url: `https://acme.example/.well-known/concord-challenge/${record.challenge}`, body: record.challenge },
    });
    assert.equal(view.suspendsAt, '2030-01-09T00:00:00.000Z');
    assert.equal(view.proofMissingSince, '2030-01-02T00:00:00.000Z');
    assert.equal(view.lastCheck?.found, false);
    assert.equal(view.lastCheck?.method, null);
    assert.equal(view.suspendedAt, null);
    assert.equal(domainView(record, { required: false, gracePeriodMs: 7 * DAY, wellKnownUrl: '' }).suspendsAt, null, 'no suspension when proof is not required');
  });

  it('domainProof settings: defaults, the one-word mode, resolver addresses', () => {
    const defaults = ConcordSettingsSchema.parse({}).domainProof;
    assert.deepEqual(defaults.mode, { runtime: 'required', files: 'off' });
    assert.deepEqual([defaults.gracePeriod, defaults.checkInterval, defaults.recheckInterval, defaults.resolvers, defaults.allowPrivateNetwork, defaults.allowInsecureHttp], [7 * 86400, 300, 86400, [], false, false]);
    assert.deepEqual(ConcordSettingsSchema.parse({ domainProof: { mode: 'off' } }).domainProof.mode, { runtime: 'off', files: 'off' });
    assert.deepEqual(ConcordSettingsSchema.parse({ domainProof: { mode: { files: 'required' } } }).domainProof.mode, { runtime: 'required', files: 'required' });
    assert.deepEqual(ConcordSettingsSchema.parse({ domainProof: { resolvers: ['192.0.2.53', '127.0.0.1:5353', '2001:db8::53', '[::1]:53'], gracePeriod: '3d' } }).domainProof.resolvers.length, 4);
    for (const bad of ['dns.example', '127.0.0.1:0', '127.0.0.1:70000', '[::1', '300.1.1.1']) {
      assert.equal(ConcordSettingsSchema.safeParse({ domainProof: { resolvers: [bad] } }).success, false, bad);
    }
    assert.equal(ConcordSettingsSchema.safeParse({ domainProof: { mode: 'sometimes' } }).success, false);
    assert.equal(ConcordSettingsSchema.safeParse({ domainProof: { recheckInterval: '10s' } }).success, false);
  });
});
