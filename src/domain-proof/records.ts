import { randomBytes } from 'node:crypto';

/*
 * How a domain's proof sits in the store: one record per domain, in the collection `domain-proofs`,
 * keyed by the domain in canonical form (domains/index.ts, as the participant schema stores it). One key per domain is what makes a claim exclusive: a
 * domain has one record, so one participant, at a time.
 *
 *   record  `domain-proofs/{domain}`           DomainRecord
 *   temp    `domain-proof:lease:{domain}`      the instance checking or changing the domain now
 *   counter `domain-proof:migrated`            > 0 once this store's domains have records
 */
export const DOMAIN_PROOFS = 'domain-proofs';
export const MIGRATED = 'domain-proof:migrated';
export const leaseKey = (domain: string) => `domain-proof:lease:${domain}`;

/** pending: not proven yet; verified: routes logins; suspended: was verified, its proof disappeared for longer than the grace period. */
export const DOMAIN_STATES = ['pending', 'verified', 'suspended'] as const;
export type DomainState = (typeof DOMAIN_STATES)[number];

/** Where a domain came from: the admin API (or console), the configuration files, or a store from before domain proof. */
export type DomainOrigin = 'runtime' | 'file' | 'upgrade';

/** What vouches for a verified domain: a proof found, the operator (proof not required), or the upgrade that introduced domain proof. */
export type VerifiedBy = 'dns' | 'https' | 'operator' | 'upgrade';

export type ProofMethod = 'dns' | 'https';

/** found: the proof is there; absent: nothing there (NXDOMAIN, no TXT, 404); mismatch: something else there; error: could not tell (timeout, refused, not a public address). */
export type MethodOutcome = 'found' | 'absent' | 'mismatch' | 'error' | 'skipped';

export interface MethodResult {
  outcome: MethodOutcome;
  /** For people: what was asked and what came back (never more than a short line). */
  detail: string;
}

export interface CheckResult {
  /** Unix ms */
  at: number;
  found: boolean;
  /** The method that found the proof. */
  method?: ProofMethod;
  dns: MethodResult;
  https: MethodResult;
}

export interface DomainRecord {
  domain: string;
  participant: string;
  origin: DomainOrigin;
  state: DomainState;
  /** 32 random bytes, base64url: not a secret (it is published), but no one can guess it before it is. */
  challenge: string;
  /** Unix ms, all of them (the proof service's clock). */
  createdAt: number;
  /** Last claim or state change: an orphan (its participant no longer lists the domain) is removed an hour after. */
  updatedAt: number;
  verifiedAt?: number;
  verifiedBy?: VerifiedBy;
  /** Set when a verified domain's proof was not found; cleared when it is found again. */
  proofMissingSince?: number;
  suspendedAt?: number;
  lastCheck?: CheckResult;
  /** When the timer checks it next; absent when proof is not required for it. */
  nextCheckAt?: number;
}

export const newChallenge = (): string => randomBytes(32).toString('base64url');

/** The DNS name whose TXT records hold the proof (issue 16; design.md). */
export const txtName = (domain: string) => `_concord-challenge.${domain}`;

/** The whole view the admin API returns for one domain: state, what to publish, and the last check. */
export interface DomainView {
  domain: string;
  participant: string;
  state: DomainState;
  /** Whether domainProof.mode requires proof for this domain (by its origin). */
  proofRequired: boolean;
  origin: DomainOrigin;
  challenge: string;
  /** Either one proves the domain. */
  proof: {
    dns: { name: string; type: 'TXT'; value: string };
    https: { url: string; body: string };
  };
  verifiedAt: string | null;
  verifiedBy: VerifiedBy | null;
  proofMissingSince: string | null;
  /** When a flagged domain will be suspended if its proof does not come back. */
  suspendsAt: string | null;
  suspendedAt: string | null;
  lastCheck: { at: string; found: boolean; method: ProofMethod | null; dns: MethodResult; https: MethodResult } | null;
  nextCheckAt: string | null;
  createdAt: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function domainView(record: DomainRecord, opts: { required: boolean; gracePeriodMs: number; wellKnownUrl: string }): DomainView {
  const { lastCheck } = record;
  return {
    domain: record.domain,
    participant: record.participant,
    state: record.state,
    proofRequired: opts.required,
    origin: record.origin,
    challenge: record.challenge,
    proof: {
      dns: { name: txtName(record.domain), type: 'TXT', value: record.challenge },
      https: { url: opts.wellKnownUrl, body: record.challenge },
    },
    verifiedAt: iso(record.verifiedAt),
    verifiedBy: record.verifiedBy ?? null,
    proofMissingSince: iso(record.proofMissingSince),
    suspendsAt: record.proofMissingSince !== undefined && record.state === 'verified' && opts.required ? iso(record.proofMissingSince + opts.gracePeriodMs) : null,
    suspendedAt: iso(record.suspendedAt),
    lastCheck: lastCheck ? { at: iso(lastCheck.at)!, found: lastCheck.found, method: lastCheck.method ?? null, dns: lastCheck.dns, https: lastCheck.https } : null,
    nextCheckAt: iso(record.nextCheckAt),
    createdAt: iso(record.createdAt)!,
  };
}
