import { newChallenge, type CheckResult, type DomainOrigin, type DomainRecord } from './records.ts';

/*
 * The life of a domain's proof, as pure functions of (record, what happened, now): the service
 * (service.ts) reads, calls one of these, writes, and reports the events.
 *
 *   claimed, proof required      -> pending     (checked every checkInterval)
 *   pending    + proof found     -> verified    (re-checked every recheckInterval)
 *   verified   + proof not found -> verified, flagged: proofMissingSince = now (checked every checkInterval)
 *   flagged    + proof found     -> verified, flag cleared
 *   flagged    for gracePeriod   -> suspended   (checked every checkInterval)
 *   suspended  + proof found     -> verified
 *   proof not required (mode off for its origin) -> verified by the operator, never checked
 */

/** A change the service logs, audits and counts. */
export type ProofEvent = 'verified' | 'proof_missing' | 'proof_restored' | 'suspended';

export interface Timing {
  /** All in milliseconds. */
  gracePeriodMs: number;
  checkIntervalMs: number;
  recheckIntervalMs: number;
}

/** A new record for a domain a participant claims. Proof not required: verified at once. A store from before domain proof: verified by the upgrade. */
export function newRecord(domain: string, participant: string, origin: DomainOrigin, required: boolean, now: number, challenge = newChallenge()): DomainRecord {
  const base = { domain, participant, origin, challenge, createdAt: now, updatedAt: now };
  if (origin === 'upgrade') return { ...base, state: 'verified', verifiedAt: now, verifiedBy: 'upgrade', ...(required ? { nextCheckAt: now } : {}) };
  if (!required) return { ...base, state: 'verified', verifiedAt: now, verifiedBy: 'operator' };
  return { ...base, state: 'pending', nextCheckAt: now };
}

/** The record after a check whose result is `result`, and what changed. */
export function afterCheck(record: DomainRecord, result: CheckResult, required: boolean, now: number, timing: Timing): { record: DomainRecord; events: ProofEvent[] } {
  const next: DomainRecord = { ...record, lastCheck: result };
  const events: ProofEvent[] = [];
  if (!required) {
    // Proof not required: the check only informs; the state is the operator's.
    delete next.nextCheckAt;
    return { record: next, events };
  }
  if (result.found) {
    if (record.state !== 'verified') {
      next.state = 'verified';
      next.verifiedAt = now;
      next.updatedAt = now;
      delete next.suspendedAt;
      events.push('verified');
    } else if (record.proofMissingSince !== undefined) {
      next.updatedAt = now;
      events.push('proof_restored');
    }
    next.verifiedBy = result.method!;
    delete next.proofMissingSince;
    next.nextCheckAt = now + timing.recheckIntervalMs;
    return { record: next, events };
  }
  next.nextCheckAt = now + timing.checkIntervalMs;
  if (record.state !== 'verified') return { record: next, events };
  if (record.proofMissingSince === undefined) {
    next.proofMissingSince = now;
    next.updatedAt = now;
    events.push('proof_missing');
  }
  const suspendAt = next.proofMissingSince! + timing.gracePeriodMs;
  if (now >= suspendAt) {
    next.state = 'suspended';
    next.suspendedAt = now;
    next.updatedAt = now;
    delete next.proofMissingSince;
    events.push('suspended');
  } else {
    // Checked again in time to suspend on the day, not up to an interval later.
    next.nextCheckAt = Math.min(next.nextCheckAt, suspendAt);
  }
  return { record: next, events };
}

/**
 * The record under the mode in force now (domainProof.mode can change between starts): proof no
 * longer required verifies the domain; proof newly required schedules a check of a domain that
 * was verified without one (by the operator or the upgrade), which then has the grace period to
 * publish it. Undefined when nothing changes.
 */
export function underMode(record: DomainRecord, required: boolean, now: number): { record: DomainRecord; events: ProofEvent[] } | undefined {
  if (!required) {
    if (record.state === 'verified' && record.proofMissingSince === undefined && record.nextCheckAt === undefined) return undefined;
    const next: DomainRecord = { ...record };
    delete next.nextCheckAt;
    if (record.state === 'verified' && record.proofMissingSince === undefined) return { record: next, events: [] };
    delete next.proofMissingSince;
    delete next.suspendedAt;
    return { record: { ...next, state: 'verified', verifiedAt: now, verifiedBy: 'operator', updatedAt: now }, events: ['verified'] };
  }
  if (record.nextCheckAt !== undefined) return undefined;
  return { record: { ...record, nextCheckAt: now }, events: [] };
}
