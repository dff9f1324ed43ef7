/**
 * Domain proof (issue 16): a domain routes logins, and counts as its participant's own when an
 * email is released, only once proven, by a DNS TXT record `_concord-challenge.{domain}` or
 * `https://{domain}/.well-known/concord-challenge/{challenge}` holding its challenge. The proof
 * service keeps one record per domain in the store; the config sync hands the registry each
 * participant's verified domains (`verifiedDomains`). docs/admin.md#domain-proof.
 */
export { createDomainProof, DomainBusyError, SYSTEM_ACTOR, type Actor, type AuditSink, type DomainProof, type DomainProofOptions } from './service.ts';
export { DOMAIN_STATES, type DomainOrigin, type DomainRecord, type DomainState, type DomainView, type MethodResult, type VerifiedBy } from './records.ts';
export { afterCheck, newRecord, underMode, type ProofEvent, type Timing } from './transitions.ts';

import { canonicalDomain } from '../domains/index.ts';
import type { DomainRecord } from './records.ts';

/**
 * The domains of a participant that route logins and count as its own at release: those whose
 * record is this participant's and verified (a flagged domain is still verified, for its grace
 * period). A domain without a record, or with another participant's, is not.
 */
export function verifiedDomains(participant: { id: string; domains: readonly string[] }, records: ReadonlyMap<string, DomainRecord>): string[] {
  return participant.domains.filter((domain) => {
    const record = records.get(canonicalDomain(domain) ?? domain);
    return record?.participant === participant.id && record.state === 'verified';
  });
}
